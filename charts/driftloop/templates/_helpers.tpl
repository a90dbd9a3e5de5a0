{{/* Labels every object carries; "name" is the component (driftloop-mlflow, ...). */}}
{{- define "driftloop.labels" -}}
app.kubernetes.io/name: {{ .name }}
app.kubernetes.io/part-of: driftloop
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version }}
{{- end -}}

{{- define "driftloop.partOf" -}}
app.kubernetes.io/part-of: driftloop
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* A driftloop image: registry/name:tag */}}
{{- define "driftloop.image" -}}
{{- printf "%s/%s:%s" .root.Values.images.registry .name (.root.Values.images.tag | default .root.Chart.AppVersion) -}}
{{- end -}}

{{/* Pod-level security context meeting the "restricted" Pod Security Standard. */}}
{{- define "driftloop.podSecurity" -}}
runAsNonRoot: true
runAsUser: {{ .uid | default 10001 }}
runAsGroup: {{ .uid | default 10001 }}
fsGroup: {{ .uid | default 10001 }}
seccompProfile: {type: RuntimeDefault}
{{- end -}}

{{- define "driftloop.containerSecurity" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities: {drop: [ALL]}
{{- end -}}

{{- define "driftloop.mlflowHost" -}}
{{- printf "driftloop-mlflow.%s.svc.cluster.local" .Release.Namespace -}}
{{- end -}}

{{- define "driftloop.postgresHost" -}}
{{- printf "driftloop-postgres.%s.svc.cluster.local" .Release.Namespace -}}
{{- end -}}

{{- define "driftloop.volumeClaim" -}}
accessModes: [ReadWriteOnce]
{{- if .storageClass }}
storageClassName: {{ .storageClass }}
{{- end }}
resources:
  requests: {storage: {{ .size }}}
{{- end -}}
