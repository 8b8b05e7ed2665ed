{{/* The labels of every object: the one the kustomize base sets, and Helm's. */}}
{{- define "mvo.labels" -}}
app.kubernetes.io/name: model-validation-operator
{{ include "mvo.helmLabels" . }}
{{- end }}

{{/* Helm's labels only (objects the base leaves unlabelled get these). */}}
{{- define "mvo.helmLabels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}

{{/* repository@digest when a digest is given, else repository:tag. */}}
{{- define "mvo.image" -}}
{{- if .digest -}}
{{ .repository }}@{{ .digest }}
{{- else -}}
{{ .repository }}:{{ .tag }}
{{- end -}}
{{- end }}

{{/* The namespaces no webhook or admission policy of ours looks at. */}}
{{- define "mvo.ignored" -}}
{{- toJson (concat (list .Release.Namespace) .Values.ignoredNamespaces) -}}
{{- end }}

{{/* Ditto for cluster policies, which never govern kube-system. */}}
{{- define "mvo.ignoredCluster" -}}
{{- toJson (concat (list .Release.Namespace "kube-system") .Values.ignoredNamespaces) -}}
{{- end }}

{{- define "mvo.selfManaged" -}}
{{- if eq .Values.certificates.mode "selfManaged" }}true{{ end -}}
{{- end }}

{{/* The Secret holding tls.crt and tls.key in the certManager and certDir modes. */}}
{{- define "mvo.tlsSecret" -}}
{{- if eq .Values.certificates.mode "certManager" -}}
model-validation-operator-webhook-tls
{{- else -}}
{{ .Values.certificates.certDir.secretName }}
{{- end -}}
{{- end }}

{{- define "mvo.certDir" -}}/etc/model-validation-operator/tls{{- end }}
