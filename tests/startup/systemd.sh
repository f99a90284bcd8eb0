# shellcheck shell=bash
# tests/startup/systemd.sh: the systemd unit and the daemon's sd_notify and
# SIGHUP behaviour. Sourced by tests/startup/run.sh after its helpers
# (write_config, eal, expect_ctl, ok, bad) and the other cases.
#
# Layer: system test, no namespaces (net_null ports, --no-huge).
#   7. `systemd-analyze verify` accepts deploy/systemd/fulcrum.service with no
#      message at all (ExecStart pointed at the built binary, since verify
#      wants it to exist); the same unit with a bad Type= is reported, so the
#      check can fail.
#   8. fulcrum started with $NOTIFY_SOCKET (a unix datagram socket this test
#      listens on) sends READY=1, and the admin socket answers at that
#      point; SIGHUP with a file that adds a real server and removes one:
#      RELOADING=1 then READY=1, `-L -n` shows the change, `--json` has
#      reload.ok; SIGHUP with a broken file: still serving, the old config
#      listed, reload.ok false; `fulcrumctl --reload` exits 1 printing
#      FILE:LINE:COL; a file changing `workers` is refused with "needs a
#      restart: workers"; SIGTERM: STOPPING=1 and exit 0.

UNIT=$ROOT/deploy/systemd/fulcrum.service

# 7: the unit file.
if ! command -v systemd-analyze >/dev/null 2>&1; then
    bad "systemd-unit: systemd-analyze missing (Debian package systemd; make deps)"
else
    sed "s|/usr/local/sbin/fulcrum|$FULCRUM|g" "$UNIT" >"$RUN/fulcrum.service"
    out=$(timeout 30 systemd-analyze verify "$RUN/fulcrum.service" 2>&1)
    rc=$?
    if [ "$rc" = 0 ] && [ -z "$out" ]; then
        ok "systemd-unit: systemd-analyze verify deploy/systemd/fulcrum.service: no message"
    else
        bad "systemd-unit: systemd-analyze verify exit $rc: $(head -c 400 <<<"$out")"
    fi
    sed 's/^Type=notify$/Type=notifi/' "$RUN/fulcrum.service" >"$RUN/broken.service"
    out=$(timeout 30 systemd-analyze verify "$RUN/broken.service" 2>&1)
    if grep -q 'service type' <<<"$out"; then
        ok "systemd-unit: a bad Type= is reported ($(head -c 120 <<<"$out"))"
    else
        bad "systemd-unit: a bad Type= went unnoticed: $(head -c 300 <<<"$out")"
    fi
fi

# notify_listen SOCKET LOG SECONDS: receives sd_notify datagrams on SOCKET
# for at most SECONDS, one `<unix time> <message>` line each in LOG.
notify_listen() {
    "$PY" -c '
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
s.settimeout(0.2)
end = time.time() + float(sys.argv[3])
with open(sys.argv[2], "a", buffering=1) as f:
    while time.time() < end:
        try:
            d = s.recv(4096)
        except socket.timeout:
            continue
        f.write("%.3f %s\n" % (time.time(), d.decode(errors="replace").strip().replace("\n", " ")))
' "$1" "$2" "$3" &
    NOTIFY_PID=$!
}

# wait_notify WORD N: waits (10 s at most) until the notify log holds WORD
# on N lines.
wait_notify() {
    local _
    for _ in $(seq 100); do
        [ "$(grep -c -- "$1" "$RUN/notify.log" 2>/dev/null)" -ge "$2" ] && return 0
        sleep 0.1
    done
    return 1
}

# reload_ok NAME True|False: `fulcrumctl --json`'s reload.ok is that.
reload_ok() {
    local got
    "$FULCRUMCTL" --socket "$RUN/fulcrum.sock" --json >"$RUN/$1.json" 2>&1
    got=$("$PY" -c 'import json, sys; r = json.load(open(sys.argv[1]))["reload"]; print(r["ok"], r["count"], r["error"])' "$RUN/$1.json" 2>&1)
    if [ "${got%% *}" = "$2" ]; then
        ok "$1: --json reload: $got"
    else
        bad "$1: --json reload.ok expected $2: $(head -c 300 <<<"$got")"
    fi
}

