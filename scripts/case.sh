# shellcheck shell=bash
# scripts/case.sh: one end-to-end run of fulcrum between network namespaces,
# shared by scripts/demo.sh and tests/e2e/run.sh. Sourced after lib.sh and
# topo.sh.
#
# Layer: test/ops tooling. `case_run MODE NW REQUESTS VERBOSE` builds the
# topology for MODE (nat|dr), starts fulcrum with NW workers (1|2) on
# net_af_packet, pings the VIP, sends REQUESTS sequential HTTP requests from
# the client, reads fulcrum's counters and the real servers' access logs,
# checks them, stops fulcrum and tears everything down.
#
# Guarantees: the teardown runs whatever happens (case_cleanup, also wired
# to EXIT/INT/TERM by the callers); results land in CASE_FAILS (one reason
# per failed check, empty = pass) and the run's files stay in $RUN.
# Checks: ping VIP succeeds; every request answered 200 by some rsN; each
# real server's access log holds REQUESTS/3 ± 5; fulcrum's per-real-server
# conns equal the access-log counts exactly and the service's conns equal
# REQUESTS; no drop reason outside FC_BENIGN_DROPS is non-zero; fulcrum exits
# 0 on SIGTERM; with FC_CAPTURE=1, tshark finds no bad checksum on the wire.

# case_cleanup: stop fulcrum, stop nginx, delete namespaces, DPDK files.
case_cleanup() {
    fc_stop
    topo_down
    fc_dpdk_cleanup
}

# case_fail REASON: records a failed check.
case_fail() {
    CASE_FAILS+=("$1")
    [ "${CASE_VERBOSE:-0}" = 1 ] && fc_say "  FAIL: $1"
}

# case_wire_check NREQ: stops the capture and has tshark validate every IP
# and TCP checksum on the wire (what fulcrum rewrote included). Prints how
# many client SYNs the capture holds, so an empty capture is visible.
case_wire_check() {
    local bad syns
    kill -TERM "$CASE_CAP_PID" 2>/dev/null
    wait "$CASE_CAP_PID" 2>/dev/null
    CASE_CAP_PID=
    if [ ! -s "$RUN/wire.pcapng" ]; then
        case_fail "wire capture is empty ($(head -c 200 "$RUN/dumpcap.log"))"
        return
    fi
    # 0xffff stored where 0x0000 is computed is the same ones'-complement
    # zero (RFC 1624 §3; Linux senders emit it): tshark calls it bad, TCP
    # receivers accept it, so it is not counted.
    bad=$(tshark -o ip.check_checksum:TRUE -o tcp.check_checksum:TRUE -r "$RUN/wire.pcapng" \
        -Y 'ip.checksum.status=="Bad" || (tcp.checksum.status=="Bad" && !(tcp.checksum==0xffff && tcp.checksum_calculated==0x0000))' 2>/dev/null)
    syns=$(tshark -r "$RUN/wire.pcapng" -Y "ip.src==$TOPO_CLIENT && tcp.flags.syn==1 && tcp.flags.ack==0" 2>/dev/null | wc -l)
    fc_say "wire capture: $syns client SYNs seen on the bridges (>= $1 expected), $(grep -c . <<<"$bad") bad checksums"
    [ -z "$bad" ] || case_fail "bad IP/TCP checksums on the wire: $(head -n 3 <<<"$bad" | tr -s ' ' | paste -sd'|' -)"
}

# case_setup NAME MODE: a fresh run prefix P and run directory RUN (named
# after NAME), the memory choice, and the topology for MODE (nat|dr). On a
# topology failure records it, tears down and fails.
case_setup() {
    fc_new_prefix
    fc_new_run_dir "$1"
    fc_say "run prefix $P, files in $RUN"
    fc_mem_choice
    if ! topo_up "$2" >"$RUN/topo.log" 2>&1; then
        cat "$RUN/topo.log"
        case_fail "topology setup failed (see $RUN/topo.log)"
        case_cleanup
        return 1
    fi
}

