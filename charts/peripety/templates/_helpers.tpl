{{/*
Names, labels and the image, shared by every template.
*/}}

{{/* The chart name, or nameOverride. */}}
{{- define "peripety.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 40 | trimSuffix "-" -}}
{{- end -}}

{{/*
The prefix of every object name. Release "peripety" gives "peripety", so the
ServiceAccounts are peripety-controller and peripety-agent: the identities
the agent's --controller-identity and the docs name. Truncated to 40 so that
"<fullname>-agent-events" and friends stay within 63 characters.
*/}}
{{- define "peripety.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "peripety.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels of every object; include with (dict "ctx" $ "component" "agent"). */}}
{{- define "peripety.labels" -}}
helm.sh/chart: {{ include "peripety.chart" .ctx }}
{{ include "peripety.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/part-of: peripety
{{- with .ctx.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* The labels a workload selects its pods by: never change them (selectors are immutable). */}}
{{- define "peripety.selectorLabels" -}}
app.kubernetes.io/name: {{ include "peripety.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
{{- if .component }}
app.kubernetes.io/component: {{ .component }}
{{- end }}
{{- end -}}

{{- define "peripety.controller.fullname" -}}
{{- printf "%s-controller" (include "peripety.fullname" .) -}}
{{- end -}}

{{- define "peripety.agent.fullname" -}}
{{- printf "%s-agent" (include "peripety.fullname" .) -}}
{{- end -}}

{{- define "peripety.controller.serviceAccountName" -}}
{{- default (include "peripety.controller.fullname" .) .Values.controller.serviceAccount.name -}}
{{- end -}}

{{- define "peripety.agent.serviceAccountName" -}}
{{- default (include "peripety.agent.fullname" .) .Values.agent.serviceAccount.name -}}
{{- end -}}

{{/* The user name the agents accept on their control API: the controller's ServiceAccount. */}}
{{- define "peripety.controller.identity" -}}
{{- printf "system:serviceaccount:%s:%s" .Release.Namespace (include "peripety.controller.serviceAccountName" .) -}}
{{- end -}}

{{/* repository:tag, or repository@digest when a digest is pinned; the tag defaults to appVersion. */}}
{{- define "peripety.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}
