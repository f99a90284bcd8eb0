# shellcheck shell=bash
# tests/e2e/tun.sh: the end-to-end case "tun" (VS/TUN, IPIP and GUE).
# Sourced by tests/e2e/run.sh after scripts/lib.sh, scripts/topo.sh and
# scripts/case.sh.
#
# Layer: system test. `tun_case_run NW` runs two parts, IPIP then GUE, each
# on a fresh DR-style topology (the VIP on every real server's `lo` with
# arp_ignore=1/arp_announce=2, default route via the router, so replies go
# to the client without the director). This kernel has no ipip module, so
# each real server runs tests/e2e/tun_decap.py: IPIP from a raw socket
# (protocol 4) or GUE from UDP port TUN_GUE_PORT (6080), the inner packet
# written to a TUN device (fctun0) whose kernel delivers it to nginx.
# fulcrum forwards with `forwarding: "tun"` (GUE: `tun_type: "gue",
# tun_port: 6080` on every real server). Checks, per part (one CASE_FAILS
# reason each):
#   - E2E_REQUESTS (default 300) sequential requests, every one answered;
#   - rr spread and fulcrum's per-real-server conns equal the access logs
#     (scripts/fcjson.py e2e), no drop outside FC_BENIGN_DROPS;
#   - the decapsulators together took at least one tunnelled packet per
#     request of the part's kind, none malformed;
#   - a capture of the inside bridge holds tunnelled packets (IPIP:
#     `ip.proto == 4` with an inner TCP to the VIP; GUE: UDP to 6080 with
#     checksum 0), and tshark's expert info over it reports no warning or
#     error (malformed packets, bad checksums);
#   - `fulcrumctl -L -n` shows the real servers as "Tunnel";
#   - fulcrum exits 0 on SIGTERM.
# Teardown always runs (tun_cleanup, then case_cleanup).

TUN_GUE_PORT=6080
TUN_DECAP_PIDS=()
TUN_CAP_PID=

# tun_cleanup: stops this case's decapsulators and capture (by PID).
tun_cleanup() {
    local pid
    for pid in "${TUN_DECAP_PIDS[@]}" $TUN_CAP_PID; do
        kill -TERM "$pid" 2>/dev/null
    done
    # Disowned (no job notices): wait for them by polling, at most 2 s.
    local alive _
    for _ in $(seq 20); do
        alive=0
        for pid in "${TUN_DECAP_PIDS[@]}" $TUN_CAP_PID; do
            kill -0 "$pid" 2>/dev/null && alive=1
        done
        [ "$alive" = 0 ] && break
        sleep 0.1
    done
    TUN_DECAP_PIDS=()
    TUN_CAP_PID=
}

# tun_rs_setup KIND: on rs1..rs3, the TUN device fctun0 (up, no address,
# reverse-path filter off: the inner source is the client, routed via the
# router) and a decapsulator for KIND (ipip|gue) in the background.
tun_rs_setup() {
    local kind=$1 n gue=0
    [ "$kind" = gue ] && gue=$TUN_GUE_PORT
    for n in 1 2 3; do
        topo_x "rs$n" ip tuntap add dev fctun0 mode tun || return 1
        topo_x "rs$n" ip link set fctun0 up || return 1
        topo_x "rs$n" sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.default.rp_filter=0 \
            net.ipv4.conf.fctun0.rp_filter=0 net.ipv4.conf.eth0.rp_filter=0 || return 1
        ip netns exec "${P}rs$n" timeout 900 /usr/bin/python3 "$FC_ROOT/tests/e2e/tun_decap.py" \
            --tun fctun0 --vip "$TOPO_VIP" --gue-port "$gue" --stats "$RUN/decap-rs$n.json" \
            --lifetime 600 >"$RUN/decap-rs$n.log" 2>&1 &
        TUN_DECAP_PIDS+=($!)
        # Killed with its namespace at the end: no job notice for it.
        disown $!
    done
    sleep 0.5
}

# tun_decap_total KIND: the packets of KIND the three decapsulators
# delivered, and (second word) the malformed ones they refused.
tun_decap_total() {
    "$PY" - "$1" "$RUN"/decap-rs{1,2,3}.json <<'EOF'
import json, sys
kind, files = sys.argv[1], sys.argv[2:]
ok = bad = 0
for f in files:
    try:
        d = json.load(open(f))
    except (OSError, ValueError):
        continue
    ok += d.get(kind, 0)
    bad += d.get("bad", 0) + d.get("gue_bad_header", 0)
print(ok, bad)
EOF
}

