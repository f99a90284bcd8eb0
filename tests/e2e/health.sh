# shellcheck shell=bash
# tests/e2e/health.sh: the end-to-end cases "health" (NAT, HTTP_GET),
# "health-dr" (DR, TCP_CHECK with inhibit_on_failure) and "health-quorum"
# (the sorry server and the quorum scripts). Sourced by tests/e2e/run.sh
# after scripts/lib.sh, scripts/topo.sh and scripts/case.sh.
#
# Layer: system test. The checkers run in fulcrum's control thread over the
# exception path (the director's kernel sockets on its TAP interfaces), to
# the real servers' real nginx.
#
# health / health-dr (`health_case_run MODE NW`): 3 real servers, checks
# every HEALTH_DELAY_LOOP (1 s) with connect_timeout 1 s, retry 1 and
# delay_before_retry 0.5 s, so the detection window W is 1 + 1*0.5 + 1 =
# 2.5 s. A client sends sequential requests (curl -m 1, one line each with
# its time) for the whole case. After 3 s nginx stops on rs2; 2 s after the
# window it starts again, and the client goes on for 4 s more.
# Checks (one CASE_FAILS reason each):
#   - before the stop every request is answered, by all three servers;
#   - from stop + W + 0.3 s to the restart: no request fails and none is
#     answered by rs2 (the failures inside the window are printed: the
#     number the closing note asks for); fulcrum logged rs2's transition
#     with its reason;
#   - NAT: `fulcrumctl -L -n` no longer lists rs2 while it is down; DR
#     (inhibit_on_failure): it lists rs2 with weight 0, and rs2's
#     connection count does not move after the window;
#   - after the restart rs2 answers within HEALTH_DELAY_LOOP + 1 s and
#     `fulcrumctl --health` shows it up again, with the transition count;
#   - no drop outside FC_BENIGN_DROPS; fulcrum exits 0 on SIGTERM.
#
# health-quorum (`health_quorum_case_run NW`): rs1 and rs2 are the real
# servers (TCP_CHECK), rs3 the sorry server; quorum_up / quorum_down
# scripts (in a root-only directory, so they pass the script-security rule)
# append to a log. Both nginx stop: every request is answered by rs3 and
# quorum_down ran; rs1 starts again: requests go to rs1 only and quorum_up
# ran. Teardown always runs (case_cleanup, and the script directory is
# removed).

HEALTH_DELAY_LOOP=${HEALTH_DELAY_LOOP:-1}
# delay_loop + retry * delay_before_retry + connect_timeout.
HEALTH_WINDOW=2.5

# health_stop_rs N / health_start_rs N: stop (SIGQUIT, wait) or start the
# nginx of real server rsN.
health_stop_rs() {
    local pid _
    pid=$(cat "$RUN/rs$1.pid" 2>/dev/null) || return 0
    kill -QUIT "$pid" 2>/dev/null
    for _ in $(seq 30); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
}
health_start_rs() {
    topo_x "rs$1" nginx -e "$RUN/rs$1.error.log" -c "$RUN/rs$1.nginx.conf"
}

# health_client SECONDS OUT: sequential requests to the VIP from the client
# for SECONDS (bounded by `timeout`), one line each: `<unix time> <body or
# FAIL n>`. Runs in the background; sets HEALTH_CLIENT_PID.
health_client() {
    # shellcheck disable=SC2016 # expanded by the inner bash, from its args
    timeout $(($1 + 10)) ip netns exec "${P}cl" bash -c '
        end=$((SECONDS + $1))
        while [ "$SECONDS" -lt "$end" ]; do
            if body=$(curl -s -m 1 "http://$2/"); then
                echo "$(date +%s.%N) $body"
            else
                rc=$?
                echo "$(date +%s.%N) FAIL $rc"
            fi
        done' health-client "$1" "$TOPO_VIP" >"$2" &
    HEALTH_CLIENT_PID=$!
}

# health_count OUT FROM TO PATTERN: lines of OUT with time in [FROM, TO)
# whose body matches the awk regex PATTERN.
health_count() {
    awk -v a="$2" -v b="$3" -v pat="$4" '$1 >= a && $1 < b && $2 ~ pat {n++} END {print n + 0}' "$1"
}

