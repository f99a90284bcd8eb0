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
#   3. fulcrum, once per forwarding method in METHODS (default NAT, DR,
#      TUN, FullNAT, in that order): the same two vdevs as ports outside
#      (VIP side, MAC pinned to the frames' destination) and inside (real
#      servers, static neighbours, no ARP), 1 worker on lcore 1,
#      idle_sleep_us 0, rr over 3 real servers. Measured: worker tx_pkts
#      delta / time over WINDOW_S after WARMUP_S (fulcrum-sample, the admin
#      socket's status), all of it out of net_null0 (the only egress: nothing
#      comes back on a no-rx null port). Drops over the window are printed by
#      reason. The methods' configs differ only in the service: `forwarding`
#      "nat", "dr", "tun" (IPIP, `tun_type: "ipip"` on each real server,
#      `tun_src` 10.1.0.1, the inside DIP) or "fullnat" (`local_addresses`
#      10.1.0.101, .102, ... on the inside port's subnet, `client_address`
#      "none", the global lport range 1024..65535 written out). FullNAT books
#      one (LIP, lport) per connection from the port allocator, so the
#      script gives it ceil(1.25 x flows / 64512) LIPs (64512 lports each in
#      that range; 1.25 covers the owner hash's uneven split with 2
#      workers): 1 for 1k flows, 2 for 100k, 4 for nat-syn-new's 200k, 20
#      for 1M. Every packet of the pass reaches the inside port (no replies
#      come back), so TUN and FullNAT are measured on the client-to-server
#      direction, like NAT and DR;
#   4. for every fulcrum run, the first-pass connection-creation rate
#      (conns_created sampled every few ms while the first pass of the file
#      is read; only meaningful for nat-syn-new, where the file is all SYNs;
#      for FullNAT each new connection also books an lport, so the port
#      allocator is in the loop),
#      and the RSS growth per connection created meanwhile (VmRSS of
#      /proc/PID/status at the first status answer and when all flows exist);
#   5. sweeps: the scenarios are the concurrent-flows sweep (1k, 100k, 1M
#      established flows); the workers sweep runs SCALE_SCENARIO again with 2
#      workers (and testpmd with 2 forwarding cores) on a pcap split by
#      fulcrum's flow owner, one file per RX queue, so no frame is
#      redirected between workers; scaling efficiency = 2-worker Mpps /
#      1-worker Mpps of the same program. This VM has 2 CPUs: 2 workers run
#      on lcores 1@CPU1 and 2@CPU0, sharing CPU 0 with the main lcore and the
#      samplers, which the output says;
#   6. memory per connection: fulcrum NAT on the 1k scenario with
#      conn_table_size 1048576 and with 1024; (VmRSS difference) /
#      (1048576 - 1024) is the cost of capacity (the table preallocates).
# Both programs see identical input and identical mbuf pools
# (--total-num-mbufs = mbufs_per_socket, sized from the file: net_pcap with
# infinite_rx keeps every frame of the file in an mbuf for the whole run and
# copies each one into a fresh mbuf on RX).
#
# Memory: hugepages when HugePages_Free >= 512 and hugetlbfs is mounted and
# the mbuf pool fits in them, else --no-huge with -m sized from the pool (the
# 1M scenario's 2M-frame pool needs about 5 GB). When hugepages are used, the
# 1k scenario is run once more with --no-huge for comparison
# (NOHUGE_COMPARE=0 skips that).
#
# The machine is shared: before each run the script waits (up to
# QUIET_WAIT_S in total) while another `fulcrum --config` process runs, and
# marks the row "busy" if one still runs. Ratios measured side by side in
# one run are the result; absolute numbers on 2 shared vCPUs are noise-prone.
#
# Output: a table on stdout, the same in markdown in $RUN/results.md, and
# machine-readable $RUN/sweep.csv (one row per program per run: sweep,
# scenario, flows, workers, memory, program, mpps, ratio_vs_testpmd, busy)
# and $RUN/metrics.csv (metric, scenario, program, value, unit, detail) for
# fulcrum-plot and benches/report.sh; /tmp/fulcrum-bench/latest points at
# the newest run directory.
# (RUN=/tmp/fulcrum-bench/<prefix>, printed; not ./run, which `make clean`
# removes while other people's runs are going on). PERF=1 adds a
# `perf record -e cpu-clock -g` profile of one extra fulcrum NAT run on the
# 1k scenario (top symbols in $RUN/perf-top.txt), and one more per method
# of PERF_METHODS other than nat ($RUN/perf-top-<method>.txt).
# Every process is bounded by `timeout`; the EXIT trap kills what is left
# and removes /dev/hugepages/<prefix>* and /var/run/dpdk/<prefix>.
#
# Checks (every run; a failed check fails the script, see below): for each
# fulcrum run, over the measured window rx_pkts = tx_pkts and the drops
# summed over every reason = 0 (fulcrum-sample window); at the end of the
# window conns_created (all workers, since start) = the scenario's flows;
# the rr service's per-real-server `conns` (fulcrumctl --json -L -n) sum to
# the flows and differ by at most the number of workers (rr spreads exactly:
# 334/333/333 of 1000 per worker); fulcrum answered, was sampled and exited
# with status 0 on SIGTERM. For each testpmd run: WINDOW_S stats periods
# were read and its TX-dropped is 0. Every check is a row of $RUN/checks.csv
# (run, program, check, expected, measured, verdict); a failed one is also a
# `CHECK FAILED: ...` line on stderr with both numbers, the run goes on to
# the end, and the exit status is 1.
#
# Knobs (environment): WARMUP_S (2), WINDOW_S (5), SCENARIOS (the four
# files' names), METHODS ("nat dr tun fullnat"; any subset, e.g. "nat dr"
# for the older runs' shape), NOHUGE_COMPARE (1), QUIET_WAIT_S (180), PERF
# (0), PERF_METHODS (nat; e.g. "nat tun fullnat"),
# CONN_TABLE_SIZE (fulcrum's conn_table_size; empty = its default 1048576),
# SCALE_SCENARIO (nat-established-100k; empty skips the workers sweep),
# MEMORY_SWEEP (1; 0 skips the conn_table_size RSS comparison).
# BENCH_QUICK=1 changes the defaults to a smoke run of every code path in
# about 40 s whose numbers mean nothing: SCENARIOS=nat-established-1k,
# WARMUP_S=1, WINDOW_S=1, NOHUGE_COMPARE=0, SCALE_SCENARIO=nat-established-1k
# (each can still be set).
# Exit status: 0 every check passed, 1 a check failed or a run could not be
# made, as listed at the end.

