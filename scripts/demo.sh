#!/usr/bin/env bash
# scripts/demo.sh (`make demo`): fulcrum balancing real HTTP traffic between
# network namespaces, in NAT and in DR mode, one worker each.
#
# Layer: ops demo. For each mode: build the namespace topology
# (scripts/topo.sh), start fulcrum on net_af_packet, ping the VIP, send
# DEMO_REQUESTS (default 300) sequential `curl` requests from the client,
# then show who answered (response bodies, nginx access logs, fulcrum's
# counters), `fulcrumctl -L -n`, `fulcrumctl -L -n --stats`, per-worker
# counters and drops, and tear everything down.
# Exits 1 if any request or check failed; the last line says PASS or FAIL.
# Needs root and the release binaries (`make build`).

set -uo pipefail
# shellcheck source=scripts/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=scripts/topo.sh
. "$(dirname "$0")/topo.sh"
# shellcheck source=scripts/case.sh
. "$(dirname "$0")/case.sh"

fc_need_root || exit 1
fc_need_bins || exit 1
NREQ=${DEMO_REQUESTS:-300}
MODES=${DEMO_MODES:-nat dr}

trap case_cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

declare -A RESULT
for mode in $MODES; do
    case $mode in
    nat) title="NAT (masquerade): replies return through the director" ;;
    dr) title="DR (direct routing): replies go real server -> router -> client" ;;
    *)
        fc_err "DEMO_MODES: unknown mode '$mode'"
        exit 2
        ;;
    esac
    case_hr "fulcrum demo: $title, 1 worker"
    fc_say "client 10.0.0.2 -> VIP $TOPO_VIP:80 (rr) -> rs1..rs3 ${TOPO_RS_IPS[*]} (nginx)"
    if case_run "$mode" 1 "$NREQ" 1; then
        RESULT[$mode]=PASS
    else
        RESULT[$mode]=FAIL
        fc_say "failed checks:"
        for r in "${CASE_FAILS[@]}"; do fc_say "  - $r"; done
    fi
    fc_say ""
    fc_say "$mode: ${RESULT[$mode]}   (files: $RUN)"
    fc_say ""
done

overall=PASS
line=""
for mode in $MODES; do
    line+="$mode=${RESULT[$mode]} "
    [ "${RESULT[$mode]}" = PASS ] || overall=FAIL
done
fc_say "demo: $overall ($line$NREQ requests per mode)"
[ "$overall" = PASS ]
