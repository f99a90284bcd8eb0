# shellcheck shell=bash
# tests/e2e/exception.sh: the end-to-end case "exception": the director's own
# kernel talks over the DPDK ports through fulcrum's TAP interfaces (the
# exception path). Sourced by tests/e2e/run.sh after scripts/lib.sh,
# scripts/topo.sh and scripts/case.sh, whose functions it reuses.
#
# Layer: system test. `exception_case_run NW` builds the NAT topology and
# starts fulcrum with NW workers and `exception_path: (rate_pps:
# EXC_RATE, burst: EXC_BURST)` (1000 and 100), in namespace ${P}dir, where
# the TAP interfaces fc-outside and fc-inside appear. Checks, one CASE_FAILS
# reason each:
#   - fc-outside/fc-inside exist in ${P}dir with the ports' MACs and DIPs;
#   - from ${P}dir: `ping -c 3 10.1.0.11` gets 3 replies and no duplicate;
#     `curl http://10.1.0.11/` returns rs1's body;
#   - an ssh-style bidirectional TCP session from ${P}dir to an echo server
#     in ${P}rs1: 1 MiB each way at once, sha256 of what came back equals
#     what was sent;
#   - a server listening on the outside DIP 10.0.0.1 in ${P}dir (python's
#     http.server) answers curl from the client namespace;
#   - a flood of EXC_FLOOD (20000) UDP datagrams from the client to
#     10.0.0.1: `exception_rate_limited` > 0, and the growth of
#     `exception_to_kernel` over the window between two counter reads
#     (W seconds, which holds the flood) is at most
#     NW x (EXC_RATE x W + EXC_BURST) + 50 (a token bucket cannot pass more
#     over any window; the 50 leaves room for the kernel's ARP replies and
#     the other checks' stray segments); while the flood runs and after it,
#     requests to the VIP all succeed;
#   - no drop outside FC_BENIGN_DROPS and exception_rate_limited; fulcrum
#     exits 0 on SIGTERM.
# Every server and loop is bounded in time (timeout); the teardown always
# runs (case_cleanup, wired to EXIT by run.sh).

EXC_RATE=1000
EXC_BURST=100
EXC_FLOOD=${EXC_FLOOD:-20000}

# exc_num FILE KEY: one counter from fulcrumctl JSON (scripts/fcjson.py value).
exc_num() {
    "$PY" "$FC_ROOT/scripts/fcjson.py" value "$1" "$2"
}

