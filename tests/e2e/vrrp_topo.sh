# shellcheck shell=bash
# tests/e2e/vrrp_topo.sh: the two-director topology and the helpers of the
# VRRP end-to-end cases (tests/e2e/vrrp.sh) and of benches/vrrp-takeover.sh.
# Sourced after scripts/lib.sh, scripts/topo.sh and scripts/case.sh.
#
# Layer: test/ops tooling. On top of scripts/topo.sh's namespaces it adds:
#
#   ns ${P}dir   director A: out0 02:fc:00:00:00:01 (DIP 10.0.0.1), in0 02:fc:00:00:01:01 (10.1.0.1)
#   ns ${P}dir2  director B: out0 02:fc:00:00:00:03 (DIP 10.0.0.3), in0 02:fc:00:00:01:03 (10.1.0.3)
#                (veths d2out on brout, d2in on brin in ${P}sw)
#   ns ${P}ka    keepalived peer: eth0 02:fc:00:00:00:04 10.0.0.4/24 (veth ka on brout)
#   ns ${P}ka2   second keepalived: eth0 02:fc:00:00:00:05 10.0.0.5/24 (veth ka2 on brout)
#
# Director B gets the sysctls scripts/topo.sh gives A (no IPv6, strict
# rp_filter, ARP off on out0/in0: fulcrum owns them through net_af_packet
# and its kernel interfaces fc-outside/fc-inside hold the DIPs). Each
# fulcrum has its own --file-prefix (P, ${P}b), admin socket
# ($RUN/fc-ID.sock), config, stderr log ($RUN/fc-ID.log) and stdout, for ID
# a or b; both run one worker on lcore 1 (they share CPU 1).
# VRRP_MODE=nat points the real servers' default route at the floating
# inside address 10.1.0.100 (a VRRP address, not a DIP).
#
# Guarantees: vrrp_cleanup stops every fulcrum, keepalived and capture it
# started (by pid), deletes the extra namespaces and then runs
# case_cleanup; it is safe to call twice and after a partial setup. Every
# namespace name starts with the run prefix (FC_PREFIX_RE).
# Refuses: nothing is created in the root namespace.

VRRP_MAC_A=02:fc:00:00:00:01
VRRP_MAC_B=02:fc:00:00:00:03
VRRP_MAC_B_IN=02:fc:00:00:01:03
VRRP_MAC_A_IN=02:fc:00:00:01:01
VRRP_GW_IN=10.1.0.100
declare -gA VRRP_PID=() VRRP_STATUS=() KA_PID=()
VRRP_CAP_PID=
VRRP_SCRIPT_DIR=

# vrrp_nslist: this run's namespaces beyond scripts/topo.sh's.
vrrp_nslist() {
    printf '%s\n' "${P}dir2" "${P}ka" "${P}ka2"
}

# vrrp_topo_up MODE [KA_NS...]: scripts/topo.sh's topology for MODE
# (nat|dr), director B, and one keepalived namespace per KA_NS (ka, ka2).
# Fails (status 1) on the first error.
vrrp_topo_up() {
    local mode=$1 ns n k ip mac
    shift
    topo_up "$mode" || return 1
    ip netns add "${P}dir2" || return 1
    for ns in "$@"; do ip netns add "${P}$ns" || return 1; done
    for ns in dir2 "$@"; do
        topo_x "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 >/dev/null || return 1
        topo_x "$ns" ip link set lo up || return 1
    done
    topo_veth dir2 out0 "$VRRP_MAC_B" sw d2out || return 1
    topo_veth dir2 in0 "$VRRP_MAC_B_IN" sw d2in || return 1
    topo_x sw ip link set d2out master brout || return 1
    topo_x sw ip link set d2in master brin || return 1
    topo_x dir2 sysctl -qw net.ipv4.conf.all.rp_filter=1 || return 1
    for n in out0 in0; do
        topo_x dir2 sysctl -qw "net.ipv6.conf.$n.disable_ipv6=1" "net.ipv4.conf.$n.rp_filter=1" || return 1
        topo_x dir2 ip link set "$n" arp off || return 1
    done
    for k in "$@"; do
        case $k in
            ka) ip=10.0.0.4 mac=02:fc:00:00:00:04 ;;
            ka2) ip=10.0.0.5 mac=02:fc:00:00:00:05 ;;
            *)
                fc_err "vrrp_topo_up: unknown keepalived namespace '$k'"
                return 1
                ;;
        esac
        topo_veth "$k" eth0 "$mac" sw "$k" || return 1
        topo_x sw ip link set "$k" master brout || return 1
        topo_x "$k" ip addr add "$ip/24" dev eth0 || return 1
    done
    if [ "$mode" = nat ]; then
        for n in 1 2 3; do
            topo_x "rs$n" ip route replace default via "$VRRP_GW_IN" || return 1
        done
    fi
}