set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/lib.sh
. "$ROOT/scripts/lib.sh"

if [ "${BENCH_QUICK:-0}" = 1 ]; then
    WARMUP_S=${WARMUP_S:-1}
    WINDOW_S=${WINDOW_S:-1}
    SCENARIOS=${SCENARIOS:-nat-established-1k}
    SCALE_SCENARIO=${SCALE_SCENARIO-nat-established-1k}
    NOHUGE_COMPARE=${NOHUGE_COMPARE:-0}
fi
WARMUP_S=${WARMUP_S:-2}
WINDOW_S=${WINDOW_S:-5}
SCENARIOS=${SCENARIOS:-"nat-established-1k nat-established-100k nat-established-1m nat-syn-new"}
SCALE_SCENARIO=${SCALE_SCENARIO-nat-established-100k}
MEMORY_SWEEP=${MEMORY_SWEEP:-1}
NOHUGE_COMPARE=${NOHUGE_COMPARE:-1}
QUIET_WAIT_S=${QUIET_WAIT_S:-180}
PERF=${PERF:-0}
CONN_TABLE_SIZE=${CONN_TABLE_SIZE:-}
METHODS=${METHODS:-"nat dr tun fullnat"}
PERF_METHODS=${PERF_METHODS:-nat}
for m in $METHODS $PERF_METHODS; do
    case $m in nat | dr | tun | fullnat) ;; *)
        echo "pipeline: unknown method '$m' in METHODS/PERF_METHODS (nat dr tun fullnat)" >&2
        exit 1
        ;;
    esac
