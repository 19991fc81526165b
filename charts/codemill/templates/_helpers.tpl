{{/*
Shared pieces of the codemill chart. Every workload takes its pod and container security
contexts from here, so the restricted Pod Security Standard holds for all of them at once.
*/}}

{{- define "codemill.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "codemill.fullname" -}}
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

{{/* Name of one component's objects: <fullname>-<component>. */}}
{{- define "codemill.componentName" -}}
{{- printf "%s-%s" (include "codemill.fullname" .root) .component | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "codemill.selectorLabels" -}}
app.kubernetes.io/name: {{ include "codemill.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "codemill.labels" -}}
{{ include "codemill.selectorLabels" . }}
app.kubernetes.io/part-of: codemill
app.kubernetes.io/version: {{ include "codemill.tag" .root | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
{{- end }}

{{/*
Pod labels: the common labels plus codemill.io/network, the profile the NetworkPolicies
in k8s/base select on (mlflow, inference, pipeline-upload).
*/}}
{{- define "codemill.podLabels" -}}
{{ include "codemill.labels" . }}
codemill.io/network: {{ .network }}
{{- end }}

{{- define "codemill.tag" -}}
{{- default .Chart.AppVersion .Values.image.tag }}
{{- end }}

{{/* Image of a flavor ("cpu" or "cuda"): <registry>/codemill-<flavor>:<tag>. */}}
{{- define "codemill.image" -}}
{{- printf "%s/codemill-%s:%s" (.root.Values.image.registry | trimSuffix "/") .flavor (include "codemill.tag" .root) }}
{{- end }}

{{- define "codemill.imagePullSecrets" -}}
{{- with .Values.image.pullSecrets }}
imagePullSecrets:
{{- range . }}
  - name: {{ . }}
{{- end }}
{{- end }}
{{- end }}

{{/* Restricted PSS, pod level. */}}
{{- define "codemill.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.podSecurity.runAsUser }}
runAsGroup: {{ .Values.podSecurity.runAsGroup }}
fsGroup: {{ .Values.podSecurity.fsGroup }}
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* Restricted PSS, container level; the root filesystem is read-only (caches are emptyDirs). */}}
{{- define "codemill.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* Environment every codemill container shares: writable HOME, S3 endpoint and keys. */}}
{{- define "codemill.baseEnv" -}}
- name: HOME
  value: /tmp
- name: AWS_DEFAULT_REGION
  value: {{ .Values.s3.region | quote }}
{{- with .Values.s3.endpoint }}
- name: AWS_ENDPOINT_URL
  value: {{ . | quote }}
{{- end }}
{{- with .Values.s3.credentialsSecret }}
{{- if .name }}
- name: AWS_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef:
      name: {{ .name }}
      key: {{ .accessKeyIdKey }}
- name: AWS_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef:
      name: {{ .name }}
      key: {{ .secretAccessKeyKey }}
{{- end }}
{{- end }}
{{- end }}

{{- define "codemill.mlflowServiceName" -}}
{{- include "codemill.componentName" (dict "root" . "component" "mlflow") }}
{{- end }}

{{- define "codemill.mlflowUrl" -}}
{{- printf "http://%s.%s.svc.cluster.local:%d" (include "codemill.mlflowServiceName" .) .Release.Namespace (int .Values.mlflow.port) }}
{{- end }}

{{/* How a client (the inference server) reaches MLflow and authenticates to it. */}}
{{- define "codemill.mlflowClientEnv" -}}
- name: MLFLOW_TRACKING_URI
  value: {{ include "codemill.mlflowUrl" . | quote }}
{{- if .Values.mlflow.auth.enabled }}
{{- $auth := .Values.mlflow.auth }}
{{- $name := default $auth.existingSecret $auth.clientSecret.name }}
{{- $userKey := ternary $auth.clientSecret.usernameKey $auth.adminUsernameKey (ne $auth.clientSecret.name "") }}
{{- $passKey := ternary $auth.clientSecret.passwordKey $auth.adminPasswordKey (ne $auth.clientSecret.name "") }}
- name: MLFLOW_TRACKING_USERNAME
  valueFrom:
    secretKeyRef:
      name: {{ required "mlflow.auth.existingSecret (or mlflow.auth.clientSecret.name) is required when mlflow.auth.enabled" $name }}
      key: {{ $userKey }}
- name: MLFLOW_TRACKING_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ $name }}
      key: {{ $passKey }}
{{- end }}
{{- end }}

{{/* Volumes every workload mounts because the root filesystem is read-only. */}}
{{- define "codemill.tmpVolume" -}}
- name: tmp
  emptyDir:
    sizeLimit: 1Gi
{{- end }}
