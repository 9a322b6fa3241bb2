#!/bin/busybox sh
# The app of scripts/test-vm's second boot, where the shim itself is the
# kernel's init: rdinit=/shim ... SHIM_GRACE=1s -- /bin/busybox sh /pid1.sh
# Nothing ran before the shim, so this script mounts /proc and the rest.
# It checks from inside that the shim is PID 1 and reaps the orphans the
# kernel hands it, then sends SIGTERM to PID 1: the shim forwards it to this
# script's group, the trap exits 7, the shim exits 7, and the kernel panics
# with "Attempted to kill init! exitcode=0x00000700", which the host reads.
/bin/busybox --install -s /bin
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
PASS=0
FAIL=0
ok() { PASS=$((PASS + 1)); echo "VMTEST ok   $*"; }
fail() { FAIL=$((FAIL + 1)); echo "VMTEST FAIL $*"; }

echo "VMTEST-BEGIN pid1 kernel=$(uname -r) machine=$(uname -m)"
comm1=$(cat /proc/1/comm)
if [ "$PPID" = 1 ] && [ "$comm1" = shim ]; then
  ok "the shim is the kernel's init (PID 1, comm $comm1), this script its child"
else
  fail "PID 1 is '$comm1', this script's parent $PPID"
fi
if [ "$SHIM_GRACE" = 1s ]; then
  ok "the kernel passed SHIM_GRACE=1s through the shim's environment"
else
  fail "SHIM_GRACE is '$SHIM_GRACE'"
fi

# Orphans: the intermediate shell exits at once, its three children are the
# kernel's to re-parent, to PID 1.
sh -c 'sleep 0.5 & echo $! >/tmp/opid; sleep 0.5 & sleep 0.5 & exit 0'
sleep 0.2
set -- $(cat /proc/"$(cat /tmp/opid)"/stat)
if [ "$4" = 1 ]; then ok "orphans re-parented to the shim (ppid 1)"; else fail "orphan's ppid is $4"; fi
sleep 1
z=0
for s in /proc/[0-9]*/stat; do
  read -r _ _ st _ <"$s" 2>/dev/null && [ "$st" = Z ] && z=$((z + 1))
done
if [ "$z" = 0 ]; then ok "no zombie left: the shim reaped them"; else fail "$z zombies"; fi
echo "VMTEST-END pass=$PASS fail=$FAIL"

# A stop request to PID 1 itself: forwarded to this group, the trap exits 7.
trap 'echo "VMTEST-PID1-TRAP SIGTERM reached the app"; exit 7' TERM
kill -TERM 1
sleep 10 &
wait
echo "VMTEST-PID1-NOTRAP"
exit 1