# case_start_fulcrum CONFIG: starts fulcrum with CONFIG in the director
# namespace and waits for its admin socket; on failure records it, tears
# down and fails.
case_start_fulcrum() {
    fc_start "${P}dir" "$1"
    if ! fc_wait_ready 20; then
        case_fail "fulcrum did not become ready (see $RUN/fulcrum.log)"
        case_cleanup
        return 1
    fi
}

# case_read_stats: gives the counters time to be published (about every
# millisecond), writes `fulcrumctl --json -L -n` to $RUN/stats.json and
# prints the per-worker table and the non-zero drops (also kept in
# $RUN/drops.txt, one `reason count benign|UNEXPECTED` line each). Records a
# failure and fails if fulcrumctl does.
case_read_stats() {
    sleep 1.2
    if ! fc_json "$RUN/stats.json"; then
        case_fail "fulcrumctl --json -L -n failed: $(head -c 300 "$RUN/stats.json.err")"
        return 1
    fi
    fc_say "--- workers"
    "$PY" "$FC_ROOT/scripts/fcjson.py" workers "$RUN/stats.json"
    fc_say "--- drops (all workers, non-zero)"
    "$PY" "$FC_ROOT/scripts/fcjson.py" drops "$RUN/stats.json" --benign "$FC_BENIGN_DROPS" | tee "$RUN/drops.txt"
}

# case_finish: stops fulcrum (a non-zero exit status on SIGTERM is a
# failure, with its log), tears everything down, and succeeds iff no check
# failed.
case_finish() {
    fc_stop
    if [ "$FC_STATUS" != 0 ]; then
        case_fail "fulcrum exited with status $FC_STATUS on SIGTERM (expected 0)"
        fc_show_log
    fi
    case_cleanup
    [ "${#CASE_FAILS[@]}" = 0 ]
}

# case_hr TITLE: a header line for people.
case_hr() {
    fc_say "=========================================================================="
    fc_say " $*"
    fc_say "=========================================================================="
}

