#!/bin/busybox sh
# /init of flowtop's VM test guests (built by `cargo xtask vm-test`).
#
# Kernel command line (read from /proc/cmdline):
#   ft_families=a,b   probe families this kernel must support: run the scenarios
#   ft_absent=c       families it lacks: `flowtop --probe c` must fail cleanly (exit 1)
#   ft_auto=a         the family `--probe auto` must choose
#   ft_preempt=1|0    1: PREEMPT_DYNAMIC, the preemption check switches to full
#                     preemption; 0: it runs under the kernel's built-in preemption
#   ft_auto_exact=1|0 1: `--probe auto` must be exact in the preemption check
# Result lines all start with "VMTEST " (the host parses only those):
#   VMTEST <family> SCENARIO <name> PASS|FAIL expected=.. reported=..
#   VMTEST <family> EXIT rc=N            exit status of the scenario runner
#   VMTEST <family> SECONDS n            how long its scenarios took (informational)
#   VMTEST auto CHOSE <family>
#   VMTEST <family> ABSENT rc=N clean=yes|no msg=<first line of stderr>
#   VMTEST <family> COST ns_per_call=N runs=N run_ns=N   (informational, see measure_cost)
#   VMTEST <family> PREEMPT PASS|FAIL ...  (see preempt_check)
#   VMTEST CAPS eff=HEX prm=HEX bnd=HEX unpriv_bpf_disabled=N   (see caps_check)
#   VMTEST VERDICT success|failure       exactly once, last: the guest's own checks
#                                        (auto's choice, absent families, preemption);
#                                        the scenarios are judged by the host
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
# For the cgroup_filter scenario (it makes its cgroups below /, and SKIPs without a
# cgroup2 mount, which fails the cell); flowtop finds the mount in mountinfo.
mount -t cgroup2 cgroup2 /sys/fs/cgroup
ip link set lo up
# The scenarios' traffic goes to 127.0.0.1 and ::1; wait until ::1 is usable (DAD).
i=0; while ! ip -6 addr show dev lo | grep -q '::1' && [ $i -lt 50 ]; do sleep 0.1; i=$((i+1)); done

arg() { tr ' ' '\n' < /proc/cmdline | sed -n "s/^$1=//p" | tr ',' ' '; }
FAMILIES=$(arg ft_families)
ABSENT=$(arg ft_absent)
AUTO=$(arg ft_auto)
PREEMPT_DYNAMIC=$(arg ft_preempt)
AUTO_EXACT=$(arg ft_auto_exact)
ok=1
echo "VMTEST KERNEL $(uname -r) cpus=$(nproc)"

uptime_s() { cut -d. -f1 /proc/uptime; }

run_scenarios() { # $1: probe family (or auto)
    t0=$(uptime_s)
    flowtop-scenarios --flowtop /bin/flowtop --trafficgen /bin/trafficgen --probe "$1" --timeout 180 \
        > /tmp/scen.out 2>&1
    rc=$?
    sed -n "s/^\(SCENARIO .*\)/VMTEST $1 \1/p" /tmp/scen.out
    if [ $rc -ne 0 ]; then
        sed -n '/^SCENARIO /!s/^/VMTEST-LOG '"$1"' /p' /tmp/scen.out | tail -n 200
    fi
    echo "VMTEST $1 EXIT rc=$rc"
    echo "VMTEST $1 SECONDS $(( $(uptime_s) - t0 ))"
    # No `ok=0` here: the host judges the scenarios itself, and only it knows which
    # families may fail a scenario with the loss reported (exit 1) on this kernel.
}

