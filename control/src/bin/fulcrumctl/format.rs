//! The ipvsadm-style text `fulcrumctl` prints from a [`Status`]: `-L -n`
//! (with `--stats`, `--rate`, `--exact`), `-S`, `--counters` and `--ports`; and from
//! the daemon's other answers: `-L -n -c` (connections) and `-L --timeout`.
//!
//! Layer: control CLI, output only. The formats mirror ipvsadm 1.31
//! `print_title()` / `print_service_entry()` / `print_largenum()`: same
//! headers, same column widths, same K/M/G/T units in base 1000, services
//! sorted by protocol, VIP, port and real servers by address, port, as
//! ipvsadm sorts by default. fulcrum never resolves names, so `-n` is the
//! only mode. Guarantees: every function is total (a status from a newer or
//! older daemon, with names this build does not know, still prints).
#![forbid(unsafe_code)]

use std::fmt::Write as _;
use std::net::Ipv4Addr;

use control::admin::{RealStatus, ServiceStatus, Status, WorkerStatus};
use control::conns::ConnEntry;
use dataplane::snapshot::{Method, Proto};
use dataplane::stats::{DropReason, WorkerStats};

/// ipvsadm's `print_largenum()`: a right-aligned counter 9 columns wide
/// (wider when `--exact` needs it), abbreviated with K/M/G/T (base 1000)
/// from 100 million up unless `exact`.
pub fn format_largenum(i: u64, exact: bool) -> String {
    if exact {
        let len = i.to_string().len();
        let width = if len <= 8 { 9 } else { len + 1 };
        return format!("{i:>width$}");
    }
    if i < 100_000_000 {
        format!("{i:>9}")
    } else if i < 1_000_000_000 {
        format!("{:>8}K", i / 1000)
    } else if i < 100_000_000_000 {
        format!("{:>8}M", i / 1_000_000)
    } else if i < 100_000_000_000_000 {
        format!("{:>8}G", i / 1_000_000_000)
    } else {
        format!("{:>8}T", i / 1_000_000_000_000)
    }
}

/// The protocol whose ipvsadm name (its `Display`, as the status carries
/// it) is `s`.
fn proto_of(s: &str) -> Option<Proto> {
    Proto::ALL.into_iter().find(|p| p.to_string() == s)
}

/// The forwarding method whose ipvsadm column word (its `Display`, as the
/// status carries it) is `s`.
fn method_of(s: &str) -> Option<Method> {
    Method::ALL.into_iter().find(|m| m.to_string() == s)
}

/// ipvsadm's service option for `p`: `-t` (TCP), `-u` (UDP).
fn proto_option(p: Proto) -> &'static str {
    match p {
        Proto::Tcp => "-t",
        Proto::Udp => "-u",
    }
}

/// ipvsadm's forwarding option for `m`: `-m` (masquerading), `-g` (direct
/// routing, "gatewaying"), `-i` (IP tunnelling; the status does not carry
/// a GUE server's `--tun-type`, so `-S` saves it as IPIP), `--fullnat`
/// (DPVS's ipvsadm).
fn method_option(m: Method) -> &'static str {
    match m {
        Method::Nat => "-m",
        Method::Dr => "-g",
        Method::Tun => "-i",
        Method::FullNat => "--fullnat",
    }
}

/// Sort rank of a protocol name: its IP protocol number, as ipvsadm's
/// `ipvs_cmp_services()` compares them; unknown names sort last.
fn proto_rank(p: &str) -> u8 {
    proto_of(p).map_or(u8::MAX, Proto::number)
}

/// Sort key of an address string: numeric when it parses, else after all.
fn ip_key(s: &str) -> (u32, String) {
    match s.parse::<Ipv4Addr>() {
        Ok(ip) => (u32::from(ip), String::new()),
        Err(_) => (u32::MAX, s.to_string()),
    }
}

