#!/usr/bin/env bash
# scripts/dpdk-dumpcap.sh ARG...: runs Debian's dpdk-dumpcap against a
# running fulcrum, e.g.
#   scripts/dpdk-dumpcap.sh --file-prefix=fulcrum -i net_af_packet0 -w cap.pcapng -c 100
#
# Layer: ops tooling. Why a wrapper: dpdk-dumpcap is a DPDK secondary
# process built against Debian's shared DPDK, and EAL makes it load every
# driver in /usr/lib/x86_64-linux-gnu/dpdk/pmds-23.0 (its compiled-in plugin
# directory; dumpcap passes no `-d` and EAL reads no variable for it).
# fulcrum links only the drivers it uses, statically. A secondary process
# must register exactly what the primary registered: with Debian's ~190
# drivers it asks for shared tail queues fulcrum never created (EAL:
# "Cannot initialize tailq: RTE_REORDER", exit 1), and its mempool drivers
# would number the mempool ops differently from fulcrum (DPDK requires the
# same ops indices in both processes; the primary dereferences the index
# of dumpcap's pool when it copies a packet). So this runs dpdk-dumpcap in
# a private mount namespace (`unshare -m`: nothing leaks to the host) where
# the plugin directory holds only the drivers hwinit/build.rs links
# (FULCRUM_PMDS below; keep the two lists equal), copied from Debian's.
# Needs root (mount namespace) and the dpdk-dev package. Exits with
# dpdk-dumpcap's status.

set -euo pipefail
PMD_DIR=/usr/lib/x86_64-linux-gnu/dpdk/pmds-23.0
# hwinit/build.rs STATIC_RTE_LIBS, the driver part.
FULCRUM_PMDS=(net_af_packet net_af_xdp net_pcap net_null net_ring net_tap mempool_ring bus_pci bus_vdev)

if [ ! -d "$PMD_DIR" ] || ! command -v dpdk-dumpcap >/dev/null; then
    echo "dpdk-dumpcap.sh: dpdk-dumpcap or $PMD_DIR missing: apt-get install dpdk-dev (make deps)" >&2
    exit 1
fi
tmp=$(mktemp -d /tmp/fulcrum-pmds.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
for d in "${FULCRUM_PMDS[@]}"; do
    cp "$PMD_DIR/librte_$d.so.23.0" "$tmp/"
    # Drivers name each other by soname (net_* need bus_vdev.so.23), found
    # through /usr/lib/x86_64-linux-gnu's links into this directory.
    ln -s "librte_$d.so.23.0" "$tmp/librte_$d.so.23"
done
# The inner shell binds the short list over the plugin directory, then
# runs dumpcap in the foreground so signals (Ctrl-C) reach it.
# shellcheck disable=SC2016 # expanded by the inner bash
unshare -m bash -c 'mount --bind "$1" "$2" && shift 2 && exec dpdk-dumpcap "$@"' \
    dpdk-dumpcap.sh "$tmp" "$PMD_DIR" "$@"