# `flowtop --probe $1 -v --format json > $2 2> $3` in the background, once it counts
# (fpid: its PID).
# The files go first: a background job's redirections truncate them only once it
# runs, so a line left by the previous flowtop (or sink) could be read as this
# one's (seen: a cost measurement that read the last family's "counting" line and
# port, measured nothing and then waited for a sink nobody connected to).
start_flowtop() {
    rm -f "$3" # (never $2: it may be /dev/null)
    flowtop --probe "$1" -v --format json > "$2" 2> "$3" &
    fpid=$!
    i=0; while ! grep -qs "counting with probe family" "$3" && [ $i -lt 1800 ]; do sleep 0.1; i=$((i+1)); done
}
# Waits up to $2 seconds for process $1 to end, then kills it: nothing here may
# wait forever (a sink whose source never connected hung guests until the host's
# timeout).
wait_bounded() {
    i=0; while kill -0 "$1" 2>/dev/null && [ $i -lt $(($2 * 10)) ]; do sleep 0.1; i=$((i+1)); done
    kill -KILL "$1" 2>/dev/null
    wait "$1" 2>/dev/null
}
# A TCP sink on 127.0.0.1 for $1 connections, once it listens (spid: its PID,
# port: its port).
start_sink() {
    rm -f /tmp/sink.err
    trafficgen --conns "$1" tcp-sink 127.0.0.1 > /dev/null 2> /tmp/sink.err &
    spid=$!
    i=0; while ! grep -qs "port=" /tmp/sink.err && [ $i -lt 1200 ]; do sleep 0.1; i=$((i+1)); done
    port=$(sed -n 's/.*port=\([0-9]*\).*/\1/p' /tmp/sink.err | head -n 1)
}

# Per-call cost of a family's programs, from the kernel's BPF run-time statistics:
# 64-byte TCP sends over loopback (each one send and about one receive call), and
# the run time of every program flowtop holds (fdinfo run_time_ns / run_cnt),
# divided by the number of send calls. Emulated CPU, so only the order of the
# families on one kernel means anything; kprobe's trap cost is not in run_time_ns.
SENDS=20000
measure_cost() { # $1: probe family
    echo 1 > /proc/sys/kernel/bpf_stats_enabled
    start_flowtop "$1" /dev/null /tmp/cost.err
    start_sink 1
    trafficgen --chunk 64 tcp-source "127.0.0.1:$port" $((SENDS * 64)) > /dev/null 2>&1
    wait_bounded $spid 120
    # Each program once, by id (a second fd of one program would count it twice).
    cat /proc/$fpid/fdinfo/* 2>/dev/null | awk -v f="$1" -v sends=$SENDS '
        /^prog_id:/ { id = $2 }
        /^run_time_ns:/ { rt[id] = $2 } /^run_cnt:/ { rc[id] = $2 }
        END { for (p in rt) { t += rt[p]; c += rc[p] }
              if (c > 0) printf "VMTEST %s COST ns_per_call=%d runs=%d run_ns=%d\n", f, t / sends, c, t / c;
              else printf "VMTEST %s COST none\n", f }'
    # No program held: say why (flowtop's stderr).
    grep -qs "^prog_id:" /proc/$fpid/fdinfo/* || sed "s/^/VMTEST-LOG cost $1 /" /tmp/cost.err | tail -n 20
    kill -INT $fpid; wait_bounded $fpid 120
    echo 0 > /proc/sys/kernel/bpf_stats_enabled
}

# As distributions set it (Debian: 2, a later write of 1 makes it permanent): map
# reads then need CAP_BPF before 5.19, which caps_check expects flowtop to find.
echo 1 > /proc/sys/kernel/unprivileged_bpf_disabled 2>/dev/null

for fam in $FAMILIES; do
    run_scenarios "$fam"
done
for fam in $FAMILIES; do
    measure_cost "$fam"
done

# The capabilities flowtop keeps once attached (the scenarios above ran with them):
# the host expects none from 5.19 on, CAP_BPF alone before (with the sysctl set).
caps_check() {
    start_flowtop auto /dev/null /tmp/caps.err
    cap() { sed -n "s/^$1:[[:space:]]*//p" /proc/$fpid/status; }
    echo "VMTEST CAPS eff=$(cap CapEff) prm=$(cap CapPrm) bnd=$(cap CapBnd) unpriv_bpf_disabled=$(cat /proc/sys/kernel/unprivileged_bpf_disabled)"
    kill -INT $fpid; wait_bounded $fpid 120
}
caps_check

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

