# shellcheck shell=bash
# tests/e2e/rate.sh: the end-to-end case "rate" (ipvsadm's --rate, -c, -Z
# and --set against a running fulcrum). Sourced by tests/e2e/run.sh after
# scripts/lib.sh, scripts/topo.sh and scripts/case.sh.
#
# Layer: system test, NAT, 3 nginx real servers. `rate_case_run NW`:
#   1. a client in its namespace opens RATE_SECONDS (30) s of sequential
#      HTTP requests paced to about RATE_RPS (20) per second, logging each
#      answer's time; after RATE_SECONDS - 2 s `fulcrumctl -L -n --rate` is
#      read, and its service CPS must be within 10 % of the true rate the
#      client achieved over the last 16 s (the estimator's 2 s samples and
#      weight 1/4 settle to within 10 % in 18 s);
#   2. three connections are held open (bash /dev/tcp, no request sent, so
#      nginx keeps them idle): `-L -n -c` must list them ESTABLISHED, and
#      the finished requests of step 1 as TIME_WAIT, with the VIP and real
#      server addresses; `-c -r RIP` lists only that real server's;
#   3. `-Z` zeroes: `--stats --exact` then shows 0 connections and 0 CPS;
#   4. `--set 0 0 0` then `--set 700 0 0`: `-L --timeout` shows 700, and a
#      new held-open connection's expire in `-c` is above 11:00 (the default
#      is 15:00; an old one keeps its 15-minute timer).
# Teardown always runs (case_cleanup).

RATE_SECONDS=${RATE_SECONDS:-30}
RATE_RPS=${RATE_RPS:-20}

# rate_hold N SECONDS: N TCP connections to the VIP held open for SECONDS
# from the client namespace, no request sent; background, pids in
# RATE_HOLD_PIDS.
rate_hold() {
    local i
    for i in $(seq "$1"); do
        # shellcheck disable=SC2016 # expanded by the inner bash
        timeout $(($2 + 5)) ip netns exec "${P}cl" bash -c \
            'exec 3<>"/dev/tcp/$0/80" && sleep "$1"' "$TOPO_VIP" "$2" &
        RATE_HOLD_PIDS+=("$!")
    done
}

