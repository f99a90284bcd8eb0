#!/usr/bin/env bash
# scripts/hugepages.sh (`make hugepages`): reserves 2 MiB hugepages for DPDK.
#
# Layer: machine setup. Asks the kernel for HUGEPAGES (default 512) 2 MiB
# pages unless that many are already reserved, mounts hugetlbfs on
# /dev/hugepages if no hugetlbfs is mounted there, and prints what it got.
# Never fails: a machine without hugepages still runs everything with
# `--no-huge` (the scripts choose, see fc_mem_choice in scripts/lib.sh).

want=${HUGEPAGES:-512}
nr=/proc/sys/vm/nr_hugepages
have=$(cat "$nr" 2>/dev/null || echo 0)
if [ "$have" -lt "$want" ]; then
    echo "$want" >"$nr" 2>/dev/null || echo "hugepages: cannot write $nr (not root, or no hugepage support)"
fi
if ! grep -qs ' /dev/hugepages hugetlbfs ' /proc/mounts; then
    mkdir -p /dev/hugepages 2>/dev/null
    mount -t hugetlbfs -o pagesize=2M nodev /dev/hugepages 2>/dev/null ||
        echo "hugepages: cannot mount hugetlbfs on /dev/hugepages"
fi
total=$(awk '/^HugePages_Total:/ {print $2}' /proc/meminfo)
free=$(awk '/^HugePages_Free:/ {print $2}' /proc/meminfo)
mounted=no
grep -qs ' /dev/hugepages hugetlbfs ' /proc/mounts && mounted=yes
echo "hugepages: ${total:-0} x 2 MiB reserved (asked for $want), ${free:-0} free, hugetlbfs on /dev/hugepages: $mounted"
if [ "${free:-0}" -ge 256 ] && [ "$mounted" = yes ]; then
    echo "hugepages: the demo and tests will use hugepages"
else
    echo "hugepages: fewer than 256 free or no mount: the demo and tests will use --no-huge -m 512"
fi
exit 0
