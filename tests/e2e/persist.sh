# shellcheck shell=bash
# tests/e2e/persist.sh: the end-to-end cases "sh" and "persist": one client
# address must always reach the same real server, while different client
# addresses spread. Sourced by tests/e2e/run.sh after scripts/lib.sh,
# scripts/topo.sh and scripts/case.sh, whose functions it reuses.
#
# Layer: system test. `persist_case_run KIND NW` builds the NAT topology,
# gives the client namespace the extra addresses 10.0.0.3..10.0.0.9 (on the
# client's /24, so the director's connected route and the static neighbour
# entries below reach them), starts fulcrum with NW workers and one service
# over rs1..rs3:
#   sh       scheduler "sh" (source hashing), no persistence;
#   persist  scheduler "rr" with persistence_timeout 300 (templates replicated
#            between the workers when NW = 2).
# Then, for each of the 8 client addresses in turn, PERSIST_REQUESTS
# (default 50) sequential new connections with `curl --interface ADDR`.
#
# Checks (one CASE_FAILS reason each): every request answered by some rsN;
# for each client address, every answer body and every nginx access-log line
# with that address (NAT keeps the CIP) comes from one real server, and the
# log holds exactly PERSIST_REQUESTS of them; the addresses together reach
# at least 2 real servers; fulcrum's service conns equal the total and each
# real server's conns its access-log count; no drop outside FC_BENIGN_DROPS;
# persist: every worker holds exactly 8 templates (replication), sh: none;
# fulcrum exits 0 on SIGTERM. Teardown always runs (case_cleanup).

PERSIST_CLIENTS=(10.0.0.2 10.0.0.3 10.0.0.4 10.0.0.5 10.0.0.6 10.0.0.7 10.0.0.8 10.0.0.9)
# The client's eth0 MAC (scripts/topo.sh).
PERSIST_CLIENT_MAC=02:fc:00:00:00:02

# persist_curl_loop ADDR COUNT OUTFILE: COUNT sequential `curl -s -m 5
# --interface ADDR` to the VIP from the client namespace, one line per
# request into OUTFILE (the body, or "FAIL <curl exit status>"). Bounded:
# at most 5 s per request and COUNT*5+30 s in all.
persist_curl_loop() {
    : >"$3"
    # shellcheck disable=SC2016 # expanded by the inner bash, from its args
    timeout $(($2 * 5 + 30)) ip netns exec "${P}cl" bash -c '
        for i in $(seq "$2"); do
            if body=$(curl -s -m 5 --interface "$1" "http://$3/"); then
                printf "%s\n" "$body"
            else
                echo "FAIL $?"
            fi
        done' curl-loop "$1" "$2" "$TOPO_VIP" >>"$3"
}

# persist_logged N ADDR: requests from ADDR in real server rsN's access log.
persist_logged() {
    awk -v a="$2" '$1 == a { n++ } END { print n + 0 }' "$RUN/rs$1.access.log" 2>/dev/null || echo 0
}