done
# The FullNAT lport range (fulcrum's defaults, written into the config).
LPORT_MIN=1024
LPORT_MAX=65535
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
ln -sfn "$RUN" /tmp/fulcrum-bench/latest
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
# pool_mb POOL: MB an mbuf pool of POOL mbufs needs: DPDK's default mbuf
# (2048 B data room + 128 B headroom + 128 B struct) plus mempool headers,
# rounded up to 2560 B, plus 256 MB for rings, the pcap PMD and EAL.
pool_mb() { echo $(($1 * 2560 / 1048576 + 256)); }
# mem_for POOL: the memory mode for a run: MAIN_MEM, unless the pool does
# not fit in the free hugepages.
mem_for() {
    if [ "$MAIN_MEM" = huge ] && [ "$(pool_mb "$1")" -le $((huge_free * 2)) ]; then
        echo huge
    else
        echo nohuge
    fi
}
mem_args() { # MODE POOL -> EAL args on stdout, one per line
    local mb
    if [ "$1" = nohuge ]; then
        mb=$(pool_mb "$2")
        [ "$mb" -lt 1024 ] && mb=1024
        printf '%s\n' --no-huge -m "$mb"
    fi
}
# lcore_args WORKERS: EAL lcores for 1 or 2 worker/forwarding lcores. With
# 2 on this 2-CPU VM, lcore 2 shares CPU 0 with the main lcore (as the e2e
# tests do).
lcore_args() {
    if [ "$1" = 1 ]; then printf '%s\n' -l 0-1; else printf '%s\n' --lcores=0@0,1@1,2@0; fi
}
# pcap_vdev PCAP...: net_pcap0 with one rx_pcap (one RX queue) per file.
pcap_vdev() {
    local v=--vdev=net_pcap0 f
    for f in "$@"; do v+=",rx_pcap=$f"; done
    echo "$v,infinite_rx=1"
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

# check TAG PROGRAM NAME EXPECTED MEASURED [OK]: one promised check, a row
# of $CHECKS; OK (0 or 1) is the verdict when given, else MEASURED must
# equal EXPECTED. A failure is counted, printed on stderr and listed again
# at the end.
CHECK_FAILS=()
CHECK_N=0
check() {
    local tag=$1 prog=$2 name=$3 want=$4 got=${5:-?} ok=${6:-}
    if [ -z "$ok" ]; then
        ok=0
        [ "$got" = "$want" ] && ok=1
    fi
    CHECK_N=$((CHECK_N + 1))
    if [ "$ok" = 1 ]; then
        echo "$tag,$prog,$name,$want,$got,ok" >>"$CHECKS"
    else
        echo "$tag,$prog,$name,$want,$got,FAIL" >>"$CHECKS"
        CHECK_FAILS+=("$tag $prog: $name: expected $want, measured $got")
        fc_err "CHECK FAILED: $tag $prog: $name: expected $want, measured $got"
    fi
}

# check_fulcrum TAG MODE FLOWS WORKERS WINDOW_FILE STATUS_JSON: the checks
# of one fulcrum run (see the header).
check_fulcrum() {
    local tag=$1 prog=fulcrum-$2 flows=$3 nw=$4 win=$5 st=$6 rx tx c conns=() sum=0 lo hi ok
    rx=$(kv "$win" rx_pkts)
    tx=$(kv "$win" tx_pkts)
    check "$tag" "$prog" "window rx_pkts = tx_pkts" "equal and > 0" "rx ${rx:-?} / tx ${tx:-?}" \
        "$([ -n "$rx" ] && [ "$rx" = "$tx" ] && [ "$rx" -gt 0 ] && echo 1 || echo 0)"
    check "$tag" "$prog" "window drops (all reasons)" 0 "$(kv "$win" drops_total)$(sed -n 's/^drop\./ /p' "$win" | tr -d '\n')"
    check "$tag" "$prog" "conns_created = flows" "$flows" "$(kv "$win" conns_created_total)"
    for ip in 10.1.0.11 10.1.0.12 10.1.0.13; do
        c=$("$PY" "$ROOT/scripts/fcjson.py" real "$st" "$ip" conns 2>/dev/null) || c=?
        conns+=("$c")
    done
    ok=0
    if [[ "${conns[*]}" =~ ^[0-9]+\ [0-9]+\ [0-9]+$ ]]; then
        lo=$(printf '%s\n' "${conns[@]}" | sort -n | head -n 1)
        hi=$(printf '%s\n' "${conns[@]}" | sort -n | tail -n 1)
        sum=$((conns[0] + conns[1] + conns[2]))
        [ "$sum" = "$flows" ] && [ $((hi - lo)) -le "$nw" ] && ok=1
    fi
    check "$tag" "$prog" "rr conns per real server (sum = flows; spread <= workers)" \
        "sum $flows; spread <= $nw" "$(
            IFS=/
            echo "${conns[*]}"
        )" "$ok"
}

# run_testpmd "PCAP..." POOL MEMMODE TAG [WORKERS]: sets TP_PPS (mean Tx-pps
# of port 1 over the window) and TP_NOTE. With WORKERS=2, 2 forwarding cores
# and 2 queues per port (one PCAP per RX queue).
run_testpmd() {
    local pcaps=$1 pool=$2 mm=$3 tag=$4 nw=${5:-1} out=$RUN/testpmd-$4.out want n
    local -a mem lc pc
    mapfile -t mem < <(mem_args "$mm" "$pool")
    mapfile -t lc < <(lcore_args "$nw")
    read -ra pc <<<"$pcaps"
    # testpmd's start-up (pool creation, loading the pcap into mbufs) takes
    # seconds for big files: stop it with SIGINT once port 1 has printed the
    # start block + WARMUP_S + WINDOW_S periods (+1 spare), or after 90 s.
    want=$((2 * (WARMUP_S + WINDOW_S + 2)))
    timeout -s INT -k 5 90 stdbuf -oL "$TESTPMD" "${lc[@]}" --no-pci "--file-prefix=$P" \
        --log-level=lib.eal:error "${mem[@]}" \
        "$(pcap_vdev "${pc[@]}")" --vdev=net_null0,no-rx=1 -- \
        --forward-mode=macswap -a --stats-period=1 "--nb-cores=$nw" "--rxq=$nw" "--txq=$nw" \
        "--total-num-mbufs=$pool" --rxd=1024 --txd=1024 --burst=32 >"$out" 2>&1 &
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
    check "$tag" testpmd "stats periods in the window" "$WINDOW_S" "$TP_N"
    check "$tag" testpmd "TX-dropped" 0 "${dropped:-?}"
}

# n_lips FLOWS: FullNAT local addresses for FLOWS connections: each LIP
# has LPORT_MAX - LPORT_MIN + 1 lports; 25 % spare for the owner hash's
# uneven split of ports and flows between 2 workers.
n_lips() {
    local per=$((LPORT_MAX - LPORT_MIN + 1))
    echo $(((${1:-1} * 5 / 4 + per - 1) / per))
}

