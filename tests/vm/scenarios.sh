#!/bin/sh
# The scenarios of scripts/test-vm, run inside the VM by /init (busybox sh,
# the kernel's PID 1). The shim is /shim (static, this architecture's), the
# signal recorder /sigrec (tests/vm/sigrec.rs). One line per result:
#   VMTEST ok   NAME
#   VMTEST FAIL NAME: detail     (then VMTEST-LOG lines with what it saw)
# and last: VMTEST-END pass=N fail=M
. /vmtest.conf
PASS=0
FAIL=0
W=/tmp/vmtest
mkdir -p "$W"

ok() { PASS=$((PASS + 1)); echo "VMTEST ok   $*"; }
fail() { FAIL=$((FAIL + 1)); echo "VMTEST FAIL $*"; }
show() { for f in "$@"; do [ -f "$f" ] && sed "s|^|VMTEST-LOG $(basename "$f") |" "$f"; done; }
# verdict NAME DETAIL FILES...: ok when the last command succeeded.
verdict() {
  if [ "$RES" = 0 ]; then ok "$1"; else fail "$1: $2"; shift 2; show "$@"; fi
}
# line FILE STR...: some line of FILE holds every fixed string STR.
line() {
  f=$1
  shift
  cp "$f" "$W/.l" 2>/dev/null || return 1
  for s in "$@"; do
    grep -F -- "$s" "$W/.l" >"$W/.l2" || return 1
    mv "$W/.l2" "$W/.l"
  done
}
# count FILE STR...: how many lines of FILE hold every STR.
count() {
  f=$1
  shift
  cp "$f" "$W/.c"
  for s in "$@"; do
    grep -F -- "$s" "$W/.c" >"$W/.c2"
    mv "$W/.c2" "$W/.c"
  done
  wc -l <"$W/.c" | tr -d ' '
}
# ms: milliseconds since boot.
ms() {
  read -r up _ </proc/uptime
  echo $((${up%.*}${up#*.} * 10))
}
# wait_for FILE STR SECONDS: until FILE has a line holding STR.
wait_for() {
  _n=$(($3 * 20))
  while [ "$_n" -gt 0 ]; do
    grep -qF -- "$2" "$1" 2>/dev/null && return 0
    sleep 0.05
    _n=$((_n - 1))
  done
  return 1
}
# has_child PID: PID has a child (busybox here has no pgrep).
has_child() {
  for _s in /proc/[0-9]*/stat; do
    read -r _ _ _ _pp _ <"$_s" 2>/dev/null && [ "$_pp" = "$1" ] && return 0
  done
  return 1
}
# wait_child PID SECONDS: until PID has a child (the shim has spawned).
wait_child() {
  _n=$(($2 * 20))
  while [ "$_n" -gt 0 ]; do
    has_child "$1" && return 0
    sleep 0.05
    _n=$((_n - 1))
  done
  return 1
}
# fresh: no output of an earlier scenario left to be mistaken for this one's.
fresh() { rm -f "$W/o" "$W/e"; }
zombies() {
  z=0
  for s in /proc/[0-9]*/stat; do
    read -r _ _ st _ <"$s" 2>/dev/null && [ "$st" = Z ] && z=$((z + 1))
  done
  echo "$z"
}

echo "VMTEST-INFO $(/shim --version) on $(uname -m), pid $$"

# --- the version and the target it names
v=$(/shim --version 2>&1)
case "$v" in
  "shim "*"$TARGET)") RES=0 ;;
  *) RES=1 ;;
esac
verdict "version names $TARGET: $v" "got '$v'"

# --- exit codes
/shim -- sh -c 'exit 3' >"$W/o" 2>"$W/e"
rc=$?
line "$W/e" '"role":"main"' '"outcome":"failed"' '"code":3' &&
  line "$W/e" '"event":"shim_exit"' '"code":3,' && [ "$rc" = 3 ]
RES=$?
verdict "exit code 3 passed on (exit event failed, shim_exit 3)" "rc $rc" "$W/e"

/shim -e 3 -- sh -c 'exit 3' 2>"$W/e"
rc=$?
[ "$rc" = 0 ] && line "$W/e" '"outcome":"failed"' '"code":3'
RES=$?
verdict "--success-exit 3 makes 3 exit 0, the event keeps code 3" "rc $rc" "$W/e"

/shim -- /no/such/program 2>"$W/e"
rc=$?
[ "$rc" = 127 ] && line "$W/e" '"event":"spawn_failed"'
RES=$?
verdict "missing command: 127 and a spawn_failed event" "rc $rc" "$W/e"

/shim -- /tmp 2>"$W/e"
rc=$?
[ "$rc" = 126 ]
RES=$?
verdict "a directory as command: 126" "rc $rc" "$W/e"

/shim --no-such-option -- true 2>"$W/e"
rc=$?
[ "$rc" = 2 ] && ! grep -q '"event"' "$W/e"
RES=$?
verdict "usage error: 2, no event" "rc $rc" "$W/e"

# --- the crash event: SIGSEGV, nobody asked
/shim -- sh -c 'kill -SEGV $$' 2>"$W/e"
rc=$?
line "$W/e" '"role":"main"' '"outcome":"crashed"' '"intentional":false' '"signal":"SIGSEGV"' '"signo":11' &&
  line "$W/e" '"event":"shim_exit"' '"code":139' && [ "$rc" = 139 ]
RES=$?
verdict "SIGSEGV: outcome crashed, exit 139" "rc $rc" "$W/e"

# --- orphans, the shim as child subreaper (not PID 1)
/shim -- sh -c '
  sh -c "sleep 0.6 & echo \$! >'"$W"'/opid; sleep 0.6 & exit 0"
  sleep 0.2
  set -- $(cat /proc/$(cat '"$W"'/opid)/stat)
  echo "orphan-ppid=$4 shim=$PPID"
  sleep 0.8' >"$W/o" 2>"$W/e"
rc=$?
set -- $(sed -n 's/^orphan-ppid=\([0-9]*\) shim=\([0-9]*\)$/\1 \2/p' "$W/o")
[ "$rc" = 0 ] && [ -n "${1:-}" ] && [ "$1" = "$2" ] &&
  [ "$(count "$W/e" '"role":"orphan"' '"outcome":"exited"' '"comm":"sleep"')" = 2 ] &&
  line "$W/e" '"event":"shim_exit"' '"reaped":3'
RES=$?
verdict "subreaper: orphans re-parented to the shim (ppid $1 = shim $2), 2 reaped" "rc $rc" "$W/o" "$W/e"

# the same with --no-subreaper: they go to the real init, the shim reaps none
/shim --no-subreaper -- sh -c 'sh -c "sleep 0.3 & exit 0"; sleep 0.6' 2>"$W/e"
rc=$?
[ "$rc" = 0 ] && [ "$(count "$W/e" '"role":"orphan"')" = 0 ]
RES=$?
verdict "--no-subreaper: orphans go to PID 1, not to the shim" "rc $rc" "$W/e"

# --- orphans, the shim as PID 1 of a PID namespace
unshare -p -f -m --mount-proc /shim -- sh -c '
  echo "main pid=$$ ppid=$PPID"
  sh -c "sleep 0.6 & echo \$! >'"$W"'/opid; sleep 0.6 & sleep 0.6 & exit 0"
  sleep 0.2
  set -- $(cat /proc/$(cat '"$W"'/opid)/stat)
  echo "orphan-ppid=$4"
  sleep 0.8' >"$W/o" 2>"$W/e"
rc=$?
[ "$rc" = 0 ] && grep -qx 'main pid=2 ppid=1' "$W/o" && grep -qx 'orphan-ppid=1' "$W/o" &&
  [ "$(count "$W/e" '"role":"orphan"' '"outcome":"exited"')" = 3 ]
RES=$?
verdict "PID 1 of a namespace: orphans re-parented to the shim, 3 reaped" "rc $rc" "$W/o" "$W/e"
[ "$(zombies)" = 0 ]
RES=$?
verdict "no zombie left anywhere in the VM" "$(zombies) zombies"

# --- the grace kill: a child ignoring SIGTERM is SIGKILLed after --grace 1s
fresh
/shim --grace 1s -- sh -c 'trap "" TERM; echo ready; exec sleep 30' >"$W/o" 2>"$W/e" &
p=$!
wait_for "$W/o" ready 10
t0=$(ms)
kill -TERM "$p"
wait "$p"
rc=$?
el=$(($(ms) - t0))
[ "$rc" = 137 ] && [ "$el" -ge 950 ] && [ "$el" -lt 4000 ] &&
  line "$W/e" '"role":"main"' '"outcome":"killed"' '"intentional":true' '"signal":"SIGKILL"' '"stop_reason":"signal:SIGTERM"'
RES=$?
verdict "grace 1s: SIGTERM ignored, SIGKILL after ${el} ms, outcome killed, exit 137" "rc $rc, ${el} ms" "$W/e"

# --- a stop the app honours
fresh
/shim -- sh -c 'trap "exit 0" TERM; echo ready; while :; do sleep 0.1; done' >"$W/o" 2>"$W/e" &
p=$!
wait_for "$W/o" ready 10
kill -TERM "$p"
wait "$p"
rc=$?
[ "$rc" = 0 ] && line "$W/e" '"role":"main"' '"outcome":"stopped"' '"stop_reason":"signal:SIGTERM"'
RES=$?
verdict "SIGTERM forwarded, app exits 0: outcome stopped" "rc $rc" "$W/e"

# --- realtime and 32-34 forwarding: the app sees them, the shim survives
fresh
/shim -- /sigrec >"$W/o" 2>"$W/e" &
p=$!
wait_for "$W/o" 'sigrec ready' 10
for s in HUP USR1 USR2 WINCH 32 33 34 35 50 64; do kill -"$s" "$p"; done
wait_for "$W/o" 'sigrec got 64' 10
alive=no
kill -0 "$p" 2>/dev/null && alive=yes
kill -TERM "$p"
wait "$p"
rc=$?
got=$(sed -n 's/^sigrec got //p' "$W/o" | tr '\n' ' ')
[ "$alive" = yes ] && [ "$rc" = 0 ] && [ "$got" = "1 10 12 28 32 33 34 35 50 64 15 " ] &&
  line "$W/e" '"role":"main"' '"outcome":"stopped"' '"stop_reason":"signal:SIGTERM"'
RES=$?
verdict "forwarded HUP USR1 USR2 WINCH 32 33 34 35 50 64, app got: $got; shim alive" "alive $alive, rc $rc" "$W/o" "$W/e"

# --- the names of 32-34 and realtime signals in the events
for pair in 32:SIG32 33:SIG33 34:SIGRTMIN 35:SIGRTMIN+1 50:SIGRTMAX-14 64:SIGRTMAX; do
  sig=${pair%%:*}
  name=${pair#*:}
  fresh
  /shim -- sleep 30 2>"$W/e" &
  p=$!
  wait_child "$p" 10
  kill -"$sig" "$p"
  wait "$p"
  rc=$?
  [ "$rc" = $((128 + sig)) ] &&
    line "$W/e" '"role":"main"' '"outcome":"stopped"' "\"signal\":\"$name\"" "\"signo\":$sig," "\"stop_reason\":\"signal:$name\""
  RES=$?
  verdict "signal $sig forwarded, kills the app: event names it $name, exit $((128 + sig))" "rc $rc" "$W/e"
done

# --- an OOM kill in a memory cgroup of the real kernel (cgroup v2)
if [ -f /sys/fs/cgroup/cgroup.controllers ] && grep -qw memory /sys/fs/cgroup/cgroup.controllers; then
  echo +memory >/sys/fs/cgroup/cgroup.subtree_control 2>/dev/null
  mkdir -p /sys/fs/cgroup/vmtest-oom
  echo 32M >/sys/fs/cgroup/vmtest-oom/memory.max
  echo 0 >/sys/fs/cgroup/vmtest-oom/memory.swap.max 2>/dev/null
  # dd's 96 MiB buffer is more than the cgroup may have.
  oom_main() {
    sh -c 'echo $$ >/sys/fs/cgroup/vmtest-oom/cgroup.procs && exec /shim -- dd if=/dev/zero of=/dev/null bs=96M count=1' 2>"$W/e"
    rc=$?
  }
  oom_main
  # The OOM killer chooses its victim among every process of the cgroup, the
  # shim included: once in a while (under emulation) it is the shim. That is
  # the kernel's choice, not the shim's report: say so and look once more.
  if [ "$rc" = 137 ] && ! grep -q '"event"' "$W/e"; then
    echo "VMTEST-INFO the OOM killer took the shim itself this time (no event written); once more"
    oom_main
  fi
  [ "$rc" = 137 ] &&
    line "$W/e" '"role":"main"' '"outcome":"crashed"' '"signal":"SIGKILL"' '"oom_killed":true' &&
    line "$W/e" '"event":"oom_kill"' '"count":1' '"memory_max_kib":32768' &&
    line "$W/e" '"event":"shim_exit"' '"oom_kills":1'
  RES=$?
  verdict "OOM kill in a 32M cgroup: crashed by SIGKILL, oom_killed true, an oom_kill line, exit 137" "rc $rc" "$W/e"
  # A process the app reaps itself: the shim never reaps it, the line says so.
  fresh
  sh -c 'echo $$ >/sys/fs/cgroup/vmtest-oom/cgroup.procs && exec /shim -- sh -c "dd if=/dev/zero of=/dev/null bs=96M count=1; echo after=\$?"' >"$W/o" 2>"$W/e"
  rc=$?
  [ "$rc" = 0 ] && grep -q '^after=137' "$W/o" &&
    line "$W/e" '"event":"oom_kill"' '"count":1' &&
    line "$W/e" '"role":"main"' '"outcome":"exited"' '"oom_killed":false' &&
    line "$W/e" '"event":"shim_exit"' '"oom_kills":1'
  RES=$?
  verdict "OOM kill of a process the app reaps: an oom_kill line, the app exited, oom_kills 1" "rc $rc" "$W/o" "$W/e"
  # memory.oom.group (what the kubelet sets): the whole cgroup goes, the shim
  # with it; it must say nothing false on the way (no exit line that is not
  # an OOM kill's).
  mkdir -p /sys/fs/cgroup/vmtest-oomgroup
  echo 32M >/sys/fs/cgroup/vmtest-oomgroup/memory.max
  echo 0 >/sys/fs/cgroup/vmtest-oomgroup/memory.swap.max 2>/dev/null
  echo 1 >/sys/fs/cgroup/vmtest-oomgroup/memory.oom.group
  fresh
  sh -c 'echo $$ >/sys/fs/cgroup/vmtest-oomgroup/cgroup.procs && exec /shim -- sh -c "dd if=/dev/zero of=/dev/null bs=96M count=1; echo after"' >"$W/o" 2>"$W/e"
  rc=$?
  [ "$rc" = 137 ] && ! grep -q '^after' "$W/o" && ! grep -q '"oom_killed":false' "$W/e" &&
    ! grep -q '"event":"shim_exit"' "$W/e"
  RES=$?
  verdict "memory.oom.group: the shim is killed with the cgroup (exit 137) and writes nothing false" "rc $rc" "$W/o" "$W/e"
else
  fail "OOM kill: no cgroup v2 memory controller in this kernel"
fi

# --- shim install
mkdir -p "$W/inst"
(umask 077 && /shim install "$W/inst") 2>"$W/e"
rc=$?
[ "$rc" = 0 ] && [ "$(stat -c %a "$W/inst/shim")" = 755 ] && cmp -s /shim "$W/inst/shim" &&
  "$W/inst/shim" --version | grep -q '^shim '
RES=$?
verdict "install DIR: DIR/shim, mode 0755 under umask 077, same bytes, runs" "rc $rc" "$W/e"
cp /vmtest.conf "$W/victim"
ln -s "$W/victim" "$W/link"
/shim install "$W/link" 2>"$W/e"
rc=$?
[ "$rc" = 0 ] && [ ! -L "$W/link" ] && cmp -s /shim "$W/link" && cmp -s /vmtest.conf "$W/victim"
RES=$?
verdict "install over a symlink replaces the link, never follows it" "rc $rc" "$W/e"
/shim install "$W/no-such-dir/" 2>"$W/e"
rc=$?
[ "$rc" != 0 ] && [ ! -e "$W/no-such-dir" ]
RES=$?
verdict "install DEST/ that is no directory: refused" "rc $rc" "$W/e"

# --- shim probe (where this build has it)
/shim probe /vmtest.conf >"$W/o" 2>&1
a=$?
/shim probe /no/such/file >>"$W/o" 2>&1
b=$?
if grep -q 'cannot run probe' "$W/o"; then
  echo "VMTEST skip probe: this build has no 'shim probe' yet"
else
  [ "$a" = 0 ] && [ "$b" = 1 ] && [ ! -s "$W/o" ]
  RES=$?
  verdict "probe: 0 for a file, 1 for none, silent" "$a/$b" "$W/o"
fi

echo "VMTEST-END pass=$PASS fail=$FAIL"
