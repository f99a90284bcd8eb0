# shellcheck shell=bash
# tests/e2e/vrrp_peer.sh: the end-to-end cases "vrrp-keepalived" (fulcrum
# against Debian's keepalived 2.2 on the same segment) and "vrrp-split"
# (adverts blocked one way between two fulcrum directors). Sourced by
# tests/e2e/run.sh after tests/e2e/vrrp_topo.sh and tests/e2e/vrrp.sh.
#
# Layer: system test, interoperability with a real peer.
#
# vrrp-keepalived (`vrrp_keepalived_case_run`): keepalived in ${P}ka
# (10.0.0.4, multicast, no vmac, not strict, script security on, notify
# script writing its state and time to $RUN/ka.state) and fulcrum A, both
# vrid 51 holding 10.0.0.100, advert_int 1; version 2 with PASS
# authentication, then version 3. Per version, checks:
#   (a) fulcrum 150, keepalived 100: fulcrum MASTER, keepalived BACKUP (its
#       notify file) and it never notified MASTER;
#   (b) SIGTERM fulcrum (it exits 0 and sends priority 0): keepalived
#       notifies MASTER within skew time + 0.3 s of the stop (a backup that
#       hears priority 0 waits skew time only, RFC 5798 §6.4.2;
#       (256-100)/256 s), so well within master_down (3 s + skew);
#   (c) fulcrum started again preempts: fulcrum MASTER, keepalived BACKUP;
#   (d) keepalived 200 (state MASTER), fulcrum 100: keepalived MASTER,
#       fulcrum BACKUP with master 10.0.0.4 after master_down; SIGKILL
#       keepalived (no priority 0): fulcrum's last transition to MASTER
#       comes after the kill and within master_down + 0.1 s of it.
#   (e) on a capture of brout over both versions: tshark dissects fulcrum's
#       adverts (ip.src == 10.0.0.1) as VRRP of each version (count > 0),
#       none is malformed or carries an expert warning (tshark's
#       vrrp.v3_checksum_as_in_v2 off), every checksum status is Good,
#       every TTL 255, and priority-0 adverts are among them; keepalived
#       logged nothing about bad or mismatched adverts.
#
# vrrp-split (`vrrp_split_case_run`): A (150) and B (100), v2 advert_int 1,
# split_brain_adverts 3, settled. An nftables rule in ${P}sw's bridge
# family drops VRRP from A's MAC out of B's port (d2out). B stops hearing
# A and becomes MASTER. A still hears B: it stays MASTER (higher
# priority) and after 3 of B's adverts reports split brain: `--vrrp` shows
# "MASTER (split-brain)", JSON split_brain true and split_brain_events
# > 0, its log says "split brain", more than once (each interval). Only A
# can know: B, which hears nothing, reports MASTER with split_brain false,
# and that is asserted too. The rule removed: B returns to BACKUP within 3
# s and A's split brain clears within 5 s (about 3 advert intervals).

# vrrp_ka_wire_check CAP: the checks (e) on fulcrum's adverts in CAP.
vrrp_ka_wire_check() {
    local cap=$1 sel='vrrp && ip.src==10.0.0.1' opt=(-o vrrp.v3_checksum_as_in_v2:FALSE) n2 n3 bad cks ttl p0
    n2=$(tshark -r "$cap" "${opt[@]}" -Y "$sel && vrrp.version==2" 2>/dev/null | wc -l)
    n3=$(tshark -r "$cap" "${opt[@]}" -Y "$sel && vrrp.version==3" 2>/dev/null | wc -l)
    bad=$(tshark -r "$cap" "${opt[@]}" -Y "$sel && (_ws.malformed || _ws.expert.severity >= warning)" 2>/dev/null)
    cks=$(tshark -r "$cap" "${opt[@]}" -Y "$sel && !(vrrp.checksum.status == 1)" 2>/dev/null | wc -l)
    ttl=$(tshark -r "$cap" "${opt[@]}" -Y "$sel && ip.ttl != 255" 2>/dev/null | wc -l)
    p0=$(tshark -r "$cap" "${opt[@]}" -Y "$sel && vrrp.prio == 0" 2>/dev/null | wc -l)
    fc_say "tshark on fulcrum's adverts: $n2 v2, $n3 v3, $(grep -c . <<<"$bad") malformed/warning, $cks checksum not Good, $ttl TTL != 255, $p0 priority 0"
    tshark -r "$cap" "${opt[@]}" -Y "$sel" -V 2>/dev/null | grep -m 1 -A 14 '^Virtual Router Redundancy' | sed 's/^/  tshark: /'
    [ "$n2" -gt 0 ] || case_fail "tshark found no VRRPv2 advert from fulcrum (10.0.0.1)"
    [ "$n3" -gt 0 ] || case_fail "tshark found no VRRPv3 advert from fulcrum (10.0.0.1)"
    [ -z "$bad" ] || case_fail "tshark: fulcrum's adverts malformed or with expert warnings: $(head -n 3 <<<"$bad" | tr -s ' ' | paste -sd'|' -)"
    [ "$cks" = 0 ] || case_fail "tshark: $cks of fulcrum's adverts have a checksum status other than Good"
    [ "$ttl" = 0 ] || case_fail "$ttl of fulcrum's adverts have a TTL other than 255"
    [ "$p0" -gt 0 ] || case_fail "no priority-0 advert from fulcrum on the wire (its SIGTERM should send one)"
    if grep -iE 'bogus|invalid|mismatch|wrong|bad ' "$RUN/ka.log" >"$RUN/ka-complaints.txt"; then
        case_fail "keepalived complained about adverts: $(head -n 3 "$RUN/ka-complaints.txt" | paste -sd'|' -)"
    fi
}

