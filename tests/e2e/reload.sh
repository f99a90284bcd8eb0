# shellcheck shell=bash
# tests/e2e/reload.sh: the end-to-end case "reload" (safe reload under
# load). Sourced by tests/e2e/run.sh after scripts/lib.sh, scripts/topo.sh
# and scripts/case.sh.
#
# Layer: system test. `reload_case_run NW`: NAT, rr, the config file names
# rs1 and rs2 (rs3's nginx runs but is left out). A client sends sequential
# requests (curl -m 2, one line each with its time) for RELOAD_SECONDS
# (default 9 s). At +2.5 s the file is rewritten to name rs2 and rs3 (rs3
# added, rs1 removed) and fulcrum gets SIGHUP; at +5.5 s the file is broken
# (scheduler "bogus"), fulcrum gets SIGHUP again and `fulcrumctl --reload`
# is run. Checks (one CASE_FAILS reason each):
#   - no request fails over the whole run (both reloads included);
#   - before the first SIGHUP only rs1 and rs2 answer, both of them;
#   - rs3 answers within 1 s of the SIGHUP; from 0.5 s after it rs1 answers
#     nothing more (its in-flight connection may finish), rs2 and rs3 do;
#   - fulcrum logged "config reloaded" with "1 real server(s) added";
#   - after the broken file: fulcrum still serves (rs2 and rs3), logged
#     "config reload failed", `fulcrumctl --reload` exits 1 printing
#     FILE:LINE:COL of the bad scheduler, `-L -n` still lists 10.1.0.13 and
#     not 10.1.0.11, and `--json`'s reload shows ok false, count 3;
#   - no drop outside FC_BENIGN_DROPS; fulcrum exits 0 on SIGTERM.
# Teardown always runs (case_cleanup).

RELOAD_SECONDS=${RELOAD_SECONDS:-9}

# reload_client SECONDS OUT: sequential requests to the VIP for SECONDS
# (bounded by `timeout`), one `<unix time> <body or FAIL n>` line each, in
# the background; sets RELOAD_CLIENT_PID.
reload_client() {
    # shellcheck disable=SC2016 # expanded by the inner bash, from its args
    timeout $(($1 + 10)) ip netns exec "${P}cl" bash -c '
        end=$((SECONDS + $1))
        while [ "$SECONDS" -lt "$end" ]; do
            if body=$(curl -s -m 2 "http://$2/"); then
                echo "$(date +%s.%N) $body"
            else
                echo "$(date +%s.%N) FAIL $?"
            fi
        done' reload-client "$1" "$TOPO_VIP" >"$2" &
    RELOAD_CLIENT_PID=$!
}

# reload_count OUT FROM TO PATTERN: lines with time in [FROM, TO) whose
# body matches the awk regex PATTERN.
reload_count() {
    awk -v a="$2" -v b="$3" -v pat="$4" '$1 >= a && $1 < b && $2 ~ pat {n++} END {print n + 0}' "$1"
}

