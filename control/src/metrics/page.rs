//! The status page served at `/`: one server-rendered HTML document built
//! from a [`Status`], in the spirit of HAProxy's stats page (a table per
//! virtual service, rows coloured by the real server's state).
//!
//! Layer: control, slow path. Guarantees: no JavaScript, no external asset
//! (the style sheet is inline), every string that comes from the config,
//! the status or a checker is HTML-escaped (`html_escape::encode_safe`), and
//! the page reloads itself every [`REFRESH_S`] seconds
//! (`<meta http-equiv="refresh">`). Numbers are printed exact (no K/M
//! units), so what the page shows equals what `fulcrumctl --exact` prints.
//! Cells carry `data-col` (and rows `data-real` / `data-worker`) so a test
//! or a scraper can find a value without parsing the layout.
#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::fmt::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::admin::{RateStatus, RealStatus, ServiceStatus, Status};
use crate::health::report::ServiceReport;

use super::collector::{health_by_real, worker_conns};

/// Seconds between the page's own reloads.
pub const REFRESH_S: u32 = 2;

const STYLE: &str = "\
body{font-family:sans-serif;font-size:13px;margin:12px;background:#fafafa;color:#222}
h1{font-size:18px;margin:0 0 4px 0}h2{font-size:15px;margin:18px 0 6px 0}
table{border-collapse:collapse;margin:0 0 10px 0}
th,td{border:1px solid #999;padding:2px 6px}th{background:#20407a;color:#fff;font-weight:normal}
td.n{text-align:right;font-family:monospace}
tr.svc th{background:#4a6fa5;text-align:left;font-weight:bold}
tr.total td{background:#dde4f0;font-weight:bold}
tr.up td{background:#c8f0c8}tr.down td{background:#f4b0b0}tr.drain td{background:#e8e8c0}
tr.pending td{background:#f0f0f0}
.legend span{padding:1px 8px;border:1px solid #999;margin-right:6px}
.err{color:#a00000}.muted{color:#666}
";

/// Appends `s` HTML-escaped (`& < > " ' /`).
fn esc(out: &mut String, s: &str) {
    html_escape::encode_safe_to_string(s, out);
}

/// `<td class="n" data-col="COL">V</td>`.
fn num(out: &mut String, col: &str, v: u64) {
    let _ = write!(out, "<td class=\"n\" data-col=\"{col}\">{v}</td>");
}

/// `<td>` with escaped text.
fn text(out: &mut String, col: &str, s: &str) {
    let _ = write!(out, "<td data-col=\"{col}\">");
    esc(out, s);
    out.push_str("</td>");
}

/// HTTP-date (RFC 9110 §5.6.7) of a Unix time in seconds.
fn date(unix_s: u64) -> String {
    httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_secs(unix_s))
}

/// `3d 04:05:06`-style duration.
fn uptime(s: u64) -> String {
    let (d, h, m, sec) = (s / 86_400, s / 3600 % 24, s / 60 % 60, s % 60);
    if d > 0 {
        format!("{d}d {h:02}:{m:02}:{sec:02}")
    } else {
        format!("{h:02}:{m:02}:{sec:02}")
    }
}

/// The page for `st`, rendered at `now` (shown in the header).
pub fn render(st: &Status, now: SystemTime) -> String {
    let n_reals: usize = st.services.iter().map(|s| s.reals.len()).sum();
    let mut o = String::with_capacity(16 * 1024 + st.services.len() * 2048 + n_reals * 1024);
    o.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">");
    let _ = write!(o, "<meta http-equiv=\"refresh\" content=\"{REFRESH_S}\">");
    o.push_str("<title>fulcrum ");
    esc(&mut o, &st.version);
    o.push_str(" status</title><style>");
    o.push_str(STYLE);
    o.push_str("</style></head><body>\n<h1>fulcrum ");
    esc(&mut o, &st.version);
    o.push_str("</h1>\n");
    let _ = writeln!(
        o,
        "<p>uptime <span data-col=\"uptime\">{}</span>, {} worker(s), conn table size {} per worker, \
         {} virtual service(s); page generated {} (refreshes every {REFRESH_S} s)</p>",
        uptime(st.uptime_s),
        st.workers.len(),
        st.conn_table_size,
        st.services.len(),
        httpdate::fmt_http_date(now),
    );
    reload(&mut o, st);
    o.push_str(
        "<p class=\"legend\">real servers: <span class=\"up\" style=\"background:#c8f0c8\">up</span>\
         <span style=\"background:#f4b0b0\">down</span>\
         <span style=\"background:#e8e8c0\">weight 0 (quiesced)</span>\
         <span style=\"background:#f0f0f0\">checks pending</span></p>\n",
    );
    services(&mut o, st);
    workers(&mut o, st);
    ports(&mut o, st);
    health(&mut o, st);
    o.push_str("</body></html>\n");
    o
}

fn reload(o: &mut String, st: &Status) {
    o.push_str("<p data-col=\"reload\">last reload: ");
    match &st.reload {
        None => o.push_str("none since start"),
        Some(r) => {
            let _ = write!(o, "{} (reload #{}): ", date(r.at_unix_s), r.count);
            if r.ok {
                o.push_str("applied");
                if let Some(g) = r.generation {
                    let _ = write!(o, ", generation {g}");
                }
            } else {
                o.push_str("<span class=\"err\">refused: ");
                esc(o, &r.error);
                o.push_str("</span> (the previous configuration keeps running)");
            }
        }
    }
    o.push_str("</p>\n");
}

/// `TCP 10.0.0.100:80`, as ipvsadm (and the health report) name a service.
fn service_name(s: &ServiceStatus) -> String {
    format!("{} {}:{}", s.proto, s.vip, s.vport)
}

fn rate_cells(o: &mut String, r: Option<RateStatus>) {
    let r = r.unwrap_or_default();
    for (col, v) in [
        ("cps", r.cps),
        ("inpps", r.inpps),
        ("outpps", r.outpps),
        ("inbps", r.inbps),
        ("outbps", r.outbps),
    ] {
        num(o, col, v);
    }
}

fn counter_cells(o: &mut String, c: [u64; 7]) {
    for (col, v) in [
        "activeconns",
        "inactconns",
        "conns",
        "inpkts",
        "outpkts",
        "inbytes",
        "outbytes",
    ]
    .into_iter()
    .zip(c)
    {
        num(o, col, v);
    }
}

fn real_counters(r: &RealStatus) -> [u64; 7] {
    [
        r.active_conns,
        r.inactive_conns,
        r.conns,
        r.in_pkts,
        r.out_pkts,
        r.in_bytes,
        r.out_bytes,
    ]
}

fn services(o: &mut String, st: &Status) {
    o.push_str("<h2>Virtual services</h2>\n");
    if st.services.is_empty() {
        o.push_str("<p class=\"muted\">no virtual service configured</p>\n");
        return;
    }
    let health = health_by_real(st);
    let quorum: HashMap<&str, &ServiceReport> = st
        .health
        .services
        .iter()
        .map(|s| (s.service.as_str(), s))
        .collect();
    for svc in &st.services {
        let name = service_name(svc);
        let rates = svc.rate.is_some() || svc.reals.iter().any(|r| r.rate.is_some());
        let cols = 11 + if rates { 5 } else { 0 };
        o.push_str("<table data-service=\"");
        esc(o, &name);
        o.push_str("\">\n<tr class=\"svc\"><th colspan=\"");
        let _ = write!(o, "{cols}");
        o.push_str("\">");
        esc(o, &name);
        o.push_str(" &nbsp; ");
        esc(o, &svc.scheduler);
        if !svc.sched_flags.is_empty() {
            o.push_str(" (");
            esc(o, &svc.sched_flags.join(","));
            o.push(')');
        }
        if let Some(t) = svc.persistence_timeout_s {
            let _ = write!(o, " persistent {t}");
            if let Some(m) = &svc.persistence_netmask {
                o.push_str(" mask ");
                esc(o, m);
            }
        }
        if let Some(q) = quorum.get(name.as_str()) {
            let _ = write!(
                o,
                " &nbsp; quorum {} (live weight {}){}",
                q.quorum,
                q.live_weight,
                if q.quorum_ok { "" } else { ": LOST" }
            );
            if q.sorry_active {
                o.push_str(", sorry server ");
                esc(o, q.sorry_server.as_deref().unwrap_or(""));
                o.push_str(" in rotation");
            }
        }
        o.push_str(
            "</th></tr>\n<tr><th>RemoteAddress:Port</th><th>Forward</th><th>Weight</th>\
            <th>State</th><th>ActiveConn</th><th>InActConn</th><th>Conns</th><th>InPkts</th>\
            <th>OutPkts</th><th>InBytes</th><th>OutBytes</th>",
        );
        if rates {
            o.push_str("<th>CPS</th><th>InPPS</th><th>OutPPS</th><th>InBPS</th><th>OutBPS</th>");
        }
        o.push_str("</tr>\n");
        for r in &svc.reals {
            let addr = format!("{}:{}", r.ip, r.port);
            let h = health.get(&(name.as_str(), addr.as_str())).copied();
            let pending = h.is_some_and(|h| h.checkers.iter().any(|c| c.state == "pending"));
            let state = match h {
                Some(h) if h.state != "up" => "down",
                _ if r.weight == 0 => "drain",
                _ if pending => "pending",
                _ => "up",
            };
            let label = match (state, h) {
                ("down", _) => "DOWN",
                ("drain", _) => "up, weight 0",
                ("pending", _) => "up, checks pending",
                (_, Some(h)) if !h.checkers.is_empty() => "UP",
                _ => "up (no checks)",
            };
            let _ = write!(o, "<tr class=\"{state}\" data-real=\"");
            esc(o, &addr);
            o.push_str("\">");
            text(o, "address", &addr);
            text(o, "forward", &r.forwarding);
            num(o, "weight", u64::from(r.weight));
            text(o, "state", label);
            counter_cells(o, real_counters(r));
            if rates {
                rate_cells(o, r.rate);
            }
            o.push_str("</tr>\n");
        }
        o.push_str("<tr class=\"total\" data-real=\"total\"><td colspan=\"4\">total</td>");
        counter_cells(
            o,
            [
                svc.active_conns,
                svc.inactive_conns,
                svc.conns,
                svc.in_pkts,
                svc.out_pkts,
                svc.in_bytes,
                svc.out_bytes,
            ],
        );
        if rates {
            rate_cells(o, svc.rate);
        }
        o.push_str("</tr>\n</table>\n");
    }
}

fn workers(o: &mut String, st: &Status) {
    o.push_str(
        "<h2>Workers</h2>\n<table><tr><th>Worker</th><th>lcore</th><th>RX pkts</th>\
         <th>RX bytes</th><th>TX pkts</th><th>TX bytes</th><th>Busy polls</th><th>Empty polls</th>\
         <th>Load</th><th>Conns</th><th>Table fill</th><th>Redirects out</th><th>Redirects in</th>\
         <th>Drops (non-zero reasons)</th></tr>\n",
    );
    for w in &st.workers {
        let _ = write!(o, "<tr data-worker=\"{}\">", w.id);
        num(o, "worker", u64::from(w.id));
        num(o, "lcore", u64::from(w.lcore));
        for col in [
            "rx_pkts",
            "rx_bytes",
            "tx_pkts",
            "tx_bytes",
            "polls_busy",
            "polls_empty",
        ] {
            num(o, col, w.counter(col));
        }
        let (busy, empty) = (w.counter("polls_busy"), w.counter("polls_empty"));
        let load = if busy + empty == 0 {
            "-".to_string()
        } else {
            format!("{:.1} %", busy as f64 * 100.0 / (busy + empty) as f64)
        };
        text(o, "load", &load);
        let conns = worker_conns(w);
        num(o, "conns", conns);
        let fill = if st.conn_table_size == 0 {
            "-".to_string()
        } else {
            format!("{:.3} %", conns as f64 * 100.0 / st.conn_table_size as f64)
        };
        text(o, "fill", &fill);
        num(o, "redirects_out", w.counter("redirects_out"));
        num(o, "redirects_in", w.counter("redirects_in"));
        o.push_str("<td data-col=\"drops\">");
        let mut any = false;
        for (reason, &n) in w.drops.iter().filter(|(_, &n)| n > 0) {
            if any {
                o.push_str("<br>");
            }
            esc(o, reason);
            let _ = write!(o, " {n}");
            any = true;
        }
        if !any {
            o.push_str("<span class=\"muted\">none</span>");
        }
        o.push_str("</td></tr>\n");
    }
    o.push_str("</table>\n");
}

fn ports(o: &mut String, st: &Status) {
    o.push_str("<h2>Ports</h2>\n");
    if st.ports.is_empty() {
        o.push_str("<p class=\"muted\">no device counters reported</p>\n");
        return;
    }
    o.push_str(
        "<table><tr><th>Port</th><th>Device</th><th>imissed</th><th>rx_nombuf</th>\
         <th>ierrors</th><th>oerrors</th></tr>\n",
    );
    for p in &st.ports {
        o.push_str("<tr data-port=\"");
        esc(o, &p.name);
        o.push_str("\">");
        text(o, "port", &p.name);
        text(o, "device", &p.device);
        num(o, "imissed", p.imissed);
        num(o, "rx_nombuf", p.rx_nombuf);
        num(o, "ierrors", p.ierrors);
        num(o, "oerrors", p.oerrors);
        o.push_str("</tr>\n");
    }
    o.push_str("</table>\n");
}

fn health(o: &mut String, st: &Status) {
    let _ = write!(
        o,
        "<h2>Health checks</h2>\n<p>{} health publish(es), last {} us</p>\n",
        st.health.publishes, st.health.last_publish_us
    );
    if st.health.reals.iter().all(|r| r.checkers.is_empty()) {
        o.push_str("<p class=\"muted\">no checkers configured</p>\n");
        return;
    }
    o.push_str(
        "<table><tr><th>Service</th><th>Real server</th><th>State</th><th>Transitions</th>\
         <th>Last transition</th><th>Checker</th><th>Target</th><th>Checker state</th>\
         <th>Last result</th><th>Latency</th><th>Checks</th><th>Failures</th></tr>\n",
    );
    for r in st.health.reals.iter().filter(|r| !r.checkers.is_empty()) {
        for (i, c) in r.checkers.iter().enumerate() {
            let class = match c.state.as_str() {
                "up" => "up",
                "down" => "down",
                _ => "pending",
            };
            let _ = write!(o, "<tr class=\"{class}\">");
            if i == 0 {
                let span = r.checkers.len();
                let _ = write!(o, "<td rowspan=\"{span}\">");
                esc(o, &r.service);
                let _ = write!(o, "</td><td rowspan=\"{span}\">");
                esc(o, &r.address);
                let _ = write!(o, "</td><td rowspan=\"{span}\">");
                esc(o, &r.state);
                let _ = write!(
                    o,
                    "</td><td class=\"n\" rowspan=\"{span}\">{}</td>",
                    r.transitions
                );
                let _ = write!(o, "<td rowspan=\"{span}\">");
                if let Some(ms) = r.last_transition_ms {
                    o.push_str(&date(ms / 1000));
                    if let Some(why) = &r.last_reason {
                        o.push_str(": ");
                        esc(o, why);
                    }
                } else {
                    o.push_str("never");
                }
                o.push_str("</td>");
            }
            text(o, "checker", &c.kind);
            text(o, "target", &c.target);
            text(o, "checker_state", &c.state);
            text(o, "last_result", c.last_result.as_deref().unwrap_or("-"));
            let latency = c.latency_us.map_or_else(
                || "-".to_string(),
                |us| format!("{:.3} ms", us as f64 / 1000.0),
            );
            text(o, "latency", &latency);
            num(o, "checks", c.checks);
            num(o, "failures", c.failures);
            o.push_str("</tr>\n");
        }
    }
    o.push_str("</table>\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::testutil::{bare_fixture, fixture};

    fn page() -> String {
        render(&fixture(), UNIX_EPOCH + Duration::from_secs(1_700_000_200))
    }

    /// The `<tr>` whose attribute `attr` is `value`, up to its `</tr>`.
    fn row<'a>(html: &'a str, attr: &str, value: &str) -> &'a str {
        let key = format!("{attr}=\"{value}\"");
        let at = html.find(&key).unwrap_or_else(|| panic!("no row {key}"));
        let start = html[..at].rfind("<tr").expect("row start");
        let end = at + html[at..].find("</tr>").expect("row end");
        &html[start..end]
    }

    fn cell(row: &str, col: &str) -> String {
        let key = format!("data-col=\"{col}\">");
        let at = row
            .find(&key)
            .unwrap_or_else(|| panic!("no cell {col} in {row}"))
            + key.len();
        row[at..at + row[at..].find("</td>").expect("cell end")].to_string()
    }

    #[test]
    fn test_page_is_self_contained_and_refreshes() {
        let p = page();
        assert!(p.starts_with("<!DOCTYPE html>\n<html"));
        assert!(p.contains("<meta http-equiv=\"refresh\" content=\"2\">"));
        assert!(p.ends_with("</body></html>\n"));
        for banned in ["<script", "src=", "href=", "http://", "https://", "@import"] {
            assert!(!p.contains(banned), "{banned} in the page");
        }
        assert!(p.contains("page generated Tue, 14 Nov 2023 22:16:40 GMT"));
        assert!(p.contains("uptime <span data-col=\"uptime\">01:02:05</span>, 2 worker(s)"));
    }

    #[test]
    fn test_page_escapes_every_string() {
        let p = page();
        // From a checker, a real server's last reason, a port name and a
        // reload error.
        assert!(
            p.contains("status 500 &lt;script&gt;alert(1)&lt;&#x2F;script&gt;"),
            "{p}"
        );
        assert!(p.contains("&lt;b&gt;&amp;&quot;oops&quot;&lt;&#x2F;b&gt;"));
        assert!(p.contains("outside&lt;&amp;&gt;"));
        assert!(p.contains("expected &lt;ident&gt; &amp; &quot;x&quot;"));
        assert!(!p.contains("<b>"));
        assert!(!p.contains("outside<"));
    }

    #[test]
    fn test_page_services_and_reals() {
        let p = page();
        assert!(p.contains("<table data-service=\"TCP 10.0.0.100:80\">"));
        assert!(p.contains("TCP 10.0.0.100:80 &nbsp; wlc persistent 300 mask 255.255.255.0 &nbsp; quorum 1 (live weight 1)"));
        assert!(p.contains("UDP 10.0.0.101:53 &nbsp; sh (sh-port)"));
        let r = row(&p, "data-real", "10.1.0.11:80");
        assert!(r.starts_with("<tr class=\"up\""), "{r}");
        for (col, want) in [
            ("weight", "1"),
            ("state", "UP"),
            ("activeconns", "10"),
            ("inactconns", "11"),
            ("conns", "12"),
            ("inpkts", "13"),
            ("outpkts", "14"),
            ("inbytes", "15"),
            ("outbytes", "16"),
            ("cps", "17"),
            ("inpps", "18"),
            ("outpps", "19"),
            ("inbps", "20"),
            ("outbps", "21"),
            ("forward", "Masq"),
        ] {
            assert_eq!(cell(r, col), want, "{col}");
        }
        let down = row(&p, "data-real", "10.1.0.12:80");
        assert!(down.starts_with("<tr class=\"down\""), "{down}");
        assert_eq!(cell(down, "state"), "DOWN");
        // No checkers, no rates in the UDP service: no rate columns.
        let dns = row(&p, "data-real", "10.1.0.21:53");
        assert!(dns.starts_with("<tr class=\"up\""));
        assert_eq!(cell(dns, "state"), "up (no checks)");
        assert!(!dns.contains("data-col=\"cps\""));
        let total = row(&p, "data-real", "total");
        assert_eq!(cell(total, "conns"), "34");
        assert_eq!(cell(total, "cps"), "5");
    }

    #[test]
    fn test_page_workers_ports_reload_health() {
        let p = page();
        let w = row(&p, "data-worker", "1");
        for (col, want) in [
            ("lcore", "2"),
            ("rx_pkts", "2001"),
            ("tx_bytes", "2004"),
            ("polls_busy", "2009"),
            ("polls_empty", "2010"),
            ("load", "50.0 %"),
            ("conns", "2035"),
            ("fill", "20.350 %"),
            ("redirects_out", "2007"),
            ("redirects_in", "2008"),
            ("drops", "no_route 2013"),
        ] {
            assert_eq!(cell(w, col), want, "{col}");
        }
        let port = row(&p, "data-port", "outside&lt;&amp;&gt;");
        assert_eq!(cell(port, "imissed"), "71");
        assert_eq!(cell(port, "rx_nombuf"), "72");
        assert_eq!(cell(port, "ierrors"), "73");
        assert_eq!(cell(port, "oerrors"), "74");
        assert!(p.contains(
            "last reload: Tue, 14 Nov 2023 22:15:00 GMT (reload #4): <span class=\"err\">refused: "
        ));
        assert!(p.contains("<p>6 health publish(es), last 57 us</p>"));
        assert!(p.contains("<td data-col=\"latency\">4.500 ms</td>"));
        assert!(p.contains("<td data-col=\"checker\">TCP_CHECK</td>"));
    }

    #[test]
    fn test_page_empty_parts() {
        let st = bare_fixture();
        let p = render(&st, UNIX_EPOCH);
        assert!(p.contains("no virtual service configured"));
        assert!(p.contains("no device counters reported"));
        assert!(p.contains("last reload: none since start"));
        assert!(p.contains("no checkers configured"));
    }
}