/// The header line standing in for ipvsadm's
/// `IP Virtual Server version 1.2.1 (size=4096)`.
fn banner(st: &Status) -> String {
    let n = st.workers.len();
    format!(
        "fulcrum {} (conn table size={} per worker, {} worker{})\n",
        st.version,
        st.conn_table_size,
        n,
        if n == 1 { "" } else { "s" }
    )
}

/// `fulcrumctl -L -n` output (with `stats`: `--stats`; with `exact`:
/// `--exact`), byte for byte in ipvsadm's layout:
///
/// ```text
/// fulcrum 0.1.0 (conn table size=1048576 per worker, 2 workers)
/// Prot LocalAddress:Port Scheduler Flags
///   -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
/// TCP  10.0.0.100:80 rr
///   -> 10.1.0.11:80                 Masq    1      0          0
/// ```
///
/// (the real-server lines keep ipvsadm's trailing padding of the
/// `%-10u` InActConn column). Services are sorted by protocol number, VIP,
/// port; real servers by address, port.
pub fn format_list(st: &Status, stats: bool, exact: bool) -> String {
    let mut out = banner(st);
    if stats {
        let _ = writeln!(
            out,
            "{:<33} {:>8} {:>8} {:>8} {:>8} {:>8}",
            "Prot LocalAddress:Port", "Conns", "InPkts", "OutPkts", "InBytes", "OutBytes"
        );
        out.push_str("  -> RemoteAddress:Port\n");
    } else {
        out.push_str("Prot LocalAddress:Port Scheduler Flags\n");
        out.push_str("  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n");
    }
    for s in sorted_services(st) {
        let svc_name = format!("{}  {}:{}", s.proto, s.vip, s.vport);
        if stats {
            let _ = write!(out, "{svc_name:<33}");
            for v in [s.conns, s.in_pkts, s.out_pkts, s.in_bytes, s.out_bytes] {
                out.push_str(&format_largenum(v, exact));
            }
            out.push('\n');
        } else {
            // ipvsadm -L: "rr (flags) persistent 300 mask 255.255.255.0".
            let _ = write!(out, "{svc_name} {}", s.scheduler);
            if !s.sched_flags.is_empty() {
                let _ = write!(out, " ({})", s.sched_flags.join(","));
            }
            if let Some((t, mask)) = persistence_shown(s) {
                let _ = write!(out, " persistent {t}");
                if let Some(m) = mask {
                    let _ = write!(out, " mask {m}");
                }
            }
            out.push('\n');
        }
        for r in sorted_reals(s) {
            let dname = format!("{}:{}", r.ip, r.port);
            if stats {
                let _ = write!(out, "  -> {dname:<28}");
                for v in [r.conns, r.in_pkts, r.out_pkts, r.in_bytes, r.out_bytes] {
                    out.push_str(&format_largenum(v, exact));
                }
                out.push('\n');
            } else {
                let _ = writeln!(
                    out,
                    "  -> {dname:<28} {:<7} {:<6} {:<10} {:<10}",
                    r.forwarding, r.weight, r.active_conns, r.inactive_conns
                );
            }
        }
    }
    out
}

/// `fulcrumctl -L -n --rate` output, in ipvsadm's `FMT_RATE` layout: the
/// title `Prot LocalAddress:Port CPS InPPS OutPPS InBPS OutBPS` (columns of
/// 8 after a 33-wide first one), each service's five rates through
/// [`format_largenum`], and each real server's CPS, InPPS, OutPPS as plain
/// ` %8u` and InBPS, OutBPS through [`format_largenum`], as ipvsadm's
/// `print_service_entry()` prints them. A daemon without an estimator
/// (`rate: None`) shows zeros.
pub fn format_rate(st: &Status, exact: bool) -> String {
    let mut out = banner(st);
    let _ = writeln!(
        out,
        "{:<33} {:>8} {:>8} {:>8} {:>8} {:>8}",
        "Prot LocalAddress:Port", "CPS", "InPPS", "OutPPS", "InBPS", "OutBPS"
    );
    out.push_str("  -> RemoteAddress:Port\n");
    for s in sorted_services(st) {
        let r = s.rate.unwrap_or_default();
        let _ = write!(out, "{:<33}", format!("{}  {}:{}", s.proto, s.vip, s.vport));
        for v in [r.cps, r.inpps, r.outpps, r.inbps, r.outbps] {
            out.push_str(&format_largenum(v, exact));
        }
        out.push('\n');
        for d in sorted_reals(s) {
            let r = d.rate.unwrap_or_default();
            let dname = format!("{}:{}", d.ip, d.port);
            let _ = write!(
                out,
                "  -> {dname:<28} {:>8} {:>8} {:>8}",
                r.cps, r.inpps, r.outpps
            );
            out.push_str(&format_largenum(r.inbps, exact));
            out.push_str(&format_largenum(r.outbps, exact));
            out.push('\n');
        }
    }
    out
}