# vrrp_ka_round VERSION: steps (a)-(d) for one VRRP version.
vrrp_ka_round() {
    local ver=$1 tag="v$1" md skew t0 t1 dt st
    md=$(vrrp_master_down "$ver" 1 100)
    skew=$(awk 'BEGIN{printf "%.3f", 156 / 256}')
    fc_say "-- keepalived round $tag (master_down of the priority-100 side $md s)"
    : >"$RUN/ka.state"
    # (a)
    vrrp_write_config a dr "vrrp_instance: [$(vrrp_instance_ron VI_OUT outside 51 150 "$ver" 1 "$TOPO_VIP")],"
    vrrp_ka_conf ka 100 "$ver" 1 BACKUP
    vrrp_fc_start a || {
        case_fail "$tag: fulcrum did not start"
        return 1
    }
    vrrp_wait a VI_OUT state MASTER 8 || case_fail "$tag (a): fulcrum alone is '$(vrrp_get a VI_OUT state)', expected MASTER"
    vrrp_ka_start ka || {
        case_fail "$tag: keepalived did not start ($(tail -n 3 "$RUN/ka.log" | paste -sd'|' -))"
        return 1
    }
    vrrp_ka_wait ka BACKUP 3 || case_fail "$tag (a): keepalived notified '$(vrrp_ka_state ka)', expected BACKUP"
    sleep "$(awk -v m="$md" 'BEGIN{print m + 1}')"
    st=$(vrrp_get a VI_OUT state)
    fc_say "$tag (a) fulcrum 150: $st; keepalived 100: $(vrrp_ka_state ka | cut -d' ' -f1)"
    [ "$st" = MASTER ] || case_fail "$tag (a): fulcrum is '$st' with priority 150, expected MASTER"
    grep -q '^MASTER' "$RUN/ka.state" && case_fail "$tag (a): keepalived (priority 100) became MASTER against fulcrum 150"
    # (b)
    t0=$(date +%s.%N)
    vrrp_fc_stop a TERM
    [ "${VRRP_STATUS[a]}" = 0 ] || case_fail "$tag (b): fulcrum exited ${VRRP_STATUS[a]} on SIGTERM"
    if vrrp_ka_wait ka MASTER "$(awk -v m="$md" 'BEGIN{print m + 2}')"; then
        dt=$(vrrp_sub "$(vrrp_ka_state ka | cut -d' ' -f2)" "$t0")
        fc_say "$tag (b) fulcrum stopped (priority 0): keepalived MASTER after $dt s (skew time $skew s, master_down $md s)"
        vrrp_le "$dt" "$(awk -v s="$skew" 'BEGIN{print s + 0.3}')" ||
            case_fail "$tag (b): keepalived took $dt s to become MASTER after fulcrum's SIGTERM, more than skew time $skew + 0.3 s (did fulcrum send priority 0?)"
    else
        case_fail "$tag (b): keepalived is '$(vrrp_ka_state ka)' after fulcrum stopped, expected MASTER"
    fi
    # (c)
    t0=$(date +%s.%N)
    vrrp_fc_start a || {
        case_fail "$tag (c): fulcrum did not start again"
        return 1
    }
    if vrrp_wait a VI_OUT state MASTER "$(awk -v m="$md" 'BEGIN{print m + 3}')" && vrrp_ka_wait ka BACKUP 3; then
        fc_say "$tag (c) fulcrum restarted: preempted keepalived $(vrrp_sub "$(date +%s.%N)" "$t0") s after its start; keepalived BACKUP"
    else
        case_fail "$tag (c): after fulcrum's restart fulcrum is '$(vrrp_get a VI_OUT state)', keepalived '$(vrrp_ka_state ka)' (expected MASTER / BACKUP)"
    fi
    # (d)
    vrrp_fc_stop a TERM
    vrrp_ka_stop ka TERM
    vrrp_write_config a dr "vrrp_instance: [$(vrrp_instance_ron VI_OUT outside 51 100 "$ver" 1 "$TOPO_VIP")],"
    vrrp_ka_conf ka 200 "$ver" 1 MASTER
    : >"$RUN/ka.state"
    vrrp_ka_start ka || {
        case_fail "$tag (d): keepalived did not start"
        return 1
    }
    vrrp_ka_wait ka MASTER 6 || case_fail "$tag (d): keepalived (200, MASTER) notified '$(vrrp_ka_state ka)'"
    vrrp_fc_start a || {
        case_fail "$tag (d): fulcrum did not start"
        return 1
    }
    sleep "$(awk -v m="$md" 'BEGIN{print m + 0.5}')"
    st=$(vrrp_get a VI_OUT state)
    fc_say "$tag (d) keepalived 200: $(vrrp_ka_state ka | cut -d' ' -f1); fulcrum 100: $st, master $(vrrp_get a VI_OUT master), adverts_received $(vrrp_get a VI_OUT adverts_received)"
    [ "$st" = BACKUP ] || case_fail "$tag (d): fulcrum (100) is '$st' against keepalived 200, expected BACKUP"
    [ "$(vrrp_get a VI_OUT master)" = 10.0.0.4 ] || case_fail "$tag (d): fulcrum's master is '$(vrrp_get a VI_OUT master)', expected 10.0.0.4"
    t0=$(date +%s.%N)
    vrrp_ka_stop ka KILL
    if vrrp_wait a VI_OUT state MASTER "$(awk -v m="$md" 'BEGIN{print m + 2}')"; then
        t1=$(vrrp_get a VI_OUT last_transition.at_unix_ms)
        dt=$(vrrp_sub "$(awk -v m="$t1" 'BEGIN{printf "%.3f", m / 1000}')" "$t0")
        fc_say "$tag (d) keepalived killed: fulcrum MASTER after $dt s (its last transition: $(vrrp_get a VI_OUT last_transition.reason))"
        if vrrp_le "$dt" 0; then
            case_fail "$tag (d): fulcrum became MASTER $dt s before keepalived was killed (it did not hear keepalived)"
        elif ! vrrp_le "$dt" "$(awk -v m="$md" 'BEGIN{print m + 0.1}')"; then
            case_fail "$tag (d): fulcrum took $dt s to take over, bound master_down + 0.1 s"
        fi
    else
        case_fail "$tag (d): fulcrum is '$(vrrp_get a VI_OUT state)' after keepalived was killed, expected MASTER"
    fi
    vrrp_fc_stop a TERM
    [ "${VRRP_STATUS[a]}" = 0 ] || case_fail "$tag (d): fulcrum exited ${VRRP_STATUS[a]} on SIGTERM"
}

