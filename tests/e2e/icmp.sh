# shellcheck shell=bash
# tests/e2e/icmp.sh: the end-to-end cases "udp-nat" and "pmtu". Sourced by
# tests/e2e/run.sh after scripts/lib.sh, scripts/topo.sh and scripts/case.sh,
# whose functions it reuses.
#
# Layer: system test.
#
# `udp_nat_case_run NW`: the NAT topology (scripts/topo.sh) with a UDP
# echo server (python3, /usr/bin/python3) on port 5353 of each real server,
# answering "rsN:" + the datagram (up to 65535 bytes). fulcrum balances the
# UDP service 10.0.0.100:53 (rr) to rsN:5353, and a second one,
# 10.0.0.100:54, to rs1:5999, where nothing listens. Two fulcrum runs,
# NW workers each:
#
# 1. On net_af_packet (out0/in0, as every case). The client sends
# UDP_NAT_REQUESTS (default 300) requests, each from a fresh socket (a new
# source port, so a new connection) and waits at most 2 s for its answer.
# Checks: every answer arrived, carries its own request and names a real
# server; every real server answered UDP_NAT_REQUESTS/3 ± 5 (an ephemeral
# port can repeat, and its request then joins its old connection); then a
# connected socket's datagram to VIP:54 fails with ECONNREFUSED: rs1's
# kernel sent "port unreachable" to the client, which only fulcrum's ICMP
# relay (the real servers' side, IPVS ip_vs_out_icmp) could bring back
# with VIP:54 in its quote; `icmp_errors_out` > 0; no unexpected drop;
# fulcrum exits 0.
#
# 2. Fragments, on net_tap. The client sends UDP_NAT_FRAG_REQUESTS
# (default 30) requests of 4000 bytes, then UDP_NAT_FRAG_BIG_REQUESTS
# (default 9) of 9000 bytes, each from its own fixed source port (20000+I,
# 21000+I: a new connection each) and with its own content (a seeded
# pseudo-random stream); the client's kernel cuts each into 3 or 7
# fragments at the 1500-byte MTU, the real server's kernel reassembles it,
# and its answer (4 bytes longer) is fragmented the same way by the real
# server's kernel, so fragments cross fulcrum in both NAT directions.
# Checks: every answer came back complete and byte-identical (and from the
# VIP); each real server answered COUNT/3 of each size, ± 2*NW/3 (each
# worker's rr keeps its own position; exact with one worker); fulcrum's
# `frags_first` and `frags_forwarded` (summed over workers) are > 0 and
# equal exactly the first and later fragments of all those datagrams both
# ways (2 and 4 per 4000-byte request, 2 and 12 per 9000-byte one); the
# service has one connection per request; no frag_bad, frag_no_first,
# frag_table_full, frag_encap_unsupported or ipv4_fragment drop, no
# unexpected drop; fulcrum exits 0. With 2 workers the fragments go to
# their datagram's home worker and on to the flow's owner (the redirect
# counters are printed, not asserted).
#
# Why net_tap for the fragments: DPDK 22.11's net_af_packet joins every
# queue's socket to a PACKET_FANOUT_HASH | PACKET_FANOUT_FLAG_DEFRAG group,
# so the director's kernel reassembles IPv4 fragments before the PMD reads
# them, and the whole datagram is cut to the ring's 2048-byte frame:
# fulcrum never sees a fragment there, only a truncated datagram
# (ipv4_bad_length; dpdk-dumpcap shows one 1982-byte frame with IP total
# length 4028 where the wire carried three fragments). net_tap reads the
# frames as a NIC would. fulcrum makes the TAP devices fxo0/fxi0 in the
# director's namespace; udp_nat_tap_bridge bridges them with out0/in0 (the
# TAP ends get other MACs than the ports', ARP is off on the bridges), the
# client's and the real servers' neighbour caches are flushed (the first
# run's MACs) and pings from them teach fulcrum theirs. With NW workers
# each TAP has NW queues, which the kernel fills by its flow hash
# (addresses only, for a fragment).
#
# `pmtu_case_run NW`: path-MTU discovery through fulcrum's ICMP relay, both
# directions, in one fulcrum run with two NAT services: 10.0.0.100:80 over
# rs1..rs3 and 10.0.0.100:PMTU_UP_PORT (default 8080) whose only real
# server is a far real server ${P}fs (10.8.0.2:80), reached through the
# static route 10.8.0.0/24 via 10.1.0.253.
#
# 1. The client's side (IPVS ip_vs_in_icmp), big packets from the real
# server. A far client ${P}fc (10.9.0.2) sits behind a router ${P}pr
# (10.0.0.253 on the client segment, 10.9.0.1 on the far link; fulcrum's
# static route 10.9.0.0/24 via 10.0.0.253) whose far link has MTU PMTU_MTU
# (default 1280) on the router's end (the client's end keeps 1500, so its
# SYN still offers MSS 1460). nginx on the real servers sends full
# 1500-byte segments with DF; the router cannot forward them and answers
# "fragmentation needed, MTU 1280" to their source, the VIP; fulcrum
# relays it to the real server with the quote rewritten to the real
# server's own packet; the real server's kernel lowers its path MTU to the
# client and resends. Checks: a PMTU_BYTES (default 2 MiB) download from
# the far client completes with the file's sha256; the serving real
# server's route cache shows "mtu PMTU_MTU" for 10.9.0.2 (`ip route get`);
# `icmp_errors_in` > 0.
#
# 2. The real servers' side (IPVS ip_vs_out_icmp), big packets from the
# client. A router ${P}sr (10.1.0.253 on the inside segment, brin;
# 10.8.0.1 on the far link; default route via fulcrum's inside DIP
# 10.1.0.1) stands in front of ${P}fs, its far link with MTU PMTU_MTU on
# the router's end (${P}fs's end keeps 1500, so its SYN-ACK offers MSS
# 1460). ${P}fs runs a python3 HTTP server that reads a PUT's
# Content-Length bytes and answers (and logs) their count and sha256. The
# topology's client (10.0.0.2, 1500 MTU) uploads PMTU_BYTES to
# VIP:PMTU_UP_PORT in 1500-byte DF segments; the router answers
# "fragmentation needed" to their source, the client, through its default
# route, i.e. fulcrum; fulcrum relays it to the client with the outer
# source and the quote's destination rewritten to VIP:PMTU_UP_PORT; the
# client's kernel lowers its path MTU to the VIP and resends. Checks:
# before the upload the client's route cache for the VIP shows no
# "mtu PMTU_MTU"; the upload completes (HTTP 200, PMTU_BYTES sent); the
# server received exactly PMTU_BYTES with the file's sha256 (its answer and
# its log); afterwards `ip route get 10.0.0.100` in the client's namespace
# shows "mtu PMTU_MTU"; `icmp_errors_out` grew during the upload (it is
# also read just before it).
#
# Then, for the whole run: no unexpected drop; fulcrum exits 0.
#
# Teardown always runs (case_cleanup and icmp_cleanup, both on run.sh's
# EXIT trap).