/// `fulcrumctl -L -n -c` output, ipvsadm's `list_conn()` / `print_conn()`
/// layout: `IPVS connection entries`, the title `pro expire state source
/// virtual destination`, then one `%-3s %-6s %-11s %-18s %-18s %s` line per
/// connection; `expire` is the whole seconds left as `mm:ss` (minutes not
/// capped, as ipvsadm).
pub fn format_conns(conns: &[ConnEntry]) -> String {
    let mut out = String::from("IPVS connection entries\n");
    let _ = writeln!(
        out,
        "pro expire {:<11} {:<18} {:<18} destination",
        "state", "source", "virtual"
    );
    for c in conns {
        let secs = c.expire_ms / 1000;
        let expire = format!("{:02}:{:02}", secs / 60, secs % 60);
        let source = format!("{}:{}", c.cip, c.cport);
        let virt = format!("{}:{}", c.vip, c.vport);
        let _ = writeln!(
            out,
            "{:<3} {expire:<6} {:<11} {source:<18} {virt:<18} {}:{}",
            c.proto, c.state, c.rip, c.rport
        );
    }
    out
}

/// `fulcrumctl -L --timeout` output, ipvsadm's `list_timeout()`:
/// `Timeout (tcp tcpfin udp): 900 120 300` (seconds).
pub fn format_timeouts(tcp: u64, tcpfin: u64, udp: u64) -> String {
    format!("Timeout (tcp tcpfin udp): {tcp} {tcpfin} {udp}\n")
}

/// Services in ipvsadm's listing order: protocol number, VIP, port.
fn sorted_services(st: &Status) -> Vec<&ServiceStatus> {
    let mut services: Vec<&ServiceStatus> = st.services.iter().collect();
    services.sort_by_key(|s| (proto_rank(&s.proto), ip_key(&s.vip), s.vport));
    services
}

/// A service's real servers in ipvsadm's listing order: address, port.
fn sorted_reals(s: &ServiceStatus) -> Vec<&RealStatus> {
    let mut reals: Vec<&RealStatus> = s.reals.iter().collect();
    reals.sort_by_key(|r| (ip_key(&r.ip), r.port));
    reals
}

/// `fulcrumctl -S` output: the current rules as the commands that rebuild
/// them, in ipvsadm `-S -n` form (`print_service_entry()` with `FMT_RULE`)
/// and listing order, one per line:
///
/// ```text
/// -A -t 10.0.0.100:80 -s rr
/// -a -t 10.0.0.100:80 -r 10.1.0.11:80 -m -w 1
/// ```
///
/// `-t` for TCP, `-u` for UDP; `-m` for masquerading (NAT), `-g` for direct
/// routing, `-i` for tunnelling. Only what [`Status`] carries is saved: scheduler, real servers,
/// forwarding methods and weights.
pub fn format_save(st: &Status) -> String {
    let mut out = String::new();
    for s in sorted_services(st) {
        let proto = proto_of(&s.proto).map_or("-t", proto_option);
        let svc = format!("{proto} {}:{}", s.vip, s.vport);
        let mut opts = String::new();
        if let Some((t, mask)) = persistence_shown(s) {
            let _ = write!(opts, " -p {t}");
            if let Some(m) = mask {
                let _ = write!(opts, " -M {m}");
            }
        }
        if !s.sched_flags.is_empty() {
            let _ = write!(opts, " -b {}", s.sched_flags.join(","));
        }
        let _ = writeln!(out, "-A {svc} -s {}{opts}", s.scheduler);
        for r in sorted_reals(s) {
            let fwd = method_of(&r.forwarding).map_or("-m", method_option);
            let _ = writeln!(out, "-a {svc} -r {}:{} {fwd} -w {}", r.ip, r.port, r.weight);
        }
    }
    out
}

