"""What the operator writes: lifecycle rules, the planner, statuses, pods and reservations,
provenance, the writer port, the applier and its recording fake."""
