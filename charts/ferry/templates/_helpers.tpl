{{/* Base name of every object: fullnameOverride, the release name when it holds the chart's name, else <release>-<name>. */}}
{{- define "ferry.fullname" -}}
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

{{- define "ferry.controller.fullname" -}}
{{- printf "%s-%s" (include "ferry.fullname" .) .Values.controller.name -}}
{{- end -}}

{{- define "ferry.applicationSet.fullname" -}}
{{- printf "%s-%s" (include "ferry.fullname" .) .Values.applicationSet.name -}}
{{- end -}}

{{- define "ferry.imageUpdater.fullname" -}}
{{- printf "%s-%s" (include "ferry.fullname" .) .Values.imageUpdater.name -}}
{{- end -}}

{{- define "ferry.workflows.fullname" -}}
{{- printf "%s-%s" (include "ferry.fullname" .) .Values.workflows.name -}}
{{- end -}}

{{- define "ferry.server.fullname" -}}
{{- printf "%s-%s" (include "ferry.fullname" .) .Values.server.name -}}
{{- end -}}

{{/* Labels of every object; `component` is the component's name or "". */}}
{{- define "ferry.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .context.Chart.Name .context.Chart.Version | replace "+" "_" }}
app.kubernetes.io/instance: {{ .context.Release.Name }}
app.kubernetes.io/managed-by: {{ .context.Release.Service }}
app.kubernetes.io/part-of: ferry
app.kubernetes.io/version: {{ include "ferry.imageTag" (dict "context" .context "image" dict) | quote }}
{{- if .name }}
app.kubernetes.io/name: {{ .name }}
{{- end }}
{{- if .component }}
app.kubernetes.io/component: {{ .component }}
{{- end }}
{{- with .context.Values.global.additionalLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* The labels a component's pods are selected by. */}}
{{- define "ferry.selectorLabels" -}}
app.kubernetes.io/name: {{ .name }}
app.kubernetes.io/instance: {{ .context.Release.Name }}
{{- end -}}

{{/* An Argo CD settings object's labels: its name and part-of argocd, as Argo CD labels them. */}}
{{- define "ferry.settingsLabels" -}}
app.kubernetes.io/name: {{ .name }}
app.kubernetes.io/part-of: argocd
app.kubernetes.io/instance: {{ .context.Release.Name }}
app.kubernetes.io/managed-by: {{ .context.Release.Service }}
{{- end -}}

{{- define "ferry.imageTag" -}}
{{- .image.tag | default .context.Values.global.image.tag | default .context.Chart.AppVersion -}}
{{- end -}}

{{/* A component's image: its own repository/tag/imagePullPolicy, else global.image's. */}}
{{- define "ferry.image" -}}
image: {{ printf "%s:%s" (.image.repository | default .context.Values.global.image.repository) (include "ferry.imageTag" .) | quote }}
imagePullPolicy: {{ .image.imagePullPolicy | default .context.Values.global.image.imagePullPolicy }}
{{- end -}}

{{/* Pod-level settings shared by the components: pull secrets, scheduling, security context. */}}
{{- define "ferry.podSpec" -}}
{{- with (.component.imagePullSecrets | default .context.Values.global.imagePullSecrets) }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with (.component.nodeSelector | default .context.Values.global.nodeSelector) }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with (.component.tolerations | default .context.Values.global.tolerations) }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with (.component.affinity | default .context.Values.global.affinity) }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .component.topologySpreadConstraints }}
topologySpreadConstraints:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with (.component.priorityClassName | default .context.Values.global.priorityClassName) }}
priorityClassName: {{ . }}
{{- end }}
securityContext:
  {{- toYaml .context.Values.global.securityContext | nindent 2 }}
{{- end -}}

{{/* Environment every component gets: its namespace (where Argo CD's objects are) and logging. */}}
{{- define "ferry.env" -}}
- name: FERRY_NAMESPACE
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
- name: FERRY_LOG
  value: {{ printf "%s,kube=warn" .Values.global.logging.level | quote }}
- name: HOME
  value: /home/ferry
{{- end -}}

{{/* Whether the API server serves plain HTTP (configs.params."server.insecure"). */}}
{{- define "ferry.server.insecure" -}}
{{- if eq (toString (index .Values.configs.params "server.insecure")) "true" }}true{{ end -}}
{{- end -}}

{{- define "ferry.controller.serviceAccountName" -}}
{{- .Values.controller.serviceAccount.name | default (include "ferry.controller.fullname" .) -}}
{{- end -}}

{{- define "ferry.server.serviceAccountName" -}}
{{- .Values.server.serviceAccount.name | default (include "ferry.server.fullname" .) -}}
{{- end -}}

{{- define "ferry.applicationSet.serviceAccountName" -}}
{{- .Values.applicationSet.serviceAccount.name | default (include "ferry.applicationSet.fullname" .) -}}
{{- end -}}

{{- define "ferry.imageUpdater.serviceAccountName" -}}
{{- .Values.imageUpdater.serviceAccount.name | default (include "ferry.imageUpdater.fullname" .) -}}
{{- end -}}

{{- define "ferry.workflows.serviceAccountName" -}}
{{- .Values.workflows.serviceAccount.name | default (include "ferry.workflows.fullname" .) -}}
{{- end -}}

{{/* A PodDisruptionBudget's spec: minAvailable, or maxUnavailable, or minAvailable 1. */}}
{{- define "ferry.pdbSpec" -}}
{{- if .pdb.minAvailable }}
minAvailable: {{ .pdb.minAvailable }}
{{- else if .pdb.maxUnavailable }}
maxUnavailable: {{ .pdb.maxUnavailable }}
{{- else }}
minAvailable: 1
{{- end }}
selector:
  matchLabels:
    {{- include "ferry.selectorLabels" . | nindent 4 }}
{{- end -}}
