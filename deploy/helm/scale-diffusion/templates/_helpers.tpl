{{/*
Shared pieces of every workload in the chart. The four service templates (ingest.yaml, processor.yaml,
trainer.yaml, diffusion.yaml) only say what is particular to their service and include the rest from here:
names and labels, the image reference, the SD_* environment, security contexts, gRPC probes, and the
Deployment + Service pair itself.
*/}}

{{/* Release-wide name prefix: fullnameOverride or the release name. */}}
{{- define "sd.fullname" -}}
{{- default .Release.Name .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* "<fullname>-<name>". Args: root, name. */}}
{{- define "sd.componentName" -}}
{{- printf "%s-%s" (include "sd.fullname" .root) .name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "sd.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Selector labels (immutable once deployed). Args: root, component. */}}
{{- define "sd.selectorLabels" -}}
app.kubernetes.io/name: {{ .root.Chart.Name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* All labels. Args: root, component. */}}
{{- define "sd.labels" -}}
{{ include "sd.selectorLabels" . }}
app.kubernetes.io/part-of: scale-diffusion
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
helm.sh/chart: {{ include "sd.chart" .root }}
{{- end -}}

{{/* Image reference of a service. Args: root, svc (the service's values block). */}}
{{- define "sd.image" -}}
{{- $g := .root.Values.global.image -}}
{{- $repo := .svc.image.repository -}}
{{- if $g.registry -}}
{{- $repo = printf "%s/%s" (trimSuffix "/" $g.registry) $repo -}}
{{- end -}}
{{- printf "%s:%s" $repo (.svc.image.tag | default $g.tag | default .root.Chart.AppVersion) -}}
{{- end -}}

{{/* ---------------------------------------------------------------------------------------------------
Infrastructure addresses: the in-release SeaweedFS / Kafka when enabled, the external ones otherwise.
*/}}

{{- define "sd.s3Endpoint" -}}
{{- if .Values.objectStore.seaweedfs.enabled -}}
{{- printf "%s.%s.svc.%s:%d" (include "sd.componentName" (dict "root" . "name" "seaweedfs")) .Release.Namespace .Values.global.clusterDomain (int .Values.objectStore.seaweedfs.s3Port) -}}
{{- else -}}
{{- required "objectStore.endpoint (host:port of the S3 API) is required when objectStore.seaweedfs.enabled is false" .Values.objectStore.endpoint -}}
{{- end -}}
{{- end -}}

{{- define "sd.s3Secure" -}}
{{- if .Values.objectStore.seaweedfs.enabled -}}false{{- else -}}{{ .Values.objectStore.secure | toString }}{{- end -}}
{{- end -}}

{{- define "sd.kafkaBootstrap" -}}
{{- if .Values.kafka.enabled -}}
{{- $svc := include "sd.componentName" (dict "root" . "name" "kafka") -}}
{{- printf "%s-0.%s.%s.svc.%s:9092" $svc $svc .Release.Namespace .Values.global.clusterDomain -}}
{{- else -}}
{{- required "kafka.bootstrap (host:port[,host:port...]) is required when kafka.enabled is false" .Values.kafka.bootstrap -}}
{{- end -}}
{{- end -}}

{{/* Name of the Secret holding the S3 credentials: objectStore.existingSecret or the chart's own. */}}
{{- define "sd.objectStoreSecretName" -}}
{{- .Values.objectStore.existingSecret | default (include "sd.componentName" (dict "root" . "name" "object-store")) -}}
{{- end -}}

{{/* Env entries reading the S3 credentials from that Secret. Args: root, accessKeyVar, secretKeyVar. */}}
{{- define "sd.s3CredentialEnv" -}}
{{- $os := .root.Values.objectStore -}}
- name: {{ .accessKeyVar }}
  valueFrom:
    secretKeyRef:
      name: {{ include "sd.objectStoreSecretName" .root }}
      key: {{ $os.secretKeys.accessKey }}
- name: {{ .secretKeyVar }}
  valueFrom:
    secretKeyRef:
      name: {{ include "sd.objectStoreSecretName" .root }}
      key: {{ $os.secretKeys.secretKey }}
{{- end -}}

{{/* ---------------------------------------------------------------------------------------------------
Pod spec pieces.
*/}}

{{/* The SD_* environment of a service. Args: root, svc, extraEnv (dict, the service template's own),
secretEnv (list of {name, secret, key}), fieldEnv (list of {name, fieldPath}: downward API, unless env sets the name). */}}
{{- define "sd.env" -}}
{{- $v := .root.Values -}}
{{- $fixed := dict
  "SD_HOST" "0.0.0.0"
  "SD_GRPC_PORT" (toString .svc.ports.grpc)
  "SD_GRPCWEB_PORT" (toString (.svc.ports.grpcWeb | default 0))
  "SD_METRICS_PORT" (toString .svc.ports.metrics)
  "SD_LOG_LEVEL" (.svc.logLevel | default $v.global.logLevel)
  "SD_S3_ENDPOINT" (include "sd.s3Endpoint" .root)
  "SD_S3_SECURE" (include "sd.s3Secure" .root)
  "SD_S3_REGION" $v.objectStore.region
  "SD_BUCKET_RAW" $v.objectStore.buckets.raw
  "SD_BUCKET_CLEAN" $v.objectStore.buckets.clean
  "SD_BUCKET_MODELS" $v.objectStore.buckets.models
  "SD_BUCKET_REPORTS" $v.objectStore.buckets.reports
  "SD_KAFKA_BOOTSTRAP" (include "sd.kafkaBootstrap" .root)
  "SD_TOPIC_PREFIX" $v.global.topicPrefix
  "SD_KAFKA_REPLICATION_FACTOR" (toString $v.global.topicReplicationFactor)
  "SD_CORS_ORIGINS" (join "," $v.global.corsOrigins)
  "SD_SHUTDOWN_GRACE_S" (toString $v.global.shutdownGraceSeconds)
-}}
{{- /* Precedence (first wins): the service's env values, global.env, the service template's extras, the above. */ -}}
{{- $env := merge (dict) (.svc.env | default dict) ($v.global.env | default dict) (.extraEnv | default dict) $fixed -}}
{{- range $name := keys $env | sortAlpha }}
- name: {{ $name }}
  value: {{ index $env $name | toString | quote }}
{{- end }}
{{ include "sd.s3CredentialEnv" (dict "root" .root "accessKeyVar" "SD_S3_ACCESS_KEY" "secretKeyVar" "SD_S3_SECRET_KEY") }}
{{- range .secretEnv }}
- name: {{ .name }}
  valueFrom:
    secretKeyRef:
      name: {{ .secret }}
      key: {{ .key }}
{{- end }}
{{- range .fieldEnv }}
{{- if not (hasKey $env .name) }}
- name: {{ .name }}
  valueFrom:
    fieldRef:
      fieldPath: {{ .fieldPath }}
{{- end }}
{{- end }}
{{- end -}}

{{/* Pod securityContext: global defaults, overridden key by key by the service. Args: root, svc. */}}
{{- define "sd.podSecurityContext" -}}
{{- toYaml (mergeOverwrite (deepCopy .root.Values.global.podSecurityContext) (.svc.podSecurityContext | default dict)) -}}
{{- end -}}

{{/* Container securityContext, same merge. Args: root, svc. */}}
{{- define "sd.containerSecurityContext" -}}
{{- toYaml (mergeOverwrite (deepCopy .root.Values.global.securityContext) (.svc.securityContext | default dict)) -}}
{{- end -}}

{{/* Native gRPC probes on the grpc.health.v1 service of the gRPC port. Args: root, svc. */}}
{{- define "sd.grpcProbes" -}}
{{- $p := .root.Values.global.probes -}}
startupProbe:
  grpc:
    port: {{ .svc.ports.grpc }}
  periodSeconds: {{ $p.startup.periodSeconds }}
  timeoutSeconds: {{ $p.startup.timeoutSeconds }}
  failureThreshold: {{ .svc.startupFailureThreshold | default $p.startup.failureThreshold }}
readinessProbe:
  grpc:
    port: {{ .svc.ports.grpc }}
  periodSeconds: {{ $p.readiness.periodSeconds }}
  timeoutSeconds: {{ $p.readiness.timeoutSeconds }}
  failureThreshold: {{ $p.readiness.failureThreshold }}
livenessProbe:
  grpc:
    port: {{ .svc.ports.grpc }}
  periodSeconds: {{ $p.liveness.periodSeconds }}
  timeoutSeconds: {{ $p.liveness.timeoutSeconds }}
  failureThreshold: {{ $p.liveness.failureThreshold }}
{{- end -}}

{{/* Container ports, named as the Service names them. Args: svc. */}}
{{- define "sd.containerPorts" -}}
- name: grpc
  containerPort: {{ .svc.ports.grpc }}
  protocol: TCP
{{- if .svc.ports.grpcWeb }}
- name: grpc-web
  containerPort: {{ .svc.ports.grpcWeb }}
  protocol: TCP
{{- end }}
- name: metrics
  containerPort: {{ .svc.ports.metrics }}
  protocol: TCP
{{- end -}}

{{/* ---------------------------------------------------------------------------------------------------
The Deployment + Service of one service.
Args:
  root                the chart context (.)
  svc                 the service's values block
  resources           (optional) resources to use instead of svc.resources (diffusion adds the GPU)
  tolerations         (optional) tolerations to use instead of svc.tolerations
  extraEnv            (optional) dict of extra SD_* settings particular to the service
  secretEnv           (optional) list of {name, secret, key}: settings read from Secrets
  fieldEnv            (optional) list of {name, fieldPath}: settings read from the pod (downward API)
  serviceAccountName  (optional) the pod's ServiceAccount; without it no API token is mounted
*/}}
{{- define "sd.deployment" -}}
{{- $root := .root -}}
{{- $svc := .svc -}}
{{- $g := $root.Values.global -}}
{{- $name := include "sd.componentName" (dict "root" $root "name" $svc.name) -}}
{{- $ctx := dict "root" $root "component" $svc.name -}}
{{- $resources := .resources | default $svc.resources -}}
{{- $tolerations := .tolerations | default $svc.tolerations -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ $name }}
  labels:
    {{- include "sd.labels" $ctx | nindent 4 }}
spec:
  replicas: {{ $svc.replicas }}
  revisionHistoryLimit: 5
  selector:
    matchLabels:
      {{- include "sd.selectorLabels" $ctx | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "sd.labels" $ctx | nindent 8 }}
      annotations:
        {{- if $g.metrics.scrape }}
        prometheus.io/scrape: "true"
        prometheus.io/port: {{ $svc.ports.metrics | quote }}
        prometheus.io/path: {{ $g.metrics.path | quote }}
        {{- end }}
        {{- /* Restart pods when the chart-managed credentials change (a generated key never does). */}}
        checksum/object-store-credentials: {{ pick $root.Values.objectStore "existingSecret" "secretKeys" "accessKey" "secretKey" | toJson | sha256sum | trunc 16 | quote }}
        {{- with $svc.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      {{- if .serviceAccountName }}
      serviceAccountName: {{ .serviceAccountName }}
      automountServiceAccountToken: true
      {{- else }}
      automountServiceAccountToken: false
      {{- end }}
      # Service links would inject <SERVICE>_PORT-style variables, some with the SD_ prefix of our settings.
      enableServiceLinks: false
      terminationGracePeriodSeconds: {{ add $g.shutdownGraceSeconds $g.terminationGraceMarginSeconds }}
      securityContext:
        {{- include "sd.podSecurityContext" (dict "root" $root "svc" $svc) | nindent 8 }}
      {{- with $g.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      containers:
        - name: {{ $svc.name }}
          image: {{ include "sd.image" (dict "root" $root "svc" $svc) | quote }}
          imagePullPolicy: {{ $svc.image.pullPolicy | default $g.image.pullPolicy }}
          ports:
            {{- include "sd.containerPorts" (dict "svc" $svc) | nindent 12 }}
          env:
            {{- include "sd.env" (dict "root" $root "svc" $svc "extraEnv" .extraEnv "secretEnv" .secretEnv "fieldEnv" .fieldEnv) | trim | nindent 12 }}
          {{- include "sd.grpcProbes" (dict "root" $root "svc" $svc) | nindent 10 }}
          {{- with $resources }}
          resources:
            {{- toYaml . | nindent 12 }}
          {{- end }}
          securityContext:
            {{- include "sd.containerSecurityContext" (dict "root" $root "svc" $svc) | nindent 12 }}
          volumeMounts:
            - name: tmp
              mountPath: /tmp
      volumes:
        - name: tmp
          emptyDir:
            sizeLimit: {{ $g.tmpSizeLimit }}
      {{- with $svc.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $svc.affinity }}
      affinity:
        {{- toYaml . | nindent 8 }}
      {{- end }}
---
apiVersion: v1
kind: Service
metadata:
  name: {{ $name }}
  labels:
    {{- include "sd.labels" $ctx | nindent 4 }}
  {{- with $svc.service.annotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  type: {{ $svc.service.type }}
  selector:
    {{- include "sd.selectorLabels" $ctx | nindent 4 }}
  ports:
    - name: grpc
      port: {{ $svc.ports.grpc }}
      targetPort: grpc
      protocol: TCP
      appProtocol: grpc
    {{- if $svc.ports.grpcWeb }}
    - name: grpc-web
      port: {{ $svc.ports.grpcWeb }}
      targetPort: grpc-web
      protocol: TCP
      appProtocol: http
    {{- end }}
    - name: metrics
      port: {{ $svc.ports.metrics }}
      targetPort: metrics
      protocol: TCP
      appProtocol: http
{{- end -}}