# service_extra MODE FLOWS: sets SVC_EXTRA, the method's service fields (one
# line of RON), and RS_EXTRA, the fields each real server gets.
service_extra() {
    local n i lips=
    SVC_EXTRA= RS_EXTRA=
    case $1 in
    tun)
        SVC_EXTRA='tun_src: "10.1.0.1",'
        RS_EXTRA=' tun_type: "ipip",'
        ;;
    fullnat)
        n=$(n_lips "$2")
        for ((i = 1; i <= n; i++)); do lips+="${lips:+, }\"10.1.0.$((100 + i))\""; done
        SVC_EXTRA="local_addresses: [$lips], client_address: \"none\","
        ;;
    esac
}

# write_config MODE "PCAP..." POOL MEMMODE FILE [WORKERS] [FLOWS]: fulcrum's
# config for this bench (WORKERS 1 or 2, one PCAP per worker's RX queue;
# FLOWS sizes FullNAT's local addresses).
write_config() {
    local mode=$1 pcaps=$2 pool=$3 mm=$4 file=$5 nw=${6:-1} flows=${7:-1000} eal workers=1
    local -a mem lc pc
    mapfile -t mem < <(mem_args "$mm" "$pool")
    mapfile -t lc < <(lcore_args "$nw")
    read -ra pc <<<"$pcaps"
    [ "$nw" = 2 ] && workers="1, 2"
    eal=$(fc_ron_list "${lc[@]}" --no-pci "--file-prefix=$P" --log-level=lib.eal:error "${mem[@]}" \
        "$(pcap_vdev "${pc[@]}")" --vdev=net_null0,no-rx=1)
    service_extra "$mode" "$flows"
    cat >"$file" <<EOF
// Generated by benches/pipeline.sh for run $P: $mode, $nw worker(s), $mm, $flows flows.
(
    eal_args: $eal,
    workers: [$workers],
    // Same pool as testpmd's --total-num-mbufs: net_pcap holds the file.
    mbufs_per_socket: $pool,
    rx_desc: 1024,
    tx_desc: 1024,
    burst: 32,
    idle_sleep_us: 0,
    ${CONN_TABLE_SIZE:+conn_table_size: $CONN_TABLE_SIZE,}
    // FullNAT's lport range per local address (the defaults, written out:
    // the script sizes local_addresses from it).
    fullnat_lport_min: $LPORT_MIN,
    fullnat_lport_max: $LPORT_MAX,
    exception_path: (enabled: $([ "${BENCH_EXCEPTION:-1}" = 0 ] && echo false || echo true)),
    admin_socket: "$RUN/fulcrum.sock",
    ports: [
        // Frames in the pcap are addressed to 02:00:00:00:00:01.
        // Per-run kernel interface names (the exception path; this runs in
        // the root namespace). BENCH_EXCEPTION=0 turns the path off.
        (name: "outside", device: "net_pcap0", mac: "02:00:00:00:00:01", addrs: ["10.0.0.1/24"], kernel_iface: "${P}o"),
        (name: "inside",  device: "net_null0", mac: "02:00:00:00:01:01", addrs: ["10.1.0.1/24"], kernel_iface: "${P}i"),
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
         $SVC_EXTRA
         real_servers: [
            (addr: "10.1.0.11:80", weight: 1,$RS_EXTRA),
            (addr: "10.1.0.12:80", weight: 1,$RS_EXTRA),
            (addr: "10.1.0.13:80", weight: 1,$RS_EXTRA),
         ]),
    ],
)
EOF
}

# run_fulcrum MODE "PCAP..." POOL MEMMODE FLOWS TAG [WORKERS]: sets FC_PPS,
# FC_NOTE, FC_NEWCONN, FC_RSS_KB (VmRSS at the end of the window) and
# FC_RSS_PER_CONN (RSS growth per connection created during the first pass).
run_fulcrum() {
    local mode=$1 pcap=$2 pool=$3 mm=$4 flows=$5 tag=$6 nw=${7:-1}
    local cfg=$RUN/fulcrum-$tag.ron win=$RUN/window-$tag.txt fp=$RUN/firstpass-$tag.txt
    FC_PPS= FC_NOTE= FC_NEWCONN= FC_RSS_KB= FC_RSS_PER_CONN=
    write_config "$mode" "$pcap" "$pool" "$mm" "$cfg" "$nw" "$flows"
    rm -f "$RUN/fulcrum.sock"
    "$FULCRUM" --config "$cfg" >"$RUN/fulcrum-$tag.out" 2>"$RUN/fulcrum-$tag.log" &
    FC_PID=$!
    # The first-pass sampler must be polling before the worker starts: the
    # first pass of a 200k-SYN file lasts about a tenth of a second. It
    # starts right after fulcrum, long before EAL init and the pcap load end.
    # The samplers run on CPU 0 (the main lcore's), never on the worker's.
    timeout -k 2 40 taskset -c 0 "$SAMPLE" "$RUN/fulcrum.sock" first-pass "$flows" 2 35 "$FC_PID" >"$fp" 2>&1 &
    SAMPLER_PID=$!
    if ! timeout 65 taskset -c 0 "$SAMPLE" "$RUN/fulcrum.sock" wait 60 >/dev/null 2>"$RUN/wait-$tag.err"; then
        fc_err "fulcrum ($tag) did not answer: $(head -c 300 "$RUN/wait-$tag.err")"
        tail -n 30 "$RUN/fulcrum-$tag.log"
        kill -KILL "$SAMPLER_PID" 2>/dev/null
        SAMPLER_PID=
        fc_stop
        fc_dpdk_cleanup
        FC_NOTE="did not start"
        check "$tag" "fulcrum-$mode" "answered on the admin socket" yes no
        return 1
    fi
    wait "$SAMPLER_PID"
    SAMPLER_PID=
    local sampled=yes
    if ! timeout $((WARMUP_S + WINDOW_S + 15)) taskset -c 0 "$SAMPLE" "$RUN/fulcrum.sock" window "$WARMUP_S" "$WINDOW_S" >"$win" 2>&1; then
        FC_NOTE="sampling failed: $(head -c 200 "$win")"
        sampled=no
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
    FC_RSS_KB=$(awk '/^VmRSS:/ {print $2}' "/proc/$FC_PID/status" 2>/dev/null)
    others_running "$FC_PID" && BUSY=busy
    fc_stop
    [ "$FC_STATUS" = 0 ] || FC_NOTE="$FC_NOTE exit status $FC_STATUS;"
    fc_dpdk_cleanup
    check "$tag" "fulcrum-$mode" "window sampled" yes "$sampled"
    check "$tag" "fulcrum-$mode" "exit status after SIGTERM" 0 "$FC_STATUS"
    check_fulcrum "$tag" "$mode" "$flows" "$nw" "$win" "$RUN/status-$tag.json"
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
    FC_RSS_PER_CONN=$(kv "$fp" rss_bytes_per_new_conn)
    FC_RSS_NOTE="RSS $(kv "$fp" rss_first_kb) kB at $(kv "$fp" rss_conns_first) conns -> $(kv "$fp" rss_last_kb) kB at $(kv "$fp" rss_conns_last) conns"
}

