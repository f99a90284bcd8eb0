# shellcheck shell=bash
# tests/e2e/vrrp.sh: the end-to-end cases "vrrp-dr", "vrrp-nat",
# "vrrp-keepalived" and "vrrp-split": VRRP failover between two fulcrum
# directors, and against keepalived. Sourced by tests/e2e/run.sh after
# scripts/lib.sh, scripts/topo.sh, scripts/case.sh, tests/e2e/health.sh
# (health_client, health_count) and tests/e2e/vrrp_topo.sh (the topology).
#
# Layer: system test. fulcrum's VRRP runs in its control thread; its
# adverts travel over the kernel interface fc-outside / fc-inside (the
# exception path). Times are measured on the wire: dumpcap in ${P}sw on the
# bridges, the kill's time from the same clock (CLOCK_REALTIME).
#
# vrrp-dr (`vrrp_dr_case_run`): DR service 10.0.0.100:80 over rs1..3; A
# (priority 150) and B (100) each run vrrp_instance VI_OUT on "outside",
# vrid 51, holding 10.0.0.100. Two rounds: v2 advert_int 1 (PASS
# authentication), then v3 advert_int 0.1. Per round, checks (one CASE_FAILS
# reason each): A MASTER, B BACKUP naming 10.0.0.1 its master; a client
# loop (curl -m 1) answered before the kill; the client's neighbour entry
# for the VIP is A's MAC (B did not answer the client's ARP) and B counted
# the VIP traffic it refused (drops arp_vrrp_backup + vrrp_backup > 0);
# SIGKILL A: B's last transition is BACKUP -> MASTER after the kill, and
# its first gratuitous ARP for the VIP (sender MAC 02:fc:00:00:00:03) comes
# within master_down + 100 ms of the kill
# (master_down = 3*advert + skew, RFC 5798 §6.1); B is MASTER; every
# request that started after that ARP (ended 1.2 s after it) is answered,
# and there are some; the client's neighbour entry is then B's MAC; B exits
# 0 on SIGTERM. It prints the takeover time, the requests that failed
# around the kill, and how many of the downloads running across the kill
# were lost (no connection sync yet: they are expected to be lost, so the
# count is printed, not asserted).
#
# vrrp-nat (`vrrp_nat_case_run`): NAT, sync group G1 of VI_OUT (outside,
# vrid 51, 10.0.0.100) and VI_IN (inside, vrid 52, the floating gateway
# 10.1.0.100, the real servers' default route). Same kill; both of B's
# instances become MASTER, B's gratuitous ARPs for both addresses come
# within master_down + 100 ms, requests after them are answered (their
# replies go through B because the gateway moved: rs1's neighbour entry for
# 10.1.0.100 is B's inside MAC).
#
# vrrp-keepalived and vrrp-split: tests/e2e/vrrp_peer.sh.

# vrrp_show ID: director ID's `fulcrumctl --vrrp` text, indented, into the
# case output.
vrrp_show() {
    vrrp_ctl "$1" --vrrp 2>&1 | sed "s/^/  $1 --vrrp: /"
}

# vrrp_a_dip INSTANCE: A's DIP on the instance's interface (VI_IN: inside).
vrrp_a_dip() {
    if [ "$1" = VI_IN ]; then echo 10.1.0.1; else echo 10.0.0.1; fi
}

# vrrp_settle A_INST... -- B_INST...: waits for every A_INST of director a
# to be MASTER, and for every B_INST of b to name A as its master (it has
# heard A: a B still in its start-up BACKUP has not) and be BACKUP (limit
# 15 s each); records a failure per instance that is not.
vrrp_settle() {
    local id=a i
    for i in "$@"; do
        if [ "$i" = -- ]; then
            id=b
            continue
        fi
        if [ "$id" = a ]; then
            vrrp_wait a "$i" state MASTER 15 || case_fail "director a: $i is '$(vrrp_get a "$i" state)', expected MASTER"
        else
            vrrp_wait b "$i" master "$(vrrp_a_dip "$i")" 15 && vrrp_wait b "$i" state BACKUP 5 ||
                case_fail "director b: $i is '$(vrrp_get b "$i" state)' with master '$(vrrp_get b "$i" master)', expected BACKUP under $(vrrp_a_dip "$i")"
        fi
    done
}