persist_case_run() {
    local kind=$1 nw=$2 nreq=${PERSIST_REQUESTS:-50} sched svc_extra neigh addr n ip
    local answers servers used=() total=0 logged stats conns sum tpl full want
    CASE_FAILS=()
    case $kind in
        sh) sched=sh svc_extra="" ;;
        persist) sched=rr svc_extra="persistence_timeout: 300," ;;
        *)
            case_fail "unknown persistence case '$kind' (expected sh or persist)"
            return 1
            ;;
    esac
    case_setup "$kind-${nw}w" nat || return 1
    neigh=""
    for addr in "${PERSIST_CLIENTS[@]}"; do
        if [ "$addr" != "$TOPO_CLIENT" ] && ! topo_x cl ip addr add "$addr/24" dev eth0 2>>"$RUN/topo.log"; then
            case_fail "cannot add client address $addr (see $RUN/topo.log)"
        fi
        # Static neighbours: the director needs each client's MAC for the
        # NAT replies, and the client kernel's ARP for the VIP (what teaches
        # the director 10.0.0.2 in the other cases) names one address only.
        neigh+="(ip: \"$addr\", mac: \"$PERSIST_CLIENT_MAC\"), "
    done
    if [ "${#CASE_FAILS[@]}" != 0 ]; then
        case_cleanup
        return 1
    fi

    fc_write_veth_config nat "$nw" "$RUN/fulcrum.ron" "$sched" "$svc_extra" "neighbours: [$neigh],"
    case_start_fulcrum "$RUN/fulcrum.ron" || return 1
    # fulcrum ARPs for the real servers when it adopts the config.
    sleep 0.3

    fc_say ""
    printf '  %-10s %-22s %s\n' "client" "answers" "access logs rs1/rs2/rs3"
    for addr in "${PERSIST_CLIENTS[@]}"; do
        persist_curl_loop "$addr" "$nreq" "$RUN/resp-$addr.txt"
        answers=$(sort "$RUN/resp-$addr.txt" | uniq -c | awk '{printf "%s%s x%d", (NR > 1 ? ", " : ""), $2 ($3 ? " " $3 : ""), $1}')
        logged=()
        for n in 1 2 3; do logged+=("$(persist_logged "$n" "$addr")"); done
        printf '  %-10s %-22s %s\n' "$addr" "$answers" "$(
            IFS=/
            echo "${logged[*]}"
        )"
        servers=$(grep -c . <<<"$(sort -u "$RUN/resp-$addr.txt")")
        if grep -q '^FAIL' "$RUN/resp-$addr.txt"; then
            case_fail "client $addr: $(grep -c '^FAIL' "$RUN/resp-$addr.txt") of $nreq requests failed ($answers)"
        elif [ "$servers" != 1 ]; then
            case_fail "client $addr reached $servers real servers: $answers (expected one)"
        fi
        # The access logs must agree: one real server logged all of them.
        local nonzero=0 only=""
        for n in 1 2 3; do
            if [ "${logged[$((n - 1))]}" != 0 ]; then
                nonzero=$((nonzero + 1))
                only=$n
            fi
        done
        if [ "$nonzero" != 1 ] || [ "${logged[$((only - 1))]}" != "$nreq" ]; then
            case_fail "client $addr: access logs rs1/rs2/rs3 = ${logged[*]}, expected $nreq on exactly one"
        else
            [[ " ${used[*]} " == *" rs$only "* ]] || used+=("rs$only")
        fi
        total=$((total + nreq))
    done
    fc_say ""
    fc_say "real servers reached by the ${#PERSIST_CLIENTS[@]} client addresses: ${used[*]:-none}"
    [ "${#used[@]}" -ge 2 ] || case_fail "all client addresses went to ${used[*]:-no real server}: expected at least 2 real servers"

    if case_read_stats; then
        stats=$RUN/stats.json
        if grep -q UNEXPECTED "$RUN/drops.txt"; then
            case_fail "unexpected drops: $(grep UNEXPECTED "$RUN/drops.txt" | awk '{printf "%s%s = %s", (NR > 1 ? ", " : ""), $1, $2}')"
        fi
        conns=$("$PY" "$FC_ROOT/scripts/fcjson.py" value "$stats" services.0.conns)
        [ "$conns" = "$total" ] || case_fail "service conns = $conns, expected $total"
        for n in 1 2 3; do
            ip=${TOPO_RS_IPS[$((n - 1))]}
            sum=$(topo_access_count "$n")
            conns=$("$PY" "$FC_ROOT/scripts/fcjson.py" real "$stats" "$ip" conns)
            [ "$conns" = "$sum" ] || case_fail "real server $ip: fulcrum conns = $conns but nginx logged $sum"
        done
        tpl=$("$PY" "$FC_ROOT/scripts/fcjson.py" each "$stats" persist_templates)
        full=$("$PY" "$FC_ROOT/scripts/fcjson.py" value "$stats" workers.persist_table_full)
        fc_say "persistent templates per worker: $tpl (table full: $full)"
        want=0
        [ "$kind" = persist ] && want=${#PERSIST_CLIENTS[@]}
        for n in $tpl; do
            [ "$n" = "$want" ] || case_fail "a worker holds $n persistent templates, expected $want (per worker: $tpl)"
        done
        [ "$full" = 0 ] || case_fail "persist_table_full = $full, expected 0"
    fi

    case_finish
}