# vrrp_setup NAME MODE [KA_NS...]: fresh prefix and run directory, the
# memory choice and vrrp_topo_up; on failure records it, cleans up, fails.
vrrp_setup() {
    local name=$1 mode=$2
    shift 2
    fc_new_prefix
    fc_new_run_dir "$name"
    fc_say "run prefix $P, files in $RUN"
    fc_mem_choice
    if ! vrrp_topo_up "$mode" "$@" >"$RUN/topo.log" 2>&1; then
        cat "$RUN/topo.log"
        case_fail "topology setup failed (see $RUN/topo.log)"
        vrrp_cleanup
        return 1
    fi
}

# vrrp_instance_ron NAME IFACE VRID PRIO VERSION ADVERT VIP [EXTRA]: one
# `vrrp_instance` entry (RON, keepalived's knob names), state BACKUP (the
# default) or VRRP_STATE=MASTER (`state: "MASTER"`). VERSION 2 adds PASS
# authentication ("secret", keepalived's side uses the same). EXTRA is RON
# text added to the entry.
vrrp_instance_ron() {
    local auth="" st=""
    [ "$5" = 2 ] && auth='authentication: Some((auth_type: "PASS", auth_pass: "secret")),'
    [ "${VRRP_STATE:-BACKUP}" = MASTER ] && st='state: "MASTER", '
    printf '(name: "%s", '"$st"'interface: "%s", virtual_router_id: %s, priority: %s, advert_int: %s, version: %s, virtual_ipaddress: ["%s"], %s %s),\n' \
        "$1" "$2" "$3" "$4" "$6" "$5" "$7" "$auth" "${8:-}"
}

# vrrp_write_config ID MODE VRRP_RON [SVC_EXTRA]: $RUN/fc-ID.ron for
# director ID (a|b): scripts/lib.sh's config (service 10.0.0.100:80 over
# rs1..3, MODE nat|dr, 1 worker) with VRRP_RON (the `vrrp_instance: [...]`
# and `vrrp_sync_group: [...]` fields) at the top level; B gets its own
# file prefix, DIPs and admin socket. VRRP_UNICAST=1 adds keepalived's
# `unicast_peer` (the other director's DIP on the instance's interface), so
# adverts go by unicast instead of to 224.0.0.18.
vrrp_write_config() {
    local id=$1 f=$RUN/fc-$1.ron peer=3
    fc_write_veth_config "$2" 1 "$f" rr "${4:-}" "$3" || return 1
    sed -i "s|\"$RUN/fulcrum.sock\"|\"$RUN/fc-$id.sock\"|" "$f"
    if [ "${VRRP_UNICAST:-0}" = 1 ]; then
        [ "$id" = b ] && peer=1
        sed -i -e "s|interface: \"outside\", |&unicast_peer: [\"10.0.0.$peer\"], |" \
            -e "s|interface: \"inside\", |&unicast_peer: [\"10.1.0.$peer\"], |" "$f"
    fi
    if [ "$id" = b ]; then
        sed -i -e "s|--file-prefix=$P\"|--file-prefix=${P}b\"|" \
            -e 's|"10.0.0.1/24"|"10.0.0.3/24"|' -e 's|"10.1.0.1/24"|"10.1.0.3/24"|' "$f"
    fi
}

# vrrp_ns ID: the namespace of director ID (a|b).
vrrp_ns() {
    if [ "$1" = a ]; then echo "${P}dir"; else echo "${P}dir2"; fi
}

# vrrp_ctl ID ARG...: fulcrumctl against director ID's admin socket.
vrrp_ctl() {
    local id=$1
    shift
    "$FULCRUMCTL" --socket "$RUN/fc-$id.sock" "$@"
}

