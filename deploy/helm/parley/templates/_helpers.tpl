{{/*
Names, labels and the pieces every role's pod shares. Label values are
always quoted: a release named "n" or "y" would otherwise be a YAML boolean.
*/}}

{{- define "parley.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "parley.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* parley.selectorLabels: the labels that pick one component's pods (dict "root" $ "component" "gateway"). */}}
{{- define "parley.selectorLabels" -}}
app.kubernetes.io/name: {{ include "parley.name" .root | quote }}
app.kubernetes.io/instance: {{ .root.Release.Name | quote }}
app.kubernetes.io/component: {{ .component | quote }}
{{- end }}

{{/* parley.labels: every object's labels (dict "root" $ "component" "gateway"). */}}
{{- define "parley.labels" -}}
{{ include "parley.selectorLabels" . }}
app.kubernetes.io/part-of: "parley"
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service | quote }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" | quote }}
{{- end }}

{{/* parley.allPods: matchLabels of every Parley pod of this release. */}}
{{- define "parley.allPods" -}}
app.kubernetes.io/name: {{ include "parley.name" . | quote }}
app.kubernetes.io/instance: {{ .Release.Name | quote }}
{{- end }}

{{/* parley.image: repository@digest, else repository:tag; moving tags are refused. */}}
{{- define "parley.image" -}}
{{- $img := .Values.image }}
{{- if $img.digest }}
{{- if not (hasPrefix "sha256:" $img.digest) }}{{ fail "image.digest must be sha256:…" }}{{ end }}
{{- printf "%s@%s" $img.repository $img.digest }}
{{- else }}
{{- $tag := default .Chart.AppVersion $img.tag | toString }}
{{- if or (eq $tag "latest") (eq $tag "") }}{{ fail "image.tag must name a version, not a moving tag such as latest (or set image.digest)" }}{{ end }}
{{- printf "%s:%s" $img.repository $tag }}
{{- end }}
{{- end }}

{{- define "parley.tokenKeySecret" -}}
{{- default (printf "%s-token-key" (include "parley.fullname" .)) .Values.tokenKey.existingSecret }}
{{- end }}

{{/*
parley.env: the settings every process shares, as PARLEY_* variables so
that `parley migrate` (which has only the --scylla-* flags) reads the same
ones. (dict "root" $ "component" "gateway")
*/}}
{{- define "parley.env" -}}
{{- $v := .root.Values }}
- name: PARLEY_SCYLLA_HOSTS
  value: {{ join "," $v.scylla.hosts | quote }}
- name: PARLEY_SCYLLA_KEYSPACE
  value: {{ $v.scylla.keyspace | quote }}
- name: PARLEY_SCYLLA_CONSISTENCY
  value: {{ $v.scylla.consistency | quote }}
{{- with $v.scylla.localDC }}
- name: PARLEY_SCYLLA_LOCAL_DC
  value: {{ . | quote }}
{{- end }}
{{- with $v.scylla.credentialsSecret }}
- name: PARLEY_SCYLLA_USERNAME
  valueFrom:
    secretKeyRef: {name: {{ . | quote }}, key: username}
- name: PARLEY_SCYLLA_PASSWORD
  valueFrom:
    secretKeyRef: {name: {{ . | quote }}, key: password}
{{- end }}
{{- if $v.scylla.tls.enabled }}
- name: PARLEY_SCYLLA_TLS
  value: "true"
{{- with $v.scylla.tls.caSecret }}
- name: PARLEY_SCYLLA_CA_FILE
  value: /etc/parley/scylla-ca/ca.crt
{{- end }}
{{- with $v.scylla.tls.clientCertSecret }}
- name: PARLEY_SCYLLA_CERT_FILE
  value: /etc/parley/scylla-client/tls.crt
- name: PARLEY_SCYLLA_KEY_FILE
  value: /etc/parley/scylla-client/tls.key
{{- end }}
{{- end }}
{{- end }}

{{/* parley.scyllaVolumes / parley.scyllaMounts: the ScyllaDB TLS files. */}}
{{- define "parley.scyllaVolumes" -}}
{{- $tls := .Values.scylla.tls }}
{{- if and $tls.enabled $tls.caSecret }}
- name: scylla-ca
  secret: {secretName: {{ $tls.caSecret | quote }}}
{{- end }}
{{- if and $tls.enabled $tls.clientCertSecret }}
- name: scylla-client
  secret: {secretName: {{ $tls.clientCertSecret | quote }}}
{{- end }}
{{- end }}

{{- define "parley.scyllaMounts" -}}
{{- $tls := .Values.scylla.tls }}
{{- if and $tls.enabled $tls.caSecret }}
- {name: scylla-ca, mountPath: /etc/parley/scylla-ca, readOnly: true}
{{- end }}
{{- if and $tls.enabled $tls.clientCertSecret }}
- {name: scylla-client, mountPath: /etc/parley/scylla-client, readOnly: true}
{{- end }}
{{- end }}

{{/* parley.podSpecCommon: scheduling and security shared by every pod. */}}
{{- define "parley.podSpecCommon" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
automountServiceAccountToken: false
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.priorityClassName }}
priorityClassName: {{ . | quote }}
{{- end }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}