case_run() {
    local mode=$1 nw=$2 nreq=$3 CASE_VERBOSE=$4 t0 n ok failed logged body_n conns ip stats line
    CASE_FAILS=()
    case_setup "$mode-${nw}w" "$mode" || return 1
    CASE_CAP_PID=
    if [ "${FC_CAPTURE:-0}" = 1 ]; then
        # Wire capture on both bridges: checked for bad checksums below and
        # kept for post-mortems. `ip netns exec` execs, so $! is dumpcap.
        ip netns exec "${P}sw" dumpcap -q -i brout -i brin -w "$RUN/wire.pcapng" >"$RUN/dumpcap.log" 2>&1 &
        CASE_CAP_PID=$!
        sleep 1
    fi

    fc_write_veth_config "$mode" "$nw" "$RUN/fulcrum.ron"
    case_start_fulcrum "$RUN/fulcrum.ron" || return 1

    # Warm-up and first check: the director answers ICMP echo for the VIP.
    if topo_x cl ping -c 3 -i 0.2 -W 1 "$TOPO_VIP" >"$RUN/ping.txt" 2>&1; then
        fc_say "ping VIP $TOPO_VIP: ok ($(grep -o '[0-9]* received' "$RUN/ping.txt") of 3)"
    else
        cat "$RUN/ping.txt"
        case_fail "ping $TOPO_VIP from the client failed"
    fi
    # No warm-up for the real servers: fulcrum resolves their MACs itself
    # when it adopts the config (worker 0 ARPs for every real server and
    # gateway). A first SYN that found no MAC would show up below as a
    # neigh_unresolved drop, which is not on the benign list.
    sleep 0.3

    t0=$(date +%s.%N)
    topo_curl_loop "$nreq" "$RUN/responses.txt"
    ok=$(grep -c '^rs[1-3]$' "$RUN/responses.txt")
    failed=$((nreq - ok))
    fc_say "requests: $nreq sent, $ok ok, $failed failed ($(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}') s)"
    if [ "$failed" != 0 ]; then
        # e.g. "curl exit 7 x20" (7 = connection refused, 28 = timeout).
        case_fail "$failed of $nreq requests failed: $(grep '^FAIL' "$RUN/responses.txt" | sort | uniq -c |
            awk '{printf "%scurl exit %s x%d", (NR > 1 ? ", " : ""), $3, $1}')"
    fi

    # The DIP answers ICMP echo too (asked after the traffic, so that it
    # cannot have taught the director the real servers' MACs).
    for n in 1 2 3; do
        if ! topo_x "rs$n" ping -c 1 -W 2 10.1.0.1 >"$RUN/ping-rs$n.txt" 2>&1; then
            case_fail "ping DIP 10.1.0.1 from rs$n failed"
        fi
    done
    [ "$CASE_VERBOSE" = 1 ] && fc_say "ping DIP 10.1.0.1 from rs1..rs3: ok"

    # Counters are published about every millisecond; give them time.
    sleep 1.2
    if ! fc_json "$RUN/stats.json"; then
        case_fail "fulcrumctl --json -L -n failed: $(head -c 300 "$RUN/stats.json.err")"
    else
        fc_ctl -L -n >"$RUN/ctl-L-n.txt" 2>&1
        fc_ctl -L -n --stats >"$RUN/ctl-L-n-stats.txt" 2>&1
        stats=$RUN/stats.json
    fi

    # Per real server: bodies, access log, fulcrum's conns.
    local access=()
    fc_say ""
    printf '  %-14s %14s %12s %14s\n' "real server" "answers(body)" "access log" "fulcrum conns"
    for n in 1 2 3; do
        ip=${TOPO_RS_IPS[$((n - 1))]}
        body_n=$(grep -c "^rs$n\$" "$RUN/responses.txt")
        logged=$(topo_access_count "$n")
        conns="?"
        [ -n "${stats:-}" ] && conns=$("$PY" "$FC_ROOT/scripts/fcjson.py" real "$stats" "$ip" conns 2>/dev/null | grep -E '^[0-9]+$' || echo "?")
        printf '  %-14s %14s %12s %14s\n' "rs$n $ip" "$body_n" "$logged" "$conns"
        access+=("$ip=$logged")
        [ "$body_n" = "$logged" ] || case_fail "rs$n: $body_n response bodies but $logged access-log lines"
    done
    fc_say ""

    if [ -n "${stats:-}" ]; then
        if [ "$CASE_VERBOSE" = 1 ]; then
            fc_say "--- fulcrumctl -L -n"
            sed 's/^/  /' "$RUN/ctl-L-n.txt"
            fc_say "--- fulcrumctl -L -n --stats"
            sed 's/^/  /' "$RUN/ctl-L-n-stats.txt"
        fi
        fc_say "--- workers"
        "$PY" "$FC_ROOT/scripts/fcjson.py" workers "$stats"
        fc_say "--- drops (all workers, non-zero)"
        "$PY" "$FC_ROOT/scripts/fcjson.py" drops "$stats" --benign "$FC_BENIGN_DROPS"
        if [ "$nw" = 2 ] && [ "$mode" = nat ]; then
            fc_say "redirects between workers: out=$("$PY" "$FC_ROOT/scripts/fcjson.py" value "$stats" workers.redirects_out) in=$("$PY" "$FC_ROOT/scripts/fcjson.py" value "$stats" workers.redirects_in) (informational)"
        fi
        local reasons
        if ! reasons=$("$PY" "$FC_ROOT/scripts/fcjson.py" e2e "$stats" --total "$nreq" \
            --access "${access[@]}" --benign "$FC_BENIGN_DROPS"); then
            while IFS= read -r line; do
                case_fail "${line#  reason: }"
            done <<<"$reasons"
        fi
    fi

    fc_stop
    if [ "$FC_STATUS" != 0 ]; then
        case_fail "fulcrum exited with status $FC_STATUS on SIGTERM (expected 0)"
        fc_show_log
    fi
    [ -n "$CASE_CAP_PID" ] && case_wire_check "$nreq"
    case_cleanup
    [ "${#CASE_FAILS[@]}" = 0 ]
}
