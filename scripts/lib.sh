# shellcheck shell=bash
# Variables here are read by the scripts that source this file.
# shellcheck disable=SC2034
# scripts/lib.sh: helpers shared by the demo and the test scripts.
#
# Layer: test/ops tooling, outside every crate. Sourced, never executed.
# It knows where the binaries are, picks a per-run name prefix, chooses
# hugepages or --no-huge, writes fulcrum's RON config, starts fulcrum inside a
# network namespace, waits for its admin socket and stops it.
#
# Guarantees: every name it creates (namespaces, DPDK --file-prefix, hugepage
# files, /var/run/dpdk/<prefix>) starts with the run prefix `fz` + 5 hex
# digits, so two runs never collide and `make clean` can find leftovers.
# Refuses: to run without root, and to start anything when a binary is missing
# (it says which one and how to build it).

FC_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
FC_BIN_DIR=${FC_BIN_DIR:-${CARGO_TARGET_DIR:-$FC_ROOT/target}/release}
FULCRUM=$FC_BIN_DIR/fulcrum
FULCRUMCTL=$FC_BIN_DIR/fulcrumctl
# Debian's interpreter: it has scapy (python3-scapy); a pyenv python3 on PATH
# may not.
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
# Every name a run creates matches this (extended regex), see fc_new_prefix.
FC_PREFIX_RE='^fz[0-9a-f]{5}'
# Drop reasons that are expected on a veth segment shared with kernel stacks:
# IPv6/LLDP chatter, frames for other hosts on the bridge, ARP for other hosts.
FC_BENIGN_DROPS=eth_unsupported,eth_not_for_us,arp_not_for_us,not_for_us

fc_say() { printf '%s\n' "$*"; }
fc_err() { printf '%s\n' "error: $*" >&2; }

# fc_need_root: fails (status 1) unless running as root.
fc_need_root() {
    if [ "$(id -u)" != 0 ]; then
        fc_err "must run as root (network namespaces, DPDK)"
        return 1
    fi
}

# fc_need_bins: fails with one clear line per missing binary.
fc_need_bins() {
    local ok=0 b
    for b in "$FULCRUM" "$FULCRUMCTL"; do
        if [ ! -x "$b" ]; then
            fc_err "missing binary ${b#"$FC_ROOT"/}: run 'make build' (cargo build --release --workspace --bins) first"
            ok=1
        fi
    done
    return $ok
}

# fc_new_prefix: sets P to a fresh run prefix, `fz` + 5 hex digits (7 chars,
# so "${P}" + 8 more characters still fits Linux's 15-char interface names).
fc_new_prefix() {
    P=fz$(od -An -N3 -tx1 /dev/urandom | tr -d ' \n' | cut -c1-5)
}