# vrrp_after_takeover CLIENT T_KILL T_GARP TAG: the client's lines around a
# takeover: prints the counts and records failures (requests before the
# kill must all be answered, and every one ending 1.2 s after the new
# master's GARP, at least 3 of them).
vrrp_after_takeover() {
    local out=$1 tk=$2 tg=$3 tag=$4 cut n_before f_before f_around n_after f_after
    cut=$(awk -v a="$tg" 'BEGIN{printf "%.6f", a + 1.2}')
    n_before=$(health_count "$out" 0 "$tk" '^rs[123]$')
    f_before=$(health_count "$out" 0 "$tk" '^FAIL$')
    f_around=$(health_count "$out" "$tk" "$cut" '^FAIL$')
    n_after=$(health_count "$out" "$cut" 9999999999 '^rs[123]$')
    f_after=$(health_count "$out" "$cut" 9999999999 '^FAIL$')
    fc_say "$tag requests: before the kill $n_before answered, $f_before failed; kill .. GARP+1.2 s: $f_around failed; after: $n_after answered, $f_after failed"
    [ "$n_before" -gt 0 ] && [ "$f_before" = 0 ] || case_fail "$tag: before the kill $n_before answered, $f_before failed"
    [ "$n_after" -ge 3 ] || case_fail "$tag: only $n_after requests answered after the takeover"
    [ "$f_after" = 0 ] || case_fail "$tag: $f_after requests failed after B's gratuitous ARP + 1.2 s"
}

# vrrp_takeover_time CAP MAC IP T_KILL BOUND TAG: B's first GARP for IP in
# CAP after T_KILL; prints the takeover time, records a failure when there
# is none or it is later than BOUND seconds. Sets VRRP_T_GARP.
vrrp_takeover_time() {
    local dt
    VRRP_T_GARP=$(vrrp_first_garp "$1" "$2" "$3" "$4")
    if [ -z "$VRRP_T_GARP" ]; then
        case_fail "$6: no gratuitous ARP for $3 from $2 after the kill"
        VRRP_T_GARP=$4
        return
    fi
    dt=$(vrrp_sub "$VRRP_T_GARP" "$4")
    fc_say "$6 takeover: kill -> first gratuitous ARP for $3 from $2: $dt s (bound $5 s)"
    vrrp_le "$dt" "$5" || case_fail "$6: takeover of $3 took $dt s, bound master_down + 0.1 = $5 s"
}

# vrrp_check_transition INSTANCE T_KILL TAG: B's last transition of
# INSTANCE must be BACKUP -> MASTER after T_KILL (a B that was master
# before the kill, because it never heard A, would otherwise pass on its
# later gratuitous ARPs).
vrrp_check_transition() {
    local at from
    at=$(vrrp_get b "$1" last_transition.at_unix_ms)
    from=$(vrrp_get b "$1" last_transition.from)
    awk -v a="$at" -v k="$2" 'BEGIN{exit !(a != "" && a / 1000 >= k)}' && [ "$from" = BACKUP ] ||
        case_fail "$3: B's last transition of $1 ($from -> MASTER at ${at:-?} ms) is not BACKUP -> MASTER after the kill ($2)"
}

# vrrp_kill_a: SIGKILL director A; sets VRRP_T_KILL (epoch seconds).
vrrp_kill_a() {
    VRRP_T_KILL=$(date +%s.%N)
    vrrp_fc_stop a KILL
}

# vrrp_stop_b TAG: SIGTERM to B, which must exit 0.
vrrp_stop_b() {
    vrrp_fc_stop b TERM
    [ "${VRRP_STATUS[b]}" = 0 ] || {
        case_fail "$1: director B exited with status ${VRRP_STATUS[b]} on SIGTERM"
        tail -n 20 "$RUN/fc-b.log"
    }
}