# --- the runs -------------------------------------------------------------
ROWS=()
NOTES=()
NEWCONN_ROWS=()
SCALE_ROWS=()
MEM_ROWS=()
CSV=$RUN/sweep.csv
METRICS=$RUN/metrics.csv
CHECKS=$RUN/checks.csv
echo "sweep,scenario,flows,workers,memory,program,mpps,ratio_vs_testpmd,busy" >"$CSV"
echo "metric,scenario,program,value,unit,detail" >"$METRICS"
echo "run,program,check,expected,measured,verdict" >"$CHECKS"
# Results of the 1-worker runs: testpmd's packets/s by scenario, fulcrum's
# by "scenario method".
declare -A TP1 FC1 FLOWS_OF POOL_OF MEM_OF
# Mpps of each PERF_METHODS run while perf sampled it.
declare -A PERF_MPPS=()
# label METHOD: the method's name in tables (NAT, DR, TUN, FullNAT).
label() {
    case $1 in
    fullnat) echo FullNAT ;;
    *) tr '[:lower:]' '[:upper:]' <<<"$1" ;;
    esac
}

# csv_row SWEEP SCENARIO FLOWS WORKERS MEM PROGRAM PPS TP_PPS BUSY
csv_row() {
    local r=-
    [ "$6" != testpmd ] && r=$(ratio "$7" "$8")
    echo "$1,$2,$3,$4,$5,$6,$(mpps "$7"),$r,${9:-ok}" >>"$CSV"
}

# sweep_of SCENARIO: which sweep a scenario's row belongs to.
sweep_of() {
    case $1 in
    nat-established-*) echo flows ;;
    *) echo other ;;
    esac
}

# mkpcap SCENARIO OUT [--owners N]: runs fulcrum-mkpcap; sets FRAMES, FLOWS
# and PARTS (the part files, for --owners).
mkpcap() {
    local out
    if ! out=$("$MKPCAP" "$ROOT/pktgen-scenarios/$1.ron" "${@:2}" 2>&1); then
        fc_err "fulcrum-mkpcap $1: $out"
        check "$1" mkpcap "pcap written" yes no
        return 1
    fi
    FRAMES=$(sed -n 's/^frames: //p' <<<"$out")
    FLOWS=$(sed -n 's/^flows: //p' <<<"$out")
    PARTS=$(sed -n 's/^part: \([^ ]*\) .*/\1/p' <<<"$out" | tr '\n' ' ')
}

