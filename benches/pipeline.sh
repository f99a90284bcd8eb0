#!/usr/bin/env bash
# benches/pipeline.sh: whole-pipeline benchmark of fulcrum against
# dpdk-testpmd (macswap) on the same vdevs, the same cores, in the same run.
#
# Layer: benchmark tooling, outside every crate (run as root, after
# `cargo build --release --workspace --bins`). For every scenario in
# pktgen-scenarios/ it
#   1. writes one pass of the scenario as a pcap (fulcrum-mkpcap);
#   2. baseline: dpdk-testpmd -l 0-1 --forward-mode=macswap with
#      net_pcap0 (rx_pcap=the file, infinite_rx=1) and net_null0 (no-rx=1).
#      testpmd pairs port 0 -> port 1, so every frame read from the pcap is
#      MAC-swapped and sent out of net_null0; the number measured is the
#      Tx-pps of port 1 (net_null0) from --stats-period=1, i.e. one-way
#      forwarded frames per second;
#   3. fulcrum, NAT then DR: the same two vdevs as ports outside (VIP side,
#      MAC pinned to the frames' destination) and inside (real servers,
#      static neighbours, no ARP), 1 worker on lcore 1, idle_sleep_us 0, rr
#      over 3 real servers. Measured: worker tx_pkts delta / time over
#      WINDOW_S after WARMUP_S (fulcrum-sample, the admin socket's status),
#      all of it out of net_null0 (the only egress: nothing comes back on a
#      no-rx null port). Drops over the window are printed by reason;
#   4. for every fulcrum run, the first-pass connection-creation rate
#      (conns_created sampled every few ms while the first pass of the file
#      is read; only meaningful for nat-syn-new, where the file is all SYNs).
# Both programs see identical input and identical mbuf pools
# (--total-num-mbufs = mbufs_per_socket, sized from the file: net_pcap with
# infinite_rx keeps every frame of the file in an mbuf for the whole run and
# copies each one into a fresh mbuf on RX).
#
# Memory: hugepages when HugePages_Free >= 512 and hugetlbfs is mounted,
# else --no-huge -m 1024. When hugepages are used, the 1k scenario is run
# once more with --no-huge for comparison (NOHUGE_COMPARE=0 skips that).
#
# The machine is shared: before each run the script waits (up to
# QUIET_WAIT_S in total) while another `fulcrum --config` process runs, and
# marks the row "busy" if one still runs. Ratios measured side by side in
# one run are the result; absolute numbers on 2 shared vCPUs are noise-prone.
#
# Output: a table on stdout, and the same in markdown in $RUN/results.md
# (RUN=/tmp/fulcrum-bench/<prefix>, printed; not ./run, which `make clean`
# removes while other people's runs are going on). PERF=1 adds a
# `perf record -e cpu-clock -g` profile of one extra fulcrum NAT run on the
# 1k scenario (top symbols in $RUN/perf-top.txt).
# Every process is bounded by `timeout`; the EXIT trap kills what is left
# and removes /dev/hugepages/<prefix>* and /var/run/dpdk/<prefix>.
#
# Knobs (environment): WARMUP_S (2), WINDOW_S (5), SCENARIOS (the three
# files' names), NOHUGE_COMPARE (1), QUIET_WAIT_S (180), PERF (0),
# CONN_TABLE_SIZE (fulcrum's conn_table_size; empty = its default 1048576).

set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/lib.sh
. "$ROOT/scripts/lib.sh"

WARMUP_S=${WARMUP_S:-2}
WINDOW_S=${WINDOW_S:-5}
SCENARIOS=${SCENARIOS:-"nat-established-1k nat-established-100k nat-syn-new"}
NOHUGE_COMPARE=${NOHUGE_COMPARE:-1}
QUIET_WAIT_S=${QUIET_WAIT_S:-180}
PERF=${PERF:-0}
CONN_TABLE_SIZE=${CONN_TABLE_SIZE:-}
MKPCAP=$FC_BIN_DIR/fulcrum-mkpcap
SAMPLE=$FC_BIN_DIR/fulcrum-sample
TESTPMD=${TESTPMD:-$(command -v dpdk-testpmd)}