exception_case_run() {
    local nw=$1 got mac iface dip sent_sum back_sum body before after t0 t1 win n max limited
    local curl_pid line
    # shellcheck disable=SC2034 # read by case_fail and case_finish (scripts/case.sh)
    CASE_FAILS=()
    case_setup "exception-${nw}w" nat || return 1
    fc_write_veth_config nat "$nw" "$RUN/fulcrum.ron" rr "" \
        "exception_path: (rate_pps: $EXC_RATE, burst: $EXC_BURST),"
    case_start_fulcrum "$RUN/fulcrum.ron" || return 1
    grep 'kernel interface up' "$RUN/fulcrum.log" | sed 's/^/  log: /'

    # The kernel interfaces, as `ip addr` in the director's namespace shows them.
    topo_x dir ip -br addr show >"$RUN/ip-addr.txt" 2>&1
    topo_x dir ip -br link show >"$RUN/ip-link.txt" 2>&1
    sed 's/^/  ip addr: /' "$RUN/ip-addr.txt"
    for iface in "fc-outside 10.0.0.1/24 $TOPO_MAC_OUT0" "fc-inside 10.1.0.1/24 $TOPO_MAC_IN0"; do
        read -r iface dip mac <<<"$iface"
        grep -q "^$iface .* $dip" "$RUN/ip-addr.txt" ||
            case_fail "$iface does not hold $dip in ${P}dir: $(grep "^$iface " "$RUN/ip-addr.txt" || echo missing)"
        # A TAP's operstate reads UNKNOWN; its flags say whether it is up.
        grep -q "^$iface .* $mac <[A-Z_,]*,UP[,>]" "$RUN/ip-link.txt" ||
            case_fail "$iface is not up with the port's MAC $mac: $(grep "^$iface " "$RUN/ip-link.txt" || echo missing)"
    done

    # ICMP both ways: the kernel's echo requests leave on the inside port,
    # the replies come back to it.
    if topo_x dir timeout 10 ping -c 3 -i 0.2 -W 2 10.1.0.11 >"$RUN/ping-rs1.txt" 2>&1; then
        fc_say "ping from ${P}dir: $(grep -o '[0-9]* received' "$RUN/ping-rs1.txt")"
        ! grep -q 'DUP' "$RUN/ping-rs1.txt" || case_fail "ping 10.1.0.11 from ${P}dir got duplicate replies"
    else
        case_fail "ping -c 3 10.1.0.11 from ${P}dir failed: $(tail -n 2 "$RUN/ping-rs1.txt" | paste -sd'|' -)"
    fi

    # TCP: the kernel's own HTTP client to a real server.
    body=$(topo_x dir timeout 10 curl -s -m 5 http://10.1.0.11/ 2>&1)
    fc_say "curl http://10.1.0.11/ from ${P}dir: ${body:-<nothing>}"
    [ "$body" = rs1 ] || case_fail "curl http://10.1.0.11/ from ${P}dir returned '${body:0:80}', expected rs1"

    # An ssh-style session: both directions at once, 1 MiB each way.
    topo_x rs1 timeout 30 "$PY" -c '
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("10.1.0.11", 2222)); s.listen(1); s.settimeout(25)
c, _ = s.accept(); c.settimeout(20)
while True:
    b = c.recv(65536)
    if not b:
        break
    c.sendall(b)
c.close()' >"$RUN/echo-server.log" 2>&1 &
    sleep 0.5
    got=$(topo_x dir timeout 30 "$PY" -c '
import hashlib, os, socket, threading
data = os.urandom(1 << 20)
c = socket.create_connection(("10.1.0.11", 2222), timeout=10)
def send():
    c.sendall(data)
    c.shutdown(socket.SHUT_WR)
t = threading.Thread(target=send); t.start()
back = bytearray()
while True:
    b = c.recv(65536)
    if not b:
        break
    back += b
t.join()
print(hashlib.sha256(data).hexdigest(), hashlib.sha256(back).hexdigest(), len(back))' 2>"$RUN/echo-client.err")
    read -r sent_sum back_sum n <<<"$got"
    fc_say "echo session ${P}dir <-> rs1:2222: ${n:-0} bytes back, sha256 sent ${sent_sum:0:16}.. back ${back_sum:0:16}.."
    if [ -z "$sent_sum" ] || [ "$sent_sum" != "$back_sum" ] || [ "$n" != 1048576 ]; then
        case_fail "bidirectional TCP session to rs1:2222 lost data: ${n:-0} of 1048576 bytes back ($(head -c 200 "$RUN/echo-client.err"))"
    fi

    # A socket listening on the outside DIP, reached from the client.
    mkdir -p "$RUN/www"
    echo "director $P" >"$RUN/www/hello.txt"
    topo_x dir timeout 60 "$PY" -m http.server --bind 10.0.0.1 --directory "$RUN/www" 8080 \
        >"$RUN/http-server.log" 2>&1 &
    sleep 0.7
    body=$(topo_x cl timeout 10 curl -s -m 5 http://10.0.0.1:8080/hello.txt 2>&1)
    fc_say "curl http://10.0.0.1:8080/hello.txt from the client: ${body:-<nothing>}"
    [ "$body" = "director $P" ] ||
        case_fail "the server on 10.0.0.1:8080 in ${P}dir did not answer the client: '${body:0:80}'"

    # The flood: the workers hand the kernel at most the bucket's worth.
    case_read_stats >/dev/null || true
    cp "$RUN/stats.json" "$RUN/before-flood.json"
    t0=$(date +%s.%N)
    topo_curl_loop 5 "$RUN/during.txt" &
    curl_pid=$!
    topo_x cl timeout 30 "$PY" -c '
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
t = time.time()
for i in range(int(sys.argv[1])):
    try:
        s.sendto(b"x" * 64, ("10.0.0.1", 9999))
    except OSError:
        pass
print(f"{sys.argv[1]} datagrams in {time.time() - t:.2f} s")' "$EXC_FLOOD" >"$RUN/flood.txt" 2>&1
    wait "$curl_pid"
    fc_json "$RUN/after-flood.json" || case_fail "fulcrumctl --json after the flood failed"
    t1=$(date +%s.%N)
    fc_say "flood from the client: $(cat "$RUN/flood.txt")"
    before=$(exc_num "$RUN/before-flood.json" workers.exception_to_kernel)
    after=$(exc_num "$RUN/after-flood.json" workers.exception_to_kernel)
    limited=$(exc_num "$RUN/after-flood.json" drops.exception_rate_limited)
    win=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a + 1.2 }')
    max=$(awk -v w="$win" -v nw="$nw" -v r="$EXC_RATE" -v b="$EXC_BURST" 'BEGIN { printf "%d", nw * (r * w + b) + 50 }')
    fc_say "exception_to_kernel +$((after - before)) over ${win} s (at most $max), exception_rate_limited = $limited"
    [ "${limited:-0}" -gt 0 ] 2>/dev/null ||
        case_fail "exception_rate_limited = ${limited:-?} after $EXC_FLOOD datagrams to 10.0.0.1 (expected > 0)"
    [ $((after - before)) -le "$max" ] ||
        case_fail "exception_to_kernel grew by $((after - before)) in ${win} s, more than the limit allows ($max)"
    n=$(grep -c '^rs[1-3]$' "$RUN/during.txt")
    [ "$n" = 5 ] || case_fail "only $n of 5 requests to the VIP succeeded during the flood"
    topo_curl_loop 3 "$RUN/after.txt"
    n=$(grep -c '^rs[1-3]$' "$RUN/after.txt")
    [ "$n" = 3 ] || case_fail "only $n of 3 requests to the VIP succeeded after the flood"
    fc_say "requests to the VIP: $(grep -c '^rs' "$RUN/during.txt")/5 during the flood, $n/3 after"

    if FC_BENIGN_DROPS=$FC_BENIGN_DROPS,exception_rate_limited case_read_stats; then
        while IFS= read -r line; do
            case_fail "unexpected drops: $line"
        done < <(awk '$3 == "UNEXPECTED" {print $1 " = " $2}' "$RUN/drops.txt")
    fi
    case_finish
}