run_scenario() { # NAME [MEMMODE]: testpmd, then fulcrum once per METHODS, 1 worker.
    local name=$1 pcap=$RUN/$1.pcap pool mm tag tp busy= row
    mkpcap "$name" "$pcap" || return 1
    pool=$(pool_for "$FRAMES")
    mm=${2:-$(mem_for "$pool")}
    tag=$name-$mm
    fc_say "-- $name ($FRAMES frames per pass, $FLOWS flows, mbuf pool $pool, $mm)"

    wait_quiet
    fc_say "   load before testpmd: $(cut -d' ' -f1-3 /proc/loadavg)"
    run_testpmd "$pcap" "$pool" "$mm" "$tag"
    busy=$BUSY
    tp=$TP_PPS
    fc_say "   testpmd macswap : $(mpps "$tp") Mpps  [$TP_NOTE]"
    NOTES+=("$tag testpmd: $TP_NOTE")

    local -A pps=()
    local m
    for m in $METHODS; do
        wait_quiet
        fc_say "   load before fulcrum $m: $(cut -d' ' -f1-3 /proc/loadavg)"
        run_fulcrum "$m" "$pcap" "$pool" "$mm" "$FLOWS" "$tag-$m"
        [ -n "$BUSY" ] && busy=busy
        pps[$m]=$FC_PPS
        fc_say "   fulcrum $(printf '%-7s' "$m") : $(mpps "$FC_PPS") Mpps = $(ratio "$FC_PPS" "$tp") x testpmd  [$FC_NOTE]"
        fc_say "     first pass: ${FC_NEWCONN:-n/a} new conns/s (${FC_FP_SAMPLES:-0} samples inside the pass, all created: ${FC_FP_REACHED:-?}); $FC_RSS_NOTE"
        NOTES+=("$tag fulcrum $m: $FC_NOTE; $FC_RSS_NOTE, ${FC_RSS_PER_CONN:-?} B per new conn; VmRSS after the window ${FC_RSS_KB:-?} kB")
        NEWCONN_ROWS+=("| $name | $mm | $m | ${FC_NEWCONN:-n/a} | ${FC_FP_SAMPLES:-0} |")
        [ -n "$FC_NEWCONN" ] &&
            echo "new_conns_per_s_per_core,$name,fulcrum-$m,$FC_NEWCONN,conns/s,first pass; ${FC_FP_SAMPLES:-0} samples" >>"$METRICS"
        if [ "$m" = nat ] && [ "$FLOWS" -ge 1000000 ] && [ -n "$FC_RSS_PER_CONN" ]; then
            MEM_ROWS+=("| RSS growth while connections become live ($name, NAT) | $FC_RSS_PER_CONN | $FC_RSS_NOTE |")
            echo "bytes_per_live_conn,$name,fulcrum-nat,$FC_RSS_PER_CONN,bytes,$FC_RSS_NOTE" >>"$METRICS"
        fi
    done
    row="$name|$mm|$(mpps "$tp")"
    for m in $METHODS; do row+="|$(mpps "${pps[$m]}")|$(ratio "${pps[$m]}" "$tp")"; done
    ROWS+=("$row|${busy:-ok}")
    local sw
    sw=$(sweep_of "$name")
    # A forced memory mode is the --no-huge comparison, not a sweep point.
    [ -n "${2:-}" ] && sw=nohuge-compare
    csv_row "$sw" "$name" "$FLOWS" 1 "$mm" testpmd "$tp" "$tp" "$busy"
    for m in $METHODS; do
        csv_row "$sw" "$name" "$FLOWS" 1 "$mm" "fulcrum-$m" "${pps[$m]}" "$tp" "$busy"
    done
    if [ -z "${TP1[$name]:-}" ]; then
        TP1[$name]=$tp
        for m in $METHODS; do FC1["$name $m"]=${pps[$m]}; done
        FLOWS_OF[$name]=$FLOWS POOL_OF[$name]=$pool MEM_OF[$name]=$mm
    fi
}

# eff A B: scaling efficiency A / B with 2 decimals.
eff() { if [ -n "${1:-}" ] && [ -n "${2:-}" ]; then awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; else echo -; fi; }

run_scaling() { # NAME: the same scenario with 2 workers / 2 forwarding cores.
    local name=$1 pool mm tag tp busy= m parts
    [ -n "${TP1[$name]:-}" ] || run_scenario "$name" || return 1
    mkpcap "$name" "$RUN/$name-split.pcap" --owners 2 || return 1
    parts=$PARTS
    pool=$(pool_for "$FRAMES")
    mm=$(mem_for "$pool")
    tag=$name-$mm-2w
    fc_say "-- $name, 2 workers ($FRAMES frames split by flow owner: $parts; mbuf pool $pool, $mm)"
    fc_say "   NOTE: this VM has $(nproc) CPUs: the 2 workers (testpmd: 2 forwarding cores) run on"
    fc_say "   lcore 1 = CPU 1 and lcore 2 = CPU 0, sharing CPU 0 with the main lcore and the samplers."
    wait_quiet
    run_testpmd "$parts" "$pool" "$mm" "$tag" 2
    busy=$BUSY
    tp=$TP_PPS
    fc_say "   testpmd macswap, 2 cores: $(mpps "$tp") Mpps  [$TP_NOTE]"
    NOTES+=("$tag testpmd (2 cores): $TP_NOTE")
    csv_row workers "$name" "$FLOWS" 1 "${MEM_OF[$name]}" testpmd "${TP1[$name]}" "${TP1[$name]}"
    csv_row workers "$name" "$FLOWS" 2 "$mm" testpmd "$tp" "$tp" "$busy"
    SCALE_ROWS+=("| testpmd macswap (1 → 2 forwarding cores) | $(mpps "${TP1[$name]}") | $(mpps "$tp") | $(eff "$tp" "${TP1[$name]}") | - |")
    echo "scaling_efficiency,$name,testpmd,$(eff "$tp" "${TP1[$name]}"),x,2 cores / 1 core" >>"$METRICS"
    for m in $METHODS; do
        wait_quiet
        run_fulcrum "$m" "$parts" "$pool" "$mm" "$FLOWS" "$tag-$m" 2
        [ -n "$BUSY" ] && busy=busy
        fc_say "   fulcrum $m, 2 workers: $(mpps "$FC_PPS") Mpps  [$FC_NOTE]"
        NOTES+=("$tag fulcrum $m (2 workers): $FC_NOTE")
        local one=${FC1["$name $m"]}
        csv_row workers "$name" "$FLOWS" 1 "${MEM_OF[$name]}" "fulcrum-$m" "$one" "${TP1[$name]}"
        csv_row workers "$name" "$FLOWS" 2 "$mm" "fulcrum-$m" "$FC_PPS" "$tp" "$busy"
        SCALE_ROWS+=("| fulcrum $m (1 → 2 workers) | $(mpps "$one") | $(mpps "$FC_PPS") | $(eff "$FC_PPS" "$one") | $(ratio "$FC_PPS" "$tp") |")
        echo "scaling_efficiency,$name,fulcrum-$m,$(eff "$FC_PPS" "$one"),x,2 workers / 1 worker" >>"$METRICS"
    done
}