/// A persistent service's timeout (seconds) and its netmask unless it is
/// ipvsadm's default `255.255.255.255` (which ipvsadm neither prints in
/// `-L` nor saves in `-S`); `None` when the service is not persistent.
fn persistence_shown(s: &ServiceStatus) -> Option<(u32, Option<&str>)> {
    let t = s.persistence_timeout_s?;
    let mask = s
        .persistence_netmask
        .as_deref()
        .filter(|&m| m != "255.255.255.255");
    Some((t, mask))
}

/// `fulcrumctl --counters` output: one row per counter, one column per
/// worker (headed `worker N`, with its lcore on the next row) and a `total`
/// column; all numbers exact. Drop rows are `drop/<reason>` in
/// [`DropReason`] order followed by a `drops_total` row. A drop reason that
/// is zero on every worker is left out unless `show_zero_drops` (what
/// `fulcrumctl --counters --exact` asks for).
pub fn format_counters(st: &Status, show_zero_drops: bool) -> String {
    // Counters in declaration order, then any the daemon has and we do not.
    let mut counters: Vec<String> = WorkerStats::COUNTER_NAMES
        .iter()
        .map(|n| n.to_string())
        .collect();
    for w in &st.workers {
        for k in w.counters.keys() {
            if !counters.contains(k) {
                counters.push(k.clone());
            }
        }
    }
    let mut rows: Vec<(String, Vec<u64>)> = counters
        .iter()
        .map(|n| (n.clone(), st.workers.iter().map(|w| w.counter(n)).collect()))
        .collect();

    // Reasons in counter order, then any the daemon knows and we do not.
    let mut names: Vec<String> = DropReason::ALL
        .iter()
        .map(|r| r.name().to_string())
        .collect();
    for w in &st.workers {
        for k in w.drops.keys() {
            if !names.contains(k) {
                names.push(k.clone());
            }
        }
    }
    let drop_of = |w: &WorkerStatus, n: &str| w.drops.get(n).copied().unwrap_or(0);
    for n in &names {
        let vals: Vec<u64> = st.workers.iter().map(|w| drop_of(w, n)).collect();
        if show_zero_drops || vals.iter().any(|&v| v != 0) {
            rows.push((format!("drop/{n}"), vals));
        }
    }
    let totals: Vec<u64> = st
        .workers
        .iter()
        .map(|w| w.drops.values().fold(0u64, |a, &b| a.saturating_add(b)))
        .collect();
    rows.push(("drops_total".to_string(), totals));

    let heads: Vec<String> = st
        .workers
        .iter()
        .map(|w| format!("worker {}", w.id))
        .collect();
    let lcores: Vec<String> = st.workers.iter().map(|w| w.lcore.to_string()).collect();
    let row_total = |v: &[u64]| v.iter().fold(0u64, |a, &b| a.saturating_add(b));
    let mut width = 10usize;
    for h in heads.iter().chain(&lcores) {
        width = width.max(h.len());
    }
    for (_, v) in &rows {
        for x in v.iter().copied().chain(std::iter::once(row_total(v))) {
            width = width.max(x.to_string().len());
        }
    }
    let name_w = rows
        .iter()
        .map(|(n, _)| n.len())
        .max()
        .unwrap_or(0)
        .max("Counter".len());

    let mut out = banner(st);
    let _ = write!(out, "{:<name_w$}", "Counter");
    for h in &heads {
        let _ = write!(out, "  {h:>width$}");
    }
    let _ = writeln!(out, "  {:>width$}", "total");
    let _ = write!(out, "{:<name_w$}", "lcore");
    for l in &lcores {
        let _ = write!(out, "  {l:>width$}");
    }
    let _ = writeln!(out, "  {:>width$}", "-");
    for (name, vals) in &rows {
        let _ = write!(out, "{name:<name_w$}");
        for v in vals {
            let _ = write!(out, "  {v:>width$}");
        }
        let _ = writeln!(out, "  {:>width$}", row_total(vals));
    }
    out
}

