{{/* Names and labels. */}}
{{- define "shim.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "shim.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "shim.selectorLabels" -}}
app.kubernetes.io/name: {{ include "shim.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "shim.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "shim.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/*
The shim's grace period in whole seconds, rounded up: "500ms" -> 1,
"10s" -> 10, "2m" -> 120, "1.5" -> 2. The schema allows a number with an
optional unit ms, s, m or h.
*/}}
{{- define "shim.graceSeconds" -}}
{{- $g := toString .Values.shim.grace -}}
{{- $num := regexFind "^[0-9]+(\\.[0-9]+)?" $g -}}
{{- $unit := trimPrefix $num $g -}}
{{- $secs := 0.0 -}}
{{- if eq $unit "ms" -}}{{- $secs = divf (float64 $num) 1000 -}}
{{- else if eq $unit "m" -}}{{- $secs = mulf (float64 $num) 60 -}}
{{- else if eq $unit "h" -}}{{- $secs = mulf (float64 $num) 3600 -}}
{{- else -}}{{- $secs = float64 $num -}}
{{- end -}}
{{- ceil $secs | int -}}
{{- end -}}

{{/* terminationGracePeriodSeconds: derived, or the user's if it exceeds the grace. */}}
{{- define "shim.terminationGracePeriodSeconds" -}}
{{- $grace := include "shim.graceSeconds" . | int -}}
{{- $t := .Values.terminationGracePeriodSeconds -}}
{{- if kindIs "invalid" $t -}}
{{- add $grace .Values.shim.graceMarginSeconds -}}
{{- else if le (int $t) $grace -}}
{{- fail (printf "terminationGracePeriodSeconds (%d) must be greater than the shim's grace period (shim.grace %s = %d s, rounded up): the kubelet would SIGKILL the shim before it escalates and reports. Leave it null to get grace + shim.graceMarginSeconds." (int $t) (toString .Values.shim.grace) $grace) -}}
{{- else -}}
{{- int $t -}}
{{- end -}}
{{- end -}}

{{/* Whether sidecars are native (init containers with restartPolicy: Always). */}}
{{- define "shim.nativeSidecars" -}}
{{- $n := .Values.nativeSidecars -}}
{{- if eq (toString $n) "true" -}}true
{{- else if eq (toString $n) "false" -}}false
{{- else if and (eq .Values.kind "Job") (semverCompare ">=1.29-0" .Capabilities.KubeVersion.Version) -}}true
{{- else -}}false
{{- end -}}
{{- end -}}

{{- define "shim.image" -}}
{{- printf "%s:%s" .Values.shim.image.repository (default .Chart.AppVersion .Values.shim.image.tag) -}}
{{- end -}}

{{/*
One wrapped container. Called with (dict "root" $ "c" <container values>
"native" <bool>): the command becomes <installDir>/shim [options] -- command args.
*/}}
{{- define "shim.container" -}}
{{- $root := .root -}}
{{- $s := $root.Values.shim -}}
{{- $c := .c -}}
{{- $cmd := list (printf "%s/shim" $s.installDir) "--grace" (toString $s.grace) "--events" $s.events -}}
{{- if $s.terminationLog -}}
{{- $cmd = concat $cmd (list "--termination-log" $s.terminationLog) -}}
{{- end -}}
{{- $cmd = concat $cmd ($s.extraArgs | default list) (list "--") $c.command ($c.args | default list) -}}
- name: {{ $c.name }}
  image: {{ $c.image | quote }}
  imagePullPolicy: {{ $c.imagePullPolicy | default "IfNotPresent" }}
  {{- if .native }}
  restartPolicy: Always
  {{- end }}
  command:
    {{- range $cmd }}
    - {{ toString . | quote }}
    {{- end }}
  {{- with $c.workingDir }}
  workingDir: {{ . | quote }}
  {{- end }}
  {{- with $c.env }}
  env:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $c.envFrom }}
  envFrom:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $c.ports }}
  ports:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $c.resources }}
  resources:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with $c.securityContext }}
  securityContext:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- range $probe := list "livenessProbe" "readinessProbe" "startupProbe" }}
  {{- with index $c $probe }}
  {{ $probe }}:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- end }}
  {{- if $s.terminationLog }}
  terminationMessagePath: {{ $s.terminationLog | quote }}
  terminationMessagePolicy: File
  {{- end }}
  volumeMounts:
    - name: shim
      mountPath: {{ $s.installDir | quote }}
      readOnly: true
    {{- with $c.volumeMounts }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
{{- end -}}

{{/* The pod spec shared by the Deployment and the Job. */}}
{{- define "shim.podSpec" -}}
{{- $native := eq (include "shim.nativeSidecars" .) "true" -}}
{{- $names := list .Values.app.name -}}
{{- range .Values.sidecars -}}
{{- if has .name $names -}}
{{- fail (printf "sidecars: the container name %q is used twice (app.name and every sidecar name must differ)" .name) -}}
{{- end -}}
{{- if eq .name "shim-install" -}}
{{- fail "sidecars: the name \"shim-install\" is taken by the chart's init container" -}}
{{- end -}}
{{- $names = append $names .name -}}
{{- end -}}
{{- if eq .Values.app.name "shim-install" -}}
{{- fail "app.name: \"shim-install\" is taken by the chart's init container" -}}
{{- end -}}
{{- if and (eq .Values.kind "Job") .Values.sidecars (not $native) -}}
{{- fail "kind Job with sidecars needs native sidecars (Kubernetes >= 1.29, or a cluster with the SidecarContainers feature: set nativeSidecars=true); without them nothing stops the sidecars when the app finishes and the Job never completes" -}}
{{- end -}}
{{- with .Values.serviceAccountName }}
serviceAccountName: {{ . }}
{{- end }}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- if eq .Values.kind "Job" }}
restartPolicy: {{ .Values.job.restartPolicy | default "Never" }}
{{- else }}
restartPolicy: Always
{{- end }}
# The shim must be PID 1 of each container: no shared process namespace.
shareProcessNamespace: false
terminationGracePeriodSeconds: {{ include "shim.terminationGracePeriodSeconds" . }}
{{- with .Values.podSecurityContext }}
securityContext:
  {{- toYaml . | nindent 2 }}
{{- end }}
initContainers:
  - name: shim-install
    image: {{ include "shim.image" . | quote }}
    imagePullPolicy: {{ .Values.shim.image.pullPolicy | default "IfNotPresent" }}
    # The image's ENTRYPOINT is ["/shim", "--"], so the command is set whole.
    command: ["/shim", "install", {{ printf "%s/" .Values.shim.installDir | quote }}]
    {{- with .Values.shim.resources }}
    resources:
      {{- toYaml . | nindent 6 }}
    {{- end }}
    {{- with .Values.shim.securityContext }}
    securityContext:
      {{- toYaml . | nindent 6 }}
    {{- end }}
    volumeMounts:
      - name: shim
        mountPath: {{ .Values.shim.installDir | quote }}
  {{- if $native }}
  {{- range .Values.sidecars }}
  {{- include "shim.container" (dict "root" $ "c" . "native" true) | nindent 2 }}
  {{- end }}
  {{- end }}
containers:
  {{- include "shim.container" (dict "root" $ "c" .Values.app "native" false) | nindent 2 }}
  {{- if not $native }}
  {{- range .Values.sidecars }}
  {{- include "shim.container" (dict "root" $ "c" . "native" false) | nindent 2 }}
  {{- end }}
  {{- end }}
volumes:
  - name: shim
    emptyDir: {}
  {{- with .Values.volumes }}
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
{{- with .Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}