run_capacity_memory() { # fulcrum NAT, 1k scenario, conn_table_size 1048576 vs 1024.
    local name=nat-established-1k pcap=$RUN/nat-established-1k.pcap pool mm saved=$CONN_TABLE_SIZE
    local -A rss=()
    local size
    [ -f "$pcap" ] || mkpcap "$name" "$pcap" || return 1
    pool=$(pool_for 32000)
    mm=$(mem_for "$pool")
    fc_say "-- memory per connection of capacity: fulcrum NAT, $name, conn_table_size 1048576 vs 1024"
    for size in 1048576 1024; do
        CONN_TABLE_SIZE=$size
        wait_quiet
        run_fulcrum nat "$pcap" "$pool" "$mm" 1000 "mem-$size"
        rss[$size]=$FC_RSS_KB
        fc_say "   conn_table_size $size: VmRSS ${FC_RSS_KB:-?} kB  [$FC_NOTE]"
    done
    CONN_TABLE_SIZE=$saved
    if [ -n "${rss[1048576]}" ] && [ -n "${rss[1024]}" ]; then
        local b
        b=$(awk -v a="${rss[1048576]}" -v c="${rss[1024]}" 'BEGIN { printf "%.1f", (a - c) * 1024 / (1048576 - 1024) }')
        MEM_ROWS+=("| capacity: (RSS at conn_table_size 1048576 − RSS at 1024) ÷ 1047552 | $b | VmRSS ${rss[1048576]} kB vs ${rss[1024]} kB, 1000 live connections in both |")
        echo "bytes_per_conn_capacity,$name,fulcrum-nat,$b,bytes,VmRSS ${rss[1048576]} kB vs ${rss[1024]} kB" >>"$METRICS"
    fi
}

T0=$SECONDS
for s in $SCENARIOS; do
    run_scenario "$s"
done
if [ "$NOHUGE_COMPARE" = 1 ]; then
    run_scenario nat-established-1k nohuge
fi
[ -n "$SCALE_SCENARIO" ] && run_scaling "$SCALE_SCENARIO"
[ "$MEMORY_SWEEP" = 1 ] && run_capacity_memory
if [ "$PERF" = 1 ] && ! command -v perf >/dev/null; then
    fc_say "-- profile skipped: perf is not installed (apt-get install -y linux-perf)"
elif [ "$PERF" = 1 ]; then
    pcap=$RUN/nat-established-1k.pcap
    [ -f "$pcap" ] || "$MKPCAP" "$ROOT/pktgen-scenarios/nat-established-1k.ron" "$pcap" >/dev/null
    pool=$(pool_for 32000)
    # NAT's profile keeps the names perf-perf.data / perf-top.txt of the
    # older runs; another method's is perf-perf-<method>.data /
    # perf-top-<method>.txt.
    for m in $PERF_METHODS; do
        PERF_TAG=perf
        [ "$m" != nat ] && PERF_TAG=perf-$m
        top=$RUN/perf-top.txt
        [ "$m" != nat ] && top=$RUN/perf-top-$m.txt
        fc_say "-- profile: fulcrum $(label "$m"), nat-established-1k, $MAIN_MEM"
        wait_quiet
        run_fulcrum "$m" "$pcap" "$pool" "$(mem_for "$pool")" 1000 "$PERF_TAG"
        PERF_MPPS[$m]=$(mpps "$FC_PPS")
        fc_say "   during perf: $(mpps "$FC_PPS") Mpps"
        perf report -i "$RUN/perf-$PERF_TAG.data" --stdio --no-children --sort symbol 2>/dev/null |
            grep -E '^ +[0-9.]+%' | sed 's/[ -]*$//' | head -n 15 >"$top"
        [ "$m" = nat ] && perf report -i "$RUN/perf-$PERF_TAG.data" --stdio --no-children --sort dso 2>/dev/null |
            grep -E '^ +[0-9.]+%' | sed 's/[ -]*$//' | head -n 8 >"$RUN/perf-dso.txt"
        if [ -s "$top" ]; then
            sed 's/^/   /' "$top"
        else
            fc_say "   perf recorded nothing (see $RUN/perf-record.log); on a VM without"
            fc_say "   perf events use valgrind --tool=callgrind on the criterion bench"
        fi
    done