/// `fulcrumctl --ports`: one row per DPDK port with its generic device
/// counters, then each port's xstats (`name value`, indented, in the PMD's
/// order; zeros hidden unless `show_zero`, which `--exact` asks for):
///
/// ```text
/// fulcrum 0.1.0 (conn table size=1048576 per worker, 1 worker)
/// Port     Device             imissed  rx_nombuf    ierrors    oerrors
/// outside  net_af_packet0           0          0          0          0
/// outside xstats:
///   rx_good_packets  1234
/// ```
///
/// Numbers are exact; the daemon reads them once a second. A daemon that
/// reports no ports prints the banner and `no DPDK ports reported`.
pub fn format_ports(st: &Status, show_zero: bool) -> String {
    let mut out = banner(st);
    if st.ports.is_empty() {
        out.push_str("no DPDK ports reported\n");
        return out;
    }
    let name_w = st
        .ports
        .iter()
        .map(|p| p.name.len())
        .max()
        .unwrap_or(0)
        .max(4);
    let dev_w = st
        .ports
        .iter()
        .map(|p| p.device.len())
        .max()
        .unwrap_or(0)
        .max(6);
    let _ = writeln!(
        out,
        "{:<name_w$}  {:<dev_w$}  {:>10} {:>10} {:>10} {:>10}",
        "Port", "Device", "imissed", "rx_nombuf", "ierrors", "oerrors"
    );
    for p in &st.ports {
        let _ = writeln!(
            out,
            "{:<name_w$}  {:<dev_w$}  {:>10} {:>10} {:>10} {:>10}",
            p.name, p.device, p.imissed, p.rx_nombuf, p.ierrors, p.oerrors
        );
    }
    for p in &st.ports {
        let shown: Vec<&(String, u64)> = p
            .xstats
            .iter()
            .filter(|(_, v)| show_zero || *v != 0)
            .collect();
        let _ = writeln!(out, "{} xstats:", p.name);
        let w = shown.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
        for (n, v) in shown {
            let _ = writeln!(out, "  {n:<w$}  {v}");
        }
    }
    out
}

/// `when` (Unix ms) relative to `now_ms`: `3.2s ago`, `-` for never.
fn ago(when: Option<u64>, now_ms: u64) -> String {
    match when {
        None => "-".into(),
        Some(t) => {
            let d = now_ms.saturating_sub(t);
            if d < 100_000 {
                format!("{}.{}s ago", d / 1000, (d % 1000) / 100)
            } else {
                format!("{}s ago", d / 1000)
            }
        }
    }
}

