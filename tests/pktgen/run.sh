#!/usr/bin/env bash
# tests/pktgen/run.sh: fulcrum-pktgen end to end, checked by independent tools.
#
# Layer: system test, no network namespaces, loopback DPDK vdevs only.
# Steps, each one a counted check:
#   1. every shipped pktgen scenario is written to a pcap (fulcrum-pktgen
#      --pcap); capinfos counts the frames; check.py (struct + scapy) checks
#      counts, flags, sequence numbers, tuples and checksums per scenario;
#   2. the three bench scenarios still load through fulcrum-mkpcap with
#      their frame counts (benches/pipeline.sh relies on them);
#   3. a bad scenario is refused with one `file:line:col: ...` line;
#   4. DPDK, net_ring loopback (--tx-port = --rx-port): every packet sent
#      comes back, and the latency histogram holds exactly one sample per
#      stamped packet (no latency values are asserted);
#   5. DPDK, net_pcap tx_pcap: the frames as stamped at TX are captured and
#      check.py verifies stamps (consecutive sequence numbers) and that the
#      incremental checksum updates left every checksum valid;
#   6. DPDK, net_null, rate-limited, time-bounded: the run ends and sends.
# Prints `pktgen: N passed, M failed`; exits 1 if any check failed. Takes
# about 40 s (most of it Python reading 3 M frames of nat-1m-flows).

set -uo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
HERE=$ROOT/tests/pktgen
# shellcheck source=scripts/lib.sh
. "$ROOT/scripts/lib.sh"

fc_need_root || exit 1
PG=$FC_BIN_DIR/fulcrum-pktgen
MK=$FC_BIN_DIR/fulcrum-mkpcap
for b in "$PG" "$MK"; do
    if [ ! -x "$b" ]; then
        fc_err "missing binary ${b#"$ROOT"/}: run 'cargo build --release -p fulcrum-benches --bins' first"
        exit 1
    fi
