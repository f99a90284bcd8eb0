# shellcheck shell=bash
# scripts/topo.sh: the network-namespace test topology. Sourced (after
# scripts/lib.sh) by the demo, the e2e test and scripts/topo-check.sh.
#
# Layer: test/ops tooling. It builds, for run prefix $P:
#
#   ns ${P}cl  client 10.0.0.2/24 ─────┐
#   ns ${P}rt  router 10.0.0.254/24 ───┤ bridge brout (ns ${P}sw) ── veth ── ns ${P}dir "out0"
#              router 10.1.0.254/24 ───┤ bridge brin  (ns ${P}sw) ── veth ── ns ${P}dir "in0"
#   ns ${P}rs1..3  10.1.0.11-13/24 ────┘ (nginx :80, answers "rsN\n";
#                        serves $RUN/rsN.www/ as /data/ at TOPO_DATA_RATE)
#
# The director's out0/in0 get no IP address: DPDK net_af_packet owns them
# (outside: DIP 10.0.0.1, VIP 10.0.0.100; inside: DIP 10.1.0.1). NAT mode
# routes the real servers via 10.1.0.1; DR mode puts the VIP on their `lo`
# (arp_ignore=1, arp_announce=2) and routes them via the router, so replies
# go real server -> router -> client without the director.
#
# Guarantees: checksum and segmentation offloads are off on every veth end
# (a veth sender with TX checksum offload hands af_packet partial checksums);
# IPv6 is off in every namespace so the kernels do not chatter; MACs are
# fixed so captures read easily; topo_down removes everything topo_up made
# and is safe to call twice or after a partial topo_up.
# Refuses: nothing is created in the root namespace.

TOPO_VIP=10.0.0.100
TOPO_CLIENT=10.0.0.2
TOPO_RS_IPS=(10.1.0.11 10.1.0.12 10.1.0.13)
# nginx `limit_rate` (bytes/s, k = 1024) of each download from /data/.
TOPO_DATA_RATE=1536k
# Fixed MACs: 02:fc:00:00:<subnet>:<host>.
TOPO_MAC_OUT0=02:fc:00:00:00:01
TOPO_MAC_IN0=02:fc:00:00:01:01

# topo_nslist: prints this run's namespaces.
topo_nslist() {
    printf '%s\n' "${P}cl" "${P}rt" "${P}sw" "${P}dir" "${P}rs1" "${P}rs2" "${P}rs3"
}

# topo_x NS CMD...: runs CMD in namespace ${P}NS.
topo_x() {
    local ns=$1
    shift
    ip netns exec "${P}$ns" "$@"
}

# topo_noofl NS IFACE: turns checksum/segmentation offloads off on a veth end.
topo_noofl() {
    topo_x "$1" ethtool -K "$2" tx off rx off tso off gso off gro off >/dev/null 2>&1
}

# topo_veth NS1 IF1 MAC1 NS2 IF2: a veth pair IF1 (in ${P}NS1, MAC1) <-> IF2
# (in ${P}NS2), both up, offloads off.
topo_veth() {
    ip link add dev "$2" netns "${P}$1" address "$3" type veth peer name "$5" netns "${P}$4" || return 1
    topo_noofl "$1" "$2"
    topo_noofl "$4" "$5"
    topo_x "$1" ip link set "$2" up
    topo_x "$4" ip link set "$5" up
}

# topo_up MODE: builds the topology for MODE (nat|dr) and starts nginx on the
# real servers. Needs P and RUN. Fails (status 1) on the first error.
topo_up() {
    local mode=$1 ns n ip
    case $mode in nat | dr) ;; *)
        fc_err "topo_up: mode must be nat or dr, not '$mode'"
        return 1
        ;;
    esac
    for ns in $(topo_nslist); do
        ip netns add "$ns" || return 1
        ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 \
            net.ipv6.conf.default.disable_ipv6=1 >/dev/null || return 1
        ip netns exec "$ns" ip link set lo up || return 1
    done

    # Switch: two plain bridges (no STP, so ports forward at once).
    topo_x sw ip link add brout type bridge stp_state 0 mcast_snooping 0 || return 1
    topo_x sw ip link add brin type bridge stp_state 0 mcast_snooping 0 || return 1
    topo_x sw ip link set brout up
    topo_x sw ip link set brin up

    topo_veth cl eth0 02:fc:00:00:00:02 sw cl || return 1
    topo_veth rt eout 02:fc:00:00:00:fe sw rto || return 1
    topo_veth rt ein 02:fc:00:00:01:fe sw rti || return 1
    topo_veth dir out0 "$TOPO_MAC_OUT0" sw dout || return 1
    topo_veth dir in0 "$TOPO_MAC_IN0" sw din || return 1
    for n in 1 2 3; do
        topo_veth "rs$n" eth0 "02:fc:00:00:01:1$n" sw "rs$n" || return 1
    done
    for ns in cl rto dout; do topo_x sw ip link set "$ns" master brout || return 1; done
    for ns in rti din rs1 rs2 rs3; do topo_x sw ip link set "$ns" master brin || return 1; done

    # Director: DPDK owns out0/in0; the kernel keeps no address and no ARP
    # on them. Its own traffic goes over fulcrum's TAP interfaces (fc-*,
    # the exception path), which hold the DIPs; strict reverse-path
    # filtering makes the kernel drop what it would otherwise also take in
    # straight from out0/in0 (af_packet sees a frame before the IP stack,
    # and no route leads back out of out0/in0), so nothing arrives twice.
    topo_x dir sysctl -qw net.ipv4.conf.all.rp_filter=1 || return 1
    for ns in out0 in0; do
        topo_x dir sysctl -qw "net.ipv6.conf.$ns.disable_ipv6=1" "net.ipv4.conf.$ns.rp_filter=1" || return 1
        topo_x dir ip link set "$ns" arp off || return 1
    done

    # Client: on-link with the VIP (the director answers ARP for it).
    topo_x cl ip addr add "$TOPO_CLIENT/24" dev eth0 || return 1
    topo_x cl sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.eth0.rp_filter=0

    # Router: forwards between the two subnets; DR replies enter it from the
    # inside with the VIP (an outside address) as source, hence rp_filter=0.
    topo_x rt ip addr add 10.0.0.254/24 dev eout || return 1
    topo_x rt ip addr add 10.1.0.254/24 dev ein || return 1
    topo_x rt sysctl -qw net.ipv4.ip_forward=1 net.ipv4.conf.all.rp_filter=0 \
        net.ipv4.conf.default.rp_filter=0 net.ipv4.conf.eout.rp_filter=0 \
        net.ipv4.conf.ein.rp_filter=0 || return 1

    for n in 1 2 3; do
        ip=${TOPO_RS_IPS[$((n - 1))]}
        topo_x "rs$n" ip addr add "$ip/24" dev eth0 || return 1
        if [ "$mode" = nat ]; then
            topo_x "rs$n" ip route add default via 10.1.0.1 || return 1
        else
            topo_x "rs$n" ip addr add "$TOPO_VIP/32" dev lo || return 1
            topo_x "rs$n" sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2 \
                net.ipv4.conf.eth0.arp_ignore=1 net.ipv4.conf.eth0.arp_announce=2 || return 1
            topo_x "rs$n" ip route add default via 10.1.0.254 || return 1
        fi
    done
    topo_nginx_start || return 1
}