ICMP_EXTRA_NS=()

# icmp_cleanup: kills what runs in the extra namespaces and deletes them.
icmp_cleanup() {
    local ns pids
    for ns in "${ICMP_EXTRA_NS[@]}"; do
        ip netns list 2>/dev/null | grep -q "^$ns\b" || continue
        pids=$(ip netns pids "$ns" 2>/dev/null)
        # shellcheck disable=SC2086
        [ -n "$pids" ] && kill -KILL $pids 2>/dev/null
        ip netns del "$ns" 2>/dev/null
    done
    ICMP_EXTRA_NS=()
}

# icmp_write_config NW FILE TOP_EXTRA SERVICES [PMD]: the two-port config of
# scripts/lib.sh's fc_write_veth_config, with the given services. PMD
# af_packet (the default) puts the ports on out0/in0 with net_af_packet;
# tap on the TAP devices fxo0/fxi0 of net_tap, NW queues each (udp-nat's
# fragments run: udp_nat_frag_run).
icmp_write_config() {
    local nw=$1 file=$2 top_extra=$3 services=$4 pmd=${5:-af_packet} eal v0 v1
    fc_eal_lcores "$nw"
    if [ "$pmd" = tap ]; then
        v0=net_tap_fx0,iface=fxo0 v1=net_tap_fx1,iface=fxi0
    else
        v0="net_af_packet0,iface=out0,qpairs=$nw" v1="net_af_packet1,iface=in0,qpairs=$nw"
    fi
    eal=$(fc_ron_list "${FC_LCORE_ARGS[@]}" --no-pci "--file-prefix=$P" --log-level=lib.eal:error \
        "${FC_MEM_ARGS[@]}" "--vdev=$v0" "--vdev=$v1")
    cat >"$file" <<EOF
// Generated by tests/e2e/icmp.sh for run $P, $nw worker(s), $pmd.
(
    eal_args: $eal,
    workers: $FC_WORKERS,
    idle_sleep_us: 50,
    admin_socket: "$RUN/fulcrum.sock",
    icmp_rate_limit: (rate_pps: 1000, burst: 50),
    $top_extra
    ports: [
        (name: "outside", device: "${v0%%,*}", addrs: ["10.0.0.1/24"], mtu: 1500),
        (name: "inside",  device: "${v1%%,*}", addrs: ["10.1.0.1/24"]),
    ],
    services: [
$services
    ],
)
EOF
}