# vrrp_dr_round VERSION ADVERT: one kill of A (see the header).
vrrp_dr_round() {
    local ver=$1 adv=$2 tag="v$1/$2s" id prio md bound dur cap drops mac_before mac_after i ok lost
    local dl_pids=()
    md=$(vrrp_master_down "$ver" "$adv" 100)
    bound=$(awk -v m="$md" 'BEGIN{printf "%.3f", m + 0.1}')
    fc_say "-- round $tag: master_down of B $md s"
    for id in a b; do
        prio=150
        [ "$id" = b ] && prio=100
        vrrp_write_config "$id" dr "vrrp_instance: [$(vrrp_instance_ron VI_OUT outside 51 "$prio" "$ver" "$adv" "$TOPO_VIP")],"
    done
    cap=$RUN/dr-v$ver.pcapng
    if ! { vrrp_cap_start "$cap" brout && vrrp_fc_start a && vrrp_fc_start b; }; then
        case_fail "$tag: the capture or a director did not start (logs $RUN/fc-a.log, fc-b.log)"
        vrrp_cap_stop
        vrrp_fc_stop a KILL
        vrrp_fc_stop b KILL
        return 1
    fi
    vrrp_settle VI_OUT -- VI_OUT
    vrrp_show a
    vrrp_show b
    topo_x cl ip neigh flush dev eth0
    dur=$(awk -v m="$md" 'BEGIN{printf "%d", 3 + m + 5}')
    health_client "$dur" "$RUN/client-v$ver.txt"
    local cpid=$HEALTH_CLIENT_PID
    for i in 1 2; do
        # shellcheck disable=SC2016 # expanded by the inner shell
        timeout 20 ip netns exec "${P}cl" curl -s -m 10 -o "$RUN/dl-v$ver-$i.bin" -w '%{http_code} %{size_download}\n' \
            "http://$TOPO_VIP/data/big.bin" >"$RUN/dl-v$ver-$i.txt" 2>/dev/null &
        dl_pids+=($!)
    done
    sleep 3
    mac_before=$(vrrp_neigh cl "$TOPO_VIP")
    drops=$(vrrp_drops b "$RUN/b-before-v$ver.json" arp_vrrp_backup vrrp_backup)
    fc_say "$tag before the kill: client's neighbour $TOPO_VIP = $mac_before; B's drops arp_vrrp_backup + vrrp_backup = $drops"
    [ "$mac_before" = "$VRRP_MAC_A" ] || case_fail "$tag: before the kill the client's neighbour entry for $TOPO_VIP is '$mac_before', expected A's $VRRP_MAC_A (did backup B answer ARP?)"
    [ "$drops" != "?" ] && [ "$drops" -gt 0 ] || case_fail "$tag: backup B counted $drops arp_vrrp_backup + vrrp_backup drops (it saw the client's ARP broadcast)"
    vrrp_kill_a
    vrrp_wait b VI_OUT state MASTER "$(awk -v b="$bound" 'BEGIN{print b + 2}')" ||
        case_fail "$tag: B is '$(vrrp_get b VI_OUT state)' after the kill, expected MASTER"
    wait "$cpid"
    for i in "${dl_pids[@]}"; do wait "$i"; done
    mac_after=$(vrrp_neigh cl "$TOPO_VIP")
    vrrp_show b
    vrrp_check_transition VI_OUT "$VRRP_T_KILL" "$tag"
    vrrp_cap_stop
    vrrp_takeover_time "$cap" "$VRRP_MAC_B" "$TOPO_VIP" "$VRRP_T_KILL" "$bound" "$tag"
    fc_say "$tag B's gratuitous ARPs on the wire after the kill: $(tshark -r "$cap" -Y "arp && eth.src==$VRRP_MAC_B && arp.src.proto_ipv4==$TOPO_VIP && arp.dst.proto_ipv4==$TOPO_VIP && frame.time_epoch > $VRRP_T_KILL" 2>/dev/null | wc -l); garps_sent $(vrrp_get b VI_OUT garps_sent)"
    vrrp_after_takeover "$RUN/client-v$ver.txt" "$VRRP_T_KILL" "$VRRP_T_GARP" "$tag"
    fc_say "$tag after the takeover: client's neighbour $TOPO_VIP = $mac_after"
    [ "$mac_after" = "$VRRP_MAC_B" ] || case_fail "$tag: after the takeover the client's neighbour entry for $TOPO_VIP is '$mac_after', expected B's $VRRP_MAC_B"
    ok=0
    lost=0
    for i in 1 2; do
        if [ "$(cat "$RUN/dl-v$ver-$i.txt" 2>/dev/null)" = "200 $VRRP_BIG_LEN" ] && cmp -s "$RUN/dl-v$ver-$i.bin" "$RUN/rs1.www/big.bin"; then
            ok=$((ok + 1))
        else
            lost=$((lost + 1))
        fi
    done
    fc_say "$tag established connections across the kill (downloads of $VRRP_BIG_LEN bytes): $lost of 2 lost, $ok complete (no connection sync yet)"
    vrrp_stop_b "$tag"
}

# vrrp_big_file: a VRRP_BIG_LEN-byte file in every real server's /data/
# (about 5.3 s of download at scripts/topo.sh's pace; the downloads may
# take 10 s, so a lost one does not hold the case for long).
vrrp_big_file() {
    VRRP_BIG_LEN=$((8 * 1024 * 1024))
    head -c "$VRRP_BIG_LEN" /dev/urandom >"$RUN/rs1.www/big.bin"
    cp "$RUN/rs1.www/big.bin" "$RUN/rs2.www/big.bin"
    cp "$RUN/rs1.www/big.bin" "$RUN/rs3.www/big.bin"
}

