# shellcheck shell=bash
# tests/e2e/arp-spoof.sh: the end-to-end case "arp-spoof": ARP sent on the
# client segment that claims the real servers' addresses must change nothing.
# Sourced by tests/e2e/run.sh after scripts/lib.sh, scripts/topo.sh and
# scripts/case.sh, whose functions it reuses.
#
# Layer: system test. `arp_spoof_case_run NW` builds the NAT topology, starts
# fulcrum with NW workers (one rr service over rs1..rs3), pings the VIP and
# sends 3 requests (each real server answers one, so fulcrum knows all three
# RIPs on the inside port). Then, from the client namespace with the client's
# own MAC (tests/e2e/spoof_arp.py, scapy):
#   rs1  "who-has 10.0.0.1 tell 10.1.0.11"   ARP request to the outside DIP
#   rs2  "who-has 10.1.0.12 tell 10.1.0.12"  gratuitous ARP (broadcast)
#   rs3  "10.1.0.13 is-at <client MAC>"      unsolicited reply to the DIP
# once before and every 0.5 s during ARP_SPOOF_REQUESTS (default 30)
# sequential requests to the VIP. A director that believes any of them sends
# that real server's share of the requests to the client instead (rr: a
# third each), so the per-real-server table shows which kind got through.
#
# Checks (one CASE_FAILS reason each): every request is answered; each real
# server answered its rr share of the requests after the spoofing started
# and its access log agrees with the answers; fulcrum counts the spoofed ARP
# under the drop reason `arp_wrong_subnet` (looked up by name: a fulcrum
# without that reason fails here, saying so); no drop outside
# FC_BENIGN_DROPS and arp_wrong_subnet; fulcrum exits 0 on SIGTERM.
# Teardown always runs (case_cleanup).

# The DIP on the client segment (the director's MAC there is TOPO_MAC_OUT0).
ARP_SPOOF_DIP=10.0.0.1
# What spoof_arp.py sends for rs1, rs2, rs3 (in that order).
ARP_SPOOF_KINDS=("ARP request to the DIP" "gratuitous ARP" "unsolicited ARP reply")

arp_spoof_case_run() {
    local nw=$1 nreq=${ARP_SPOOF_REQUESTS:-30} spoof_pid ok failed n ip body_n logged share
    local count frames line
    # shellcheck disable=SC2034 # read by case_fail and case_finish (scripts/case.sh)
    CASE_FAILS=()
    case_setup "arp-spoof-${nw}w" nat || return 1
    fc_write_veth_config nat "$nw" "$RUN/fulcrum.ron"
    case_start_fulcrum "$RUN/fulcrum.ron" || return 1
    # The client learns the VIP (and fulcrum the client) before the spoofing.
    topo_x cl ping -c 2 -i 0.2 -W 1 "$TOPO_VIP" >"$RUN/ping.txt" 2>&1 ||
        case_fail "ping $TOPO_VIP from the client failed"
    sleep 0.3
    topo_curl_loop 3 "$RUN/before.txt"
    fc_say "before spoofing: $(sort "$RUN/before.txt" | paste -sd' ' -) (one request per real server)"
    [ "$(grep -c '^rs[1-3]$' "$RUN/before.txt")" = 3 ] ||
        case_fail "the 3 requests before the spoofing did not all succeed: $(paste -sd' ' - <"$RUN/before.txt")"

    # One round now (the case waits until it is on the wire), then more in
    # the background while the requests run.
    if ! topo_x cl "$PY" "$FC_ROOT/tests/e2e/spoof_arp.py" eth0 "$ARP_SPOOF_DIP" "$TOPO_MAC_OUT0" \
        "${TOPO_RS_IPS[@]}" >"$RUN/spoof.log" 2>&1; then
        case_fail "spoof_arp.py failed: $(tail -n 3 "$RUN/spoof.log" | paste -sd'|' -)"
    fi
    topo_x cl "$PY" "$FC_ROOT/tests/e2e/spoof_arp.py" eth0 "$ARP_SPOOF_DIP" "$TOPO_MAC_OUT0" \
        "${TOPO_RS_IPS[@]}" --rounds 60 --interval 0.5 >>"$RUN/spoof.log" 2>&1 &
    spoof_pid=$!
    sleep 0.2
    topo_curl_loop "$nreq" "$RUN/responses.txt"
    kill -TERM "$spoof_pid" 2>/dev/null
    wait "$spoof_pid" 2>/dev/null
    frames=$(($(grep -c '^round' "$RUN/spoof.log") * 3))
    fc_say "spoofed ARP: $frames frames sent from the client segment ($(head -n 1 "$RUN/spoof.log"))"

    ok=$(grep -c '^rs[1-3]$' "$RUN/responses.txt")
    failed=$((nreq - ok))
    fc_say "requests while spoofing: $nreq sent, $ok ok, $failed failed"
    [ "$failed" = 0 ] || case_fail "$failed of $nreq requests failed while the client segment spoofed ARP for the RIPs"
    fc_say ""
    printf '  %-14s %-28s %8s %12s\n' "real server" "spoofed by" "answers" "access log"
    share=$((nreq / 3))
    for n in 1 2 3; do
        ip=${TOPO_RS_IPS[$((n - 1))]}
        body_n=$(grep -c "^rs$n\$" "$RUN/responses.txt")
        # The access log also holds the one request from before the spoofing.
        logged=$(($(topo_access_count "$n") - 1))
        printf '  %-14s %-28s %8s %12s\n' "rs$n $ip" "${ARP_SPOOF_KINDS[$((n - 1))]}" "$body_n" "$logged"
        [ "$body_n" = "$logged" ] || case_fail "rs$n: $body_n answers but $logged access-log lines"
        if [ "$nw" = 1 ] && [ "$body_n" -lt "$share" ]; then
            case_fail "rs$n ($ip) answered $body_n of its $share rr requests: the spoofed ARP redirected it"
        fi
    done
    fc_say ""

    # The spoofs themselves are the expected drops here.
    if FC_BENIGN_DROPS=$FC_BENIGN_DROPS,arp_wrong_subnet case_read_stats; then
        if count=$("$PY" "$FC_ROOT/scripts/fcjson.py" value "$RUN/stats.json" drops.arp_wrong_subnet); then
            fc_say "arp_wrong_subnet = $count (spoofed frames sent: $frames)"
            [ "$count" -gt 0 ] 2>/dev/null ||
                case_fail "arp_wrong_subnet = $count after $frames spoofed ARP frames from the client segment (expected > 0)"
        else
            case_fail "fulcrum has no drop reason 'arp_wrong_subnet', so the spoofed ARP is not counted by name (${count#  reason: })"
        fi
        while IFS= read -r line; do
            case_fail "unexpected drops: $line"
        done < <(awk '$3 == "UNEXPECTED" {print $1 " = " $2}' "$RUN/drops.txt")
    fi

    case_finish
}