reload_case_run() {
    local nw=$1 out t_hup t_grace t_broken t_first dt n line end=9999999999
    # shellcheck disable=SC2034 # read by case_fail and case_finish (scripts/case.sh)
    CASE_FAILS=()
    case_setup "reload-${nw}w" nat || return 1
    FC_RS="1 2" fc_write_veth_config nat "$nw" "$RUN/fulcrum.ron"
    FC_RS="2 3" fc_write_veth_config nat "$nw" "$RUN/fulcrum-23.ron"
    case_start_fulcrum "$RUN/fulcrum.ron" || return 1
    out=$RUN/client.txt
    reload_client "$RELOAD_SECONDS" "$out"
    sleep 2.5
    cp "$RUN/fulcrum-23.ron" "$RUN/fulcrum.ron"
    t_hup=$(date +%s.%N)
    kill -HUP "$FC_PID"
    fc_say "SIGHUP at +2.5 s: rs3 added, rs1 removed"
    sleep 3
    sed -i 's/scheduler: "rr"/scheduler: "bogus"/' "$RUN/fulcrum.ron"
    t_broken=$(date +%s.%N)
    kill -HUP "$FC_PID"
    fc_ctl --reload >"$RUN/reload-broken.out" 2>"$RUN/reload-broken.err"
    local rc=$?
    fc_say "broken file at +5.5 s: SIGHUP, then fulcrumctl --reload exit $rc: $(head -c 300 "$RUN/reload-broken.err")"
    wait "$RELOAD_CLIENT_PID"
    t_grace=$(awk -v a="$t_hup" 'BEGIN{printf "%.3f", a + 0.5}')

    n=$(reload_count "$out" 0 "$end" '^FAIL$')
    fc_say "requests: $(wc -l <"$out") sent, $n failed; before the SIGHUP rs1/rs2/rs3: $(reload_count "$out" 0 "$t_hup" '^rs1$')/$(reload_count "$out" 0 "$t_hup" '^rs2$')/$(reload_count "$out" 0 "$t_hup" '^rs3$'); after it: $(reload_count "$out" "$t_grace" "$end" '^rs1$')/$(reload_count "$out" "$t_grace" "$end" '^rs2$')/$(reload_count "$out" "$t_grace" "$end" '^rs3$')"
    [ "$n" = 0 ] || case_fail "$n requests failed: $(grep FAIL "$out" | head -n 3 | tr '\n' '|')"
    for rs in rs1 rs2; do
        [ "$(reload_count "$out" 0 "$t_hup" "^$rs\$")" -gt 0 ] || case_fail "$rs answered nothing before the SIGHUP"
    done
    [ "$(reload_count "$out" 0 "$t_hup" '^rs3$')" = 0 ] || case_fail "rs3 answered before the SIGHUP (it is not in the file)"
    t_first=$(awk -v a="$t_hup" '$1 >= a && $2 == "rs3" {print $1; exit}' "$out")
    if [ -z "$t_first" ]; then
        case_fail "rs3 never answered after the SIGHUP"
    else
        dt=$(awk -v a="$t_hup" -v b="$t_first" 'BEGIN{printf "%.3f", b - a}')
        fc_say "rs3's first answer $dt s after the SIGHUP"
        awk -v d="$dt" 'BEGIN{exit !(d < 1.0)}' || case_fail "rs3 answered $dt s after the SIGHUP, expected within 1 s"
    fi
    [ "$(reload_count "$out" "$t_grace" "$end" '^rs1$')" = 0 ] ||
        case_fail "rs1 answered $(reload_count "$out" "$t_grace" "$end" '^rs1$') requests after it was removed"
    [ "$(reload_count "$out" "$t_grace" "$end" '^rs2$')" -gt 0 ] || case_fail "rs2 answered nothing after the SIGHUP"
    [ "$(reload_count "$out" "$t_broken" "$end" '^rs[23]$')" -gt 5 ] ||
        case_fail "fewer than 6 requests answered after the broken reload (not serving?)"
    line=$(grep -m1 'config reloaded' "$RUN/fulcrum.log")
    fc_say "  log: $line"
    grep -q '1 real server(s) added, 1 removed' <<<"$line" || case_fail "no 'config reloaded: 1 real server(s) added, 1 removed' log line"
    line=$(grep -m1 'config reload failed' "$RUN/fulcrum.log")
    fc_say "  log: $line"
    [ -n "$line" ] || case_fail "no 'config reload failed' log line for the broken file"
    [ "$rc" = 1 ] || case_fail "fulcrumctl --reload exited $rc on the broken file, expected 1"
    local want
    want=$(grep -n 'scheduler: "bogus"' "$RUN/fulcrum.ron" | cut -d: -f1)
    grep -q "^fulcrumctl: $RUN/fulcrum.ron:$want:[0-9]*: invalid scheduler \"bogus\"" "$RUN/reload-broken.err" ||
        case_fail "fulcrumctl --reload did not print $RUN/fulcrum.ron:$want:COL: invalid scheduler: $(head -c 200 "$RUN/reload-broken.err")"
    fc_ctl -L -n >"$RUN/after-L.txt" 2>&1
    sed 's/^/  /' "$RUN/after-L.txt"
    grep -q '10.1.0.13:80' "$RUN/after-L.txt" || case_fail "-L -n does not list rs3 (10.1.0.13) after the reloads"
    grep -q '10.1.0.11:80' "$RUN/after-L.txt" && case_fail "-L -n still lists rs1 (10.1.0.11) after the reload removed it"
    if case_read_stats; then
        line=$("$PY" -c 'import json, sys; r = json.load(open(sys.argv[1]))["reload"]; print(r["ok"], r["count"])' "$RUN/stats.json" 2>&1)
        [ "$line" = "False 3" ] || case_fail "--json reload: expected ok False, count 3, got '$line'"
        while IFS= read -r line; do
            case_fail "unexpected drops: $line"
        done < <(awk '$3 == "UNEXPECTED" {print $1 " = " $2}' "$RUN/drops.txt")
    fi
    case_finish
}