health_case_run() {
    local mode=$1 nw=$2 checker rs_extra svc_extra t_stop t_ok t_start t_first
    local n_before n_fail_window n_fail_after n_rs2_after n_after conns_a conns_b up_line
    # shellcheck disable=SC2034 # read by case_fail and case_finish (scripts/case.sh)
    CASE_FAILS=()
    case_setup "health-$mode-${nw}w" "$mode" || return 1
    if [ "$mode" = nat ]; then
        checker='HTTP_GET(url: [(path: "/", status_code: [200])])'
        svc_extra=""
    else
        checker='TCP_CHECK()'
        svc_extra="inhibit_on_failure: true,"
    fi
    rs_extra="checkers: [$checker],"
    svc_extra="$svc_extra delay_loop: $HEALTH_DELAY_LOOP, connect_timeout: 1, retry: 1, delay_before_retry: 0.5,"
    fc_write_veth_config "$mode" "$nw" "$RUN/fulcrum.ron" rr "$svc_extra" "" "$rs_extra"
    case_start_fulcrum "$RUN/fulcrum.ron" || return 1
    # The first checks run within one delay_loop of the start.
    sleep $((HEALTH_DELAY_LOOP + 1))
    fc_ctl --health >"$RUN/health-start.txt" 2>&1
    sed 's/^/  /' "$RUN/health-start.txt"

    health_client 16 "$RUN/client.txt"
    sleep 3
    t_stop=$(date +%s.%N)
    health_stop_rs 2
    fc_say "nginx stopped on rs2 at +3 s; detection window ${HEALTH_WINDOW} s"
    t_ok=$(awk -v a="$t_stop" -v w="$HEALTH_WINDOW" 'BEGIN{printf "%.3f", a + w + 0.3}')
    sleep "$HEALTH_WINDOW"
    sleep 0.5
    fc_json "$RUN/down-a.json"
    fc_ctl -L -n >"$RUN/down-L.txt" 2>&1
    sed 's/^/  /' "$RUN/down-L.txt"
    sleep 1.5
    fc_json "$RUN/down-b.json"
    t_start=$(date +%s.%N)
    health_start_rs 2
    fc_say "nginx started again on rs2"
    wait "$HEALTH_CLIENT_PID"
    fc_ctl --health >"$RUN/health-end.txt" 2>&1
    sed 's/^/  /' "$RUN/health-end.txt"

    n_before=$(health_count "$RUN/client.txt" 0 "$t_stop" '^rs[123]$')
    local n_fail_before
    n_fail_before=$(health_count "$RUN/client.txt" 0 "$t_stop" '^FAIL$')
    n_fail_window=$(health_count "$RUN/client.txt" "$t_stop" "$t_ok" '^FAIL$')
    n_fail_after=$(health_count "$RUN/client.txt" "$t_ok" "$t_start" '^FAIL$')
    n_rs2_after=$(health_count "$RUN/client.txt" "$t_ok" "$t_start" '^rs2$')
    n_after=$(health_count "$RUN/client.txt" "$t_ok" "$t_start" '^rs[13]$')
    fc_say "before the stop: $n_before answered, $n_fail_before failed; inside the window: $n_fail_window failed; after it: $n_after answered, $n_fail_after failed, $n_rs2_after by rs2"
    [ "$n_fail_before" = 0 ] || case_fail "$n_fail_before requests failed before rs2 was stopped"
    for n in 1 2 3; do
        [ "$(health_count "$RUN/client.txt" 0 "$t_stop" "^rs$n\$")" -gt 0 ] ||
            case_fail "rs$n answered no request before the stop"
    done
    [ "$n_after" -gt 10 ] || case_fail "only $n_after requests answered after the window (client too slow?)"
    [ "$n_fail_after" = 0 ] || case_fail "$n_fail_after requests failed after the detection window"
    [ "$n_rs2_after" = 0 ] || case_fail "rs2 answered $n_rs2_after requests while stopped (impossible: check the log)"
    grep -q '10.1.0.12:80.*down\|down.*10.1.0.12:80' "$RUN/fulcrum.log" ||
        case_fail "fulcrum logged no down transition of 10.1.0.12:80"
    grep -m1 '10.1.0.12:80' "$RUN/fulcrum.log" | sed 's/^/  log: /'
    if [ "$mode" = nat ]; then
        grep -q '10.1.0.12:80' "$RUN/down-L.txt" &&
            case_fail "fulcrumctl -L -n still lists rs2 while it is down (expected it removed)"
    else
        grep -E '10\.1\.0\.12:80 +Route +0 ' "$RUN/down-L.txt" >/dev/null ||
            case_fail "fulcrumctl -L -n does not show rs2 with weight 0 (inhibit_on_failure)"
        conns_a=$("$PY" "$FC_ROOT/scripts/fcjson.py" real "$RUN/down-a.json" 10.1.0.12 conns)
        conns_b=$("$PY" "$FC_ROOT/scripts/fcjson.py" real "$RUN/down-b.json" 10.1.0.12 conns)
        [ "$conns_a" = "$conns_b" ] ||
            case_fail "rs2 got new connections while down: conns $conns_a -> $conns_b"
    fi
    t_first=$(awk -v a="$t_start" '$1 >= a && $2 == "rs2" {print $1; exit}' "$RUN/client.txt")
    if [ -z "$t_first" ]; then
        case_fail "rs2 answered nothing after it was started again"
    else
        local dt
        dt=$(awk -v a="$t_start" -v b="$t_first" 'BEGIN{printf "%.2f", b - a}')
        fc_say "rs2 back in rotation: first answer $dt s after nginx started (delay_loop $HEALTH_DELAY_LOOP s)"
        awk -v d="$dt" -v l="$HEALTH_DELAY_LOOP" 'BEGIN{exit !(d <= l + 1)}' ||
            case_fail "rs2 took $dt s to return, expected within delay_loop + 1 s"
    fi
    up_line=$(grep '10.1.0.12:80' "$RUN/health-end.txt" | head -n 1)
    case "$up_line" in
        *" up "*) ;;
        *) case_fail "fulcrumctl --health does not show rs2 up at the end: '$up_line'" ;;
    esac
    if case_read_stats; then
        while IFS= read -r line; do
            case_fail "unexpected drops: $line"
        done < <(awk '$3 == "UNEXPECTED" {print $1 " = " $2}' "$RUN/drops.txt")
    fi
    case_finish
}