fc_need_root || exit 1
fc_need_bins || exit 1
for b in "$MKPCAP" "$SAMPLE"; do
    if [ ! -x "$b" ]; then
        fc_err "missing binary ${b#"$ROOT"/}: run 'cargo build --release --workspace --bins' first"
        exit 1
    fi
done
if [ -z "$TESTPMD" ] || [ ! -x "$TESTPMD" ]; then
    fc_err "dpdk-testpmd not found (Debian package dpdk)"
    exit 1
fi

TP_PID=
SAMPLER_PID=
PERF_PID=
cleanup() {
    local p
    for p in "$SAMPLER_PID" "$PERF_PID" "$TP_PID"; do
        [ -n "$p" ] && kill -KILL "$p" 2>/dev/null
    done
    fc_stop
    fc_dpdk_cleanup
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

fc_new_prefix
# Not under ./run: `make clean` (scripts/clean.sh) removes ./run, and other
# people's test runs on this machine call it; a benchmark's files must
# outlive it. The prefix still matches clean.sh's pattern, so DPDK leftovers
# of a crashed benchmark are found.
RUN=/tmp/fulcrum-bench/$P
rm -rf "$RUN"
mkdir -p "$RUN"
fc_say "== pipeline benchmark (prefix $P, files in $RUN)"
fc_say "machine: $(nproc) CPUs, $(lscpu | sed -n 's/^Model name: *//p' | head -n 1), kernel $(uname -r)"
fc_say "binaries: fulcrum $(stat -c %y "$FULCRUM" | cut -d. -f1), testpmd $TESTPMD"

# --- memory mode ----------------------------------------------------------
huge_free=$(awk '/^HugePages_Free:/ {print $2}' /proc/meminfo)
huge_free=${huge_free:-0}
if [ "$huge_free" -ge 512 ] && grep -q ' hugetlbfs ' /proc/mounts; then
    MAIN_MEM=huge
else
    MAIN_MEM=nohuge
    NOHUGE_COMPARE=0
fi
fc_say "memory: $MAIN_MEM ($huge_free x 2 MiB hugepages free)"
fc_say "fulcrum conn_table_size: ${CONN_TABLE_SIZE:-default (1048576)}"
mem_args() { # MODE -> EAL args on stdout, one per line
    if [ "$1" = nohuge ]; then printf '%s\n' --no-huge -m 1024; fi
}

# --- helpers --------------------------------------------------------------
# wait_quiet: waits while another fulcrum runs (at most QUIET_WAIT_S over the
# whole script); sets BUSY to "busy" if one still runs, else "".
QUIET_LEFT=$QUIET_WAIT_S
wait_quiet() {
    BUSY=
    while pgrep -f 'fulcrum --config' >/dev/null; do
        if [ "$QUIET_LEFT" -le 0 ]; then
            BUSY=busy
            fc_say "   (another fulcrum is running: measuring anyway, row marked busy)"
            return
        fi
        fc_say "   (another fulcrum is running; waiting, ${QUIET_LEFT}s of patience left)"
        sleep 5
        QUIET_LEFT=$((QUIET_LEFT - 5))
    done
}

# others_running [OUR_PID]: true if a `fulcrum --config` other than
# OUR_PID runs now (it started during our measurement).
others_running() {
    pgrep -f 'fulcrum --config' | grep -vqx "${1:-none}"
}

# pool_for FRAMES: mbufs for a run: every frame of the file is held by
# net_pcap, plus rings/caches/bursts; 2^n - 1 as DPDK recommends.
pool_for() {
    local need=$(($1 + 8192)) n=1
    while [ $n -le "$need" ]; do n=$((n * 2)); done
    echo $((n - 1))
}

# kv FILE KEY: value of `KEY=value` in FILE (fulcrum-sample output).
kv() { sed -n "s/^$2=//p" "$1" | head -n 1; }

# mpps PPS: packets/s -> Mpps with 3 decimals ("-" when empty).
mpps() { if [ -n "${1:-}" ]; then awk -v x="$1" 'BEGIN { printf "%.3f", x / 1e6 }'; else echo -; fi; }

# ratio A B: A / B with 3 decimals ("-" when either is empty).
ratio() { if [ -n "${1:-}" ] && [ -n "${2:-}" ]; then awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; else echo -; fi; }

# run_testpmd PCAP POOL MEMMODE TAG: sets TP_PPS (mean Tx-pps of port 1 over
# the window) and TP_NOTE.
run_testpmd() {
    local pcap=$1 pool=$2 mm=$3 tag=$4 out=$RUN/testpmd-$4.out want n
    local -a mem
    mapfile -t mem < <(mem_args "$mm")
    # testpmd's start-up (pool creation, loading the pcap into mbufs) takes
    # seconds for big files: stop it with SIGINT once port 1 has printed the
    # start block + WARMUP_S + WINDOW_S periods (+1 spare), or after 60 s.
    want=$((2 * (WARMUP_S + WINDOW_S + 2)))
    timeout -s INT -k 5 60 stdbuf -oL "$TESTPMD" -l 0-1 --no-pci "--file-prefix=$P" \
        --log-level=lib.eal:error "${mem[@]}" \
        "--vdev=net_pcap0,rx_pcap=$pcap,infinite_rx=1" --vdev=net_null0,no-rx=1 -- \
        --forward-mode=macswap -a --stats-period=1 --nb-cores=1 "--total-num-mbufs=$pool" \
        --rxd=1024 --txd=1024 --burst=32 >"$out" 2>&1 &
    TP_PID=$!
    while kill -0 "$TP_PID" 2>/dev/null; do
        n=$(grep -c 'Tx-pps:' "$out" 2>/dev/null)
        [ "${n:-0}" -ge "$want" ] && break
        sleep 0.2
    done
    others_running "" && BUSY=busy
    kill -INT "$TP_PID" 2>/dev/null
    wait "$TP_PID"
    TP_PID=
    fc_dpdk_cleanup
    # The stats are redrawn with ANSI clear-screen codes: strip them, then
    # take port 1's Tx-pps of each period; the first block is printed at
    # start (all zero) and the next WARMUP_S are the warm-up.
    sed 's/\x1b\[[0-9;]*[A-Za-z]//g' "$out" >"$out.txt"
    read -r TP_PPS TP_N < <(awk -v skip="$WARMUP_S" -v take="$WINDOW_S" '
        /NIC statistics for port/ { port = $(NF - 1) }
        /Tx-pps:/ && port == 1 { n++; if (n > 1 + skip && m < take) { sum += $2; m++ } }
        END { if (m > 0) printf "%.0f %d\n", sum / m, m; else print "- 0" }' "$out.txt")
    TP_NOTE="$TP_N samples"
    [ "$TP_N" -lt "$WINDOW_S" ] && TP_NOTE="$TP_NOTE (fewer than $WINDOW_S: see $out.txt)"
    [ "$TP_PPS" = - ] && TP_PPS=
    local dropped
    dropped=$(sed -n '/Accumulated forward statistics/,/####/ s/.*TX-dropped: *\([0-9]*\).*/\1/p' "$out.txt" | head -n 1)
    TP_NOTE="$TP_NOTE, TX-dropped ${dropped:-?}"
}

# write_config MODE PCAP POOL MEMMODE FILE: fulcrum's config for this bench.
write_config() {
    local mode=$1 pcap=$2 pool=$3 mm=$4 file=$5 eal
    local -a mem
    mapfile -t mem < <(mem_args "$mm")
    eal=$(fc_ron_list -l 0-1 --no-pci "--file-prefix=$P" --log-level=lib.eal:error "${mem[@]}" \
        "--vdev=net_pcap0,rx_pcap=$pcap,infinite_rx=1" --vdev=net_null0,no-rx=1)
    cat >"$file" <<EOF
// Generated by benches/pipeline.sh for run $P: $mode, 1 worker, $mm.
(
    eal_args: $eal,
    workers: [1],
    // Same pool as testpmd's --total-num-mbufs: net_pcap holds the file.
    mbufs_per_socket: $pool,
    rx_desc: 1024,
    tx_desc: 1024,
    burst: 32,
    idle_sleep_us: 0,
    ${CONN_TABLE_SIZE:+conn_table_size: $CONN_TABLE_SIZE,}
    admin_socket: "$RUN/fulcrum.sock",
    ports: [
        // Frames in the pcap are addressed to 02:00:00:00:00:01.
        (name: "outside", device: "net_pcap0", mac: "02:00:00:00:00:01", addrs: ["10.0.0.1/24"]),
        (name: "inside",  device: "net_null0", mac: "02:00:00:00:01:01", addrs: ["10.1.0.1/24"]),
    ],
    // Clients (172.16.0.0/12) sit behind the gateway; all next hops are
    // permanent neighbours, so no ARP is ever sent.
    routes: [ (dst: "0.0.0.0/0", via: "10.0.0.254") ],
    neighbours: [
        (ip: "10.0.0.254", mac: "02:00:00:00:00:fe"),
        (ip: "10.1.0.11", mac: "02:00:00:00:01:11"),
        (ip: "10.1.0.12", mac: "02:00:00:00:01:12"),
        (ip: "10.1.0.13", mac: "02:00:00:00:01:13"),
    ],
    services: [
        (vip: "10.0.0.100:80", proto: "tcp", scheduler: "rr", forwarding: "$mode",
         real_servers: [
            (addr: "10.1.0.11:80", weight: 1),
            (addr: "10.1.0.12:80", weight: 1),
            (addr: "10.1.0.13:80", weight: 1),
         ]),
    ],
)
EOF
}

# run_fulcrum MODE PCAP POOL MEMMODE FLOWS TAG: sets FC_PPS, FC_NOTE, FC_NEWCONN.
run_fulcrum() {
    local mode=$1 pcap=$2 pool=$3 mm=$4 flows=$5 tag=$6
    local cfg=$RUN/fulcrum-$tag.ron win=$RUN/window-$tag.txt fp=$RUN/firstpass-$tag.txt
    FC_PPS= FC_NOTE= FC_NEWCONN=
    write_config "$mode" "$pcap" "$pool" "$mm" "$cfg"
    rm -f "$RUN/fulcrum.sock"
    # The first-pass sampler must be polling before the worker starts: the
    # first pass of a 200k-SYN file lasts about a tenth of a second.
    # The samplers run on CPU 0 (the main lcore's), never on the worker's.
    timeout -k 2 20 taskset -c 0 "$SAMPLE" "$RUN/fulcrum.sock" first-pass "$flows" 2 15 >"$fp" 2>&1 &
    SAMPLER_PID=$!
    "$FULCRUM" --config "$cfg" >"$RUN/fulcrum-$tag.out" 2>"$RUN/fulcrum-$tag.log" &
    FC_PID=$!
    if ! timeout 35 taskset -c 0 "$SAMPLE" "$RUN/fulcrum.sock" wait 30 >/dev/null 2>"$RUN/wait-$tag.err"; then
        fc_err "fulcrum ($tag) did not answer: $(head -c 300 "$RUN/wait-$tag.err")"
        tail -n 30 "$RUN/fulcrum-$tag.log"
        kill -KILL "$SAMPLER_PID" 2>/dev/null
        SAMPLER_PID=
        fc_stop
        fc_dpdk_cleanup
        FC_NOTE="did not start"
        return 1
    fi
    wait "$SAMPLER_PID"
    SAMPLER_PID=
    if ! timeout $((WARMUP_S + WINDOW_S + 15)) taskset -c 0 "$SAMPLE" "$RUN/fulcrum.sock" window "$WARMUP_S" "$WINDOW_S" >"$win" 2>&1; then
        FC_NOTE="sampling failed: $(head -c 200 "$win")"
    fi
    if [ "$PERF" = 1 ] && [ "$tag" = "${PERF_TAG:-}" ]; then
        fc_say "   perf record -g -p $FC_PID (3 s)"
        timeout 20 perf record -e cpu-clock -g -p "$FC_PID" -o "$RUN/perf-$tag.data" -- sleep 3 \
            >"$RUN/perf-record.log" 2>&1 &
        PERF_PID=$!
        wait "$PERF_PID"
        PERF_PID=
    fi
    fc_ctl --json -L -n >"$RUN/status-$tag.json" 2>/dev/null
    others_running "$FC_PID" && BUSY=busy
    fc_stop
    [ "$FC_STATUS" = 0 ] || FC_NOTE="$FC_NOTE exit status $FC_STATUS;"
    fc_dpdk_cleanup
    FC_PPS=$(kv "$win" tx_pps)
    local rx tx drops reasons
    rx=$(kv "$win" rx_pkts)
    tx=$(kv "$win" tx_pkts)
    drops=$(kv "$win" drops_total)
    reasons=$(sed -n 's/^drop\.//p' "$win" | tr '\n' ' ')
    FC_NOTE="${FC_NOTE}rx-tx ${rx:-?}-${tx:-?}, drops ${drops:-?}${reasons:+ ($reasons)}"
    FC_NEWCONN=$(kv "$fp" new_conns_per_s)
    FC_FP_SAMPLES=$(kv "$fp" samples_inside)
    FC_FP_REACHED=$(kv "$fp" reached_all)
}

# --- the runs -------------------------------------------------------------
ROWS=()
NOTES=()
NEWCONN_ROWS=()
run_scenario() { # NAME MEMMODE
    local name=$1 mm=$2 scen=$ROOT/pktgen-scenarios/$1.ron pcap=$RUN/$1.pcap out frames flows pool
    local tag=$name-$mm tp nat dr busy=
    if ! out=$("$MKPCAP" "$scen" "$pcap" 2>&1); then
        fc_err "fulcrum-mkpcap $scen: $out"
        return 1
    fi
    frames=$(sed -n 's/^frames: //p' <<<"$out")
    flows=$(sed -n 's/^flows: //p' <<<"$out")
    pool=$(pool_for "$frames")
    fc_say "-- $name ($frames frames per pass, $flows flows, mbuf pool $pool, $mm)"

    wait_quiet
    fc_say "   load before testpmd: $(cut -d' ' -f1-3 /proc/loadavg)"
    run_testpmd "$pcap" "$pool" "$mm" "$tag"
    busy=$BUSY
    tp=$TP_PPS
    fc_say "   testpmd macswap : $(mpps "$tp") Mpps  [$TP_NOTE]"
    NOTES+=("$tag testpmd: $TP_NOTE")

    local -A pps=()
    local m
    for m in nat dr; do
        wait_quiet
        fc_say "   load before fulcrum $m: $(cut -d' ' -f1-3 /proc/loadavg)"
        run_fulcrum "$m" "$pcap" "$pool" "$mm" "$flows" "$tag-$m"
        [ -n "$BUSY" ] && busy=busy
        pps[$m]=$FC_PPS
        fc_say "   fulcrum $(printf '%-3s' "$m")     : $(mpps "$FC_PPS") Mpps  [$FC_NOTE]"
        fc_say "     first pass: ${FC_NEWCONN:-n/a} new conns/s (${FC_FP_SAMPLES:-0} samples inside the pass, all created: ${FC_FP_REACHED:-?})"
        NOTES+=("$tag fulcrum $m: $FC_NOTE")
        NEWCONN_ROWS+=("| $name | $mm | $m | ${FC_NEWCONN:-n/a} | ${FC_FP_SAMPLES:-0} |")
    done
    ROWS+=("$name|$mm|$(mpps "$tp")|$(mpps "${pps[nat]}")|$(ratio "${pps[nat]}" "$tp")|$(mpps "${pps[dr]}")|$(ratio "${pps[dr]}" "$tp")|${busy:-ok}")
}

T0=$SECONDS
for s in $SCENARIOS; do
    run_scenario "$s" "$MAIN_MEM"
done
if [ "$NOHUGE_COMPARE" = 1 ]; then
    run_scenario nat-established-1k nohuge
fi
if [ "$PERF" = 1 ] && ! command -v perf >/dev/null; then
    fc_say "-- profile skipped: perf is not installed (apt-get install -y linux-perf)"
elif [ "$PERF" = 1 ]; then
    fc_say "-- profile: fulcrum NAT, nat-established-1k, $MAIN_MEM"
    pcap=$RUN/nat-established-1k.pcap
    [ -f "$pcap" ] || "$MKPCAP" "$ROOT/pktgen-scenarios/nat-established-1k.ron" "$pcap" >/dev/null
    PERF_TAG=perf
    pool=$(pool_for 32000)
    run_fulcrum nat "$pcap" "$pool" "$MAIN_MEM" 1000 perf
    fc_say "   during perf: $(mpps "$FC_PPS") Mpps"
    perf report -i "$RUN/perf-perf.data" --stdio --no-children --sort symbol 2>/dev/null |
        grep -E '^ +[0-9.]+%' | sed 's/[ -]*$//' | head -n 15 >"$RUN/perf-top.txt"
    perf report -i "$RUN/perf-perf.data" --stdio --no-children --sort dso 2>/dev/null |
        grep -E '^ +[0-9.]+%' | sed 's/[ -]*$//' | head -n 8 >"$RUN/perf-dso.txt"
    if [ -s "$RUN/perf-top.txt" ]; then
        sed 's/^/   /' "$RUN/perf-top.txt"
    else
        fc_say "   perf recorded nothing (see $RUN/perf-record.log); on a VM without"
        fc_say "   perf events use valgrind --tool=callgrind on the criterion bench"
    fi
fi

# --- report ---------------------------------------------------------------
{
    echo "Run $P, $(date -u '+%Y-%m-%d %H:%M UTC'), git $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')" \
        "(working tree $(git -C "$ROOT" status --porcelain 2>/dev/null | grep -c . ) changed files)," \
        "fulcrum built $(stat -c %y "$FULCRUM" | cut -d. -f1), window ${WINDOW_S} s after ${WARMUP_S} s warm-up," \
        "conn_table_size ${CONN_TABLE_SIZE:-1048576}."
    echo
    echo "| scenario | memory | testpmd macswap Mpps | fulcrum NAT Mpps | NAT / testpmd | fulcrum DR Mpps | DR / testpmd | other fulcrum running |"
    echo "|---|---|---:|---:|---:|---:|---:|---|"
    for r in "${ROWS[@]}"; do echo "| ${r//|/ | } |"; done
    echo
    echo "First-pass connection creation (conns_created slope while the file's first pass is read; n/a = fewer than 2 samples inside the pass):"
    echo
    echo "| scenario | memory | method | new conns/s | samples |"
    echo "|---|---|---|---:|---:|"
    printf '%s\n' "${NEWCONN_ROWS[@]}"
    echo
    if [ -s "$RUN/perf-top.txt" ]; then
        echo "perf record -e cpu-clock -g, fulcrum NAT, nat-established-1k (top symbols, self time):"
        echo
        echo '```text'
        cat "$RUN/perf-top.txt"
        echo '```'
        echo
    fi
    echo "Notes per run:"
    echo
    for n in "${NOTES[@]}"; do echo "- $n"; done
} >"$RUN/results.md"
fc_say ""
fc_say "== results (one-way frames/s out of net_null0; window ${WINDOW_S} s after ${WARMUP_S} s warm-up)"
{
    echo "scenario|memory|testpmd_Mpps|nat_Mpps|nat/tp|dr_Mpps|dr/tp|other_fulcrum"
    printf '%s\n' "${ROWS[@]}"
} | column -t -s '|'
fc_say "(markdown: $RUN/results.md; total $((SECONDS - T0)) s)"
