{{/*
Labels Helm adds to every object, beside those config/ (kustomize) sets.
Selectors use only app.kubernetes.io/name and component, as config/ does:
the chart is installed once per cluster.
*/}}
{{- define "auditops.helmLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}

{{/* The manager pods' labels, which every selector of the chart uses. */}}
{{- define "auditops.selectorLabels" -}}
app.kubernetes.io/name: auditops
app.kubernetes.io/component: manager
{{- end }}

{{/* The manager's ServiceAccount as a Kubernetes user name. */}}
{{- define "auditops.managerUser" -}}
system:serviceaccount:{{ .Release.Namespace }}:auditops-manager
{{- end }}

{{- define "auditops.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}
{{- end }}

{{/* The store type, checked: a typo must not fall back to SQLite. */}}
{{- define "auditops.store" -}}
{{- $t := .Values.store.type -}}
{{- if not (has $t (list "sqlite" "postgres")) -}}
{{- fail (printf "store.type must be sqlite or postgres, not %q" $t) -}}
{{- end -}}
{{ $t }}
{{- end }}

{{- define "auditops.certSource" -}}
{{- $s := .Values.apiService.certificate.source -}}
{{- if not (has $s (list "generated" "certManager" "provided")) -}}
{{- fail (printf "apiService.certificate.source must be generated, certManager or provided, not %q" $s) -}}
{{- end -}}
{{ $s }}
{{- end }}
