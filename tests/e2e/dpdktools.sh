# shellcheck shell=bash
# tests/e2e/dpdktools.sh: the end-to-end case "dpdk-tools": DPDK's own
# tools against a running fulcrum. Sourced by tests/e2e/run.sh after
# scripts/lib.sh, scripts/topo.sh and scripts/case.sh.
#
# Layer: system test. fulcrum runs NAT on hugepages (DPDK multi-process
# needs EAL's memory in shared hugepage files) with the run's unique
# --file-prefix ($P), so Debian's secondary-process tools attach to it:
#   - fulcrum logs "packet capture available" at startup;
#   - `dpdk-dumpcap --file-prefix=$P -i net_af_packet0 -c 50` (through
#     scripts/dpdk-dumpcap.sh, which gives it fulcrum's driver set) captures
#     while a bounded curl loop (DPDK_TOOLS_REQUESTS, default 20) goes
#     through the VIP; every request is answered, dumpcap exits on its own
#     with 50 packets (up to one burst more: it checks -c per burst), and `tshark -r` reads the file and finds TCP from the
#     client to the VIP:80 in it;
#   - `dpdk-telemetry.py -f $P` (commands on stdin) lists /fulcrum/workers,
#     /fulcrum/services and /fulcrum/version next to DPDK's /ethdev/stats,
#     and /fulcrum/workers reports rx_pkts > 0 summed over the workers;
#   - `fulcrumctl --ports` lists both ports with their devices and the
#     outside port's rx_good_packets > 0;
#   - no drop outside FC_BENIGN_DROPS; fulcrum exits 0 on SIGTERM.
# Skipped (one "SKIP: no hugepages" line, counted as passed) only when
# scripts/hugepages.sh cannot get 256 free 2 MiB pages and a hugetlbfs.
# Teardown always runs (case_cleanup).

DPDK_TOOLS_REQUESTS=${DPDK_TOOLS_REQUESTS:-20}

