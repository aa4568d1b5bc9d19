{{/*
Names, labels and shared fragments. Every object of the chart takes its name and labels from
here so that selectors, the NetworkPolicies and Flagger agree on them.
*/}}

{{/* The container port; the service interface fixes PORT at 8000. */}}
{{- define "langgraph-agent.port" -}}8000{{- end }}

{{/* The metrics port (METRICS_PORT): /metrics is served there only, so the Ingress, which
routes the http port, never exposes it. 9464 is OpenTelemetry's Prometheus exporter port. */}}
{{- define "langgraph-agent.metricsPort" -}}9464{{- end }}

{{/* Where the secret files are mounted (SECRETS_DIR in the service interface). */}}
{{- define "langgraph-agent.secretsDir" -}}/run/secrets/agent-service{{- end }}

{{/* The chart name, or nameOverride: the value of the app.kubernetes.io/name label. */}}
{{- define "langgraph-agent.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The full name of the release's objects. Truncated to 53 characters because Flagger appends
"-primary" / "-canary" to it and Kubernetes names (and label values) stop at 63.
*/}}
{{- define "langgraph-agent.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 53 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 53 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 53 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/* Chart name and version, for the helm.sh/chart label. */}}
{{- define "langgraph-agent.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The one selector label. Flagger copies exactly one selector label to the primary
Deployment (suffixing its value with "-primary"), so the selector has nothing else. */}}
{{- define "langgraph-agent.selectorLabels" -}}
app.kubernetes.io/name: {{ include "langgraph-agent.name" . }}
{{- end }}

{{/* Labels every object carries. */}}
{{- define "langgraph-agent.labels" -}}
{{ include "langgraph-agent.selectorLabels" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{ include "langgraph-agent.metaLabels" . }}
{{- end }}

{{/* The labels that identify neither the workload nor the release. */}}
{{- define "langgraph-agent.metaLabels" -}}
helm.sh/chart: {{ include "langgraph-agent.chart" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: agent-platform
{{- end }}

{{/* Selects this release's service pods whether Flagger named them primary or canary: the
instance and component labels survive Flagger's copy unchanged. */}}
{{- define "langgraph-agent.serverPodSelector" -}}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: server
{{- end }}

{{/* The label set of the service pods. */}}
{{- define "langgraph-agent.serverPodLabels" -}}
{{ include "langgraph-agent.selectorLabels" . }}
{{ include "langgraph-agent.serverPodSelector" . }}
{{- end }}

{{/* Labels of a job's pods, component given as .component. */}}
{{- define "langgraph-agent.jobPodLabels" -}}
app.kubernetes.io/name: {{ include "langgraph-agent.name" .root }}-{{ .component }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* The service's ServiceAccount name. */}}
{{- define "langgraph-agent.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "langgraph-agent.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name is required when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The backup job's ServiceAccount name. */}}
{{- define "langgraph-agent.backupServiceAccountName" -}}
{{- if .Values.backup.serviceAccount.create }}
{{- default (printf "%s-backup" (include "langgraph-agent.fullname" .)) .Values.backup.serviceAccount.name }}
{{- else }}
{{- required "backup.serviceAccount.name is required when backup.serviceAccount.create is false" .Values.backup.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The image reference: repository@digest when a digest is given, else repository:tag. */}}
{{- define "langgraph-agent.image" -}}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}
{{- end }}

{{/* The Secret mounted as files: the existing one, the one External Secrets syncs, or none. */}}
{{- define "langgraph-agent.secretName" -}}
{{- if .Values.existingSecret }}
{{- .Values.existingSecret }}
{{- else if .Values.externalSecrets.enabled }}
{{- include "langgraph-agent.fullname" . }}
{{- end }}
{{- end }}

{{/* The migration hook's own Secret name: the existing Secret, or a hook-time ExternalSecret
with the migrator's login (the release's ExternalSecrets do not exist yet when a pre-install
hook runs). */}}
{{- define "langgraph-agent.migrationSecretName" -}}
{{- if .Values.existingSecret }}
{{- .Values.existingSecret }}
{{- else if and .Values.externalSecrets.enabled .Values.externalSecrets.migration.data }}
{{- printf "%s-migration" (include "langgraph-agent.fullname" .) }}
{{- end }}
{{- end }}

{{/* A scheduled job's Secret (.component backup or retention): with External Secrets its own,
holding only its database login; otherwise the existing Secret. */}}
{{- define "langgraph-agent.jobSecretName" -}}
{{- if .root.Values.existingSecret }}
{{- .root.Values.existingSecret }}
{{- else if .root.Values.externalSecrets.enabled }}
{{- printf "%s-%s" (include "langgraph-agent.fullname" .root) .component }}
{{- end }}
{{- end }}

{{/*
An ExternalSecret (.name, .data entries, .deletionPolicy, optional .annotations for hooks).
Its Secret is excluded from Flagger's configuration tracking: Flagger otherwise gives the
primary Deployment its own `-primary` copy, refreshed only on promotion, and counts a changed
value as a new revision ("If you annotate your ConfigMap or Secret with
flagger.app/config-tracking: disabled, Flagger will use the same object for the primary
deployment instead of making a primary copy": https://docs.flagger.app/usage/how-it-works).
With it, a rotated value reaches the serving pods' files within refreshInterval plus the
kubelet's sync, and no rollout is needed. The annotation goes on the Secret through the
target template's metadata (https://external-secrets.io/latest/guides/templating/).
*/}}
{{- define "langgraph-agent.externalSecret" -}}
apiVersion: external-secrets.io/v1
kind: ExternalSecret
metadata:
  name: {{ .name }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "langgraph-agent.labels" .root | nindent 4 }}
  {{- with .annotations }}
  annotations:
    {{- . | nindent 4 }}
  {{- end }}
spec:
  refreshInterval: {{ .root.Values.externalSecrets.refreshInterval }}
  secretStoreRef:
    name: {{ .root.Values.externalSecrets.secretStoreRef.name }}
    kind: {{ .root.Values.externalSecrets.secretStoreRef.kind }}
  target:
    name: {{ .name }}
    # The Secret belongs to the ExternalSecret.
    creationPolicy: Owner
    deletionPolicy: {{ .deletionPolicy }}
    template:
      metadata:
        annotations:
          flagger.app/config-tracking: disabled
  data:
    {{- range .data }}
    - secretKey: {{ .secretKey }}
      remoteRef:
        key: {{ .remoteRef.key | quote }}
        {{- with .remoteRef.property }}
        property: {{ . | quote }}
        {{- end }}
    {{- end }}
{{- end }}

{{/* Whether the migration hook syncs its password with its own ExternalSecret. */}}
{{- define "langgraph-agent.migrationExternalSecret" -}}
{{- if and .Values.migration.enabled (include "langgraph-agent.usesPostgres" .) .Values.externalSecrets.enabled (include "langgraph-agent.migrationSecretName" .) }}true{{- end }}
{{- end }}

{{/* Whether the PostgreSQL jobs (migration, backup, retention) apply. */}}
{{- define "langgraph-agent.usesPostgres" -}}
{{- if .Values.config.databaseUrl }}true{{- end }}
{{- end }}

{{/*
The environment of the service and its jobs as name: value lines (ConfigMap data). Each
config key names its variable: `requestTimeoutSeconds` is REQUEST_TIMEOUT_SECONDS (the keys are
the settings' names in camelCase, generated from the service's settings model). Only HOST,
PORT, METRICS_PORT and SECRETS_DIR are fixed by the chart. Empty values are left out so that the service's
own default applies.
*/}}
{{- define "langgraph-agent.configData" -}}
{{- $env := dict }}
{{- range $key, $value := .Values.config }}
{{- $_ := set $env ($key | snakecase | upper) $value }}
{{- end }}
{{- $_ := set $env "HOST" "0.0.0.0" }}
{{- $_ := set $env "PORT" (include "langgraph-agent.port" .) }}
{{- $_ := set $env "METRICS_PORT" (include "langgraph-agent.metricsPort" .) }}
{{- $_ := set $env "SECRETS_DIR" (include "langgraph-agent.secretsDir" .) }}
{{- range $key := keys $env | sortAlpha }}
{{- $value := get $env $key }}
{{- /* Objects and lists (PRINCIPAL_ROLES, PRINCIPAL_GRAPHS) are JSON in the environment, as
the settings model reads them; empty ones are left out like empty strings. */}}
{{- if or (kindIs "map" $value) (kindIs "slice" $value) }}
{{- $value = ternary "" (toJson $value) (empty $value) }}
{{- end }}
{{- if not (or (kindIs "invalid" $value) (and (kindIs "string" $value) (eq $value ""))) }}
{{- /* Values can arrive as float64 (JSON values files, --set-json); whole numbers must not
print as 1.048576e+06. */}}
{{- if and (kindIs "float64" $value) (eq $value (float64 (int64 $value))) }}
{{- $value = int64 $value }}
{{- end }}
{{ $key }}: {{ $value | toString | quote }}
{{- end }}
{{- end }}
{{- end }}

{{/* The pod-level fields every pod of the chart shares. */}}
{{- define "langgraph-agent.podCommon" -}}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* The /tmp emptyDir volume. */}}
{{- define "langgraph-agent.tmpVolume" -}}
- name: tmp
  emptyDir:
    sizeLimit: {{ .Values.tmpVolume.sizeLimit }}
{{- end }}

{{/* The keys a job mounts from its Secret: its own login (External Secrets), or the database
password of the shared existing Secret. */}}
{{- define "langgraph-agent.databaseLoginKeys" -}}
{{- if .Values.existingSecret }}database_password{{- else }}database_user database_password{{- end }}
{{- end }}

{{/* The secret-files volume for the Secret named .secretName, optionally limited to .keys
(space-separated). */}}
{{- define "langgraph-agent.secretVolume" -}}
- name: secrets
  secret:
    secretName: {{ .secretName }}
    # Group-readable: the files belong to root and to fsGroup, the process's group.
    defaultMode: 0440
    {{- with .keys }}
    items:
      {{- range splitList " " . }}
      - key: {{ . }}
        path: {{ . }}
      {{- end }}
    {{- end }}
{{- end }}

{{/* The container of a job running `agent-service <command>`. */}}
{{- define "langgraph-agent.jobContainer" -}}
- name: {{ .command }}
  image: {{ include "langgraph-agent.image" .root }}
  imagePullPolicy: {{ .root.Values.image.pullPolicy }}
  args:
    - {{ .command }}
  {{- if .envFrom }}
  envFrom:
    - configMapRef:
        name: {{ include "langgraph-agent.fullname" .root }}
  {{- else }}
  env:
    {{- range $name, $value := include "langgraph-agent.configData" .root | fromYaml }}
    - name: {{ $name }}
      value: {{ $value | quote }}
    {{- end }}
  {{- end }}
  securityContext:
    {{- toYaml .root.Values.securityContext | nindent 4 }}
  resources:
    {{- toYaml .resources | nindent 4 }}
  volumeMounts:
    - name: tmp
      mountPath: /tmp
    {{- if .secretName }}
    - name: secrets
      mountPath: {{ include "langgraph-agent.secretsDir" .root }}
      readOnly: true
    {{- end }}
{{- end }}

{{/*
Checks across values that a JSON schema cannot express; each failure names the values to
change. Included once, from the Deployment.
*/}}
{{- define "langgraph-agent.validate" -}}
{{- $v := .Values }}
{{- if and $v.canary.enabled (not $v.autoscaling.enabled) }}
{{- fail "canary.enabled requires autoscaling.enabled: Flagger's Canary references the chart's HorizontalPodAutoscaler (autoscalerRef) and creates <hpa>-primary from it" }}
{{- end }}
{{- if and $v.canary.enabled (eq $v.canary.provider "nginx") (not $v.ingress.enabled) }}
{{- fail "canary.provider nginx requires ingress.enabled: Flagger's nginx provider shifts traffic through the chart's Ingress (ingressRef)" }}
{{- end }}
{{- if and $v.canary.enabled (hasPrefix "gatewayapi" $v.canary.provider) (not $v.httpRoute.enabled) }}
{{- fail "canary.provider gatewayapi:v1 requires httpRoute.enabled: Flagger weights the route to the Gateway (service.gatewayRefs)" }}
{{- end }}
{{- if and $v.canary.enabled (hasPrefix "gatewayapi" $v.canary.provider) (eq (len $v.httpRoute.hostnames) 0) }}
{{- fail "canary.provider gatewayapi:v1 requires at least one httpRoute.hostnames entry: the load test sends its traffic to that host through the Gateway" }}
{{- end }}
{{- if and $v.canary.enabled (eq $v.canary.provider "nginx") (eq (len $v.ingress.hosts) 0) }}
{{- fail "canary.provider nginx requires at least one ingress.hosts entry: the load test sends its traffic to that host through the ingress controller" }}
{{- end }}
{{- if and $v.autoscaling.enabled (gt (int $v.autoscaling.minReplicas) (int $v.autoscaling.maxReplicas)) }}
{{- fail (printf "autoscaling.minReplicas (%d) is greater than autoscaling.maxReplicas (%d)" (int $v.autoscaling.minReplicas) (int $v.autoscaling.maxReplicas)) }}
{{- end }}
{{- if and $v.podDisruptionBudget.enabled (not (kindIs "invalid" $v.podDisruptionBudget.minAvailable)) (not (kindIs "invalid" $v.podDisruptionBudget.maxUnavailable)) }}
{{- fail "podDisruptionBudget: set either minAvailable or maxUnavailable, not both (set the other to null)" }}
{{- end }}
{{- if gt (int $v.config.databasePoolMin) (int $v.config.databasePoolMax) }}
{{- fail (printf "config.databasePoolMin (%d) is greater than config.databasePoolMax (%d)" (int $v.config.databasePoolMin) (int $v.config.databasePoolMax)) }}
{{- end }}
{{- if and $v.existingSecret $v.externalSecrets.enabled }}
{{- fail "existingSecret and externalSecrets.enabled are exclusive: with External Secrets the chart owns the Secret, so leave existingSecret empty" }}
{{- end }}
{{- if and $v.externalSecrets.enabled (eq (len $v.externalSecrets.data) 0) }}
{{- fail "externalSecrets.enabled requires at least one externalSecrets.data entry" }}
{{- end }}
{{- if and $v.externalSecrets.enabled $v.config.databaseUrl }}
{{- range $component := list "migration" "backup" "retention" }}
{{- $keys := list }}
{{- range (index $v.externalSecrets $component).data }}{{- $keys = append $keys .secretKey }}{{- end }}
{{- if and (index $v $component).enabled (not (and (has "database_user" $keys) (has "database_password" $keys))) }}
{{- fail (printf "%s.enabled with externalSecrets.enabled requires externalSecrets.%s.data entries for database_user and database_password (its own database role's login): the %s never logs in with the service's credential" $component $component $component) }}
{{- end }}
{{- end }}
{{- end }}
{{- range $owner, $entries := dict "data" $v.externalSecrets.data "migration.data" $v.externalSecrets.migration.data "backup.data" $v.externalSecrets.backup.data "retention.data" $v.externalSecrets.retention.data }}
{{- range $entries }}
{{- if contains ":secret:rds!" (toString .remoteRef.key) }}
{{- fail (printf "externalSecrets.%s names an RDS-managed master secret (%s): the master user is break-glass only and never mounted into a pod; use the secret of the workload's own database role" $owner .remoteRef.key) }}
{{- end }}
{{- end }}
{{- end }}
{{- $minGrace := add $v.preStopSleepSeconds $v.config.shutdownGraceSeconds 5 }}
{{- if le (int $v.terminationGracePeriodSeconds) (int $minGrace) }}
{{- fail (printf "terminationGracePeriodSeconds (%d) must exceed preStopSleepSeconds + config.shutdownGraceSeconds + 5 s of cancellation (%d)" (int $v.terminationGracePeriodSeconds) (int $minGrace)) }}
{{- end }}
{{- if lt (float64 $v.config.shutdownGraceSeconds) (float64 $v.config.requestTimeoutSeconds) }}
{{- fail (printf "config.shutdownGraceSeconds (%v) must be at least config.requestTimeoutSeconds (%v): a rollout or scale-down would cancel runs the request timeout lets run" $v.config.shutdownGraceSeconds $v.config.requestTimeoutSeconds) }}
{{- end }}
{{- if $v.podDisruptionBudget.enabled }}
{{- $pdb := $v.podDisruptionBudget }}
{{- $smallest := ternary (int $v.autoscaling.minReplicas) (int $v.replicaCount) $v.autoscaling.enabled }}
{{- if not (kindIs "invalid" $pdb.maxUnavailable) }}
{{- if or (eq (toString $pdb.maxUnavailable) "0") (eq (toString $pdb.maxUnavailable) "0%") }}
{{- fail "podDisruptionBudget.maxUnavailable 0 blocks every eviction: node drains and cluster upgrades would hang; use 1" }}
{{- end }}
{{- else if kindIs "string" $pdb.minAvailable }}
{{- if eq $pdb.minAvailable "100%" }}
{{- fail "podDisruptionBudget.minAvailable 100% blocks every eviction: node drains would hang; use maxUnavailable: 1" }}
{{- end }}
{{- else if ge (int $pdb.minAvailable) $smallest }}
{{- fail (printf "podDisruptionBudget.minAvailable (%d) is not below the smallest replica count (%d): it blocks every eviction and node drains would hang; use maxUnavailable: 1" (int $pdb.minAvailable) $smallest) }}
{{- end }}
{{- end }}
{{- $configured := include "langgraph-agent.configData" . | fromYaml }}
{{- range $v.extraEnv }}
{{- if hasKey $configured .name }}
{{- fail (printf "extraEnv %s is set by the chart (config.%s): change the config value instead" .name (.name | lower | camelcase | untitle)) }}
{{- end }}
{{- end }}
{{- if not $v.config.databaseUrl }}
{{- if or (gt (int $v.replicaCount) 1) $v.autoscaling.enabled $v.canary.enabled }}
{{- fail "config.databaseUrl is empty (the embedded SQLite database belongs to one pod): set config.databaseUrl, or keep replicaCount 1 with autoscaling and canary off" }}
{{- end }}
{{- if $v.backup.enabled }}
{{- fail "backup.enabled requires config.databaseUrl: the backup dumps PostgreSQL" }}
{{- end }}
{{- end }}
{{- if and $v.backup.enabled (not $v.config.backupBucket) }}
{{- fail "backup.enabled requires config.backupBucket" }}
{{- end }}
{{- if and $v.monitoring.enabled $v.config.metricsRequireAuth }}
{{- fail "monitoring.enabled with config.metricsRequireAuth: a PodMonitor cannot send X-API-Key; keep /metrics open (the NetworkPolicy admits only Prometheus, to the metrics port)" }}
{{- end }}
{{- if and $v.networkPolicy.enabled $v.config.databaseUrl (eq (len $v.networkPolicy.egress.postgres.cidrs) 0) }}
{{- fail "networkPolicy.enabled with config.databaseUrl requires networkPolicy.egress.postgres.cidrs: otherwise the pods cannot reach the database" }}
{{- end }}
{{- if and $v.networkPolicy.enabled $v.config.redisUrl (eq (len $v.networkPolicy.egress.redis.cidrs) 0) }}
{{- fail "networkPolicy.enabled with config.redisUrl requires networkPolicy.egress.redis.cidrs: otherwise the pods cannot reach Redis" }}
{{- end }}
{{- if and $v.networkPolicy.enabled $v.backup.enabled (eq (len $v.networkPolicy.egress.s3.cidrs) 0) }}
{{- fail "networkPolicy.enabled with backup.enabled requires networkPolicy.egress.s3.cidrs: otherwise the backup cannot reach S3" }}
{{- end }}
{{- end }}

{{/* Egress to the cluster DNS (kube-dns in kube-system). */}}
{{- define "langgraph-agent.egressDns" -}}
- to:
    - namespaceSelector:
        matchLabels:
          kubernetes.io/metadata.name: kube-system
      podSelector:
        matchLabels:
          k8s-app: kube-dns
  ports:
    - port: 53
      protocol: UDP
    - port: 53
      protocol: TCP
{{- end }}

{{/* Egress to .cidrs on .port; nothing when the list is empty (an empty `to` would allow
every destination). */}}
{{- define "langgraph-agent.egressTo" -}}
{{- if .cidrs }}
- to:
    {{- range .cidrs }}
    - ipBlock:
        cidr: {{ . }}
    {{- end }}
  ports:
    - port: {{ .port }}
      protocol: TCP
{{- end }}
{{- end }}

{{/* Annotations of the migration hook's objects; .weight orders them before the Job. */}}
{{- define "langgraph-agent.migrationHookAnnotations" -}}
helm.sh/hook: pre-install,pre-upgrade
helm.sh/hook-weight: {{ .weight | quote }}
helm.sh/hook-delete-policy: {{ .deletePolicy | default "before-hook-creation,hook-succeeded" }}
{{- end }}
