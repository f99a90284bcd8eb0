#!/usr/bin/env bash
# scripts/deps.sh (`make deps`): installs what the build, the demo and the
# tests need, only when it is missing.
#
# Layer: machine setup (Debian 12, root). Idempotent and quiet: when every
# package is installed it prints one line and touches nothing; otherwise it
# runs `apt-get update` once and installs only the missing packages,
# non-interactively (tshark's debconf question is pre-answered). It also
# checks that cargo exists and says so in one line if not.
# Exits 1 if an install failed or cargo is missing.

set -euo pipefail

# Build: DPDK 22.11 and the libraries its static drivers link; bindgen
# (clang, libclang-dev); pcap. Tests: nginx (real servers), curl (client),
# ping (VIP check), scapy + tshark (independent packet checks), iproute2 +
# ethtool (namespaces, veth offloads), procps (sysctl), systemd
# (systemd-analyze verify of deploy/systemd/fulcrum.service). Benchmarks:
# fonts-dejavu-core (the TTF fulcrum-plot draws its text with). Metrics
# tests: prometheus (promtool and a real server), chromium (the status page
# in a headless browser). High availability: keepalived (the VRRP peer of
# the interop tests), resource-agents (ocf-tester and ocf-shellfuncs for the
# Pacemaker agent deploy/ocf/fulcrum) and libxml2-utils (the xmllint
# ocf-tester checks its meta-data with), nftables (blocking adverts one way
# in the split-brain test).
PKGS=(libdpdk-dev dpdk-dev nginx-light curl clang libclang-dev libpcap-dev pkg-config
    python3-scapy tshark iproute2 ethtool libnuma-dev libbpf-dev libxdp-dev libelf-dev
    libfdt-dev libbsd-dev iputils-ping procps fonts-dejavu-core prometheus chromium systemd
    keepalived resource-agents libxml2-utils nftables)

installed() {
    [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" = "install ok installed" ]
}

missing=()
for p in "${PKGS[@]}"; do
    if [ "$p" = nginx-light ]; then
        # Any nginx flavour will do; prefer the light one when none is there.
        command -v nginx >/dev/null 2>&1 && continue
    fi
    installed "$p" || missing+=("$p")
done

status=0
if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
        echo "deps: missing ${missing[*]}; run 'make deps' as root" >&2
        exit 1
    fi
    echo "deps: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    for i in "${!missing[@]}"; do
        if [ "${missing[$i]}" = nginx-light ] && ! apt-cache show nginx-light >/dev/null 2>&1; then
            echo "deps: nginx-light not available here, installing nginx"
            missing[i]=nginx
        fi
    done
    echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
    if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >/tmp/fulcrum-deps.log 2>&1; then
        tail -n 20 /tmp/fulcrum-deps.log >&2
        echo "deps: apt-get install failed (full log: /tmp/fulcrum-deps.log)" >&2
        status=1
    else
        echo "deps: installed ${#missing[@]} package(s)"
    fi
else
    echo "deps: all ${#PKGS[@]} packages present"
fi

if ! command -v cargo >/dev/null 2>&1 && [ ! -x "$HOME/.cargo/bin/cargo" ]; then
    echo "deps: cargo not found: install a Rust toolchain (rustup) and put cargo on PATH" >&2
    status=1
fi
exit $status