# The UDP echo server each real server runs (argv: name, port); bounded:
# it exits after 600 s. It reads whole datagrams up to 65535 bytes (its
# kernel reassembles the fragmented ones; 1 MiB socket buffers) and answers
# each with "rsN:" + the datagram, which its kernel fragments in turn when
# it exceeds the 1500-byte MTU.
ICMP_ECHO_PY='
import socket, sys, time
name, port = sys.argv[1], int(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
s.bind(("0.0.0.0", port))
s.settimeout(1.0)
end = time.time() + 600
while time.time() < end:
    try:
        data, peer = s.recvfrom(65535)
    except socket.timeout:
        continue
    s.sendto(name.encode() + b":" + data, peer)
'

# The client (argv: vip, port, count): one fresh socket per request, 2 s
# wait each; prints "ok rsN" or "FAIL why" per request.
ICMP_CLIENT_PY='
import socket, sys
vip, port, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for i in range(n):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2.0)
    msg = b"req-%d" % i
    try:
        s.sendto(msg, (vip, port))
        data, peer = s.recvfrom(2048)
        name, _, echo = data.partition(b":")
        if echo != msg or peer != (vip, port):
            print("FAIL wrong answer %r from %r" % (data, peer))
        else:
            print("ok " + name.decode(errors="replace"))
    except Exception as e:
        print("FAIL " + type(e).__name__)
    finally:
        s.close()
'

# The fragments client (argv: vip, port, count, size, sport): like
# ICMP_CLIENT_PY, one fresh socket per request and 2 s wait each, but
# request I is sent from source port SPORT+I (below the ephemeral range, so
# every request is a new connection for certain: rr's spread is exact) and
# is a SIZE-byte datagram ("frag-SIZE-I:" then bytes of a pseudo-random
# stream seeded with SIZE and I: every request differs), which the
# client's kernel fragments at its 1500-byte MTU. An answer must be "rsN:"
# + exactly those bytes. Prints "ok rsN SIZE SHA256[:16]" or "FAIL why"
# per request (a short or differing answer says where).
ICMP_FRAG_CLIENT_PY='
import hashlib, random, socket, sys
vip, port, n, size, sport = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
for i in range(n):
    head = b"frag-%d-%d:" % (size, i)
    msg = head + random.Random(size * 1000003 + i).randbytes(size - len(head))
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    s.settimeout(2.0)
    try:
        s.bind(("0.0.0.0", sport + i))
        s.sendto(msg, (vip, port))
        data, peer = s.recvfrom(65535)
        name, _, echo = data.partition(b":")
        if peer != (vip, port):
            print("FAIL answer from %r" % (peer,))
        elif echo != msg:
            at = next((k for k in range(min(len(echo), len(msg))) if echo[k] != msg[k]), min(len(echo), len(msg)))
            print("FAIL answer of %d bytes for %d, differs from byte %d" % (len(echo), len(msg), at))
        else:
            print("ok %s %d %s" % (name.decode(errors="replace"), len(echo), hashlib.sha256(echo).hexdigest()[:16]))
    except Exception as e:
        print("FAIL " + type(e).__name__)
    finally:
        s.close()
'

# udp_nat_frag_count LEN: into how many fragments a Linux sender with a
# 1500-byte MTU cuts a UDP datagram of LEN payload bytes (8 bytes of UDP
# header, 1480 data bytes per fragment: 1500 less a 20-byte IP header).
udp_nat_frag_count() {
    echo $((($1 + 8 + 1479) / 1480))
}

# udp_nat_tap_bridge: once fulcrum (PMD tap) has made fxo0 and fxi0 in the
# director's namespace, bridges each with the veth the topology gives that
# side (brxo: out0 + fxo0; brxi: in0 + fxi0), so frames from the bridges
# in ${P}sw reach the TAP queues unchanged. net_tap gives the kernel
# interface the port's own MAC, and a bridge keeps a port's MAC for
# itself, so the TAP ends get other MACs first; ARP is off on the bridges
# because the director's kernel holds the DIPs (on fulcrum's exception
# TAPs) and would answer for them next to fulcrum.
udp_nat_tap_bridge() {
    local s veth mac
    for s in "o out0 02:fc:00:00:00:f1" "i in0 02:fc:00:00:01:f1"; do
        read -r s veth mac <<<"$s"
        topo_x dir ip link set "fx${s}0" address "$mac" &&
            topo_x dir ip link add "brx$s" type bridge stp_state 0 mcast_snooping 0 &&
            topo_x dir ip link set "brx$s" arp off &&
            topo_x dir ip link set "$veth" master "brx$s" &&
            topo_x dir ip link set "fx${s}0" master "brx$s" &&
            topo_x dir ip link set "brx$s" up || return 1
    done
    topo_x dir ip -d link show
}

