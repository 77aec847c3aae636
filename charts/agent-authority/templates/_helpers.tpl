{{/* Names, labels and the webhook certificates shared by every template. */}}

{{- define "agent-authority.fullname" -}}
{{- if contains "agent-authority" .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-agent-authority" .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "agent-authority.selectorLabels" -}}
app.kubernetes.io/name: agent-authority
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "agent-authority.labels" -}}
{{ include "agent-authority.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "agent-authority.serviceAccountName" -}}
{{- default (include "agent-authority.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}

{{- define "agent-authority.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "agent-authority.webhookService" -}}
{{- printf "%s-webhooks" (include "agent-authority.fullname" .) -}}
{{- end -}}

{{- define "agent-authority.approvalsService" -}}
{{- printf "%s-approvals" (include "agent-authority.fullname" .) -}}
{{- end -}}

{{/* How agents reach the session gateway: gateway.url, else the webhook Service's name. */}}
{{- define "agent-authority.gatewayUrl" -}}
{{- if .Values.gateway.url -}}
{{- .Values.gateway.url -}}
{{- else -}}
{{- printf "https://%s.%s.svc:%v" (include "agent-authority.webhookService" .) .Release.Namespace .Values.gateway.port -}}
{{- end -}}
{{- end -}}

{{/* The default session mode; gateway mode without the gateway is refused at render time. */}}
{{- define "agent-authority.sessionMode" -}}
{{- $mode := .Values.gateway.sessionMode | default "gateway" -}}
{{- if and (eq $mode "gateway") (not .Values.gateway.enabled) -}}
{{- fail "gateway.sessionMode=gateway needs gateway.enabled=true (or set gateway.sessionMode=direct)" -}}
{{- end -}}
{{- $mode -}}
{{- end -}}

{{- define "agent-authority.tlsSecret" -}}
{{- printf "%s-webhook-tls" (include "agent-authority.fullname" .) -}}
{{- end -}}

{{/*
The webhook CA and serving certificate (helm mode): generated once per install, then read back
from the Secret on every upgrade so the caBundle never changes under running replicas. Computed
once per render and shared between templates through .Values.
*/}}
{{- define "agent-authority.certs" -}}
{{- if not (hasKey .Values "generatedCerts") -}}
{{- $existing := lookup "v1" "Secret" .Release.Namespace (include "agent-authority.tlsSecret" .) -}}
{{- if and $existing (hasKey ($existing.data | default dict) "ca.crt") -}}
{{- $_ := set .Values "generatedCerts" (dict "ca" (index $existing.data "ca.crt") "crt" (index $existing.data "tls.crt") "key" (index $existing.data "tls.key")) -}}
{{- else -}}
{{- $svc := include "agent-authority.webhookService" . -}}
{{- $ns := .Release.Namespace -}}
{{- $pages := include "agent-authority.approvalsService" . -}}
{{- $dns := list $svc (printf "%s.%s" $svc $ns) (printf "%s.%s.svc" $svc $ns) (printf "%s.%s.svc.cluster.local" $svc $ns) $pages (printf "%s.%s" $pages $ns) (printf "%s.%s.svc" $pages $ns) (printf "%s.%s.svc.cluster.local" $pages $ns) -}}
{{- $ca := genCA "agent-authority-webhook-ca" 3650 -}}
{{- $ips := ternary (list .Values.webhooks.clusterIP) list (ne "" (.Values.webhooks.clusterIP | default "")) -}}
{{- $cert := genSignedCert (printf "%s.%s.svc" $svc $ns) $ips $dns 3650 $ca -}}
{{- $_ := set .Values "generatedCerts" (dict "ca" ($ca.Cert | b64enc) "crt" ($cert.Cert | b64enc) "key" ($cert.Key | b64enc)) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "agent-authority.caBundle" -}}
{{- if eq .Values.webhooks.certificates "helm" -}}
{{- include "agent-authority.certs" . -}}
{{- .Values.generatedCerts.ca -}}
{{- end -}}
{{- end -}}

{{- define "agent-authority.webhookAnnotations" -}}
{{- if eq .Values.webhooks.certificates "cert-manager" -}}
cert-manager.io/inject-ca-from: {{ printf "%s/%s" .Release.Namespace (include "agent-authority.tlsSecret" .) }}
{{- else -}}
{}
{{- end -}}
{{- end -}}