# vrrp_fc_start ID: starts director ID with $RUN/fc-ID.ron (stderr appended
# to $RUN/fc-ID.log, so a restart keeps the earlier lines) and waits up to
# 20 s for `fulcrumctl --vrrp --json` to answer. Sets VRRP_PID[ID]. On
# failure prints the log tail and fails.
vrrp_fc_start() {
    local id=$1 t0=$SECONDS
    rm -f "$RUN/fc-$id.sock"
    ip netns exec "$(vrrp_ns "$id")" "$FULCRUM" --config "$RUN/fc-$id.ron" >>"$RUN/fc-$id.out" 2>>"$RUN/fc-$id.log" &
    VRRP_PID[$id]=$!
    while [ $((SECONDS - t0)) -lt 20 ]; do
        if ! kill -0 "${VRRP_PID[$id]}" 2>/dev/null; then
            wait "${VRRP_PID[$id]}"
            fc_err "fulcrum $id exited with status $? before answering"
            VRRP_PID[$id]=
            tail -n 30 "$RUN/fc-$id.log"
            return 1
        fi
        if [ -S "$RUN/fc-$id.sock" ] && vrrp_ctl "$id" --vrrp --json >"$RUN/fc-$id.ready.json" 2>/dev/null &&
            "$PY" -c 'import json,sys; json.load(open(sys.argv[1]))' "$RUN/fc-$id.ready.json" 2>/dev/null; then
            fc_say "fulcrum $id ready (pid ${VRRP_PID[$id]}) after $((SECONDS - t0)) s"
            return 0
        fi
        sleep 0.2
    done
    fc_err "fulcrum $id did not answer on $RUN/fc-$id.sock within 20 s"
    tail -n 30 "$RUN/fc-$id.log"
    return 1
}

# vrrp_fc_stop ID [TERM|KILL]: stops director ID (TERM waits up to 5 s,
# then SIGKILL) and sets VRRP_STATUS[ID] to its exit status. Idempotent.
vrrp_fc_stop() {
    local id=$1 sig=${2:-TERM} pid=${VRRP_PID[$1]:-} _
    [ -n "$pid" ] || return 0
    # In braces with stderr off: bash's "Killed" job notice is not news.
    {
        kill "-$sig" "$pid"
        for _ in $(seq 50); do
            kill -0 "$pid" || break
            sleep 0.1
        done
        kill -0 "$pid" && kill -KILL "$pid"
        wait "$pid"
    } 2>/dev/null
    VRRP_STATUS[$id]=$?
    VRRP_PID[$id]=
}

# vrrp_get ID INSTANCE FIELD: one field of INSTANCE in `fulcrumctl --vrrp
# --json` of director ID (FIELD may be dotted, e.g. last_transition.reason;
# booleans print as true/false). Fails when fulcrumctl fails or the
# instance or field is missing.
vrrp_get() {
    vrrp_ctl "$1" --vrrp --json 2>/dev/null | "$PY" -c '
import json, sys
doc = json.load(sys.stdin)
for inst in doc["instances"]:
    if inst["name"] == sys.argv[1]:
        v = inst
        for k in sys.argv[2].split("."):
            v = v[k]
        print(json.dumps(v) if isinstance(v, bool) else v)
        sys.exit(0)
sys.exit(1)' "$2" "$3" 2>/dev/null
}

# vrrp_wait ID INSTANCE FIELD VALUE SECONDS: polls every 50 ms until FIELD
# of INSTANCE equals VALUE; fails after SECONDS. Prints nothing.
vrrp_wait() {
    local end
    end=$(awk -v s="$5" -v n="$(date +%s.%N)" 'BEGIN{printf "%.3f", n + s}')
    while awk -v e="$end" -v n="$(date +%s.%N)" 'BEGIN{exit !(n < e)}'; do
        [ "$(vrrp_get "$1" "$2" "$3")" = "$4" ] && return 0
        sleep 0.05
    done
    return 1
}

# vrrp_master_down VERSION ADVERT PRIO: RFC 5798 §6.1 (RFC 3768 §6.1 for
# v2, skew in seconds there) master_down_interval in seconds, 3 decimals:
# 3 * advert + (256 - PRIO) * advert / 256 (v3) or (256 - PRIO) / 256 (v2).
vrrp_master_down() {
    awk -v v="$1" -v a="$2" -v p="$3" 'BEGIN{s = (256 - p) / 256; if (v == 3) s *= a; printf "%.3f", 3 * a + s}'
}

