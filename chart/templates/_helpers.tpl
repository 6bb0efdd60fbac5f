{{/* Names and labels shared by every template. */}}
{{- define "kollie.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "kollie.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else if contains (include "kollie.name" .) .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "kollie.name" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "kollie.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kollie.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "kollie.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "kollie.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "kollie.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "kollie.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "kollie.secretName" -}}
{{- default (include "kollie.fullname" .) .Values.secrets.existingSecret }}
{{- end }}

{{/*
The CSRF key of the chart's own Secret: from the values, else the installed Secret's (kept across
upgrades), else a new random one. Remembered in .Values for the rest of the render, so the Secret
and the Deployment's checksum see the same key.
*/}}
{{- define "kollie.csrfSecret" -}}
{{- if not .Values.secrets.csrfSecret }}
{{- $existing := lookup "v1" "Secret" .Release.Namespace (include "kollie.fullname" .) }}
{{- $csrf := randAlphaNum 64 }}
{{- if and $existing $existing.data (hasKey $existing.data "csrf-secret") }}
{{- $csrf = index $existing.data "csrf-secret" | b64dec }}
{{- end }}
{{- $_ := set .Values.secrets "csrfSecret" $csrf }}
{{- end }}
{{- .Values.secrets.csrfSecret }}
{{- end }}

{{/*
Changes when the chart's Secret does, to roll the pods (tokens and secrets are read at start).
Anyone who may read the Deployment sees it, so it is salted with the Secret's own random CSRF key:
an unsalted hash of the values would let them test guesses of the secrets offline. With an
existingSecret the chart knows no secret value; only its name is hashed.
*/}}
{{- define "kollie.secretsChecksum" -}}
{{- if .Values.secrets.existingSecret }}
{{- .Values.secrets.existingSecret | sha256sum }}
{{- else }}
{{- $salt := include "kollie.csrfSecret" . }}
{{- printf "%s\n%s" $salt (toJson (omit .Values.secrets "csrfSecret")) | sha256sum }}
{{- end }}
{{- end }}

{{/*
"true" when the Secret has a webhook-secrets key to mount (a secret per registry source), else "".
*/}}
{{- define "kollie.webhookSecretsFile" -}}
{{- if .Values.secrets.existingSecret }}
{{- if .Values.secrets.existingSecretHasWebhookSecrets }}true{{ end }}
{{- else if .Values.secrets.webhookSecrets }}true{{ end }}
{{- end }}

{{- define "kollie.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/*
The catalog's Flux objects Kollie reads, by namespace: {namespace: {"git": [names], "image": [names]}}
as JSON (templates cannot return dicts). A namespace left out defaults to flux-system, as in Kollie.
*/}}
{{- define "kollie.catalogReferences" -}}
{{- $refs := dict }}
{{- range .Values.catalog.apps }}
{{- $git := .gitRepository | default dict }}
{{- $image := .imageRepository | default dict }}
{{- $gns := $git.namespace | default "flux-system" }}
{{- $ins := $image.namespace | default "flux-system" }}
{{- $g := get $refs $gns | default (dict "git" list "image" list) }}
{{- $_ := set $g "git" (append $g.git $git.name | uniq | sortAlpha) }}
{{- $_ := set $refs $gns $g }}
{{- $i := get $refs $ins | default (dict "git" list "image" list) }}
{{- $_ := set $i "image" (append $i.image $image.name | uniq | sortAlpha) }}
{{- $_ := set $refs $ins $i }}
{{- end }}
{{- toJson $refs }}
{{- end }}

{{/* "true" when a label selector (matchLabels, matchExpressions) selects everything. */}}
{{- define "kollie.selectsAll" -}}
{{- $selector := . | default dict }}
{{- if and (not $selector.matchLabels) (not $selector.matchExpressions) }}true{{ end }}
{{- end }}

{{/* KOLLIE_PUBLIC_URL: config.publicURL, else https://<host> of an Ingress that serves TLS. */}}
{{- define "kollie.publicURL" -}}
{{- if .Values.config.publicURL }}
{{- .Values.config.publicURL }}
{{- else if and .Values.ingress.enabled .Values.ingress.tls }}
{{- printf "https://%s" .Values.ingress.host }}
{{- end }}
{{- end }}