# 8: sd_notify and SIGHUP reloads.
mapfile -t E8 < <(eal 8 -l 0-1 --no-huge -m 256)
write_config "$RUN/reload.ron" rr net_null0 "[1]" "${E8[@]}"
rm -f "$RUN/notify.sock" "$RUN/notify.log"
notify_listen "$RUN/notify.sock" "$RUN/notify.log" 60
for _ in $(seq 50); do [ -S "$RUN/notify.sock" ] && break; sleep 0.1; done
NOTIFY_SOCKET=$RUN/notify.sock fc_start "" "$RUN/reload.ron"
if wait_notify READY=1 1; then
    if timeout 5 "$FULCRUMCTL" --socket "$RUN/fulcrum.sock" -L -n >"$RUN/ready-L.txt" 2>&1; then
        ok "sd-notify: READY=1 sent, and the admin socket answers then"
    else
        bad "sd-notify: READY=1 sent before the admin socket answers: $(head -c 200 "$RUN/ready-L.txt")"
    fi
    # A reload that adds 10.1.0.13 and removes 10.1.0.11.
    sed 's/(addr: "10.1.0.11:80", weight: 1)/(addr: "10.1.0.13:80", weight: 1)/' "$RUN/reload.ron" >"$RUN/reload.new"
    cp "$RUN/reload.ron" "$RUN/reload.orig"
    mv "$RUN/reload.new" "$RUN/reload.ron"
    kill -HUP "$FC_PID"
    if wait_notify READY=1 2 && grep -q RELOADING=1 "$RUN/notify.log"; then
        ok "sd-notify: SIGHUP sends RELOADING=1 then READY=1"
    else
        bad "sd-notify: no RELOADING=1 / second READY=1 after SIGHUP: $(tr '\n' '|' <"$RUN/notify.log")"
    fi
    expect_listed hup-added yes "  -> 10.1.0.13:80                 Masq    1      0          0         "
    expect_listed hup-removed no "  -> 10.1.0.11:80                 Masq    1      0          0         "
    reload_ok hup-status True
    # A broken file: SIGHUP changes nothing, the daemon keeps serving.
    sed -i 's/scheduler: "rr"/scheduler: "bogus"/' "$RUN/reload.ron"
    kill -HUP "$FC_PID"
    wait_notify READY=1 3 || bad "sd-notify: no READY=1 after the broken SIGHUP"
    if kill -0 "$FC_PID" 2>/dev/null; then
        ok "hup-broken: fulcrum still running after SIGHUP with a broken file"
    else
        bad "hup-broken: fulcrum died on SIGHUP with a broken file"
    fi
    reload_ok hup-broken-status False
    expect_listed hup-broken-kept yes "  -> 10.1.0.13:80                 Masq    1      0          0         "
    grep -q 'config reload failed' "$RUN/fulcrum.log" && ok "hup-broken: logged 'config reload failed'" ||
        bad "hup-broken: no 'config reload failed' log line"
    want_line=$(grep -n 'scheduler: "bogus"' "$RUN/reload.ron" | cut -d: -f1)
    expect_ctl reload-broken 1 "$RUN/reload.ron:$want_line:[0-9]*: invalid scheduler \"bogus\"" --reload
    # A restart-only change.
    sed 's/workers: \[1\]/workers: [1, 2]/' "$RUN/reload.orig" >"$RUN/reload.ron"
    expect_ctl reload-restart 1 "needs a restart: workers changed" --reload
    cp "$RUN/reload.orig" "$RUN/reload.ron"
    expect_ctl reload-back 0 "" --reload
    expect_listed reload-back-listed yes "  -> 10.1.0.11:80                 Masq    1      0          0         "
    fc_stop
    if [ "$FC_STATUS" = 0 ] && wait_notify STOPPING=1 1; then
        ok "sd-notify: STOPPING=1 on SIGTERM, exit 0"
    else
        bad "sd-notify: exit $FC_STATUS, notify log: $(tr '\n' '|' <"$RUN/notify.log")"
    fi
else
    bad "sd-notify: no READY=1 within 10 s: $(tr '\n' '|' <"$RUN/notify.log" 2>/dev/null)"
    fc_stop
fi
kill "$NOTIFY_PID" 2>/dev/null
wait "$NOTIFY_PID" 2>/dev/null
