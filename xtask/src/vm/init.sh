#!/bin/busybox sh
# /init of flowtop's VM test guests (built by `cargo xtask vm-test`).
#
# Kernel command line (read from /proc/cmdline):
#   ft_families=a,b   probe families this kernel must support: run the scenarios
#   ft_absent=c       families it lacks: `flowtop --probe c` must fail cleanly (exit 1)
#   ft_auto=a         the family `--probe auto` must choose
# Result lines all start with "VMTEST " (the host parses only those):
#   VMTEST <family> SCENARIO <name> PASS|FAIL expected=.. reported=..
#   VMTEST <family> EXIT rc=N            exit status of the scenario runner
#   VMTEST auto CHOSE <family>
#   VMTEST <family> ABSENT rc=N clean=yes|no msg=<first line of stderr>
#   VMTEST VERDICT success|failure       exactly once, last
/bin/busybox --install -s /bin
export PATH=/bin
mkdir -p /proc /sys /dev /tmp /run
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
mount -t bpf bpffs /sys/fs/bpf
mount -t tracefs tracefs /sys/kernel/tracing
mount -t debugfs debugfs /sys/kernel/debug
ip link set lo up
# The scenarios' traffic goes to 127.0.0.1 and ::1; wait until ::1 is usable (DAD).
i=0; while ! ip -6 addr show dev lo | grep -q '::1' && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done

arg() { tr ' ' '\n' < /proc/cmdline | sed -n "s/^$1=//p" | tr ',' ' '; }
FAMILIES=$(arg ft_families)
ABSENT=$(arg ft_absent)
AUTO=$(arg ft_auto)
ok=1
echo "VMTEST KERNEL $(uname -r) cpus=$(nproc)"

run_scenarios() { # $1: probe family (or auto)
    flowtop-scenarios --flowtop /bin/flowtop --trafficgen /bin/trafficgen --probe "$1" --timeout 180 \
        > /tmp/scen.out 2>&1
    rc=$?
    sed -n "s/^\(SCENARIO .*\)/VMTEST $1 \1/p" /tmp/scen.out
    if [ $rc -ne 0 ]; then
        sed -n '/^SCENARIO /!s/^/VMTEST-LOG '"$1"' /p' /tmp/scen.out | tail -n 40
    fi
    echo "VMTEST $1 EXIT rc=$rc"
    [ $rc -eq 0 ] || ok=0
}

for fam in $FAMILIES; do
    run_scenarios "$fam"
done

if [ -n "$AUTO" ]; then
    flowtop --probe auto -v --format json 1 1 > /dev/null 2> /tmp/auto.err
    chose=$(sed -n 's/.*attached probe family \([a-z]*\) .*/\1/p' /tmp/auto.err | head -n 1)
    echo "VMTEST auto CHOSE ${chose:-none}"
    sed 's/^/VMTEST-LOG auto /' /tmp/auto.err
    [ "$chose" = "$AUTO" ] || ok=0
    run_scenarios auto
fi

for fam in $ABSENT; do
    flowtop --probe "$fam" 1 1 > /tmp/absent.out 2> /tmp/absent.err
    rc=$?
    clean=yes
    # Clean: exit 1, a one-line message naming the family, no panic, nothing on stdout.
    if [ $rc -ne 1 ] || grep -q panicked /tmp/absent.err || [ -s /tmp/absent.out ] \
        || ! grep -q "$fam" /tmp/absent.err; then
        clean=no; ok=0
    fi
    echo "VMTEST $fam ABSENT rc=$rc clean=$clean msg=$(head -n 1 /tmp/absent.err)"
done

if [ $ok -eq 1 ]; then echo "VMTEST VERDICT success"; else echo "VMTEST VERDICT failure"; fi
sync
poweroff -f
