{{/*
Names and labels describe the app the chart runs, not the shim. The app's
name (app.kubernetes.io/name) is nameOverride; else app.name, unless that is
the placeholder "app"; else the release's name (`helm install web ...`:
web). As in Helm's own convention, with the app in the chart's place, the
workload is named <release>, or <release>-<name> when the release's name
does not contain the app's, or fullnameOverride.
*/}}
{{- define "shim.name" -}}
{{- $app := ternary "" .Values.app.name (eq .Values.app.name "app") -}}
{{- .Values.nameOverride | default $app | default .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "shim.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := include "shim.name" . -}}
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

{{/* The app's version: the tag of app.image, when it is a valid label value. */}}
{{- define "shim.appVersion" -}}
{{- $ref := regexReplaceAll `@.*$` (toString .Values.app.image) "" -}}
{{- $last := last (splitList "/" $ref) -}}
{{- if contains ":" $last -}}
{{- $tag := last (splitList ":" $last) -}}
{{- if regexMatch `^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$` $tag -}}
{{- $tag -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "shim.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "shim.selectorLabels" . }}
{{- with include "shim.appVersion" . }}
app.kubernetes.io/version: {{ . | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/*
A value worth rendering: not null, and not an empty string, map or list;
booleans and numbers always are (hostNetwork: false, priority: 0). "true" or "".
*/}}
{{- define "shim.present" -}}
{{- if kindIs "invalid" . -}}
{{- else if or (kindIs "bool" .) (kindIs "float64" .) (kindIs "int" .) (kindIs "int64" .) -}}true
{{- else if not (empty .) -}}true
{{- end -}}
{{- end -}}

{{/*
The durations the shim's --grace accepts (src/cli.rs parse_duration), as a
regular expression over the whole value (values.schema.json has the same one
for shim.grace, leading and trailing ASCII white space allowed there):
- bare seconds as Rust parses an f64 (10, 1.5, .5, 5., 1e3, +5; -0 is zero),
- or humantime's form: one or more <number><unit>, white space allowed
  between and inside them (1m30s, 1h 30m, 10 sec); a number may have a
  fraction (1.5h), except with a nanosecond unit.
*/}}
{{- define "shim.durationRegex" -}}
{{- $u := `(?:usec|us|µs|millis|msec|ms|seconds|second|secs|sec|s|minutes|minute|mins|min|m|hours|hour|hrs|hr|h|days|day|d|weeks|week|wks|wk|w|months|month|M|years|year|yrs|yr|y)` -}}
{{- $ns := `(?:nanos|nsec|ns)` -}}
{{- $term := printf `[0-9][0-9\s]*(?:%s|%s|\.[0-9\s]*[0-9][0-9\s]*%s)` $ns $u $u -}}
{{- printf `^(?:\+?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|-(?:0+\.?0*|\.0+)(?:[eE][+-]?[0-9]+)?|%s(?:\s*%s)*)$` $term $term -}}
{{- end -}}

{{/*
A duration value (a string as above, or a number of seconds) in seconds, as
a float: "500ms" -> 0.5, "1m30s" -> 90, "1h 30m" -> 5400, 1.5 -> 1.5. Called
with (dict "v" VALUE "what" NAME-FOR-MESSAGES).
*/}}
{{- define "shim.durationSeconds" -}}
{{- $v := .v -}}
{{- if not (kindIs "string" $v) -}}
{{- float64 $v -}}
{{- else -}}
{{- $g := trim $v -}}
{{- if not (regexMatch (include "shim.durationRegex" .) $g) -}}
{{- fail (printf "%s: %q is not a duration the shim accepts: 500ms, 10s, 2m, 1m30s, 1h 30m, or bare seconds (10, 1.5)" .what $v) -}}
{{- else if regexMatch `^\+?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$` $g -}}
{{- float64 (trimPrefix "+" $g) -}}
{{- else if hasPrefix "-" $g -}}0
{{- else -}}
{{- $per := dict "s" 1 "sec" 1 "secs" 1 "second" 1 "seconds" 1
  "m" 60 "min" 60 "mins" 60 "minute" 60 "minutes" 60
  "h" 3600 "hr" 3600 "hrs" 3600 "hour" 3600 "hours" 3600
  "d" 86400 "day" 86400 "days" 86400
  "w" 604800 "wk" 604800 "wks" 604800 "week" 604800 "weeks" 604800
  "M" 2630016 "month" 2630016 "months" 2630016
  "y" 31557600 "yr" 31557600 "yrs" 31557600 "year" 31557600 "years" 31557600 -}}
{{- $div := dict "ms" 1000 "msec" 1000 "millis" 1000
  "us" 1000000 "usec" 1000000 "µs" 1000000
  "ns" 1000000000 "nsec" 1000000000 "nanos" 1000000000 -}}
{{- $secs := 0.0 -}}
{{- range regexFindAll `[0-9]+(?:\.[0-9]+)?[a-zA-Zµ]+` (regexReplaceAll `\s` $g "") -1 -}}
{{- $num := regexFind `^[0-9]+(?:\.[0-9]+)?` . -}}
{{- $unit := trimPrefix $num . -}}
{{- if hasKey $per $unit -}}
{{- $secs = addf $secs (mulf (float64 $num) (index $per $unit)) -}}
{{- else -}}
{{- $secs = addf $secs (divf (float64 $num) (index $div $unit)) -}}
{{- end -}}
{{- end -}}
{{- $secs -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* The shim's grace period in whole seconds, rounded up: "500ms" -> 1, "1m30s" -> 90, 1.5 -> 2. */}}
{{- define "shim.graceSeconds" -}}
{{- $s := include "shim.durationSeconds" (dict "v" .Values.shim.grace "what" "shim.grace") | float64 -}}
{{- if gt $s 9007199254740991.0 -}}
{{- fail (printf "shim.grace: %v is too long for terminationGracePeriodSeconds (at most 2^53 - 1 seconds)" .Values.shim.grace) -}}
{{- end -}}
{{- ceil $s | int64 -}}
{{- end -}}

{{/* A container's lifecycle.preStop.sleep.seconds, or 0. */}}
{{- define "shim.preStopSleep" -}}
{{- dig "lifecycle" "preStop" "sleep" "seconds" 0 . | int64 -}}
{{- end -}}

{{/*
How long a pod takes to stop, before the margin, as JSON {"main": S, "sidecars": S}.
The kubelet runs the preStop hooks and then sends SIGTERM to the app and the
ordinary sidecars together; each shim may take ceil(grace) seconds after it:
"main" is the longest of (preStop sleep + grace). Native sidecars are sent
their SIGTERM only after every ordinary container has ended, so their own
(preStop sleep + grace) comes after that: "sidecars" (0 without native
sidecars).
*/}}
{{- define "shim.stopBudget" -}}
{{- $native := eq (include "shim.nativeSidecars" .) "true" -}}
{{- $g := include "shim.graceSeconds" . | int64 -}}
{{- $main := add $g (include "shim.preStopSleep" .Values.app) -}}
{{- $side := 0 -}}
{{- range .Values.sidecars -}}
{{- $t := add $g (include "shim.preStopSleep" .) -}}
{{- if $native -}}
{{- $side = max $side $t -}}
{{- else -}}
{{- $main = max $main $t -}}
{{- end -}}
{{- end -}}
{{- dict "main" $main "sidecars" $side | toJson -}}
{{- end -}}

{{/* The budget in words, for messages and NOTES.txt. */}}
{{- define "shim.stopBudgetText" -}}
{{- $b := include "shim.stopBudget" . | fromJson -}}
{{- printf "%d s for the app to stop (shim.grace %v rounded up, with any preStop sleep)" (int64 $b.main) .Values.shim.grace -}}
{{- if gt (int64 $b.sidecars) 0 -}}
{{- printf ", then %d s for the native sidecars to stop, which the kubelet begins only after the app has ended" (int64 $b.sidecars) -}}
{{- end -}}
{{- end -}}

{{/*
terminationGracePeriodSeconds: the stop budget above plus
shim.graceMarginSeconds (so every shim kills, reaps and reports before the
kubelet's SIGKILL), or the user's value if it exceeds the budget.
*/}}
{{- define "shim.terminationGracePeriodSeconds" -}}
{{- $b := include "shim.stopBudget" . | fromJson -}}
{{- $need := add (int64 $b.main) (int64 $b.sidecars) -}}
{{- $t := .Values.terminationGracePeriodSeconds -}}
{{- if kindIs "invalid" $t -}}
{{- add $need .Values.shim.graceMarginSeconds -}}
{{- else if le (int64 $t) $need -}}
{{- fail (printf "terminationGracePeriodSeconds (%d) must be greater than %d: %s. The kubelet would SIGKILL a shim before it escalates and reports. Leave it null to get that plus shim.graceMarginSeconds." (int64 $t) $need (include "shim.stopBudgetText" .)) -}}
{{- else -}}
{{- int64 $t -}}
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
The in-memory emptyDir that holds a container's ready file (notify: true),
named after the container: shim-ready-<name>, or, for a name too long for
that (a volume name has at most 63 characters), the name cut short with a
hash of the whole name.
*/}}
{{- define "shim.readyVolume" -}}
{{- $n := printf "shim-ready-%s" . -}}
{{- if gt (len $n) 63 -}}
{{- $n = printf "shim-ready-%s-%s" (trunc 43 .) (sha256sum . | trunc 8) -}}
{{- end -}}
{{- $n -}}
{{- end -}}

{{/*
One wrapped container. Called with (dict "root" $ "c" <container values>
"native" <bool> "what" <"app" or "sidecars[i]">): the command becomes
<installDir>/shim [options] -- command args. Every other field of the
container's values is a Kubernetes container field and is passed through as
it is (lifecycle, env, resources, probes, securityContext, ...), except the
ones the chart sets itself.
*/}}
{{- define "shim.container" -}}
{{- $root := .root -}}
{{- $s := $root.Values.shim -}}
{{- $c := .c -}}
{{- if hasKey $c "restartPolicy" -}}
{{- fail (printf "%s.restartPolicy: set by the chart (Always for native sidecars, see nativeSidecars); remove it" .what) -}}
{{- end -}}
{{- if and $s.terminationLog $c.terminationMessagePath (ne $c.terminationMessagePath $s.terminationLog) -}}
{{- fail (printf "%s.terminationMessagePath: the chart sets it to shim.terminationLog (%s), where the shim writes its exit event; set shim.terminationLog instead" .what $s.terminationLog) -}}
{{- end -}}
{{- $cmd := list (printf "%s/shim" $s.installDir) "--grace" (toString $s.grace) "--events" $s.events -}}
{{- if $s.terminationLog -}}
{{- $cmd = concat $cmd (list "--termination-log" $s.terminationLog) -}}
{{- end -}}
{{- $readyFile := printf "%s/ready" $s.readyDir -}}
{{- $hasWatchdog := not (kindIs "invalid" $c.watchdog) -}}
{{- if $c.notify -}}
{{- $cmd = concat $cmd (list "--notify" "--ready-file" $readyFile) -}}
{{- end -}}
{{- with $c.notifyAccess -}}
{{- if not (or $c.notify $hasWatchdog) -}}
{{- fail (printf "%s.notifyAccess: only with notify: true or a watchdog (it says whose notifications count)" $.what) -}}
{{- end -}}
{{- $cmd = concat $cmd (list "--notify-access" .) -}}
{{- end -}}
{{- if $hasWatchdog -}}
{{- $w := include "shim.durationSeconds" (dict "v" $c.watchdog "what" (printf "%s.watchdog" .what)) | float64 -}}
{{- if le $w 0.0 -}}
{{- fail (printf "%s.watchdog: %v: the watchdog period must be more than zero (leave it null for no watchdog)" .what $c.watchdog) -}}
{{- else if gt $w 9007199254740991.0 -}}
{{- fail (printf "%s.watchdog: %v is too long (at most 2^53 - 1 seconds)" .what $c.watchdog) -}}
{{- end -}}
{{- $cmd = concat $cmd (list "--watchdog" (toString $c.watchdog)) -}}
{{- end -}}
{{- if not (kindIs "invalid" $c.watchdogSignal) -}}
{{- if not $hasWatchdog -}}
{{- fail (printf "%s.watchdogSignal: only with a watchdog (set %s.watchdog)" .what .what) -}}
{{- end -}}
{{- $cmd = concat $cmd (list "--watchdog-signal" (toString $c.watchdogSignal)) -}}
{{- end -}}
{{- $cmd = concat $cmd ($s.extraArgs | default list) (list "--") $c.command ($c.args | default list) -}}
{{- $own := list "name" "image" "imagePullPolicy" "command" "args" "volumeMounts" "terminationMessagePath" "terminationMessagePolicy" "notify" "notifyAccess" "watchdog" "watchdogSignal" -}}
{{- $extra := dict -}}
{{- range $k, $v := $c -}}
{{- if and (not (has $k $own)) (include "shim.present" $v) -}}
{{- $_ := set $extra $k $v -}}
{{- end -}}
{{- end -}}
{{- if $c.notify -}}
{{- range $c.volumeMounts -}}
{{- if eq (trimSuffix "/" (toString .mountPath)) $s.readyDir -}}
{{- fail (printf "%s.volumeMounts: %s is shim.readyDir, where the chart mounts this container's ready-file volume (notify: true); move the mount or set shim.readyDir" $.what .mountPath) -}}
{{- end -}}
{{- end -}}
{{- if not (include "shim.present" $c.readinessProbe) -}}
{{- $_ := set $extra "readinessProbe" (dict "exec" (dict "command" (list (printf "%s/shim" $s.installDir) "probe" $readyFile)) "periodSeconds" 2 "failureThreshold" 1) -}}
{{- end -}}
{{- end -}}
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
  {{- with $extra }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
  {{- if $s.terminationLog }}
  terminationMessagePath: {{ $s.terminationLog | quote }}
  terminationMessagePolicy: {{ $c.terminationMessagePolicy | default "File" }}
  {{- else }}
  {{- with $c.terminationMessagePath }}
  terminationMessagePath: {{ . | quote }}
  {{- end }}
  {{- with $c.terminationMessagePolicy }}
  terminationMessagePolicy: {{ . }}
  {{- end }}
  {{- end }}
  volumeMounts:
    - name: shim
      mountPath: {{ $s.installDir | quote }}
      readOnly: true
    {{- if $c.notify }}
    - name: {{ include "shim.readyVolume" $c.name }}
      mountPath: {{ $s.readyDir | quote }}
    {{- end }}
    {{- with $c.volumeMounts }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
{{- end -}}

{{/*
The pod-spec fields passed through from the top level of the values under
their Kubernetes names (values.schema.json lists the same ones). The chart
sets containers, initContainers (its own, then the user's), volumes (its
own, then the user's), restartPolicy, shareProcessNamespace and
terminationGracePeriodSeconds itself; securityContext comes from
podSecurityContext and resources from podResources.
*/}}
{{- define "shim.podFields" -}}
{{- list "activeDeadlineSeconds" "affinity" "automountServiceAccountToken" "dnsConfig" "dnsPolicy" "enableServiceLinks" "evictionResponders" "hostAliases" "hostIPC" "hostNetwork" "hostPID" "hostUsers" "hostname" "hostnameOverride" "imagePullSecrets" "nodeName" "nodeSelector" "os" "overhead" "preemptionPolicy" "priority" "priorityClassName" "readinessGates" "resourceClaims" "runtimeClassName" "schedulerName" "schedulingGates" "schedulingGroup" "serviceAccount" "serviceAccountName" "setHostnameAsFQDN" "subdomain" "tolerations" "topologySpreadConstraints" | toJson -}}
{{- end -}}

{{/* The pod spec shared by the Deployment and the Job. */}}
{{- define "shim.podSpec" -}}
{{- $native := eq (include "shim.nativeSidecars" .) "true" -}}
{{- $names := list "shim-install" -}}
{{- range .Values.initContainers -}}
{{- if has .name $names -}}
{{- fail (printf "initContainers: the container name %q is used twice, or is the chart's (shim-install)" .name) -}}
{{- end -}}
{{- $names = append $names .name -}}
{{- end -}}
{{- if has .Values.app.name $names -}}
{{- fail (printf "app.name: %q is taken (by the chart's init container shim-install, or by one of initContainers)" .Values.app.name) -}}
{{- end -}}
{{- $names = append $names .Values.app.name -}}
{{- range .Values.sidecars -}}
{{- if has .name $names -}}
{{- fail (printf "sidecars: the container name %q is used twice (app.name, every sidecar name, every initContainers name and shim-install must differ)" .name) -}}
{{- end -}}
{{- $names = append $names .name -}}
{{- end -}}
{{- range .Values.shim.extraArgs -}}
{{- if regexMatch `^(--grace(=.*)?|-[vq]*g.*)$` (toString .) -}}
{{- fail (printf "shim.extraArgs: %q: set the grace period with shim.grace, from which the chart derives terminationGracePeriodSeconds" (toString .)) -}}
{{- end -}}
{{- end -}}
{{- if eq .Values.shim.readyDir .Values.shim.installDir -}}
{{- fail "shim.readyDir: must differ from shim.installDir (the ready file's volume is mounted there)" -}}
{{- end -}}
{{- $vols := list "shim" -}}
{{- range $c := prepend .Values.sidecars .Values.app -}}
{{- if $c.notify -}}
{{- $vols = append $vols (include "shim.readyVolume" $c.name) -}}
{{- end -}}
{{- end -}}
{{- range .Values.volumes -}}
{{- if has .name $vols -}}
{{- fail (printf "volumes: the name %q is the chart's (shim, and shim-ready-<container> for each container with notify: true)" .name) -}}
{{- end -}}
{{- end -}}
{{- if and (eq .Values.kind "Job") .Values.sidecars (not $native) -}}
{{- fail "kind Job with sidecars needs native sidecars (Kubernetes >= 1.29, or a cluster with the SidecarContainers feature: set nativeSidecars=true); without them nothing stops the sidecars when the app finishes and the Job never completes" -}}
{{- end -}}
{{- $pod := dict -}}
{{- range $k := include "shim.podFields" . | fromJsonArray -}}
{{- $v := index $.Values $k -}}
{{- if include "shim.present" $v -}}
{{- $_ := set $pod $k $v -}}
{{- end -}}
{{- end -}}
{{- with .Values.podSecurityContext -}}
{{- $_ := set $pod "securityContext" . -}}
{{- end -}}
{{- with .Values.podResources -}}
{{- $_ := set $pod "resources" . -}}
{{- end -}}
{{- if eq .Values.kind "Job" }}
restartPolicy: {{ .Values.job.restartPolicy | default "Never" }}
{{- else }}
restartPolicy: Always
{{- end }}
# The shim must be PID 1 of each container: no shared process namespace.
shareProcessNamespace: false
terminationGracePeriodSeconds: {{ include "shim.terminationGracePeriodSeconds" . }}
{{- with $pod }}
{{- toYaml . | nindent 0 }}
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
  {{- with .Values.initContainers }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
  {{- if $native }}
  {{- range $i, $c := .Values.sidecars }}
  {{- include "shim.container" (dict "root" $ "c" $c "native" true "what" (printf "sidecars[%d]" $i)) | nindent 2 }}
  {{- end }}
  {{- end }}
containers:
  {{- include "shim.container" (dict "root" $ "c" .Values.app "native" false "what" "app") | nindent 2 }}
  {{- if not $native }}
  {{- range $i, $c := .Values.sidecars }}
  {{- include "shim.container" (dict "root" $ "c" $c "native" false "what" (printf "sidecars[%d]" $i)) | nindent 2 }}
  {{- end }}
  {{- end }}
volumes:
  - name: shim
    emptyDir: {}
  {{- range $c := prepend .Values.sidecars .Values.app }}
  {{- if $c.notify }}
  # {{ $c.name }}'s ready file (notify: true), in memory.
  - name: {{ include "shim.readyVolume" $c.name }}
    emptyDir:
      medium: Memory
      sizeLimit: 1Mi
  {{- end }}
  {{- end }}
  {{- with .Values.volumes }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
{{- end -}}