# udp_nat_frag_run NW SERVICES: udp-nat's fragments run (part 2 in the
# file's header, which says why on net_tap): a second fulcrum with
# SERVICES, the first one stopped. Fails (status 1) only if fulcrum did not
# start (then all is torn down); every failed check is a case_fail.
udp_nat_frag_run() {
    local nw=$1 services=$2 total=0 exp_first=0 exp_fwd=0 spec size cnt sport ok nfrq nfrp
    local slack=$((2 * nw / 3)) lo hi per n v line r first fwd conns
    # The first run's files, kept for post-mortems.
    for v in fulcrum.log fulcrum.out stats.json drops.txt; do
        [ -f "$RUN/$v" ] && mv "$RUN/$v" "$RUN/af_packet-$v"
    done
    icmp_write_config "$nw" "$RUN/fulcrum-tap.ron" "" "$services" tap
    case_start_fulcrum "$RUN/fulcrum-tap.ron" || return 1
    if ! udp_nat_tap_bridge >"$RUN/tap-bridge.log" 2>&1; then
        case_fail "the TAP ports could not be bridged: $(tail -n 3 "$RUN/tap-bridge.log" | paste -sd'|' -)"
        return 0
    fi
    # The real servers' and the client's caches still hold in0's and out0's
    # MACs (the first run's), and fulcrum's start-up ARP went out before the
    # bridges: a ping to the DIP from each real server and one to the VIP
    # from the client teach both sides (fulcrum learns from ARP requests).
    for n in cl rs1 rs2 rs3; do topo_x "$n" ip neigh flush all; done
    sleep 0.3
    ok=0
    for n in 1 2 3; do
        if topo_x "rs$n" ping -c 1 -W 2 10.1.0.1 >>"$RUN/tap-warmup.txt" 2>&1; then
            ok=$((ok + 1))
        else
            case_fail "fragments run: ping DIP 10.1.0.1 from rs$n failed (the TAP ports' bridges)"
        fi
    done
    if topo_x cl ping -c 1 -W 2 "$TOPO_VIP" >>"$RUN/tap-warmup.txt" 2>&1; then
        ok=$((ok + 1))
    else
        case_fail "fragments run: ping $TOPO_VIP from the client failed (the TAP ports' bridges)"
    fi
    fc_say "fragments run: fulcrum on net_tap ($nw queue(s) a port) bridged to out0/in0; $ok of 4 warm-up pings (rs1..rs3 to the DIP, client to the VIP) answered"

    for spec in "4000:${UDP_NAT_FRAG_REQUESTS:-30}:20000" "9000:${UDP_NAT_FRAG_BIG_REQUESTS:-9}:21000"; do
        IFS=: read -r size cnt sport <<<"$spec"
        total=$((total + cnt))
        timeout $((cnt * 2 + 30)) ip netns exec "${P}cl" "$PY" -c "$ICMP_FRAG_CLIENT_PY" \
            "$TOPO_VIP" 53 "$cnt" "$size" "$sport" >"$RUN/udp-frag-$size.txt" 2>"$RUN/udp-frag-$size.err"
        ok=$(grep -c "^ok rs[1-3] $size [0-9a-f]\{16\}\$" "$RUN/udp-frag-$size.txt")
        nfrq=$(udp_nat_frag_count "$size")
        nfrp=$(udp_nat_frag_count $((size + 4)))
        fc_say "udp requests of $size bytes ($nfrq fragments in, $nfrp out): $cnt sent, $ok answered complete and byte-identical"
        [ "$ok" = "$cnt" ] ||
            case_fail "$((cnt - ok)) of $cnt fragmented UDP requests of $size bytes failed: $(grep -v '^ok' "$RUN/udp-frag-$size.txt" | sort | uniq -c | head -n 3 | tr -s ' ' | paste -sd'|' -)"
        # Each worker's rr has its own position: over a worker's k requests
        # a real server gets floor(k/3) or ceil(k/3), so the sum is within
        # 2*NW/3 of CNT/3 (exact with one worker).
        lo=$((cnt / 3 - slack))
        hi=$(((cnt + 2) / 3 + slack))
        per=
        for n in 1 2 3; do
            v=$(grep -c "^ok rs$n $size " "$RUN/udp-frag-$size.txt")
            per="$per rs$n=$v"
            { [ "$v" -ge "$lo" ] && [ "$v" -le "$hi" ]; } ||
                case_fail "rs$n answered $v fragmented UDP requests of $size bytes, expected $lo..$hi (rr over 3)"
        done
        fc_say "  per real server:$per (expected $lo..$hi each)"
        [ "$nfrq" -gt 1 ] && exp_first=$((exp_first + cnt)) exp_fwd=$((exp_fwd + cnt * (nfrq - 1)))
        [ "$nfrp" -gt 1 ] && exp_first=$((exp_first + cnt)) exp_fwd=$((exp_fwd + cnt * (nfrp - 1)))
    done

    case_read_stats || return 0
    first=$("$PY" "$FC_ROOT/scripts/fcjson.py" value "$RUN/stats.json" workers.frags_first)
    fwd=$("$PY" "$FC_ROOT/scripts/fcjson.py" value "$RUN/stats.json" workers.frags_forwarded)
    conns=$("$PY" "$FC_ROOT/scripts/fcjson.py" value "$RUN/stats.json" services.0.conns)
    fc_say "frags_first = $first (per worker: $("$PY" "$FC_ROOT/scripts/fcjson.py" each "$RUN/stats.json" frags_first)), frags_forwarded = $fwd (per worker: $("$PY" "$FC_ROOT/scripts/fcjson.py" each "$RUN/stats.json" frags_forwarded)); expected $exp_first and $exp_fwd (every datagram, both ways); service conns = $conns (expected $total)"
    [ "$nw" -gt 1 ] &&
        fc_say "redirects between workers: out=$("$PY" "$FC_ROOT/scripts/fcjson.py" each "$RUN/stats.json" redirects_out) in=$("$PY" "$FC_ROOT/scripts/fcjson.py" each "$RUN/stats.json" redirects_in) (per worker, informational)"
    { [ "${first:-0}" -gt 0 ] && [ "${fwd:-0}" -gt 0 ]; } ||
        case_fail "frags_first = ${first:-?}, frags_forwarded = ${fwd:-?}: fulcrum did not forward the fragments itself"
    { [ "$first" = "$exp_first" ] && [ "$fwd" = "$exp_fwd" ]; } ||
        case_fail "frags_first = ${first:-?} and frags_forwarded = ${fwd:-?}, expected $exp_first and $exp_fwd (every fragment of every datagram, both ways)"
    [ "$conns" = "$total" ] || case_fail "service 10.0.0.100:53 has ${conns:-?} connections, expected $total (one per fragmented request)"
    line=
    for r in frag_bad frag_no_first frag_table_full frag_encap_unsupported ipv4_fragment; do
        v=$("$PY" "$FC_ROOT/scripts/fcjson.py" value "$RUN/stats.json" "drops.$r")
        line="$line $r=$v"
        [ "$v" = 0 ] || case_fail "drops $r = $v: fragments were lost in fulcrum"
    done
    fc_say "fragment drops:$line"
    while IFS= read -r line; do
        case_fail "unexpected drops (fragments run): $line"
    done < <(awk '$3 == "UNEXPECTED" {print $1 " = " $2}' "$RUN/drops.txt")
}

