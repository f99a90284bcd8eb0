#!/usr/bin/env bash
# scripts/clean.sh (part of `make clean`): removes what crashed runs of the
# demo and the tests left behind.
#
# Layer: machine cleanup. Only names matching the run-prefix pattern
# `fz` + 5 hex digits (scripts/lib.sh fc_new_prefix) are touched: network
# namespaces (after killing the processes inside them: nginx, fulcrum,
# dumpcap of those runs), DPDK runtime dirs /var/run/dpdk/fz*, hugepage files
# /dev/hugepages/fz*, and the ./run directory with the runs' logs.

ROOT=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=scripts/lib.sh
. "$ROOT/scripts/lib.sh"
RE=$FC_PREFIX_RE
n=0
for ns in $(ip netns list 2>/dev/null | awk '{print $1}' | grep -E "$RE"); do
    pids=$(ip netns pids "$ns" 2>/dev/null)
    # shellcheck disable=SC2086
    [ -n "$pids" ] && kill -KILL $pids 2>/dev/null
    ip netns del "$ns" 2>/dev/null && n=$((n + 1))
done
for d in /var/run/dpdk/*; do
    [ -e "$d" ] && basename "$d" | grep -qE "$RE" && rm -rf "$d"
done
for f in /dev/hugepages/*; do
    [ -e "$f" ] && basename "$f" | grep -qE "$RE" && rm -f "$f"
done
rm -rf "$ROOT/run" /tmp/fulcrum-run
echo "clean: removed $n leftover namespace(s), DPDK files and ./run"