dpdk_tools_case_run() {
    local nw=$1 cap_pid n_cap n_vip ok line _
    # shellcheck disable=SC2034 # read by case_fail and case_finish (scripts/case.sh)
    CASE_FAILS=()
    bash "$FC_ROOT/scripts/hugepages.sh" >/dev/null 2>&1
    local free
    free=$(awk '/^HugePages_Free:/ {print $2}' /proc/meminfo 2>/dev/null)
    if [ "${free:-0}" -lt 256 ] || ! grep -q ' hugetlbfs ' /proc/mounts; then
        fc_say "SKIP: no hugepages (${free:-0} x 2 MiB free; dpdk-dumpcap needs DPDK multi-process, which --no-huge cannot do)"
        return 0
    fi
    case_setup "dpdk-tools-${nw}w" nat || return 1
    if [ "${#FC_MEM_ARGS[@]}" != 0 ]; then
        case_fail "hugepages were allocated but fc_mem_choice chose ${FC_MEM_ARGS[*]}"
        case_cleanup
        return 1
    fi
    fc_write_veth_config nat "$nw" "$RUN/fulcrum.ron"
    case_start_fulcrum "$RUN/fulcrum.ron" || return 1
    if grep -q 'packet capture available' "$RUN/fulcrum.log"; then
        fc_say "fulcrum: $(grep -o 'packet capture available.*' "$RUN/fulcrum.log" | head -n 1)"
    else
        case_fail "fulcrum did not log 'packet capture available': $(grep -o 'packet capture unavailable.*' "$RUN/fulcrum.log" | head -n 1)"
    fi

    # dumpcap is a DPDK secondary process: it maps fulcrum's hugepages and
    # talks to it over /var/run/dpdk/$P/mp_socket (a path, so the network
    # namespace does not matter). scripts/dpdk-dumpcap.sh gives it only the
    # drivers fulcrum links (see there why that is needed).
    timeout 60 bash "$FC_ROOT/scripts/dpdk-dumpcap.sh" --file-prefix="$P" -i net_af_packet0 -w "$RUN/cap.pcapng" -c 50 \
        >"$RUN/dpdk-dumpcap.log" 2>&1 &
    cap_pid=$!
    for _ in $(seq 100); do
        grep -q "Packets captured" "$RUN/dpdk-dumpcap.log" && break
        kill -0 "$cap_pid" 2>/dev/null || break
        sleep 0.1
    done
    if ! grep -q "Packets captured" "$RUN/dpdk-dumpcap.log"; then
        case_fail "dpdk-dumpcap did not start capturing: $(tr '\n' ' ' <"$RUN/dpdk-dumpcap.log" | head -c 400)"
    fi

    topo_curl_loop "$DPDK_TOOLS_REQUESTS" "$RUN/responses.txt"
    ok=$(grep -c '^rs[1-3]$' "$RUN/responses.txt")
    fc_say "requests: $DPDK_TOOLS_REQUESTS sent, $ok ok"
    [ "$ok" = "$DPDK_TOOLS_REQUESTS" ] || case_fail "$((DPDK_TOOLS_REQUESTS - ok)) of $DPDK_TOOLS_REQUESTS requests failed with dpdk-dumpcap attached"

    # -c 50 makes dumpcap stop by itself; give it 10 s after the traffic.
    for _ in $(seq 100); do
        kill -0 "$cap_pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$cap_pid" 2>/dev/null; then
        kill -INT "$cap_pid" 2>/dev/null
        case_fail "dpdk-dumpcap -c 50 had not stopped 10 s after the traffic"
    fi
    wait "$cap_pid" 2>/dev/null
    fc_say "dpdk-dumpcap: $(tr '\n' ' ' <"$RUN/dpdk-dumpcap.log" | tr -s ' ' | head -c 300)"
    if [ -s "$RUN/cap.pcapng" ]; then
        n_cap=$(tshark -r "$RUN/cap.pcapng" 2>/dev/null | wc -l)
        n_vip=$(tshark -r "$RUN/cap.pcapng" -Y "ip.src==$TOPO_CLIENT && ip.dst==$TOPO_VIP && tcp.dstport==80" 2>/dev/null | wc -l)
        fc_say "tshark: $n_cap packets in cap.pcapng, $n_vip TCP client -> $TOPO_VIP:80"
        # dumpcap checks -c after each burst it dequeues, so it may write a
        # few more.
        [ "$n_cap" -ge 50 ] && [ "$n_cap" -le 82 ] ||
            case_fail "tshark read $n_cap packets from cap.pcapng, dumpcap -c 50 should have written 50 (+ at most one burst)"
        [ "$n_vip" -gt 0 ] || case_fail "no TCP from $TOPO_CLIENT to $TOPO_VIP:80 in the capture"
    else
        case_fail "dpdk-dumpcap wrote no capture file"
    fi

    # The telemetry status is republished every second.
    sleep 1.2
    printf '/\n/fulcrum/workers\n/fulcrum/services\n/fulcrum/version\n' |
        timeout 20 dpdk-telemetry.py -f "$P" >"$RUN/telemetry.txt" 2>&1
    if ! "$PY" - "$RUN/telemetry.txt" >"$RUN/telemetry-check.txt" 2>&1 <<'EOF'; then
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
assert len(lines) == 4, f"{len(lines)} JSON replies: {lines}"
cmds = lines[0]["/"]
for c in ("/fulcrum/workers", "/fulcrum/services", "/fulcrum/version", "/ethdev/stats"):
    assert c in cmds, f"{c} not listed by '/': {cmds}"
workers = lines[1]["/fulcrum/workers"]
rx = sum(w["rx_pkts"] for w in workers.values())
assert rx > 0, f"rx_pkts {rx}: {workers}"
svc = lines[2]["/fulcrum/services"]
assert svc["n_services"] == 1 and svc["conns"] > 0, svc
assert lines[3]["/fulcrum/version"]["version"], lines[3]
print(f"telemetry: {len(cmds)} commands listed, rx_pkts {rx} over {len(workers)} worker(s), "
      f"services conns {svc['conns']}, version {lines[3]['/fulcrum/version']['version']}")
EOF
        case_fail "dpdk-telemetry.py: $(tail -n 1 "$RUN/telemetry-check.txt") (output in $RUN/telemetry.txt)"
    fi
    cat "$RUN/telemetry-check.txt"

    fc_ctl --ports >"$RUN/ports.txt" 2>&1
    sed 's/^/  /' "$RUN/ports.txt" | head -n 12
    grep -Eq '^outside +net_af_packet0 ' "$RUN/ports.txt" || case_fail "fulcrumctl --ports does not list outside/net_af_packet0"
    grep -Eq '^inside +net_af_packet1 ' "$RUN/ports.txt" || case_fail "fulcrumctl --ports does not list inside/net_af_packet1"
    awk '/^outside xstats:/ {o = 1; next} /^[^ ]/ {o = 0} o && $1 == "rx_good_packets" && $2 > 0 {f = 1} END {exit !f}' \
        "$RUN/ports.txt" || case_fail "fulcrumctl --ports shows no rx_good_packets > 0 for outside"

    if case_read_stats; then
        while read -r line; do
            case_fail "unexpected drops: $line"
        done < <(awk '$3 == "UNEXPECTED" {print $1 " = " $2}' "$RUN/drops.txt")
    fi
    case_finish
}