# Under full preemption (these PREEMPT_DYNAMIC kernels switch at run time) a fexit
# program preempted on a CPU makes the kernel skip it there until it resumes, and
# threads preempted inside the hooked functions can exhaust the kretprobes' return
# slots (and on 7.x tracepoint programs run preemptible too): families can miss
# calls. flowtop must never lose bytes silently: for each family, 16 threads send
# 64-byte writes under full preemption; the bytes must be exact, or flowtop must
# have warned at start that this kernel preempts kernel code (and, for fentry and
# tracepoint, reported skipped calls). `--probe auto` must be exact. Last, so
# nothing above runs preempted.
#   VMTEST <family> PREEMPT PASS|FAIL expected_tx=N reported_tx=N start_warning=N skipped_calls=N chose=F
PREEMPT_BYTES=6000000
preempt_check() { # $1: probe family
    start_flowtop "$1" /tmp/pre.out /tmp/pre.err
    start_sink 16
    trafficgen --chunk 64 threads "127.0.0.1:$port" $PREEMPT_BYTES 16 > /tmp/src.json 2> /dev/null
    wait_bounded $spid 300
    sleep 1.5
    kill -INT $fpid; wait_bounded $fpid 120
    src=$(sed -n 's/.*"pid":\([0-9]*\).*/\1/p' /tmp/src.json | head -n 1)
    expected=$(sed -n 's/.*"tx_bytes":\([0-9]*\).*/\1/p' /tmp/src.json | head -n 1)
    reported=$(grep "\"pid\":$src," /tmp/pre.out | sed -n 's/.*"tx_bytes":\([0-9]*\).*/\1/p' \
        | awk '{ s += $1 } END { print s + 0 }')
    warned=$(grep -c "warn: this kernel preempts kernel code" /tmp/pre.err)
    skipped=$(sed -n "s/.*skipped flowtop's programs for \([0-9]*\) socket calls.*/\1/p" /tmp/pre.err \
        | awk '{ s += $1 } END { print s + 0 }')
    chose=$(sed -n 's/.*attached probe family \([a-z]*\) .*/\1/p' /tmp/pre.err | head -n 1)
    # A family may lose bytes here only if flowtop said so (kprobe: at start;
    # fentry/tracepoint: at start and as skipped calls). `auto` is judged by the
    # family it chose, and must be exact where the kernel has an exact family
    # (ft_auto_exact=1).
    fam=$1; [ "$fam" = auto ] && fam=${chose:-none}
    verdict=FAIL
    if [ -n "$expected" ] && [ "$reported" = "$expected" ]; then
        verdict=PASS
    elif { [ "$1" != auto ] || [ "$AUTO_EXACT" != 1 ]; } && [ "$warned" -gt 0 ] \
        && { [ "$fam" = kprobe ] || [ "$skipped" -gt 0 ]; }; then
        verdict=PASS
    fi
    [ $verdict = PASS ] || ok=0
    echo "VMTEST $1 PREEMPT $verdict expected_tx=${expected:-none} reported_tx=$reported start_warning=$warned skipped_calls=$skipped chose=${chose:-none}"
}
# A kernel without PREEMPT_DYNAMIC (5.10) cannot switch: the same 16 threads then
# run under its built-in preemption, which still tests the kretprobes' return slots.
if [ "$PREEMPT_DYNAMIC" = 0 ]; then
    echo "VMTEST PREEMPT mode=built-in (no PREEMPT_DYNAMIC)"
    for fam in $FAMILIES auto; do
        preempt_check "$fam"
    done
elif grep -qs full /sys/kernel/debug/sched/preempt && echo full > /sys/kernel/debug/sched/preempt; then
    echo "VMTEST PREEMPT mode=$(cat /sys/kernel/debug/sched/preempt)"
    for fam in $FAMILIES auto; do
        preempt_check "$fam"
    done
else
    echo "VMTEST PREEMPT unavailable: $(cat /sys/kernel/debug/sched/preempt 2>&1)"
    ok=0
fi

if [ $ok -eq 1 ]; then echo "VMTEST VERDICT success"; else echo "VMTEST VERDICT failure"; fi
sync
poweroff -f
