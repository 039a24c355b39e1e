{{/* Names and labels shared by every template. */}}

{{- define "tabby.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The release's base name: the release name, with "tabby" only once. */}}
{{- define "tabby.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "tabby.labels" -}}
app.kubernetes.io/name: {{ include "tabby.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* Selector labels of one component (node, reflector). */}}
{{- define "tabby.selectorLabels" -}}
app.kubernetes.io/name: {{ include "tabby.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{- define "tabby.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "tabby.nodeServiceAccount" -}}
{{- printf "%s-node" (include "tabby.fullname" .) -}}
{{- end -}}

{{- define "tabby.cniServiceAccount" -}}
{{- printf "%s-cni" (include "tabby.fullname" .) -}}
{{- end -}}

{{/* The name of the CNI plugin's token Secret. */}}
{{- define "tabby.cniTokenSecret" -}}
{{- printf "%s-cni-token" (include "tabby.fullname" .) -}}
{{- end -}}

{{- define "tabby.configMap" -}}
{{- printf "%s-config" (include "tabby.fullname" .) -}}
{{- end -}}

{{/* Sorted, unique names of the Secrets the BGP configuration names (peers, mesh). */}}
{{- define "tabby.passwordSecrets" -}}
{{- $names := list -}}
{{- if .Values.bgp.nodeMeshPassword.secretName -}}
{{- $names = append $names .Values.bgp.nodeMeshPassword.secretName -}}
{{- end -}}
{{- range .Values.bgp.peers -}}
{{- if and .password .password.secretName -}}
{{- $names = append $names .password.secretName -}}
{{- end -}}
{{- end -}}
{{- $names | uniq | sortAlpha | toJson -}}
{{- end -}}

{{/* True when some reflector setup is on: the mesh goes off. */}}
{{- define "tabby.meshEnabled" -}}
{{- if or .Values.bgp.routeReflectorNodeLabel .Values.routeReflectors.enabled -}}
false
{{- else -}}
{{- .Values.bgp.nodeToNodeMeshEnabled -}}
{{- end -}}
{{- end -}}
