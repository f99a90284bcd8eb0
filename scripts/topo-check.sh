#!/usr/bin/env bash
# scripts/topo-check.sh [nat|dr|both]: checks the namespace topology itself,
# without fulcrum, so that an e2e failure can be pinned on the director and
# not on the wiring.
#
# Layer: test tooling. For each mode it builds scripts/topo.sh's topology and
# checks: offloads are off on every veth end; the director's out0/in0 have no
# IPv4 address; every nginx answers "rsN" to curl from the router; the
# client reaches the router. Then it stands in for the director with the
# kernel:
#   nat: gives the director namespace the DIPs and ip_forward, routes the
#        client to 10.1.0.0/24 through it, and curls each real server from the
#        client: the reply must come back through 10.1.0.1 (the real server's
#        default route), i.e. the NAT wiring works both ways.
#   dr:  routes the VIP client -> router -> rs1 and curls the VIP: rs1 must
#        accept the VIP (on lo) and answer through the router, i.e. the DR
#        return path works.
# Everything added for the stand-in is removed with the topology.
# Prints `topo-check: N passed, M failed`; exits 1 if any check failed.

set -uo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=scripts/topo.sh
. "$(dirname "$0")/topo.sh"

fc_need_root || exit 1
MODES=${1:-both}
[ "$MODES" = both ] && MODES="nat dr"

PASS=0
FAIL=0
check() { # check DESCRIPTION CMD...: runs CMD, counts and prints the outcome.
    local what=$1
    shift
    if "$@" >/dev/null 2>&1; then
        PASS=$((PASS + 1))
        printf '  ok    %s\n' "$what"
    else
        FAIL=$((FAIL + 1))
        printf '  FAIL  %s\n' "$what"
    fi
}
body_is() { # body_is NS URL EXPECTED: curl from ${P}NS returns EXPECTED.
    local got
    got=$(topo_x "$1" curl -s -m 3 "$2") && [ "$got" = "$3" ]
}
offloads_off() { # offloads_off NS IF: tx/rx checksumming and TSO/GSO/GRO off.
    local k
    k=$(topo_x "$1" ethtool -k "$2") || return 1
    ! grep -E '^(tx-checksumming|rx-checksumming|tcp-segmentation-offload|generic-segmentation-offload|generic-receive-offload): on' <<<"$k"
}
no_ipv4() { ! topo_x dir ip -4 addr show dev "$1" | grep -q inet; }

cleanup() {
    topo_down
    fc_dpdk_cleanup
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

for mode in $MODES; do
    fc_new_prefix
    fc_new_run_dir "topo-$mode"
    fc_say "== topology check: $mode (prefix $P, files in $RUN)"
    if ! topo_up "$mode"; then
        FAIL=$((FAIL + 1))
        fc_say "  FAIL  topology up"
        cleanup
        continue
    fi
    for pair in cl:eth0 rt:eout rt:ein dir:out0 dir:in0 rs1:eth0 rs2:eth0 rs3:eth0 \
        sw:cl sw:rto sw:rti sw:dout sw:din sw:rs1 sw:rs2 sw:rs3; do
        check "offloads off on ${pair/:/ }" offloads_off "${pair%%:*}" "${pair#*:}"
    done
    check "director out0 has no IPv4 address" no_ipv4 out0
    check "director in0 has no IPv4 address" no_ipv4 in0
    for n in 1 2 3; do
        check "router -> rs$n nginx answers rs$n" body_is rt "http://${TOPO_RS_IPS[$((n - 1))]}/" "rs$n"
    done
    check "client -> router ping" topo_x cl ping -c 1 -W 2 10.0.0.254
    if [ "$mode" = nat ]; then
        # Kernel stand-in for the director: plain routing, no NAT.
        topo_x dir ip link set out0 arp on
        topo_x dir ip link set in0 arp on
        topo_x dir ip addr add 10.0.0.1/24 dev out0
        topo_x dir ip addr add 10.1.0.1/24 dev in0
        topo_x dir sysctl -qw net.ipv4.ip_forward=1
        topo_x cl ip route add 10.1.0.0/24 via 10.0.0.1
        for n in 1 2 3; do
            check "client -> director(kernel) -> rs$n and back via its default route 10.1.0.1" \
                body_is cl "http://${TOPO_RS_IPS[$((n - 1))]}/" "rs$n"
        done
        check "rs1 default route is via 10.1.0.1" bash -c "ip netns exec ${P}rs1 ip route show default | grep -q 'via 10.1.0.1'"
    else
        topo_x rt ip route add "$TOPO_VIP/32" via 10.1.0.11
        topo_x cl ip route add "$TOPO_VIP/32" via 10.0.0.254
        check "client -> VIP via router -> rs1 (VIP on lo), reply rs1 -> router -> client" \
            body_is cl "http://$TOPO_VIP/" rs1
        check "rs2 does not answer ARP for the VIP (arp_ignore=1)" \
            bash -c "[ \$(ip netns exec ${P}rs2 sysctl -n net.ipv4.conf.eth0.arp_ignore) = 1 ]"
    fi
    logged=$(($(topo_access_count 1) + $(topo_access_count 2) + $(topo_access_count 3)))
    if [ "$mode" = nat ]; then want=6; else want=4; fi
    check "nginx access logs hold $want requests (got $logged)" test "$logged" = "$want"
    cleanup
done

fc_say "topo-check: $PASS passed, $FAIL failed"
[ "$FAIL" = 0 ]