done
PASS=0
FAIL=0
ok() { PASS=$((PASS + 1)); fc_say "  ok    $*"; }
bad() { FAIL=$((FAIL + 1)); fc_say "  FAIL  $*"; }
# shellcheck disable=SC2329 # called by the EXIT trap
cleanup() {
    rm -f "$RUN"/*.pcap
    fc_dpdk_cleanup
}
fc_new_prefix
fc_new_run_dir pktgen
trap cleanup EXIT
EAL_BASE="--no-huge -m 256 --no-pci --no-shconf -l 0 --log-level=lib.eal:error"

# json FILE EXPR: evaluates a Python expression over the JSON object `j`.
json() { "$PY" -c "import json,sys; j=json.load(open(sys.argv[1])); print($2)" "$1"; }

fc_say "-- 1. shipped scenarios -> pcap -> capinfos + check.py"
for n in syn-flood imix elephant nat-1m-flows icmp-errors malformed; do
    pcap=$RUN/$n.pcap
    if ! out=$(timeout 60 "$PG" --scenario "$ROOT/pktgen-scenarios/$n.ron" --pcap "$pcap" 2>&1); then
        bad "$n: fulcrum-pktgen --pcap failed: $out"
        continue
    fi
    frames=$(sed -n 's/^frames: //p' <<<"$out")
    counted=$(capinfos -M -c -T "$pcap" 2>/dev/null | awk -F'\t' 'NR==2 {print $2}')
    if [ -n "$frames" ] && [ "$frames" = "$counted" ]; then
        ok "$n: capinfos counts $counted frames, as printed"
    else
        bad "$n: printed frames '$frames', capinfos counts '$counted'"
    fi
    if timeout 120 "$PY" "$HERE/check.py" "$n" "$pcap" >"$RUN/check-$n.txt" 2>&1; then
        ok "$n: check.py ($(grep -c '^  ok' "$RUN/check-$n.txt") checks)"
    else
        bad "$n: check.py:"
        grep -v '^  ok' "$RUN/check-$n.txt" | sed 's/^/        /'
    fi
    rm -f "$pcap"
done

fc_say "-- 2. bench scenarios through fulcrum-mkpcap"
for pair in nat-established-1k:32000 nat-established-100k:200000 nat-syn-new:200000; do
    n=${pair%%:*}
    want=${pair#*:}
    got=$("$MK" "$ROOT/pktgen-scenarios/$n.ron" "$RUN/$n.pcap" 2>&1 | sed -n 's/^frames: //p')
    if [ "$got" = "$want" ]; then ok "$n: $got frames"; else bad "$n: '$got' frames, want $want"; fi
    rm -f "$RUN/$n.pcap"
done

fc_say "-- 3. a bad scenario is refused with file:line:col"
printf '(\n    flows: 10,\n    size: Fixed(9000),\n)\n' >"$RUN/bad.ron"
msg=$("$PG" --scenario "$RUN/bad.ron" --pcap "$RUN/bad.pcap" 2>&1)
rc=$?
if [ $rc = 1 ] && [ "$msg" = "fulcrum-pktgen: $RUN/bad.ron:3:5: frame size 9000 outside 64..=1518 (bytes on the wire, FCS included)" ] && [ ! -e "$RUN/bad.pcap" ]; then
    ok "refused: ${msg#*: }"
else
    bad "bad scenario: rc $rc, message: $msg"
fi

fc_say "-- 4. DPDK net_ring loopback: TX = RX, one latency sample per stamped packet"
cat >"$RUN/udp.ron" <<'EOF'
// 20000 UDP datagrams of 128 bytes over 100 flows: every frame is stamped.
(flows: 100, mix: (udp: 1), size: Fixed(128), data_segments: 8, duration: Packets(20000))
EOF
if timeout 60 "$PG" --scenario "$RUN/udp.ron" --json \
    --eal "$EAL_BASE --file-prefix=${P}r --vdev=net_ring0" \
    --tx-port net_ring0 --rx-port net_ring0 >"$RUN/ring.json" 2>"$RUN/ring.err"; then
    r=$(json "$RUN/ring.json" '"%d %d %d %d" % (j["tx_pkts"], j["rx_pkts"], j["tx_stamped"], (j["latency"] or {}).get("samples", -1))')
    if [ "$r" = "20000 20000 20000 20000" ]; then
        ok "net_ring: tx 20000, rx 20000, 20000 stamped, histogram of 20000 samples"
    else
        bad "net_ring: tx rx stamped samples = $r, want 20000 x 4"
    fi
    if [ "$(json "$RUN/ring.json" 'all(j["latency"][k] >= 0 for k in ("p50_us", "p90_us", "p99_us", "p999_us", "max_us"))')" = True ]; then
        ok "net_ring: p50/p90/p99/p99.9/max reported"
    else
        bad "net_ring: latency percentiles missing: $(cat "$RUN/ring.json")"
    fi
else
    bad "net_ring run failed: $(tail -3 "$RUN/ring.err")"
fi

fc_say "-- 5. DPDK net_pcap: frames as stamped at TX keep valid checksums"
if timeout 60 "$PG" --scenario "$RUN/udp.ron" --packets 3000 --json \
    --eal "$EAL_BASE --file-prefix=${P}p --vdev=net_pcap0,tx_pcap=$RUN/tx.pcap" \
    --tx-port net_pcap0 >"$RUN/pcap.json" 2>"$RUN/pcap.err"; then
    if [ "$(json "$RUN/pcap.json" 'j["tx_pkts"]')" = 3000 ] &&
        timeout 60 "$PY" "$HERE/check.py" stamped "$RUN/tx.pcap" >"$RUN/check-stamped.txt" 2>&1; then
        ok "net_pcap: 3000 frames sent, stamped 0..2999, checksums valid"
    else
        bad "net_pcap: $(cat "$RUN/pcap.json") $(grep -v '^  ok' "$RUN/check-stamped.txt" 2>/dev/null)"
    fi
else
    bad "net_pcap run failed: $(tail -3 "$RUN/pcap.err")"
fi

fc_say "-- 6. DPDK net_null: rate-limited, time-bounded TX"
if timeout 30 "$PG" --scenario "$ROOT/pktgen-scenarios/imix.ron" --seconds 1 --rate 100000 --json \
    --eal "$EAL_BASE --file-prefix=${P}n --vdev=net_null0" \
    --tx-port net_null0 >"$RUN/null.json" 2>"$RUN/null.err"; then
    r=$(json "$RUN/null.json" '"%d %s %s" % (j["tx_pkts"] > 0, j["receiving"], j["latency"])')
    if [ "$r" = "1 False None" ]; then
        ok "net_null: sent $(json "$RUN/null.json" 'j["tx_pkts"]') packets in a 1 s window, TX only"
    else
        bad "net_null: $(cat "$RUN/null.json")"
    fi
else
    bad "net_null run failed: $(tail -3 "$RUN/null.err")"
fi

fc_say "pktgen: $PASS passed, $FAIL failed   (files: $RUN)"
[ "$FAIL" = 0 ]
