{{/* The release's full name: the release name, with "-gpupool" unless it already says gpupool. */}}
{{- define "gpupool.fullname" -}}
{{- if contains "gpupool" .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-gpupool" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Labels every object of the release carries. */}}
{{- define "gpupool.labels" -}}
app.kubernetes.io/name: gpupool
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* Selector labels of one component (operator or agent); pass (list $ "operator"). */}}
{{- define "gpupool.selectorLabels" -}}
{{- $root := index . 0 -}}
app.kubernetes.io/name: gpupool
app.kubernetes.io/instance: {{ $root.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- define "gpupool.serviceAccountName" -}}
{{- .Values.serviceAccount.name | default (include "gpupool.fullname" .) -}}
{{- end -}}

{{- define "gpupool.agentServiceAccountName" -}}
{{- printf "%s-agent" (include "gpupool.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "gpupool.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{/* The operator's settings: the chart's own, overridden by operator.settings. */}}
{{- define "gpupool.operatorSettings" -}}
{{- $chart := dict "leaderElection" true "leaderElectionNamespace" .Release.Namespace "healthPort" 8080 "metricsPort" 8081 "logFormat" "json" -}}
{{- toYaml (mergeOverwrite $chart (deepCopy .Values.operator.settings)) -}}
{{- end -}}

{{/* Environment variables from a settings map: camelCase key -> PREFIX + UPPER_SNAKE_CASE. Pass (list PREFIX MAP). */}}
{{- define "gpupool.settingsEnv" -}}
{{- $prefix := index . 0 -}}
{{- $settings := index . 1 -}}
{{- range $key := keys $settings | sortAlpha }}
- name: {{ printf "%s%s" $prefix ($key | snakecase | upper) }}
  value: {{ index $settings $key | toString | quote }}
{{- end -}}
{{- end -}}

{{/* The container security context both the operator and the agent run with. */}}
{{- /*
The node agent's: the kubelet creates its PodResources socket as root's, writable by root
only, so the agent connects as user 0 (as NVIDIA's DCGM exporter does), with no
capability, no privilege escalation and a read-only root filesystem.
*/ -}}
{{- define "gpupool.agentSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: false
runAsUser: 0
runAsGroup: 0
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "gpupool.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}