# vrrp_cap_start FILE IFACE...: dumpcap in ${P}sw on the bridges IFACE...,
# ARP and VRRP only, into FILE; returns once the file exists (up to 5 s).
# Sets VRRP_CAP_PID.
vrrp_cap_start() {
    local f=$1 a=() i _
    shift
    for i in "$@"; do a+=(-i "$i"); done
    ip netns exec "${P}sw" dumpcap -q "${a[@]}" -f 'arp or ip proto 112' -w "$f" >"$f.log" 2>&1 &
    VRRP_CAP_PID=$!
    for _ in $(seq 50); do
        [ -s "$f" ] && return 0
        sleep 0.1
    done
    fc_err "dumpcap did not start: $(head -c 300 "$f.log")"
    return 1
}

# vrrp_cap_stop: stops the capture (SIGTERM flushes the file).
vrrp_cap_stop() {
    [ -n "$VRRP_CAP_PID" ] || return 0
    kill -TERM "$VRRP_CAP_PID" 2>/dev/null
    wait "$VRRP_CAP_PID" 2>/dev/null
    VRRP_CAP_PID=
}

# vrrp_first_garp CAP MAC IP AFTER: epoch (seconds, 6 decimals) of the
# first gratuitous ARP (sender = target = IP) from MAC in CAP later than
# AFTER (epoch seconds); prints nothing when there is none.
vrrp_first_garp() {
    tshark -r "$1" -Y "arp && eth.src==$2 && arp.src.proto_ipv4==$3 && arp.dst.proto_ipv4==$3" \
        -T fields -e frame.time_epoch 2>/dev/null | awk -v a="$4" '$1 > a {printf "%.6f\n", $1; exit}'
}

# vrrp_sub A B: prints A - B (seconds, 3 decimals).
vrrp_sub() {
    awk -v a="$1" -v b="$2" 'BEGIN{printf "%.3f", a - b}'
}

# vrrp_le A B: succeeds iff A <= B (numbers).
vrrp_le() {
    awk -v a="$1" -v b="$2" 'BEGIN{exit !(a <= b)}'
}

# vrrp_neigh NS IP: the MAC of IP in namespace ${P}NS's neighbour table.
vrrp_neigh() {
    topo_x "$1" ip neigh show "$2" | awk '{for (i = 1; i < NF; i++) if ($i == "lladdr") print $(i + 1)}'
}

# vrrp_drops ID FILE REASON...: writes `fulcrumctl --json -L -n` of director
# ID to FILE and prints the sum of the drop counters REASON... over its
# workers ("?" when fulcrumctl fails).
vrrp_drops() {
    local id=$1 f=$2 r sum=0 v
    shift 2
    vrrp_ctl "$id" --json -L -n >"$f" 2>"$f.err" || {
        echo "?"
        return
    }
    for r in "$@"; do
        v=$("$PY" "$FC_ROOT/scripts/fcjson.py" value "$f" "drops.$r" 2>/dev/null) || v=0
        sum=$((sum + ${v:-0}))
    done
    echo "$sum"
}

# vrrp_script_dir: a root-only directory under /run for notify scripts
# (they must pass enable_script_security); sets VRRP_SCRIPT_DIR.
vrrp_script_dir() {
    VRRP_SCRIPT_DIR=$(mktemp -d /run/fulcrum-e2e.XXXXXX)
    chmod 700 "$VRRP_SCRIPT_DIR"
}

# vrrp_ka_conf NS PRIO VERSION ADVERT STATE: writes $RUN/NS.conf, a
# keepalived.conf for the keepalived in ${P}NS: one vrrp_instance VI_OUT on
# eth0, vrid 51, VIP 10.0.0.100/24, PASS authentication "secret" with
# version 2, multicast, no vmac, not strict, script security on, and a
# notify script appending "<STATE> <epoch>" to $RUN/NS.state.
vrrp_ka_conf() {
    local ns=$1 auth=""
    [ -n "$VRRP_SCRIPT_DIR" ] || vrrp_script_dir
    printf '#!/bin/sh\necho "$3 $(date +%%s.%%N)" >>%s/%s.state\n' "$RUN" "$ns" >"$VRRP_SCRIPT_DIR/notify-$ns.sh"
    chmod 755 "$VRRP_SCRIPT_DIR/notify-$ns.sh"
    [ "$3" = 2 ] && auth="authentication {
        auth_type PASS
        auth_pass secret
    }"
    cat >"$RUN/$ns.conf" <<EOF