health_quorum_case_run() {
    local nw=$1 sdir svc_extra n_sorry n_fail n_rs1 n_other
    # shellcheck disable=SC2034 # read by case_fail and case_finish (scripts/case.sh)
    CASE_FAILS=()
    case_setup "health-quorum-${nw}w" nat || return 1
    # Scripts must pass enable_script_security: root-owned, in directories
    # nobody else may write (a checkout under /tmp would not do).
    sdir=$(mktemp -d /run/fulcrum-e2e.XXXXXX)
    chmod 700 "$sdir"
    HEALTH_SCRIPT_DIR=$sdir
    for ev in up down; do
        printf '#!/bin/sh\necho "quorum_%s $(date +%%s.%%N) $*" >>%s/quorum.log\n' "$ev" "$sdir" >"$sdir/quorum_$ev.sh"
        chmod 755 "$sdir/quorum_$ev.sh"
    done
    svc_extra="delay_loop: $HEALTH_DELAY_LOOP, connect_timeout: 1, retry: 1, delay_before_retry: 0.5,
         sorry_server: \"10.1.0.13:80\",
         quorum_up: \"$sdir/quorum_up.sh 10.0.0.100:80\", quorum_down: \"$sdir/quorum_down.sh 10.0.0.100:80\","
    FC_RS="1 2" fc_write_veth_config nat "$nw" "$RUN/fulcrum.ron" rr "$svc_extra" "" "checkers: [TCP_CHECK()],"
    case_start_fulcrum "$RUN/fulcrum.ron" || { rm -rf "$sdir"; return 1; }
    sleep $((HEALTH_DELAY_LOOP + 1))
    topo_curl_loop 20 "$RUN/q-before.txt"
    n_other=$(grep -c -v '^rs[12]$' "$RUN/q-before.txt")
    [ "$n_other" = 0 ] || case_fail "with rs1 and rs2 up, $n_other of 20 requests were not answered by them: $(sort "$RUN/q-before.txt" | uniq -c | tr '\n' ' ')"
    [ -s "$sdir/quorum.log" ] && case_fail "a quorum script ran at start-up: $(cat "$sdir/quorum.log")"

    health_stop_rs 1
    health_stop_rs 2
    fc_say "nginx stopped on rs1 and rs2"
    sleep "$HEALTH_WINDOW"
    sleep 0.8
    fc_ctl -L -n >"$RUN/q-down-L.txt" 2>&1
    sed 's/^/  /' "$RUN/q-down-L.txt"
    topo_curl_loop 20 "$RUN/q-down.txt"
    n_sorry=$(grep -c '^rs3$' "$RUN/q-down.txt")
    fc_say "all real servers down: $n_sorry of 20 requests answered by the sorry server rs3"
    [ "$n_sorry" = 20 ] || case_fail "the sorry server answered $n_sorry of 20 requests: $(sort "$RUN/q-down.txt" | uniq -c | tr '\n' ' ')"
    grep -q '10.1.0.13:80' "$RUN/q-down-L.txt" || case_fail "fulcrumctl -L -n does not list the sorry server while quorum is lost"
    grep -q '^quorum_down .* 10.0.0.100:80$' "$sdir/quorum.log" 2>/dev/null ||
        case_fail "quorum_down did not run (log: $(cat "$sdir/quorum.log" 2>/dev/null))"

    health_start_rs 1
    fc_say "nginx started again on rs1"
    sleep $((HEALTH_DELAY_LOOP + 1))
    topo_curl_loop 20 "$RUN/q-up.txt"
    n_rs1=$(grep -c '^rs1$' "$RUN/q-up.txt")
    n_fail=$(grep -c '^FAIL' "$RUN/q-up.txt")
    fc_say "rs1 back: $n_rs1 of 20 requests answered by rs1, $n_fail failed"
    [ "$n_rs1" = 20 ] || case_fail "after rs1 returned, $n_rs1 of 20 requests went to it: $(sort "$RUN/q-up.txt" | uniq -c | tr '\n' ' ')"
    grep -q '^quorum_up .* 10.0.0.100:80$' "$sdir/quorum.log" 2>/dev/null ||
        case_fail "quorum_up did not run (log: $(cat "$sdir/quorum.log" 2>/dev/null))"
    sed 's/^/  script: /' "$sdir/quorum.log" 2>/dev/null
    if case_read_stats; then
        while IFS= read -r line; do
            case_fail "unexpected drops: $line"
        done < <(awk '$3 == "UNEXPECTED" {print $1 " = " $2}' "$RUN/drops.txt")
    fi
    case_finish
    local rc=$?
    rm -rf "$sdir"
    HEALTH_SCRIPT_DIR=
    return $rc
}
