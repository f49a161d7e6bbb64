# Stand-in for flowtop-scenarios (used only when the initramfs has no
# /bin/flowtop-scenarios): known bytes over loopback with busybox nc/httpd/wget,
# checked against flowtop --format json. Prints the same SCENARIO lines.
# Usage: sh /standin.sh FAMILY
fam=$1
fails=0; passes=0
SIZE=300007
head -c $SIZE /dev/urandom > /tmp/payload

start_flowtop() {
    flowtop --probe "$fam" --format json -v 1 > /tmp/ft.json 2> /tmp/ft.err &
    FT=$!
    i=0
    while ! grep -q 'counting with' /tmp/ft.err; do
        sleep 0.2; i=$((i+1))
        if [ $i -gt 300 ] || ! kill -0 $FT 2>/dev/null; then cat /tmp/ft.err; return 1; fi
    done
}
stop_flowtop() { sleep 1.5; kill -INT $FT; wait $FT; }
# bytes PID|COMM rx_bytes|tx_bytes: sum over the JSON rows of that pid (or comm)
bytes() {
    case $1 in
        [0-9]*) sel="\"pid\":$1," ;;
        *) sel="\"comm\":\"$1\"" ;;
    esac
    awk -v pid="$sel" -v key="\"$2\":" '
        index($0, pid) { i = index($0, key); if (i) { s = substr($0, i + length(key)); sum += s + 0 } }
        END { print sum + 0 }' /tmp/ft.json
}
check() { # name expected reported
    if [ "$2" = "$3" ]; then r=PASS; passes=$((passes+1)); else r=FAIL; fails=$((fails+1)); fi
    echo "SCENARIO $1 $r expected=$2 reported=$3"
}

tcp() { # name addr port
    start_flowtop || { check "$1" "$SIZE" start-failed; return; }
    nc -l -p "$3" > /tmp/recv & R=$!
    sleep 0.5
    nc "$2" "$3" < /tmp/payload & S=$!
    wait $S; wait $R
    stop_flowtop
    # busybox nc may stop before the whole file is through (it exits at stdin EOF):
    # ground truth is what the receiver wrote out, which the sender must have sent.
    got=$(wc -c < /tmp/recv)
    check "$1-tx" "$got" "$(bytes $S tx_bytes)"
    check "$1-rx" "$got" "$(bytes $R rx_bytes)"
}

tcp tcp4-nc 127.0.0.1 5001
tcp tcp6-nc ::1 5002

# sendfile: busybox httpd sends file bodies with sendfile(2); wget reads them.
mkdir -p /tmp/www && cp /tmp/payload /tmp/www/f
start_flowtop || check sendfile "$SIZE" start-failed
httpd -f -p 127.0.0.1:8080 -h /tmp/www & H=$!
sleep 0.5
wget -q -O /tmp/got http://127.0.0.1:8080/f & W=$!
wait $W
stop_flowtop
kill $H
# httpd serves each connection from a forked child: count by name.
htx=$(bytes httpd tx_bytes); wrx=$(bytes $W rx_bytes)
# Ground truth: what wget read; the body alone must be at least the file.
check sendfile-tx-equals-rx "$wrx" "$htx"
[ "$wrx" -ge "$SIZE" ] && check sendfile-body "$SIZE" "$SIZE" || check sendfile-body "$SIZE" "$wrx"

echo "$passes passed, $fails failed"
[ $fails -eq 0 ]