vrrp_keepalived_case_run() {
    # shellcheck disable=SC2034 # read by case_fail (scripts/case.sh)
    CASE_FAILS=()
    command -v keepalived >/dev/null || {
        case_fail "keepalived is not installed (apt-get install keepalived)"
        return 1
    }
    vrrp_setup vrrp-keepalived dr ka || return 1
    vrrp_cap_start "$RUN/ka-wire.pcapng" brout || {
        case_fail "capture did not start"
        vrrp_cleanup
        return 1
    }
    vrrp_ka_round 2
    vrrp_ka_round 3
    vrrp_cap_stop
    vrrp_ka_wire_check "$RUN/ka-wire.pcapng"
    vrrp_cleanup
    [ "${#CASE_FAILS[@]}" = 0 ]
}

# vrrp_split_nft ARG...: nft in the switch namespace.
vrrp_split_nft() {
    topo_x sw nft "$@"
}

vrrp_split_case_run() {
    local id prio t0 t1 n1 n2 txt pk
    # shellcheck disable=SC2034 # read by case_fail (scripts/case.sh)
    CASE_FAILS=()
    command -v nft >/dev/null || {
        case_fail "nft is not installed (apt-get install nftables)"
        return 1
    }
    vrrp_setup vrrp-split dr || return 1
    for id in a b; do
        prio=150
        [ "$id" = b ] && prio=100
        vrrp_write_config "$id" dr "vrrp_instance: [$(vrrp_instance_ron VI_OUT outside 51 "$prio" 2 1 "$TOPO_VIP" 'split_brain_adverts: 3,')],"
    done
    if ! { vrrp_fc_start a && vrrp_fc_start b; }; then
        case_fail "a director did not start (logs $RUN/fc-a.log, fc-b.log)"
        vrrp_cleanup
        return 1
    fi
    vrrp_settle VI_OUT -- VI_OUT
    [ "$(vrrp_get a VI_OUT split_brain)" = false ] || case_fail "A reports split brain before any block"
    # Drop VRRP from A's MAC on its way out of B's port, nothing else.
    vrrp_split_nft add table bridge fzvrrp &&
        vrrp_split_nft add chain bridge fzvrrp blk '{ type filter hook forward priority 0; }' &&
        vrrp_split_nft add rule bridge fzvrrp blk ether saddr "$VRRP_MAC_A" ip protocol vrrp oifname d2out counter drop ||
        case_fail "nft rule in ${P}sw failed"
    t0=$(date +%s.%N)
    fc_say "adverts from A to B blocked (nft bridge rule in ${P}sw)"
    vrrp_wait b VI_OUT state MASTER 6 || case_fail "blocked: B is '$(vrrp_get b VI_OUT state)', expected MASTER"
    fc_say "blocked: B MASTER after $(vrrp_sub "$(date +%s.%N)" "$t0") s"
    if vrrp_wait a VI_OUT split_brain true 7; then
        fc_say "blocked: A reports split brain $(vrrp_sub "$(date +%s.%N)" "$t0") s after the block"
    else
        case_fail "blocked: A's split_brain is '$(vrrp_get a VI_OUT split_brain)' 7 s after the block, expected true"
    fi
    sleep 2.5
    txt=$(vrrp_ctl a --vrrp 2>&1)
    sed 's/^/  a --vrrp: /' <<<"$txt"
    vrrp_show b
    grep -q 'VI_OUT.*: MASTER (split-brain)' <<<"$txt" || case_fail "blocked: A's --vrrp does not show 'MASTER (split-brain)'"
    [ "$(vrrp_get a VI_OUT state)" = MASTER ] || case_fail "blocked: A is '$(vrrp_get a VI_OUT state)', expected MASTER (it has the higher priority)"
    [ "$(vrrp_get a VI_OUT split_brain_events)" -gt 0 ] 2>/dev/null || case_fail "blocked: A's split_brain_events is '$(vrrp_get a VI_OUT split_brain_events)'"
    [ "$(vrrp_get b VI_OUT state)" = MASTER ] || case_fail "blocked: B is '$(vrrp_get b VI_OUT state)', expected MASTER"
    # B hears nothing from A, so nothing tells it of the split.
    [ "$(vrrp_get b VI_OUT split_brain)" = false ] || case_fail "blocked: B (which hears no other master) reports split brain"
    n1=$(grep -ci 'split brain' "$RUN/fc-a.log")
    grep -i -m 1 'split brain' "$RUN/fc-a.log" | sed 's/^/  a log: /'
    [ "$n1" -ge 2 ] || case_fail "blocked: A's log has $n1 'split brain' lines, expected one each interval (>= 2)"
    pk=$(vrrp_split_nft list table bridge fzvrrp | grep -o 'packets [0-9]*')
    fc_say "blocked: A's log has $n1 'split brain' lines; nft rule dropped $pk"
    vrrp_split_nft delete table bridge fzvrrp || case_fail "nft delete table failed"
    t1=$(date +%s.%N)
    if vrrp_wait b VI_OUT state BACKUP 3; then
        fc_say "unblocked: B back to BACKUP after $(vrrp_sub "$(date +%s.%N)" "$t1") s"
    else
        case_fail "unblocked: B is '$(vrrp_get b VI_OUT state)' 3 s after the rule was removed, expected BACKUP"
    fi
    if vrrp_wait a VI_OUT split_brain false 5; then
        fc_say "unblocked: A's split brain cleared after $(vrrp_sub "$(date +%s.%N)" "$t1") s"
    else
        case_fail "unblocked: A's split_brain is still '$(vrrp_get a VI_OUT split_brain)' 5 s after the rule was removed"
    fi
    n2=$(grep -ci 'split brain' "$RUN/fc-a.log")
    [ "$(vrrp_get a VI_OUT state)" = MASTER ] || case_fail "unblocked: A is '$(vrrp_get a VI_OUT state)', expected MASTER"
    vrrp_show a
    for id in a b; do
        vrrp_fc_stop "$id" TERM
        [ "${VRRP_STATUS[$id]}" = 0 ] || case_fail "director $id exited ${VRRP_STATUS[$id]} on SIGTERM"
    done
    fc_say "A's log: $n2 lines mention split brain in all"
    vrrp_cleanup
    [ "${#CASE_FAILS[@]}" = 0 ]
}