# A connected socket to a port nobody serves (argv: vip, port): prints
# "refused" when the port unreachable came back, else what happened.
ICMP_REFUSED_PY='
import socket, sys
vip, port = sys.argv[1], int(sys.argv[2])
for attempt in range(3):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(2.0)
    s.connect((vip, port))
    try:
        s.send(b"anyone?")
        s.recv(2048)
        print("answered")
        break
    except ConnectionRefusedError:
        print("refused")
        break
    except socket.timeout:
        print("timeout")
    finally:
        s.close()
'

udp_nat_case_run() {
    local nw=$1 nreq=${UDP_NAT_REQUESTS:-300} n ok cnt lo hi v services line
    # shellcheck disable=SC2034 # read by case_fail and case_finish (scripts/case.sh)
    CASE_FAILS=()
    case_setup "udp-nat-${nw}w" nat || return 1
    for n in 1 2 3; do
        timeout 700 ip netns exec "${P}rs$n" "$PY" -c "$ICMP_ECHO_PY" "rs$n" 5353 \
            >"$RUN/echo-rs$n.log" 2>&1 &
        # Killed with its namespace at the end: no job notice for it.
        disown $!
    done
    services="        (vip: \"10.0.0.100:53\", proto: \"udp\", scheduler: \"rr\", forwarding: \"nat\",
         real_servers: [
            (addr: \"10.1.0.11:5353\", weight: 1),
            (addr: \"10.1.0.12:5353\", weight: 1),
            (addr: \"10.1.0.13:5353\", weight: 1),
         ]),
        (vip: \"10.0.0.100:54\", proto: \"udp\", scheduler: \"rr\", forwarding: \"nat\",
         real_servers: [(addr: \"10.1.0.11:5999\", weight: 1)]),"
    icmp_write_config "$nw" "$RUN/fulcrum.ron" "" "$services"
    case_start_fulcrum "$RUN/fulcrum.ron" || return 1
    sleep 0.5

    timeout $((nreq * 2 + 30)) ip netns exec "${P}cl" "$PY" -c "$ICMP_CLIENT_PY" \
        "$TOPO_VIP" 53 "$nreq" >"$RUN/udp-answers.txt" 2>"$RUN/udp-client.err"
    ok=$(grep -c '^ok rs[1-3]$' "$RUN/udp-answers.txt")
    fc_say "udp requests: $nreq sent, $ok answered correctly"
    [ "$ok" = "$nreq" ] || case_fail "$((nreq - ok)) of $nreq UDP requests failed: $(grep -v '^ok' "$RUN/udp-answers.txt" | sort | uniq -c | head -n 3 | tr -s ' ' | paste -sd'|' -)"
    lo=$((nreq / 3 - 5))
    hi=$((nreq / 3 + 5))
    for n in 1 2 3; do
        cnt=$(grep -c "^ok rs$n\$" "$RUN/udp-answers.txt")
        fc_say "  rs$n answered $cnt"
        { [ "$cnt" -ge "$lo" ] && [ "$cnt" -le "$hi" ]; } ||
            case_fail "rs$n answered $cnt UDP requests, expected $lo..$hi (rr over 3)"
    done

    v=$(timeout 20 ip netns exec "${P}cl" "$PY" -c "$ICMP_REFUSED_PY" "$TOPO_VIP" 54 2>&1 | tail -n 1)
    fc_say "connected UDP socket to $TOPO_VIP:54 (nothing listens on rs1:5999): $v"
    [ "$v" = refused ] ||
        case_fail "the real server's port unreachable did not reach the client as ECONNREFUSED ($v)"

    if case_read_stats; then
        v=$("$PY" "$FC_ROOT/scripts/fcjson.py" value "$RUN/stats.json" workers.icmp_errors_out)
        fc_say "icmp_errors_out = $v"
        [ "${v:-0}" -gt 0 ] || case_fail "icmp_errors_out is ${v:-?}: no error was relayed to the client"
        while IFS= read -r line; do
            case_fail "unexpected drops: $line"
        done < <(awk '$3 == "UNEXPECTED" {print $1 " = " $2}' "$RUN/drops.txt")
    fi
    fc_stop
    if [ "$FC_STATUS" != 0 ]; then
        case_fail "fulcrum (net_af_packet run) exited with status $FC_STATUS on SIGTERM (expected 0)"
        fc_show_log
    fi

    udp_nat_frag_run "$nw" "$services" || return 1
    case_finish
}

# The far real server of pmtu's upload (argv: port): answers each PUT or
# POST with "<bytes read> <sha256>\n" after reading its Content-Length
# bytes, and prints the same to stdout ("received ..."); 60 s per
# connection at most; bounded: it exits after 600 s.
ICMP_UPLOAD_PY='
import hashlib, sys, time
from http.server import BaseHTTPRequestHandler, HTTPServer
class H(BaseHTTPRequestHandler):
    timeout = 60
    def do_PUT(self):
        n = int(self.headers.get("Content-Length") or 0)
        h, got = hashlib.sha256(), 0
        while got < n:
            b = self.rfile.read(min(65536, n - got))
            if not b:
                break
            h.update(b)
            got += len(b)
        line = "%d %s" % (got, h.hexdigest())
        print("received " + line, flush=True)
        body = (line + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
    do_POST = do_PUT
srv = HTTPServer(("0.0.0.0", int(sys.argv[1])), H)
srv.timeout = 1.0
print("listening", flush=True)
end = time.time() + 600
while time.time() < end:
    srv.handle_request()
'

# pmtu_topo_fail LOG WHAT: records that WHAT could not be set up (LOG
# printed), tears everything down and fails.
pmtu_topo_fail() {
    cat "$1"
    case_fail "$2 could not be set up (see $1)"
    icmp_cleanup
    case_cleanup
    return 1
}

# pmtu_router R H NEAR RMAC HMAC RIP FAR MTU [GW]: namespaces ${P}R (a
# router) and ${P}H (a host behind it). The router's veth NEAR (eout or
# ein, MAC RMAC, address RIP/24) is on the switch's bridge br${NEAR#e}; its
# far link of MTU bytes reaches H (MAC HMAC) on FAR.0/24, router FAR.1,
# host FAR.2 (default route via FAR.1). GW, when given, is the router's
# own default route.
pmtu_router() {
    local r=$1 h=$2 near=$3 rmac=$4 hmac=$5 rip=$6 far=$7 mtu=$8 gw=${9:-} ns
    ip netns add "${P}$r" && ip netns add "${P}$h" &&
        for ns in "$r" "$h"; do
            topo_x "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1 &&
                topo_x "$ns" ip link set lo up || return 1
        done &&
        topo_veth "$r" "$near" "$rmac" sw "$r${near#e}" &&
        topo_x sw ip link set "$r${near#e}" master "br${near#e}" &&
        topo_veth "$r" efar "$hmac" "$h" eth0 &&
        topo_x "$r" ip link set efar mtu "$mtu" &&
        topo_x "$r" ip addr add "$rip/24" dev "$near" &&
        topo_x "$r" ip addr add "$far.1/24" dev efar &&
        { [ -z "$gw" ] || topo_x "$r" ip route add default via "$gw"; } &&
        topo_x "$r" sysctl -qw net.ipv4.ip_forward=1 &&
        topo_x "$h" ip addr add "$far.2/24" dev eth0 &&
        topo_x "$h" ip route add default via "$far.1"
}

pmtu_case_run() {
    local nw=$1 size=${PMTU_BYTES:-2097152} mtu=${PMTU_MTU:-1280} up_port=${PMTU_UP_PORT:-8080}
    local sum got_sum rc code got_size n seen v services before after ans got line _
    # shellcheck disable=SC2034 # read by case_fail and case_finish (scripts/case.sh)
    CASE_FAILS=()
    case_setup "pmtu-${nw}w" nat || return 1
    ICMP_EXTRA_NS=("${P}pr" "${P}fc" "${P}sr" "${P}fs")
    # Part 1's far client behind the router on the client segment.
    pmtu_router pr fc eout 02:fc:00:00:00:fd 02:fc:00:00:09:01 10.0.0.253 10.9.0 "$mtu" \
        >"$RUN/pmtu-topo.log" 2>&1 ||
        { pmtu_topo_fail "$RUN/pmtu-topo.log" "the far client's router and link"; return 1; }
    fc_say "far client 10.9.0.2 behind router 10.0.0.253 (its far link: mtu $mtu)"
    # Part 2's far real server behind the router on the inside segment
    # (10.1.0.254 is the topology's router ${P}rt).
    pmtu_router sr fs ein 02:fc:00:00:01:fd 02:fc:00:00:08:01 10.1.0.253 10.8.0 "$mtu" 10.1.0.1 \
        >"$RUN/pmtu-topo2.log" 2>&1 ||
        { pmtu_topo_fail "$RUN/pmtu-topo2.log" "the far real server's router and link"; return 1; }
    timeout 700 ip netns exec "${P}fs" "$PY" -c "$ICMP_UPLOAD_PY" 80 >"$RUN/upload-server.log" 2>&1 &
    # Killed with its namespace at the end: no job notice for it.
    disown $!
    for _ in $(seq 50); do
        grep -q '^listening' "$RUN/upload-server.log" 2>/dev/null && break
        sleep 0.1
    done
    grep -q '^listening' "$RUN/upload-server.log" ||
        case_fail "the far real server's upload server did not start: $(head -c 300 "$RUN/upload-server.log")"
    fc_say "far real server 10.8.0.2 behind router 10.1.0.253 (its far link: mtu $mtu)"

    head -c "$size" /dev/urandom >"$RUN/big.bin"
    sum=$(sha256sum "$RUN/big.bin" | cut -d' ' -f1)
    for n in 1 2 3; do cp "$RUN/big.bin" "$RUN/rs$n.www/big.bin"; done

    services="        (vip: \"10.0.0.100:80\", proto: \"tcp\", scheduler: \"rr\", forwarding: \"nat\",
         real_servers: [
            (addr: \"10.1.0.11:80\", weight: 1),
            (addr: \"10.1.0.12:80\", weight: 1),
            (addr: \"10.1.0.13:80\", weight: 1),
         ]),
        (vip: \"10.0.0.100:$up_port\", proto: \"tcp\", scheduler: \"rr\", forwarding: \"nat\",
         real_servers: [(addr: \"10.8.0.2:80\", weight: 1)]),"
    icmp_write_config "$nw" "$RUN/fulcrum.ron" \
        'routes: [(dst: "10.9.0.0/24", via: "10.0.0.253"), (dst: "10.8.0.0/24", via: "10.1.0.253")],' "$services"
    case_start_fulcrum "$RUN/fulcrum.ron" || { icmp_cleanup; return 1; }
    sleep 0.5

    # Part 1: the far client downloads; the real server learns the MTU.
    timeout 60 ip netns exec "${P}fc" curl -s -m 50 --speed-time 10 --speed-limit 1000 \
        -o "$RUN/download.bin" -w '%{http_code} %{size_download}\n' \
        "http://$TOPO_VIP/data/big.bin" >"$RUN/download.txt" 2>"$RUN/download.err"
    rc=$?
    read -r code got_size <"$RUN/download.txt" 2>/dev/null
    got_sum=$(sha256sum "$RUN/download.bin" 2>/dev/null | cut -d' ' -f1)
    fc_say "download from 10.9.0.2: curl exit $rc, HTTP ${code:-?}, ${got_size:-?} of $size bytes"
    if [ "$rc" != 0 ] || [ "$code" != 200 ] || [ "$got_size" != "$size" ]; then
        case_fail "the download through the mtu-$mtu link failed: curl exit $rc, HTTP ${code:-?}, ${got_size:-?} of $size bytes"
    elif [ "$got_sum" != "$sum" ]; then
        case_fail "the downloaded file's sha256 differs ($got_sum vs $sum)"
    fi
    seen=
    for n in 1 2 3; do
        v=$(topo_x "rs$n" ip route get 10.9.0.2 2>&1 | tr -s ' \n' ' ')
        fc_say "  rs$n: ip route get 10.9.0.2: $v"
        grep -q "mtu $mtu" <<<"$v" && seen="$seen rs$n"
    done
    [ -n "$seen" ] ||
        case_fail "no real server's route cache shows mtu $mtu for 10.9.0.2: the router's fragmentation needed did not reach it"
    topo_x pr ip -s link show eout | sed -n '1,6p' >"$RUN/pr-eout.txt" 2>&1

    # Part 2: the client uploads; the client learns the MTU.
    before=
    if fc_json "$RUN/stats-before-upload.json"; then
        before=$("$PY" "$FC_ROOT/scripts/fcjson.py" value "$RUN/stats-before-upload.json" workers.icmp_errors_out)
    else
        case_fail "fulcrumctl --json -L -n failed before the upload: $(head -c 300 "$RUN/stats-before-upload.json.err")"
    fi
    v=$(topo_x cl ip route get "$TOPO_VIP" 2>&1 | tr -s ' \n' ' ')
    fc_say "before the upload: icmp_errors_out = ${before:-?}; client: ip route get $TOPO_VIP: $v"
    ! grep -q "mtu $mtu" <<<"$v" ||
        case_fail "the client's route cache shows mtu $mtu for $TOPO_VIP before the upload: the check below would prove nothing"
    timeout 60 ip netns exec "${P}cl" curl -s -m 50 --speed-time 10 --speed-limit 1000 \
        -H 'Expect:' -T "$RUN/big.bin" -o "$RUN/upload-answer.txt" \
        -w '%{http_code} %{size_upload}\n' \
        "http://$TOPO_VIP:$up_port/upload" >"$RUN/upload.txt" 2>"$RUN/upload.err"
    rc=$?
    code='' got_size=''
    read -r code got_size <"$RUN/upload.txt" 2>/dev/null
    ans=$(head -c 200 "$RUN/upload-answer.txt" 2>/dev/null | tr -d '\n')
    got=$(grep '^received ' "$RUN/upload-server.log" | tail -n 1)
    got=${got#received }
    fc_say "upload from $TOPO_CLIENT to $TOPO_VIP:$up_port: curl exit $rc, HTTP ${code:-?}, ${got_size:-?} of $size bytes sent"
    fc_say "  10.8.0.2 answered: ${ans:-nothing}; its log: ${got:-nothing}; expected: $size $sum"
    if [ "$rc" != 0 ] || [ "$code" != 200 ] || [ "$got_size" != "$size" ]; then
        case_fail "the upload through the mtu-$mtu link failed: curl exit $rc, HTTP ${code:-?}, ${got_size:-?} of $size bytes sent"
    fi
    { [ "$ans" = "$size $sum" ] && [ "$got" = "$size $sum" ]; } ||
        case_fail "the far real server did not receive the upload intact: answered '${ans:-nothing}', logged '${got:-nothing}', expected '$size $sum'"
    v=$(topo_x cl ip route get "$TOPO_VIP" 2>&1 | tr -s ' \n' ' ')
    fc_say "  client: ip route get $TOPO_VIP: $v"
    grep -q "mtu $mtu" <<<"$v" ||
        case_fail "the client's route cache does not show mtu $mtu for $TOPO_VIP: the router's fragmentation needed did not reach it"
    topo_x sr ip -s link show ein | sed -n '1,6p' >"$RUN/sr-ein.txt" 2>&1

    if case_read_stats; then
        v=$("$PY" "$FC_ROOT/scripts/fcjson.py" value "$RUN/stats.json" workers.icmp_errors_in)
        after=$("$PY" "$FC_ROOT/scripts/fcjson.py" value "$RUN/stats.json" workers.icmp_errors_out)
        fc_say "icmp_errors_in = $v, icmp_errors_out = $after (${before:-?} before the upload)"
        [ "${v:-0}" -gt 0 ] || case_fail "icmp_errors_in is ${v:-?}: no error was relayed to a real server"
        [ "${after:-0}" -gt "${before:-0}" ] ||
            case_fail "icmp_errors_out is ${after:-?} (${before:-?} before the upload): no error was relayed to the client"
        while IFS= read -r line; do
            case_fail "unexpected drops: $line"
        done < <(awk '$3 == "UNEXPECTED" {print $1 " = " $2}' "$RUN/drops.txt")
    fi
    icmp_cleanup
    case_finish
}