rate_case_run() {
    local nw=$1 t_read true_rate cps n_est n_tw n_rs1 other zconns zcps to exp_min
    # shellcheck disable=SC2034 # read by case_fail and case_finish (scripts/case.sh)
    CASE_FAILS=()
    RATE_HOLD_PIDS=()
    case_setup "rate-${nw}w" nat || return 1
    fc_write_veth_config nat "$nw" "$RUN/fulcrum.ron" rr
    case_start_fulcrum "$RUN/fulcrum.ron" || return 1

    # 1. A paced client: one request every 1/RATE_RPS s on a fixed schedule.
    # shellcheck disable=SC2016 # expanded by the inner bash, from its args
    timeout $((RATE_SECONDS + 10)) ip netns exec "${P}cl" bash -c '
        start=$(date +%s%N); i=0
        while :; do
            now=$(date +%s%N)
            [ $(( (now - start) / 1000000000 )) -lt "$1" ] || break
            if curl -s -m 1 -o /dev/null "http://$2/"; then echo "$(date +%s.%N) ok"; else echo "$(date +%s.%N) FAIL"; fi
            i=$((i + 1))
            next=$((start + i * 1000000000 / $3))
            now=$(date +%s%N)
            [ "$next" -le "$now" ] || sleep "$(awk -v d=$((next - now)) "BEGIN{printf \"%.4f\", d / 1e9}")"
        done' rate-client "$RATE_SECONDS" "$TOPO_VIP" "$RATE_RPS" >"$RUN/client.txt" &
    local client=$!
    sleep $((RATE_SECONDS - 2))
    t_read=$(date +%s.%N)
    fc_ctl -L -n --rate >"$RUN/rate.txt" 2>&1
    wait "$client"
    sed 's/^/  /' "$RUN/rate.txt"
    true_rate=$(awk -v b="$t_read" '$2 == "ok" && $1 >= b - 16 && $1 < b {n++} END {printf "%.2f", n / 16}' "$RUN/client.txt")
    cps=$(awk '$1 == "TCP" && $2 == "10.0.0.100:80" {print $3}' "$RUN/rate.txt")
    fc_say "client: $(grep -c ' ok$' "$RUN/client.txt") requests answered, $(grep -c ' FAIL$' "$RUN/client.txt") failed; true rate over the last 16 s: $true_rate/s; fulcrum CPS: ${cps:-?}"
    [ "$(grep -c ' FAIL$' "$RUN/client.txt")" = 0 ] || case_fail "client requests failed"
    awk -v c="${cps:-0}" -v t="$true_rate" 'BEGIN{exit !(t > 5 && c >= 0.9 * t && c <= 1.1 * t)}' ||
        case_fail "--rate CPS ${cps:-missing} is not within 10 % of the true rate $true_rate/s"
    head -n 3 "$RUN/rate.txt" | tail -n 2 | grep -q 'CPS    InPPS   OutPPS    InBPS   OutBPS' ||
        case_fail "--rate title is not ipvsadm's"

    # 2. Held-open connections: ESTABLISHED; finished requests: TIME_WAIT.
    rate_hold 3 20
    sleep 1
    fc_ctl -L -n -c >"$RUN/conns.txt" 2>&1 || case_fail "fulcrumctl -L -n -c failed: $(head -c 200 "$RUN/conns.txt")"
    fc_ctl -L -n -c -r 10.1.0.11 >"$RUN/conns-rs1.txt" 2>&1
    fc_ctl -L -n -c --json >"$RUN/conns.json" 2>&1
    n_est=$(awk '$1 == "TCP" && $3 == "ESTABLISHED" && $4 ~ /^10\.0\.0\.2:/ && $5 == "10.0.0.100:80" && $6 ~ /^10\.1\.0\.1[123]:80$/' "$RUN/conns.txt" | wc -l)
    n_tw=$(awk '$1 == "TCP" && $3 == "TIME_WAIT" && $5 == "10.0.0.100:80"' "$RUN/conns.txt" | wc -l)
    n_rs1=$(awk 'NR > 2' "$RUN/conns-rs1.txt" | wc -l)
    other=$(awk 'NR > 2 && $6 != "10.1.0.11:80"' "$RUN/conns-rs1.txt" | wc -l)
    fc_say "-L -n -c: $n_est ESTABLISHED, $n_tw TIME_WAIT (of $(($(wc -l <"$RUN/conns.txt") - 2)) listed); -r 10.1.0.11: $n_rs1 listed"
    sed -n '1,2p' "$RUN/conns.txt" | sed 's/^/  /'
    grep -m 3 ESTABLISHED "$RUN/conns.txt" | sed 's/^/  /'
    grep -m 2 TIME_WAIT "$RUN/conns.txt" | sed 's/^/  /'
    [ "$(head -n 2 "$RUN/conns.txt" | tail -n 1 | tr -s ' ')" = "pro expire state source virtual destination" ] ||
        case_fail "-c title is not ipvsadm's"
    [ "$n_est" = 3 ] || case_fail "-c lists $n_est ESTABLISHED connections, expected the 3 held open"
    [ "$n_tw" -gt 100 ] || case_fail "-c lists only $n_tw TIME_WAIT connections after $RATE_SECONDS s of requests"
    [ "$n_rs1" -gt 0 ] && [ "$other" = 0 ] || case_fail "-c -r 10.1.0.11 listed $n_rs1 connections, $other of another real server"
    "$PY" -c 'import json,sys; c=json.load(open(sys.argv[1])); sys.exit(not any(e["state"]=="ESTABLISHED" and e["vport"]==80 for e in c))' "$RUN/conns.json" ||
        case_fail "-c --json lacks the ESTABLISHED connections"

    # 3. -Z zeroes the counters and the rates.
    fc_ctl -Z || case_fail "fulcrumctl -Z failed"
    fc_ctl -L -n --stats --exact >"$RUN/zero-stats.txt" 2>&1
    fc_ctl -L -n --rate >"$RUN/zero-rate.txt" 2>&1
    zconns=$(awk '$1 == "TCP" && $2 == "10.0.0.100:80" {print $3}' "$RUN/zero-stats.txt")
    zcps=$(awk '$1 == "TCP" && $2 == "10.0.0.100:80" {print $3}' "$RUN/zero-rate.txt")
    fc_say "after -Z: conns ${zconns:-?}, CPS ${zcps:-?}"
    [ "$zconns" = 0 ] && [ "$zcps" = 0 ] || case_fail "-Z left conns ${zconns:-?} / CPS ${zcps:-?}"

    # 4. --set: new connections get the new ESTABLISHED timeout.
    fc_ctl --set 0 0 0 || case_fail "--set 0 0 0 failed"
    to=$(fc_ctl -L --timeout)
    [ "$to" = "Timeout (tcp tcpfin udp): 900 120 300" ] || case_fail "-L --timeout after --set 0 0 0: '$to'"
    fc_ctl --set 700 0 0 || case_fail "--set 700 0 0 failed"
    to=$(fc_ctl -L --timeout)
    fc_say "$to"
    [ "$to" = "Timeout (tcp tcpfin udp): 700 120 300" ] || case_fail "-L --timeout after --set 700 0 0: '$to'"
    rate_hold 1 10
    sleep 1
    fc_ctl -L -n -c >"$RUN/conns-set.txt" 2>&1
    # Expire mm:ss: the new connection at most 11:40, the held ones above 14:00.
    exp_min=$(awk '$3 == "ESTABLISHED" {split($2, t, ":"); s = t[1] * 60 + t[2]; print s}' "$RUN/conns-set.txt" | sort -n | head -n 1)
    local n_old
    n_old=$(awk '$3 == "ESTABLISHED" {split($2, t, ":"); if (t[1] * 60 + t[2] > 840) n++} END {print n + 0}' "$RUN/conns-set.txt")
    fc_say "after --set 700: shortest ESTABLISHED expire ${exp_min:-?} s, $n_old older ones above 840 s"
    grep ESTABLISHED "$RUN/conns-set.txt" | sed 's/^/  /'
    awk -v e="${exp_min:-0}" 'BEGIN{exit !(e > 690 && e <= 700)}' ||
        case_fail "the connection opened after --set 700 expires in ${exp_min:-?} s, expected 690..700"
    [ "$n_old" = 3 ] || case_fail "$n_old of the 3 older connections kept their 900 s timer"

    kill "${RATE_HOLD_PIDS[@]}" 2>/dev/null
    wait "${RATE_HOLD_PIDS[@]}" 2>/dev/null
    if case_read_stats; then
        while IFS= read -r line; do
            case_fail "unexpected drops: $line"
        done < <(awk '$3 == "UNEXPECTED" {print $1 " = " $2}' "$RUN/drops.txt")
    fi
    case_finish
}