# tun_part KIND NW NREQ: one part (ipip|gue) on its own topology.
tun_part() {
    local kind=$1 nw=$2 nreq=$3 rs_extra= ok failed n ip access=() logged reasons line \
        delivered bad tunnelled expert filter
    case_setup "tun-$kind-${nw}w" dr || return 1
    if ! tun_rs_setup "$kind" >"$RUN/tun-rs.log" 2>&1; then
        cat "$RUN/tun-rs.log"
        case_fail "$kind: real server TUN device or decapsulator setup failed"
        tun_cleanup
        case_cleanup
        return 1
    fi
    ip netns exec "${P}sw" timeout 900 dumpcap -q -i brin -w "$RUN/tun.pcapng" >"$RUN/dumpcap.log" 2>&1 &
    TUN_CAP_PID=$!
    disown $!
    sleep 1
    [ "$kind" = gue ] && rs_extra="tun_type: \"gue\", tun_port: $TUN_GUE_PORT,"
    fc_write_veth_config tun "$nw" "$RUN/fulcrum.ron" rr "" "" "$rs_extra"
    if ! case_start_fulcrum "$RUN/fulcrum.ron"; then
        tun_cleanup
        return 1
    fi
    sleep 0.3
    topo_curl_loop "$nreq" "$RUN/responses.txt"
    ok=$(grep -c '^rs[1-3]$' "$RUN/responses.txt")
    failed=$((nreq - ok))
    fc_say "$kind: requests: $nreq sent, $ok ok, $failed failed"
    [ "$failed" = 0 ] || case_fail "$kind: $failed of $nreq requests failed: $(grep '^FAIL' "$RUN/responses.txt" | sort | uniq -c | head -n 3 | tr -s ' ' | paste -sd, -)"

    fc_ctl -L -n >"$RUN/ctl-L-n.txt" 2>&1
    sed 's/^/  /' "$RUN/ctl-L-n.txt"
    [ "$(grep -c 'Tunnel' "$RUN/ctl-L-n.txt")" = 3 ] ||
        case_fail "$kind: fulcrumctl -L -n does not show the 3 real servers as Tunnel"
    if case_read_stats; then
        for n in 1 2 3; do
            ip=${TOPO_RS_IPS[$((n - 1))]}
            logged=$(topo_access_count "$n")
            access+=("$ip=$logged")
        done
        if ! reasons=$("$PY" "$FC_ROOT/scripts/fcjson.py" e2e "$RUN/stats.json" --total "$nreq" \
            --access "${access[@]}" --benign "$FC_BENIGN_DROPS"); then
            while IFS= read -r line; do
                case_fail "$kind: ${line#  reason: }"
            done <<<"$reasons"
        fi
    fi

    # Let the decapsulators write their counts, then stop them and the capture.
    sleep 1.2
    read -r delivered bad < <(tun_decap_total "$kind")
    fc_say "$kind: decapsulated $delivered packets, refused $bad"
    [ "${delivered:-0}" -ge "$nreq" ] || case_fail "$kind: decapsulators delivered ${delivered:-0} packets, expected >= $nreq"
    [ "${bad:-0}" = 0 ] || case_fail "$kind: decapsulators refused $bad malformed packets"
    tun_cleanup

    if [ "$kind" = gue ]; then
        # Wireshark has no GUE dissector: the tunnel shows as UDP to 6080.
        filter="udp.dstport == $TUN_GUE_PORT && ip.dst == 10.1.0.0/24 && udp.checksum == 0"
    else
        filter="ip.proto == 4 && ip.dst == 10.1.0.0/24 && ip.dst == $TOPO_VIP && tcp.dstport == 80"
    fi
    tunnelled=$(tshark -r "$RUN/tun.pcapng" -Y "$filter" 2>/dev/null | wc -l)
    fc_say "$kind: $tunnelled tunnelled packets on the inside bridge"
    [ "$tunnelled" -ge "$nreq" ] || case_fail "$kind: capture holds $tunnelled tunnelled packets, expected >= $nreq"
    tshark -o ip.check_checksum:TRUE -o tcp.check_checksum:TRUE -o udp.check_checksum:TRUE \
        -r "$RUN/tun.pcapng" -q -z expert,warn >"$RUN/tshark-expert.txt" 2>&1
    # `-z expert,warn` lists an "Errors (N)" / "Warns (N)" section, each
    # line a group (Malformed, Checksum, ...), when there are any.
    expert=$(grep -E -A 6 '^(Errors|Warns) \(' "$RUN/tshark-expert.txt" | grep -vE '^(=|-)|Frequency' | head -n 6)
    if [ -n "$expert" ]; then
        case_fail "$kind: tshark expert info: $(tr -s ' ' <<<"$expert" | paste -sd'|' -)"
    fi
    case_finish
}

# tun_case_run NW: the IPIP part, then the GUE part.
tun_case_run() {
    local nw=$1 nreq=${E2E_REQUESTS:-300} rc=0
    CASE_FAILS=()
    tun_part ipip "$nw" "$nreq" || rc=1
    tun_part gue "$nw" "$nreq" || rc=1
    [ "$rc" = 0 ] && [ "${#CASE_FAILS[@]}" = 0 ]
}
