# shellcheck shell=bash
# tests/e2e/live-delete.sh: the end-to-end case "live-delete": deleting a
# virtual service leaves its established connections running until they
# end, as IPVS does (`ipvsadm -D` unlinks the service; connections keep
# their real server until they expire), while new connections to the VIP
# find no service. Sourced by tests/e2e/run.sh after scripts/lib.sh,
# scripts/topo.sh and scripts/case.sh, whose functions it reuses.
#
# Layer: system test. `live_delete_case_run NW` builds the NAT topology, puts
# one file of LIVE_DELETE_BYTES (default 8 MiB) random bytes in every real
# server's web root ($RUN/rsN.www, served as /data/ by scripts/topo.sh),
# starts fulcrum with NW workers, checks one request works, then starts one
# download of the file through the VIP from the client. nginx paces it at
# TOPO_DATA_RATE (1.5 MiB/s, so about 5.3 s; pacing at the sender, not at
# curl, so the bytes cross the director over that time instead of waiting
# in the client's socket buffer). After 1.5 s, while it runs,
# `fulcrumctl -D -t VIP:80` deletes the service; then a new connection to
# the VIP is tried during the download and again after it.
#
# Checks (one CASE_FAILS reason each): the download was still running when
# the service was deleted, with at least a quarter of the bytes still to
# come; it completes (curl exit 0, HTTP 200) with exactly
# LIVE_DELETE_BYTES bytes and the file's sha256; the real server's nginx
# logged it as 200 with the full size; fulcrumctl -D succeeds and
# `fulcrumctl -L -n` no longer lists the service; both new connections fail
# (no answer from any real server); no drop outside FC_BENIGN_DROPS and
# no_service (the refused new connections); fulcrum exits 0 on SIGTERM. A stalled
# download is cut by curl after 5 s below 1000 B/s (exit 28), so the case
# fails within seconds instead of hanging. Teardown always runs
# (case_cleanup).

# live_delete_try_new WHEN: one new connection to the VIP (curl -m 2) that
# must fail; records a failure if any real server answers.
live_delete_try_new() {
    local body rc
    body=$(topo_x cl curl -s -m 2 "http://$TOPO_VIP/" 2>/dev/null)
    rc=$?
    if [ "$rc" = 0 ]; then
        case_fail "a new connection $1 the delete was answered ('$body'): the service is still in use"
    else
        fc_say "new connection $1 the delete: refused as expected (curl exit $rc)"
    fi
}

live_delete_case_run() {
    local nw=$1 size=${LIVE_DELETE_BYTES:-8388608}
    local n sum got_sum got_size dl_pid rc t0 t_del t_end code partial
    # shellcheck disable=SC2034 # read by case_fail and case_finish (scripts/case.sh)
    CASE_FAILS=()
    case_setup "live-delete-${nw}w" nat || return 1
    head -c "$size" /dev/urandom >"$RUN/big.bin"
    sum=$(sha256sum "$RUN/big.bin" | cut -d' ' -f1)
    for n in 1 2 3; do cp "$RUN/big.bin" "$RUN/rs$n.www/big.bin"; done
    fc_say "download: $size bytes (sha256 ${sum:0:16}...) in each real server's /data/, sent at $TOPO_DATA_RATE/s"

    fc_write_veth_config nat "$nw" "$RUN/fulcrum.ron"
    case_start_fulcrum "$RUN/fulcrum.ron" || return 1
    topo_x cl ping -c 2 -i 0.2 -W 1 "$TOPO_VIP" >"$RUN/ping.txt" 2>&1 ||
        case_fail "ping $TOPO_VIP from the client failed"
    sleep 0.3
    topo_curl_loop 1 "$RUN/before.txt"
    grep -q '^rs[1-3]$' "$RUN/before.txt" ||
        case_fail "the request before the download failed: $(cat "$RUN/before.txt")"

    t0=$(date +%s.%N)
    # `ip netns exec` execs, so $! is curl itself.
    topo_x cl curl -s -m 60 --speed-time 5 --speed-limit 1000 \
        -o "$RUN/download.bin" -w '%{http_code} %{size_download}\n' \
        "http://$TOPO_VIP/data/big.bin" >"$RUN/download.txt" 2>"$RUN/download.err" &
    dl_pid=$!
    sleep 1.5

    partial=$(stat -c %s "$RUN/download.bin" 2>/dev/null || echo 0)
    if ! kill -0 "$dl_pid" 2>/dev/null; then
        case_fail "the download had ended ($partial bytes) before the delete: nothing was tested (lower TOPO_DATA_RATE)"
    elif [ "$partial" -gt $((size * 3 / 4)) ]; then
        case_fail "$partial of $size bytes were in before the delete: too few left to test (lower TOPO_DATA_RATE)"
    else
        fc_say "download running: $partial of $size bytes after 1.5 s"
    fi
    t_del=$(date +%s.%N)
    if fc_ctl -D -t "$TOPO_VIP:80" >"$RUN/delete.txt" 2>&1; then
        fc_say "fulcrumctl -D -t $TOPO_VIP:80: ok"
    else
        case_fail "fulcrumctl -D -t $TOPO_VIP:80 failed: $(head -c 300 "$RUN/delete.txt")"
    fi
    fc_ctl -L -n >"$RUN/ctl-L-n.txt" 2>&1
    sed 's/^/  /' "$RUN/ctl-L-n.txt"
    grep -q "$TOPO_VIP:80" "$RUN/ctl-L-n.txt" && case_fail "fulcrumctl -L -n still lists $TOPO_VIP:80 after -D"
    sleep 0.3
    live_delete_try_new during

    wait "$dl_pid"
    rc=$?
    t_end=$(date +%s.%N)
    read -r code got_size <"$RUN/download.txt" 2>/dev/null
    got_sum=$(sha256sum "$RUN/download.bin" 2>/dev/null | cut -d' ' -f1)
    fc_say "download: curl exit $rc, HTTP ${code:-?}, ${got_size:-?} of $size bytes, $(awk -v a="$t0" -v b="$t_end" 'BEGIN{printf "%.1f", b-a}') s in all, $(awk -v a="$t_del" -v b="$t_end" 'BEGIN{printf "%.1f", b-a}') s after the delete"
    if [ "$rc" != 0 ]; then
        case_fail "the download died after the service was deleted: curl exit $rc ($(head -c 200 "$RUN/download.err")), ${got_size:-?} of $size bytes"
    elif [ "$code" != 200 ] || [ "$got_size" != "$size" ]; then
        case_fail "the download ended with HTTP ${code:-?} and ${got_size:-?} bytes, expected 200 and $size"
    elif [ "$got_sum" != "$sum" ]; then
        case_fail "the downloaded file's sha256 differs from the real server's ($got_sum vs $sum)"
    else
        fc_say "download complete and intact (sha256 matches)"
    fi
    grep -h ' "GET /data/big.bin ' "$RUN"/rs[123].access.log | head -n 1 | sed 's/^/  access log: /'
    grep -h ' "GET /data/big.bin ' "$RUN"/rs[123].access.log | grep -q "\" 200 $size " ||
        case_fail "no real server logged the download as 200 with $size bytes"
    live_delete_try_new after

    # The refused new connections are the expected drops (no_service).
    if FC_BENIGN_DROPS=$FC_BENIGN_DROPS,no_service case_read_stats; then
        while IFS= read -r line; do
            case_fail "unexpected drops: $line"
        done < <(awk '$3 == "UNEXPECTED" {print $1 " = " $2}' "$RUN/drops.txt")
    fi

    case_finish
}