# keepalived peer $ns of run $P (tests/e2e/vrrp_topo.sh).
global_defs {
    router_id ${P}_$ns
    enable_script_security
    script_user root
}
vrrp_instance VI_OUT {
    state $5
    interface eth0
    virtual_router_id 51
    priority $2
    advert_int $4
    version $3
    $auth
    virtual_ipaddress {
        10.0.0.100/24
    }
    notify $VRRP_SCRIPT_DIR/notify-$ns.sh
}
EOF
}

# vrrp_ka_start NS: keepalived (VRRP only, in the foreground, logging to
# $RUN/NS.log, no respawn) in ${P}NS with $RUN/NS.conf and its own pid
# files. Sets KA_PID[NS] (the parent). Waits up to 5 s for the VRRP child's
# pid file.
vrrp_ka_start() {
    local ns=$1 _
    rm -f "$RUN/$ns.pid" "$RUN/$ns.vrrp.pid"
    ip netns exec "${P}$ns" keepalived -n -l -D -P -R -f "$RUN/$ns.conf" -p "$RUN/$ns.pid" \
        -r "$RUN/$ns.vrrp.pid" >>"$RUN/$ns.log" 2>&1 &
    KA_PID[$ns]=$!
    for _ in $(seq 50); do
        [ -s "$RUN/$ns.vrrp.pid" ] && return 0
        sleep 0.1
    done
    fc_err "keepalived in ${P}$ns wrote no VRRP pid file: $(tail -n 5 "$RUN/$ns.log")"
    return 1
}

# vrrp_ka_stop NS [TERM|KILL]: TERM: keepalived's orderly stop (its
# master sends priority 0). KILL: the VRRP child and the parent get
# SIGKILL at once (a crash: nothing more is sent). Removes the VIP that a
# killed keepalived leaves on eth0.
vrrp_ka_stop() {
    local ns=$1 sig=${2:-TERM} pid=${KA_PID[$1]:-} child _
    [ -n "$pid" ] || return 0
    child=$(cat "$RUN/$ns.vrrp.pid" 2>/dev/null)
    {
        if [ "$sig" = KILL ]; then
            kill -KILL ${child:+"$child"} "$pid"
        else
            kill -TERM "$pid"
        fi
        for _ in $(seq 50); do
            kill -0 "$pid" || break
            sleep 0.1
        done
        kill -0 "$pid" && kill -KILL ${child:+"$child"} "$pid"
        wait "$pid"
    } 2>/dev/null
    KA_PID[$ns]=
    topo_x "$ns" ip addr del 10.0.0.100/24 dev eth0 2>/dev/null
    return 0
}

# vrrp_ka_state NS: keepalived's last notified state in ${P}NS (MASTER,
# BACKUP, FAULT, STOP) and its epoch, or nothing.
vrrp_ka_state() {
    tail -n 1 "$RUN/$1.state" 2>/dev/null
}

# vrrp_ka_wait NS STATE SECONDS: polls the notify file every 50 ms until
# the last state is STATE; fails after SECONDS.
vrrp_ka_wait() {
    local i n
    n=$(awk -v s="$3" 'BEGIN{printf "%d", s * 20}')
    for i in $(seq "$n"); do
        [ "$(vrrp_ka_state "$1" | cut -d' ' -f1)" = "$2" ] && return 0
        sleep 0.05
    done
    [ "$(vrrp_ka_state "$1" | cut -d' ' -f1)" = "$2" ]
}

# vrrp_cleanup: stops the capture, both fulcrums, every keepalived, removes
# the extra namespaces, the notify scripts and B's DPDK files, then
# case_cleanup (A's namespace and scripts/topo.sh's). Idempotent.
vrrp_cleanup() {
    local ns id pids
    [ -n "${P:-}" ] || return 0
    vrrp_cap_stop
    for id in a b; do vrrp_fc_stop "$id" KILL; done
    for ns in "${!KA_PID[@]}"; do vrrp_ka_stop "$ns" KILL; done
    for ns in $(vrrp_nslist); do
        ip netns list 2>/dev/null | grep -q "^$ns\b" || continue
        pids=$(ip netns pids "$ns" 2>/dev/null)
        # shellcheck disable=SC2086
        [ -n "$pids" ] && kill -KILL $pids 2>/dev/null && sleep 0.2
        ip netns del "$ns" 2>/dev/null
    done
    rm -rf /var/run/dpdk/"${P}b" 2>/dev/null
    [ -n "$VRRP_SCRIPT_DIR" ] && rm -rf "$VRRP_SCRIPT_DIR"
    VRRP_SCRIPT_DIR=
    case_cleanup
}