/// `fulcrumctl --health`: per service its quorum line, then each real
/// server (`-> RIP:port  up|down  weight W  transitions N  last ... (reason)`)
/// and under it each checker (`TYPE target  state  last result  latency
/// last check`). A real server without checkers shows `(no checker:
/// always up)`. `now_ms` (Unix ms) is what "ago" counts from.
pub fn format_health(st: &Status, now_ms: u64) -> String {
    let h = &st.health;
    let checked = h.reals.iter().filter(|r| !r.checkers.is_empty()).count();
    let down = h.reals.iter().filter(|r| r.state != "up").count();
    let mut out = format!(
        "fulcrum {} health: {} real servers, {checked} checked, {down} down; {} health publishes (last {} us)\n",
        st.version,
        h.reals.len(),
        h.publishes,
        h.last_publish_us
    );
    for svc in &h.services {
        let sorry = match &svc.sorry_server {
            Some(a) if svc.sorry_active => format!(", sorry server {a} ACTIVE"),
            Some(a) => format!(", sorry server {a} standby"),
            None => String::new(),
        };
        let _ = writeln!(
            out,
            "{}  quorum {} hysteresis {}: live weight {}, quorum {}{sorry}",
            svc.service,
            svc.quorum,
            svc.hysteresis,
            svc.live_weight,
            if svc.quorum_ok { "held" } else { "LOST" }
        );
        for r in h.reals.iter().filter(|r| r.service == svc.service) {
            let last = match &r.last_reason {
                Some(why) => format!("  last {} ({why})", ago(r.last_transition_ms, now_ms)),
                None => String::new(),
            };
            let _ = writeln!(
                out,
                "  -> {:<21} {:<4}  weight {}{}  transitions {}{last}",
                r.address,
                r.state,
                r.weight,
                if r.inhibit {
                    " (inhibit_on_failure)"
                } else {
                    ""
                },
                r.transitions
            );
            if r.checkers.is_empty() {
                let _ = writeln!(out, "       (no checker: always up)");
            }
            for c in &r.checkers {
                let latency = c.latency_us.map_or("-".into(), |us| {
                    format!("{}.{:03} ms", us / 1000, us % 1000)
                });
                let _ = writeln!(
                    out,
                    "       {:<10} {:<21} {:<7} {}  {latency}  checked {}  ({} checks, {} failed)",
                    c.kind,
                    c.target,
                    c.state,
                    c.last_result.as_deref().unwrap_or("-"),
                    ago(c.last_check_ms, now_ms),
                    c.checks,
                    c.failures
                );
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use control::admin::build_status;
    use dataplane::snapshot::Snapshot;
    use dataplane::stats::SharedStats;
    use std::sync::Arc;

    #[test]
    fn test_format_conns_ipvsadm_layout() {
        let e = |state: &str, expire_ms, cport| ConnEntry {
            proto: "TCP".into(),
            expire_ms,
            state: state.into(),
            cip: "10.0.0.2".into(),
            cport,
            vip: "10.0.0.100".into(),
            vport: 80,
            rip: "10.1.0.11".into(),
            rport: 8080,
            worker: 0,
        };
        let text = format_conns(&[
            e("ESTABLISHED", 899_999, 40000),
            e("TIME_WAIT", 61_000, 40001),
            e("SYN_RECV", 999, 40002),
        ]);
        assert_eq!(
            text,
            "IPVS connection entries
pro expire state       source             virtual            destination
TCP 14:59  ESTABLISHED 10.0.0.2:40000     10.0.0.100:80      10.1.0.11:8080
TCP 01:01  TIME_WAIT   10.0.0.2:40001     10.0.0.100:80      10.1.0.11:8080
TCP 00:00  SYN_RECV    10.0.0.2:40002     10.0.0.100:80      10.1.0.11:8080
"
        );
        assert_eq!(
            format_timeouts(900, 120, 300),
            "Timeout (tcp tcpfin udp): 900 120 300\n"
        );
    }

    #[test]
    fn test_format_largenum() {
        assert_eq!(format_largenum(0, false), "        0");
        assert_eq!(format_largenum(99_999_999, false), " 99999999");
        assert_eq!(format_largenum(123_456_789, false), "  123456K");
        assert_eq!(format_largenum(1_234_567_890, false), "    1234M");
        assert_eq!(format_largenum(123_456_789_012, false), "     123G");
        assert_eq!(format_largenum(123_456_789_012_345, false), "     123T");
        assert_eq!(format_largenum(123_456_789, true), " 123456789");
        assert_eq!(format_largenum(12, true), "       12");
    }

    #[test]
    fn test_format_counters() {
        let mut st = build_status(
            &Snapshot::default(),
            &[Arc::new(SharedStats::new(3))],
            &[5],
            0,
            10,
        );
        st.workers[0].counters.insert("rx_pkts".into(), 1234);
        *st.workers[0].drops.get_mut("no_service").expect("reason") = 7;
        let text = format_counters(&st, false);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "fulcrum 0.1.0 (conn table size=10 per worker, 1 worker)"
        );
        // The name column is as wide as the longest row shown (every
        // counter, the one non-zero drop), the value columns 10 wide.
        let w = WorkerStats::COUNTER_NAMES
            .iter()
            .map(|n| n.len())
            .chain(["drop/no_service".len(), "drops_total".len()])
            .max()
            .expect("names");
        let row = |name: &str, a: &str, b: &str| format!("{name:<w$}  {a:>10}  {b:>10}");
        assert_eq!(lines[1], row("Counter", "worker 0", "total"));
        assert_eq!(lines[2], row("lcore", "5", "-"));
        assert_eq!(lines[3], row("rx_pkts", "1234", "1234"));
        assert!(text.contains(&format!("\n{}\n", row("drop/no_service", "7", "7"))));
        assert!(!text.contains("drop/no_route"));
        assert!(text.ends_with(&format!("\n{}\n", row("drops_total", "7", "7"))));
        assert_eq!(
            lines.len(),
            2 + WorkerStats::COUNTER_NAMES.len() + 1 + 1 + 1
        );
        assert!(text.contains(&format!("\n{}\n", row("persist_templates", "0", "0"))));
        assert!(text.contains(&format!("\n{}\n", row("persist_table_full", "0", "0"))));
        let all = format_counters(&st, true);
        assert_eq!(all.matches("drop/").count(), DropReason::COUNT);
    }

    /// The counter rows are `WorkerStats::COUNTER_NAMES`, in order, each
    /// with its value: a new counter needs no line here.
    #[test]
    fn test_format_counters_rows_follow_counter_names() {
        let shared = Arc::new(SharedStats::new(1));
        let mut w = WorkerStats::default();
        w.set_counter_values(std::array::from_fn(|i| 100 + i as u64));
        shared.publish(&w, &[]);
        let st = build_status(&Snapshot::default(), &[shared], &[3], 0, 1);
        let text = format_counters(&st, false);
        let rows: Vec<(&str, &str)> = text
            .lines()
            .skip(3)
            .take(WorkerStats::COUNTER_NAMES.len())
            .map(|l| {
                let mut f = l.split_whitespace();
                (f.next().unwrap_or(""), f.next().unwrap_or(""))
            })
            .collect();
        let want: Vec<(&str, String)> = WorkerStats::COUNTER_NAMES
            .iter()
            .enumerate()
            .map(|(i, &n)| (n, (100 + i).to_string()))
            .collect();
        let want: Vec<(&str, &str)> = want.iter().map(|(n, v)| (*n, v.as_str())).collect();
        assert_eq!(rows, want);
        let next = text.lines().nth(3 + WorkerStats::COUNTER_NAMES.len());
        assert_eq!(next.map(|l| l.starts_with("drops_total")), Some(true));
    }

    #[test]
    fn test_format_ports() {
        let mut st = build_status(
            &Snapshot::default(),
            &[Arc::new(SharedStats::new(1))],
            &[1],
            0,
            10,
        );
        assert!(format_ports(&st, false).ends_with("\nno DPDK ports reported\n"));
        st.ports = vec![
            control::admin::PortStatus {
                name: "outside".into(),
                device: "net_af_packet0".into(),
                imissed: 3,
                rx_nombuf: 0,
                ierrors: 1,
                oerrors: 2,
                xstats: vec![("rx_good_packets".into(), 1234), ("rx_q0_errors".into(), 0)],
            },
            control::admin::PortStatus {
                name: "in".into(),
                device: "net_af_packet1".into(),
                ..Default::default()
            },
        ];
        let text = format_ports(&st, false);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            &lines[1..],
            &[
                "Port     Device             imissed  rx_nombuf    ierrors    oerrors",
                "outside  net_af_packet0           3          0          1          2",
                "in       net_af_packet1           0          0          0          0",
                "outside xstats:",
                "  rx_good_packets  1234",
                "in xstats:",
            ]
        );
        let all = format_ports(&st, true);
        assert!(
            all.contains("\n  rx_good_packets  1234\n  rx_q0_errors     0\n"),
            "{all}"
        );
    }
}