# topo_nginx_start: one nginx per real server, own config/pid/logs in $RUN.
topo_nginx_start() {
    local n
    for n in 1 2 3; do
        mkdir -p "$RUN/rs$n.tmp" "$RUN/rs$n.www"
        cat >"$RUN/rs$n.nginx.conf" <<EOF
# Real server rs$n of run $P (scripts/topo.sh).
user root;
daemon on;
worker_processes 1;
pid $RUN/rs$n.pid;
error_log $RUN/rs$n.error.log warn;
events { worker_connections 512; }
http {
    access_log $RUN/rs$n.access.log;
    client_body_temp_path $RUN/rs$n.tmp;
    server {
        listen 80;
        location / { return 200 "rs$n\n"; }
        # Files a case puts in \$RUN/rs$n.www (live-delete's download),
        # paced by the server so the bytes cross the director over time.
        location /data/ { alias $RUN/rs$n.www/; limit_rate $TOPO_DATA_RATE; }
    }
}
EOF
        : >"$RUN/rs$n.access.log"
        if ! topo_x "rs$n" nginx -e "$RUN/rs$n.error.log" -c "$RUN/rs$n.nginx.conf" 2>"$RUN/rs$n.start.err"; then
            fc_err "nginx rs$n did not start:"
            cat "$RUN/rs$n.start.err" "$RUN/rs$n.error.log" 2>/dev/null >&2
            return 1
        fi
    done
}

# topo_nginx_stop: stops the real servers' nginx (SIGQUIT = graceful, then
# SIGKILL of whatever is left in their namespaces).
topo_nginx_stop() {
    local n pid _
    for n in 1 2 3; do
        pid=$(cat "$RUN/rs$n.pid" 2>/dev/null) || continue
        kill -QUIT "$pid" 2>/dev/null
        for _ in $(seq 30); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
    done
}

# topo_access_count N: requests logged by real server rsN's nginx.
topo_access_count() {
    if [ -f "$RUN/rs$1.access.log" ]; then
        wc -l <"$RUN/rs$1.access.log" | tr -d ' '
    else
        echo 0
    fi
}

# topo_down: stops nginx, kills whatever still runs in this run's namespaces
# and deletes them. Safe after a partial topo_up and when called twice.
topo_down() {
    local ns pids
    [ -n "${P:-}" ] || return 0
    [ -n "${RUN:-}" ] && topo_nginx_stop
    for ns in $(topo_nslist); do
        ip netns list 2>/dev/null | grep -q "^$ns\b" || continue
        pids=$(ip netns pids "$ns" 2>/dev/null)
        if [ -n "$pids" ]; then
            # shellcheck disable=SC2086
            kill -KILL $pids 2>/dev/null
            sleep 0.2
        fi
        ip netns del "$ns" 2>/dev/null
    done
}

# topo_curl_loop COUNT OUTFILE: COUNT sequential `curl -s -m 5` to the VIP
# from the client namespace; one line per request into OUTFILE: the response
# body, or "FAIL <curl exit status>". Bounded: at most 5 s per request and
# COUNT*5+30 s in all.
topo_curl_loop() {
    local count=$1 out=$2
    : >"$out"
    # shellcheck disable=SC2016 # expanded by the inner bash, from its args
    timeout $((count * 5 + 30)) ip netns exec "${P}cl" bash -c '
        for i in $(seq "$1"); do
            if body=$(curl -s -m 5 "http://$2/"); then
                printf "%s\n" "$body"
            else
                echo "FAIL $?"
            fi
        done' curl-loop "$count" "$TOPO_VIP" >>"$out"
}