# fc_new_run_dir NAME: sets RUN to a fresh directory for this run's configs,
# logs and sockets, under ./run (kept after the run for post-mortems; `make
# clean` removes it). Falls back to /tmp when the admin socket path would
# exceed sun_path (108 bytes).
fc_new_run_dir() {
    RUN=$FC_ROOT/run/$P-$1
    if [ $((${#RUN} + 16)) -gt 100 ]; then
        RUN=/tmp/fulcrum-run/$P-$1
    fi
    rm -rf "$RUN"
    mkdir -p "$RUN"
}

# fc_mem_choice: sets FC_MEM_ARGS (array of EAL args) and prints which memory
# mode is used. Hugepages when at least 256 free 2 MiB pages exist and a
# hugetlbfs is mounted, else `--no-huge -m 512`.
fc_mem_choice() {
    local free
    free=$(awk '/^HugePages_Free:/ {print $2}' /proc/meminfo 2>/dev/null)
    free=${free:-0}
    if [ "$free" -ge 256 ] && grep -q ' hugetlbfs ' /proc/mounts; then
        FC_MEM_ARGS=()
        fc_say "memory: hugepages ($free x 2 MiB free)"
    else
        FC_MEM_ARGS=(--no-huge -m 512)
        fc_say "memory: --no-huge -m 512 (only $free hugepages free; run 'make hugepages' to use them)"
    fi
}

# fc_ron_list ARG...: prints the arguments as a RON list of strings.
fc_ron_list() {
    local out="[" a sep=""
    for a in "$@"; do
        a=${a//\\/\\\\}
        a=${a//\"/\\\"}
        out+="$sep\"$a\""
        sep=", "
    done
    printf '%s]' "$out"
}

# fc_eal_lcores NW: prints the EAL core args and sets FC_WORKERS (RON list).
# 1 worker: `-l 0-1`, worker lcore 1. 2 workers on this 2-core machine: lcore
# 2 shares CPU 0 with the main lcore (`--lcores=0@0,1@1,2@0`).
fc_eal_lcores() {
    if [ "$1" = 1 ]; then
        FC_LCORE_ARGS=(-l 0-1)
        FC_WORKERS="[1]"
    else
        # shellcheck disable=SC2054 # one EAL argument with commas
        FC_LCORE_ARGS=(--lcores=0@0,1@1,2@0)
        FC_WORKERS="[1, 2]"
    fi
}

# fc_write_veth_config MODE NW FILE [SCHED [SERVICE_EXTRA [TOP_EXTRA]]]:
# writes the config for the namespace topology (scripts/topo.sh): af_packet
# on out0/in0, one virtual service 10.0.0.100:80/tcp over rs1..rs3 with
# scheduler SCHED (default rr), forwarding MODE (nat|dr), NW workers.
# SERVICE_EXTRA is RON text added to the service (e.g.
# `persistence_timeout: 300,`), TOP_EXTRA to the top level (e.g.
# `neighbours: [...],`). RS_EXTRA (7th) is RON text added to every real
# server (e.g. `checkers: [TCP_CHECK()],`); FC_RS (default "1 2 3") picks the
# real servers rsN. Needs P, RUN and FC_MEM_ARGS.
fc_write_veth_config() {
    local mode=$1 nw=$2 file=$3 sched=${4:-rr} svc_extra=${5:-} top_extra=${6:-} rs_extra=${7:-} eal n reals=
    fc_eal_lcores "$nw"
    eal=$(fc_ron_list "${FC_LCORE_ARGS[@]}" --no-pci "--file-prefix=$P" --log-level=lib.eal:error \
        "${FC_MEM_ARGS[@]}" \
        "--vdev=net_af_packet0,iface=out0,qpairs=$nw" "--vdev=net_af_packet1,iface=in0,qpairs=$nw")
    for n in ${FC_RS:-1 2 3}; do
        reals+="            (addr: \"10.1.0.1$n:80\", weight: 1, $rs_extra),
"
    done
    cat >"$file" <<EOF
// Generated by scripts/lib.sh for run $P: $mode, $sched, $nw worker(s).
(
    eal_args: $eal,
    workers: $FC_WORKERS,
    // Be gentle: nginx and curl share the 2 cores with the workers.
    idle_sleep_us: 50,
    admin_socket: "$RUN/fulcrum.sock",
    $top_extra
    ports: [
        (name: "outside", device: "net_af_packet0", addrs: ["10.0.0.1/24"]),
        (name: "inside",  device: "net_af_packet1", addrs: ["10.1.0.1/24"]),
    ],
    services: [
        (vip: "10.0.0.100:80", proto: "tcp", scheduler: "$sched", forwarding: "$mode",
         $svc_extra
         real_servers: [
$reals         ]),
    ],
)
EOF
}

# fc_start NS CONFIG: starts fulcrum in namespace NS (empty = root ns), stderr
# to $RUN/fulcrum.log, stdout to $RUN/fulcrum.out. Sets FC_PID (`ip netns
# exec` execs, so this is fulcrum's own pid).
fc_start() {
    local ns=$1 cfg=$2
    if [ -n "$ns" ]; then
        ip netns exec "$ns" "$FULCRUM" --config "$cfg" >"$RUN/fulcrum.out" 2>"$RUN/fulcrum.log" &
    else
        "$FULCRUM" --config "$cfg" >"$RUN/fulcrum.out" 2>"$RUN/fulcrum.log" &
    fi
    FC_PID=$!
}

# fc_ctl ARG...: fulcrumctl against this run's admin socket.
fc_ctl() {
    "$FULCRUMCTL" --socket "$RUN/fulcrum.sock" "$@"
}

# fc_json FILE: writes `fulcrumctl --json -L -n` to FILE; fails if fulcrumctl
# fails or prints something that is not JSON.
fc_json() {
    fc_ctl --json -L -n >"$1" 2>"$1.err" || return 1
    "$PY" -c 'import json,sys; json.load(open(sys.argv[1]))' "$1" 2>>"$1.err"
}

# fc_show_log: prints fulcrum's stderr and stdout (for failures).
fc_show_log() {
    fc_say "---- fulcrum stderr ($RUN/fulcrum.log) ----"
    tail -n 60 "$RUN/fulcrum.log" 2>/dev/null
    fc_say "---- fulcrum stdout (last 20 lines) ----"
    tail -n 20 "$RUN/fulcrum.out" 2>/dev/null
    fc_say "----"
}

# fc_wait_ready [SECONDS]: polls the admin socket until fulcrumctl answers
# with JSON (default 20 s). On timeout, or if fulcrum exits, prints its log
# and fails.
fc_wait_ready() {
    local limit=${1:-20} t0=$SECONDS
    while [ $((SECONDS - t0)) -lt "$limit" ]; do
        if ! kill -0 "$FC_PID" 2>/dev/null; then
            wait "$FC_PID"
            fc_err "fulcrum exited with status $? before answering on $RUN/fulcrum.sock"
            FC_PID=
            fc_show_log
            return 1
        fi
        if [ -S "$RUN/fulcrum.sock" ] && fc_json "$RUN/ready.json" 2>/dev/null; then
            fc_say "fulcrum ready (pid $FC_PID) after $((SECONDS - t0)) s"
            return 0
        fi
        sleep 0.2
    done
    fc_err "fulcrum did not answer on $RUN/fulcrum.sock within $limit s"
    fc_show_log
    return 1
}

# fc_stop: SIGTERM, then SIGKILL after 5 s. Sets FC_STATUS to the exit status
# (143/137 style when killed by a signal) and clears FC_PID. Idempotent.
fc_stop() {
    FC_STATUS=
    [ -n "${FC_PID:-}" ] || return 0
    if kill -0 "$FC_PID" 2>/dev/null; then
        kill -TERM "$FC_PID" 2>/dev/null
        local _
        for _ in $(seq 50); do
            kill -0 "$FC_PID" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$FC_PID" 2>/dev/null; then
            fc_err "fulcrum (pid $FC_PID) ignored SIGTERM for 5 s: SIGKILL"
            kill -KILL "$FC_PID" 2>/dev/null
        fi
    fi
    wait "$FC_PID" 2>/dev/null
    FC_STATUS=$?
    FC_PID=
}

# fc_dpdk_cleanup: removes this run's DPDK runtime dir and hugepage files.
fc_dpdk_cleanup() {
    [ -n "${P:-}" ] || return 0
    rm -f /dev/hugepages/"$P"* 2>/dev/null
    rm -rf /var/run/dpdk/"$P" 2>/dev/null
}

# fc_counters: starts a test suite's tally: PASS=0, FAIL=0, and defines
# `ok TEXT` and `bad TEXT`, which count one pass or failure and print one
# `  ok    TEXT` or `  FAIL  TEXT` line.
fc_counters() {
    PASS=0
    FAIL=0
    ok() { PASS=$((PASS + 1)); fc_say "  ok    $*"; }
    bad() { FAIL=$((FAIL + 1)); fc_say "  FAIL  $*"; }
}