vrrp_dr_case_run() {
    # shellcheck disable=SC2034 # read by case_fail (scripts/case.sh)
    CASE_FAILS=()
    vrrp_setup vrrp-dr dr || return 1
    vrrp_big_file
    vrrp_dr_round 2 1
    vrrp_dr_round 3 0.1
    vrrp_cleanup
    [ "${#CASE_FAILS[@]}" = 0 ]
}

vrrp_nat_case_run() {
    local id prio md bound ron cap mac_rs tk tg_out tg_in
    # shellcheck disable=SC2034 # read by case_fail (scripts/case.sh)
    CASE_FAILS=()
    vrrp_setup vrrp-nat nat || return 1
    md=$(vrrp_master_down 2 1 100)
    bound=$(awk -v m="$md" 'BEGIN{printf "%.3f", m + 0.1}')
    for id in a b; do
        prio=150
        [ "$id" = b ] && prio=100
        ron="vrrp_instance: [
        $(vrrp_instance_ron VI_OUT outside 51 "$prio" 2 1 "$TOPO_VIP")
        $(vrrp_instance_ron VI_IN inside 52 "$prio" 2 1 "$VRRP_GW_IN")
    ],
    vrrp_sync_group: [(name: \"G1\", group: [\"VI_OUT\", \"VI_IN\"])],"
        vrrp_write_config "$id" nat "$ron"
    done
    cap=$RUN/nat.pcapng
    vrrp_cap_start "$cap" brout brin || {
        case_fail "capture did not start"
        vrrp_cleanup
        return 1
    }
    if ! { vrrp_fc_start a && vrrp_fc_start b; }; then
        case_fail "a director did not start (logs $RUN/fc-a.log, fc-b.log)"
        vrrp_cleanup
        return 1
    fi
    vrrp_settle VI_OUT VI_IN -- VI_OUT VI_IN
    vrrp_show a
    vrrp_show b
    topo_x cl ip neigh flush dev eth0
    health_client 14 "$RUN/client.txt"
    local cpid=$HEALTH_CLIENT_PID
    sleep 3
    mac_rs=$(vrrp_neigh rs1 "$VRRP_GW_IN")
    fc_say "before the kill: rs1's neighbour $VRRP_GW_IN = $mac_rs"
    [ "$mac_rs" = "$VRRP_MAC_A_IN" ] || case_fail "before the kill rs1's gateway $VRRP_GW_IN is '$mac_rs', expected A's inside MAC $VRRP_MAC_A_IN"
    vrrp_kill_a
    tk=$VRRP_T_KILL
    vrrp_wait b VI_OUT state MASTER "$(awk -v b="$bound" 'BEGIN{print b + 2}')" || case_fail "B's VI_OUT is '$(vrrp_get b VI_OUT state)' after the kill, expected MASTER"
    vrrp_wait b VI_IN state MASTER 2 || case_fail "B's VI_IN is '$(vrrp_get b VI_IN state)' after the kill, expected MASTER (sync group G1)"
    wait "$cpid"
    vrrp_show b
    vrrp_check_transition VI_OUT "$tk" nat
    vrrp_check_transition VI_IN "$tk" nat
    vrrp_cap_stop
    vrrp_takeover_time "$cap" "$VRRP_MAC_B" "$TOPO_VIP" "$tk" "$bound" "VI_OUT"
    tg_out=$VRRP_T_GARP
    vrrp_takeover_time "$cap" "$VRRP_MAC_B_IN" "$VRRP_GW_IN" "$tk" "$bound" "VI_IN"
    tg_in=$VRRP_T_GARP
    vrrp_after_takeover "$RUN/client.txt" "$tk" "$(awk -v a="$tg_out" -v b="$tg_in" 'BEGIN{print (a > b ? a : b)}')" "nat"
    mac_rs=$(vrrp_neigh rs1 "$VRRP_GW_IN")
    fc_say "after the takeover: rs1's neighbour $VRRP_GW_IN = $mac_rs"
    [ "$mac_rs" = "$VRRP_MAC_B_IN" ] || case_fail "after the takeover rs1's gateway $VRRP_GW_IN is '$mac_rs', expected B's inside MAC $VRRP_MAC_B_IN"
    vrrp_stop_b nat
    vrrp_cleanup
    [ "${#CASE_FAILS[@]}" = 0 ]
}
