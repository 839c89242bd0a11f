"""Builders of test values with sensible defaults, shared by every test (`from builders import ...`)."""

from builders.core import (
    GIB,
    make_in_flight,
    make_job,
    make_node,
    make_offer,
    make_queue,
    make_snapshot,
    utc,
)

__all__ = ["GIB", "make_in_flight", "make_job", "make_node", "make_offer", "make_queue", "make_snapshot", "utc"]