fi

# --- report ---------------------------------------------------------------
{
    echo "Run $P, $(date -u '+%Y-%m-%d %H:%M UTC'), git $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')" \
        "(working tree $(git -C "$ROOT" status --porcelain 2>/dev/null | grep -c . ) changed files)," \
        "fulcrum built $(stat -c %y "$FULCRUM" | cut -d. -f1), window ${WINDOW_S} s after ${WARMUP_S} s warm-up," \
        "conn_table_size ${CONN_TABLE_SIZE:-1048576}, load average $(cut -d' ' -f1-3 /proc/loadavg) at the end."
    echo
    hdr="| scenario | memory | testpmd macswap Mpps |" sep="|---|---|---:|"
    for m in $METHODS; do
        hdr+=" fulcrum $(label "$m") Mpps | $(label "$m") / testpmd |"
        sep+="---:|---:|"
    done
    echo "$hdr other fulcrum running |"
    echo "$sep---|"
    for r in "${ROWS[@]}"; do echo "| ${r//|/ | } |"; done
    echo
    if [ "${#SCALE_ROWS[@]}" -gt 0 ]; then
        echo "Workers sweep, $SCALE_SCENARIO: scaling efficiency = 2-worker Mpps ÷ 1-worker Mpps of the same program." \
            "The 2-worker input is the same pass split by fulcrum's flow owner, one pcap per RX queue." \
            "**This VM has $(nproc) CPUs: the second worker (and testpmd's second forwarding core) shares CPU 0 with the main lcore and the samplers.**"
        echo
        echo "| program | 1 worker Mpps | 2 workers Mpps | scaling efficiency | 2-worker / testpmd 2 cores |"
        echo "|---|---:|---:|---:|---:|"
        printf '%s\n' "${SCALE_ROWS[@]}"
        echo
    fi
    if [ "${#MEM_ROWS[@]}" -gt 0 ]; then
        echo "Memory per connection (VmRSS of /proc/PID/status):"
        echo
        echo "| measure | bytes per connection | detail |"
        echo "|---|---:|---|"
        printf '%s\n' "${MEM_ROWS[@]}"
        echo
    fi
    echo "First-pass connection creation, 1 worker, so per core (conns_created slope while the file's first pass is read; n/a = fewer than 2 samples inside the pass):"
    echo
    echo "| scenario | memory | method | new conns/s | samples |"
    echo "|---|---|---|---:|---:|"
    printf '%s\n' "${NEWCONN_ROWS[@]}"
    echo
    for m in $PERF_METHODS; do
        top=$RUN/perf-top.txt
        [ "$m" != nat ] && top=$RUN/perf-top-$m.txt
        [ -s "$top" ] || continue
        echo "perf record -e cpu-clock -g, fulcrum $(label "$m"), nat-established-1k, ${PERF_MPPS[$m]:-?} Mpps while sampled (top symbols, self time):"
        echo
        echo '```text'
        cat "$top"
        echo '```'
        echo
    done
    echo "Notes per run:"
    echo
    for n in "${NOTES[@]}"; do echo "- $n"; done
    echo
    if [ "${#CHECK_FAILS[@]}" = 0 ]; then
        echo "Checks (\`checks.csv\`): all $CHECK_N passed (per fulcrum run: window rx_pkts = tx_pkts, drops = 0, conns_created = flows, rr spread exact, sampled, exit status 0; per testpmd run: $WINDOW_S stats periods, TX-dropped 0)."
    else
        echo "Checks (\`checks.csv\`): **${#CHECK_FAILS[@]} of $CHECK_N FAILED**:"
        echo
        for f in "${CHECK_FAILS[@]}"; do echo "- $f"; done
    fi
} >"$RUN/results.md"
fc_say ""
fc_say "== results (one-way frames/s out of net_null0; window ${WINDOW_S} s after ${WARMUP_S} s warm-up)"
{
    hdr="scenario|memory|testpmd_Mpps"
    for m in $METHODS; do hdr+="|${m}_Mpps|$m/tp"; done
    echo "$hdr|other_fulcrum"
    printf '%s\n' "${ROWS[@]}"
} | column -t -s '|'
if [ "${#SCALE_ROWS[@]}" -gt 0 ]; then
    fc_say "-- workers sweep ($SCALE_SCENARIO; 2 workers share CPU 0 with the main lcore on this $(nproc)-CPU VM)"
    printf '%s\n' "${SCALE_ROWS[@]}"
fi
[ "${#MEM_ROWS[@]}" -gt 0 ] && { fc_say "-- memory per connection"; printf '%s\n' "${MEM_ROWS[@]}"; }
fc_say "(markdown: $RUN/results.md; CSV: $CSV, $METRICS, $CHECKS; total $((SECONDS - T0)) s)"
if [ "${#CHECK_FAILS[@]}" -gt 0 ]; then
    fc_err "pipeline: ${#CHECK_FAILS[@]} of $CHECK_N checks FAILED:"
    printf '  %s\n' "${CHECK_FAILS[@]}" >&2
    exit 1
fi
fc_say "pipeline: all $CHECK_N checks passed ($CHECKS)"
