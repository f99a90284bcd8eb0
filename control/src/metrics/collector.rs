//! The Prometheus metrics: what `/metrics` exports, built from one
//! [`Status`] by a `prometheus` crate [`Collector`] and encoded by its
//! [`TextEncoder`].
//!
//! Layer: control, slow path. Guarantees: every family is declared once in
//! [`FAMILIES`] (name, type, help, label names; the snapshot test lists
//! them, so a rename is deliberate) and validated by the crate's [`Desc`]
//! when the collector is built; counters end in `_total`, gauges do not;
//! values are the workers' published counters as the [`StatusFn`] returns
//! them, read, never reset. The `fulcrum_ipvs_*` names and label names are
//! node_exporter's IPVS collector's (`collector/ipvs_linux.go`:
//! `node_ipvs_connections_total`, `node_ipvs_backend_connections_active`,
//! ...; labels `local_address`, `local_port`, `remote_address`,
//! `remote_port`, `proto`), so its dashboards and alerts carry over by
//! replacing the `node_` prefix with `fulcrum_`.
#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use prometheus::core::{Collector, Desc};
use prometheus::proto::{Counter, Gauge, LabelPair, Metric, MetricFamily, MetricType};
use prometheus::{Encoder, TextEncoder};

use crate::admin::{Status, StatusFn};
use crate::health::report::RealReport;

/// Whether a family is a counter (monotone, `_total`) or a gauge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A monotone count since start; the name ends in `_total`.
    Counter,
    /// A value that goes up and down.
    Gauge,
}

/// One metric family: its name, type, label names (in the order every
/// sample gives its values) and help text.
#[derive(Clone, Copy, Debug)]
pub struct FamilyDef {
    /// Full metric name, e.g. `fulcrum_ipvs_connections_total`.
    pub name: &'static str,
    /// Counter or gauge.
    pub kind: Kind,
    /// Label names, in sample order.
    pub labels: &'static [&'static str],
    /// The `# HELP` text.
    pub help: &'static str,
}

/// node_exporter's per-service labels (its `connections_total` and friends
/// are host totals without labels; fulcrum exports them per virtual
/// service, so `sum()` gives node_exporter's value).
const SVC: &[&str] = &["local_address", "local_port", "proto"];
/// node_exporter's backend labels (`fullIpvsBackendLabels` without
/// `local_mark`: fulcrum has no fwmark services).
const BACKEND: &[&str] = &[
    "local_address",
    "local_port",
    "remote_address",
    "remote_port",
    "proto",
];
const CHECKER: &[&str] = &[
    "local_address",
    "local_port",
    "remote_address",
    "remote_port",
    "proto",
    "checker",
    "checker_index",
];
const WORKER: &[&str] = &["worker"];
const PORT: &[&str] = &["port", "device"];

macro_rules! fam {
    ($name:literal, $kind:ident, $labels:expr, $help:literal) => {
        FamilyDef {
            name: $name,
            kind: Kind::$kind,
            labels: $labels,
            help: $help,
        }
    };
}

/// Every family `/metrics` may export, in this order in the source (the
/// encoder sorts them by name). A family without samples (no ports
/// reported, no reload yet) is left out of the scrape.
pub const FAMILIES: &[FamilyDef] = &[
    // ---- node_exporter's IPVS names, per virtual service ----
    fam!("fulcrum_ipvs_connections_total", Counter, SVC, "Connections scheduled to the virtual service (node_ipvs_connections_total, per service)."),
    fam!("fulcrum_ipvs_incoming_packets_total", Counter, SVC, "Packets client to real servers (node_ipvs_incoming_packets_total, per service)."),
    fam!("fulcrum_ipvs_outgoing_packets_total", Counter, SVC, "Packets real servers to client, NAT only (node_ipvs_outgoing_packets_total, per service)."),
    fam!("fulcrum_ipvs_incoming_bytes_total", Counter, SVC, "IP bytes client to real servers (node_ipvs_incoming_bytes_total, per service)."),
    fam!("fulcrum_ipvs_outgoing_bytes_total", Counter, SVC, "IP bytes real servers to client, NAT only (node_ipvs_outgoing_bytes_total, per service)."),
    // ---- node_exporter's IPVS names, per real server ----
    fam!("fulcrum_ipvs_backend_connections_active", Gauge, BACKEND, "ESTABLISHED connections to the real server, IPVS activeconns (node_ipvs_backend_connections_active)."),
    fam!("fulcrum_ipvs_backend_connections_inactive", Gauge, BACKEND, "Connections to the real server in other states, IPVS inactconns (node_ipvs_backend_connections_inactive)."),
    fam!("fulcrum_ipvs_backend_weight", Gauge, BACKEND, "The real server's current IPVS weight (node_ipvs_backend_weight)."),
    // ---- per real server, beyond node_exporter (ipvsadm --stats) ----
    fam!("fulcrum_ipvs_backend_connections_total", Counter, BACKEND, "Connections scheduled to the real server (ipvsadm --stats Conns)."),
    fam!("fulcrum_ipvs_backend_incoming_packets_total", Counter, BACKEND, "Packets client to real server (ipvsadm --stats InPkts)."),
    fam!("fulcrum_ipvs_backend_outgoing_packets_total", Counter, BACKEND, "Packets real server to client, NAT only (ipvsadm --stats OutPkts)."),
    fam!("fulcrum_ipvs_backend_incoming_bytes_total", Counter, BACKEND, "IP bytes client to real server (ipvsadm --stats InBytes)."),
    fam!("fulcrum_ipvs_backend_outgoing_bytes_total", Counter, BACKEND, "IP bytes real server to client (ipvsadm --stats OutBytes)."),
    // ---- health ----
    fam!("fulcrum_real_server_up", Gauge, BACKEND, "1 while the real server passes its health checks (or has none), 0 while it is down."),
    fam!("fulcrum_real_server_transitions_total", Counter, BACKEND, "Up/down transitions of the real server's health state since start."),
    fam!("fulcrum_health_check_latency_seconds", Gauge, CHECKER, "Duration of the checker's last probe."),
    fam!("fulcrum_health_publishes_total", Counter, &[], "Snapshots published because of health changes."),
    // ---- workers ----
    fam!("fulcrum_worker_rx_packets_total", Counter, WORKER, "Frames the worker received from the ports."),
    fam!("fulcrum_worker_rx_bytes_total", Counter, WORKER, "Bytes the worker received from the ports."),
    fam!("fulcrum_worker_tx_packets_total", Counter, WORKER, "Frames the worker handed to the ports' TX queues."),
    fam!("fulcrum_worker_tx_bytes_total", Counter, WORKER, "Bytes the worker handed to the ports' TX queues."),
    fam!("fulcrum_worker_drops_total", Counter, &["worker", "reason"], "Packets the worker dropped, by drop reason (README's drop table)."),
    fam!("fulcrum_worker_redirects_total", Counter, &["worker", "direction"], "Packets moved between workers to their flow's owner: out = sent to another worker, in = received."),
    fam!("fulcrum_worker_polls_total", Counter, &["worker", "result"], "Poll rounds that handled frames (busy) or found none (empty): the busy share is the worker's real load."),
    fam!("fulcrum_worker_connections_created_total", Counter, WORKER, "Connections the worker created."),
    fam!("fulcrum_worker_connections", Gauge, WORKER, "Connections in the worker's table now (created minus expired)."),
    fam!("fulcrum_worker_conn_table_size", Gauge, WORKER, "Capacity of the worker's connection table (config conn_table_size)."),
    fam!("fulcrum_worker_conn_table_fill_ratio", Gauge, WORKER, "Connections over capacity of the worker's table, 0..1."),
    fam!("fulcrum_worker_exception_packets_total", Counter, &["worker", "direction"], "Frames on the exception path: to_kernel = handed to the TAP interface, from_kernel = sent by the kernel."),
    // ---- ports ----
    fam!("fulcrum_port_imissed_total", Counter, PORT, "Packets the NIC dropped for lack of a free RX descriptor (rte_eth_stats.imissed)."),
    fam!("fulcrum_port_rx_nombuf_total", Counter, PORT, "RX mbuf allocation failures (rte_eth_stats.rx_nombuf)."),
    fam!("fulcrum_port_ierrors_total", Counter, PORT, "Erroneous received packets (rte_eth_stats.ierrors)."),
    fam!("fulcrum_port_oerrors_total", Counter, PORT, "Failed transmissions (rte_eth_stats.oerrors)."),
    // ---- control plane ----
    fam!("fulcrum_reloads_total", Counter, &[], "Configuration reloads attempted since start (SIGHUP or fulcrumctl), successful or not."),
    fam!("fulcrum_reload_last_timestamp_seconds", Gauge, &[], "Unix time of the last configuration reload."),
    fam!("fulcrum_reload_last_success", Gauge, &[], "1 when the last configuration reload was applied, 0 when it was refused."),
    fam!("fulcrum_uptime_seconds", Gauge, &[], "Seconds since the daemon started."),
    fam!("fulcrum_build_info", Gauge, &["version"], "Always 1; the version label is fulcrum's version."),
];

/// Index of the family named `name` in [`FAMILIES`]. Const so a typo fails
/// the build.
const fn fam_index(name: &str) -> usize {
    let mut i = 0;
    while i < FAMILIES.len() {
        if const_str_eq(FAMILIES[i].name, name) {
            return i;
        }
        i += 1;
    }
    panic!("no such metric family")
}

const fn const_str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// The [`FAMILIES`] as `prometheus` metric families, without samples.
fn empty_families() -> Vec<MetricFamily> {
    FAMILIES
        .iter()
        .map(|def| {
            let mut mf = MetricFamily::default();
            mf.set_name(def.name.to_string());
            mf.set_help(def.help.to_string());
            mf.set_field_type(match def.kind {
                Kind::Counter => MetricType::COUNTER,
                Kind::Gauge => MetricType::GAUGE,
            });
            mf
        })
        .collect()
}

/// Writes the samples of one scrape into metric families (one per
/// [`FAMILIES`] entry, same order) that may hold the previous scrape's:
/// a sample whose label values equal the previous one's at the same
/// position only gets its value set, so a scrape of an unchanged director
/// allocates no label strings (at 1000 services × 10 real servers the
/// allocations of 115000 samples were most of a scrape's time).
struct Samples<'a> {
    families: &'a mut [MetricFamily],
    /// Samples written so far, per family.
    used: Vec<usize>,
}

impl<'a> Samples<'a> {
    fn new(families: &'a mut [MetricFamily]) -> Self {
        let used = vec![0; families.len()];
        Samples { families, used }
    }

    /// One sample of family `fam` with label values `values` (in the
    /// family's label order).
    fn add(&mut self, fam: usize, values: &[&str], v: f64) {
        let def = &FAMILIES[fam];
        debug_assert_eq!(def.labels.len(), values.len(), "{}", def.name);
        let i = self.used[fam];
        self.used[fam] += 1;
        let list = self.families[fam].mut_metric();
        let same = list.get(i).is_some_and(|m| {
            let l = m.get_label();
            l.len() == values.len() && l.iter().zip(values).all(|(l, v)| l.get_value() == *v)
        });
        if !same {
            let mut m = Metric::default();
            m.set_label(
                def.labels
                    .iter()
                    .zip(values)
                    .map(|(n, v)| {
                        let mut l = LabelPair::default();
                        l.set_name((*n).to_string());
                        l.set_value((*v).to_string());
                        l
                    })
                    .collect(),
            );
            if i < list.len() {
                list[i] = m;
            } else {
                list.push(m);
            }
        }
        let m = &mut list[i];
        match def.kind {
            Kind::Counter => {
                let mut c = Counter::default();
                c.set_value(v);
                m.set_counter(c);
            }
            Kind::Gauge => {
                let mut g = Gauge::default();
                g.set_value(v);
                m.set_gauge(g);
            }
        }
    }
}

impl Drop for Samples<'_> {
    /// Drops what the previous scrape had beyond this one's samples.
    fn drop(&mut self) {
        for (f, &n) in self.families.iter_mut().zip(&self.used) {
            f.mut_metric().truncate(n);
        }
    }
}

/// Splits ipvsadm's `TCP 10.0.0.100:80` (a health report's service) into
/// `(proto, address, port)`.
fn split_service(s: &str) -> Option<(&str, &str, &str)> {
    let (proto, addr) = s.split_once(' ')?;
    let (ip, port) = addr.rsplit_once(':')?;
    Some((proto, ip, port))
}

/// The health report's real servers of `st` by `(service, RIP:port)`, as
/// the report names them (`TCP 10.0.0.100:80`, `10.1.0.11:80`).
pub fn health_by_real(st: &Status) -> HashMap<(&str, &str), &RealReport> {
    st.health
        .reals
        .iter()
        .map(|r| ((r.service.as_str(), r.address.as_str()), r))
        .collect()
}

/// The metric families of `st`, one entry per [`FAMILIES`] entry (empty
/// ones included; the registry drops those).
pub fn families(st: &Status) -> Vec<MetricFamily> {
    let mut f = empty_families();
    fill(st, &mut Samples::new(&mut f));
    f
}

/// Writes every sample of `st` into `s`.
fn fill(st: &Status, s: &mut Samples<'_>) {
    const SVC_CONNS: usize = fam_index("fulcrum_ipvs_connections_total");
    const SVC_INPKTS: usize = fam_index("fulcrum_ipvs_incoming_packets_total");
    const SVC_OUTPKTS: usize = fam_index("fulcrum_ipvs_outgoing_packets_total");
    const SVC_INBYTES: usize = fam_index("fulcrum_ipvs_incoming_bytes_total");
    const SVC_OUTBYTES: usize = fam_index("fulcrum_ipvs_outgoing_bytes_total");
    const BE_ACTIVE: usize = fam_index("fulcrum_ipvs_backend_connections_active");
    const BE_INACT: usize = fam_index("fulcrum_ipvs_backend_connections_inactive");
    const BE_WEIGHT: usize = fam_index("fulcrum_ipvs_backend_weight");
    const BE_CONNS: usize = fam_index("fulcrum_ipvs_backend_connections_total");
    const BE_INPKTS: usize = fam_index("fulcrum_ipvs_backend_incoming_packets_total");
    const BE_OUTPKTS: usize = fam_index("fulcrum_ipvs_backend_outgoing_packets_total");
    const BE_INBYTES: usize = fam_index("fulcrum_ipvs_backend_incoming_bytes_total");
    const BE_OUTBYTES: usize = fam_index("fulcrum_ipvs_backend_outgoing_bytes_total");
    const UP: usize = fam_index("fulcrum_real_server_up");
    const TRANSITIONS: usize = fam_index("fulcrum_real_server_transitions_total");
    const LATENCY: usize = fam_index("fulcrum_health_check_latency_seconds");
    const PUBLISHES: usize = fam_index("fulcrum_health_publishes_total");

    let health = health_by_real(st);
    let mut svc_name = String::new();
    let mut real_addr = String::new();
    for svc in &st.services {
        let vport = svc.vport.to_string();
        let sl = [svc.vip.as_str(), vport.as_str(), svc.proto.as_str()];
        s.add(SVC_CONNS, &sl, svc.conns as f64);
        s.add(SVC_INPKTS, &sl, svc.in_pkts as f64);
        s.add(SVC_OUTPKTS, &sl, svc.out_pkts as f64);
        s.add(SVC_INBYTES, &sl, svc.in_bytes as f64);
        s.add(SVC_OUTBYTES, &sl, svc.out_bytes as f64);
        svc_name.clear();
        svc_name.push_str(&svc.proto);
        svc_name.push(' ');
        svc_name.push_str(&svc.vip);
        svc_name.push(':');
        svc_name.push_str(&vport);
        for r in &svc.reals {
            let rport = r.port.to_string();
            let bl = [
                svc.vip.as_str(),
                vport.as_str(),
                r.ip.as_str(),
                rport.as_str(),
                svc.proto.as_str(),
            ];
            s.add(BE_ACTIVE, &bl, r.active_conns as f64);
            s.add(BE_INACT, &bl, r.inactive_conns as f64);
            s.add(BE_WEIGHT, &bl, f64::from(r.weight));
            s.add(BE_CONNS, &bl, r.conns as f64);
            s.add(BE_INPKTS, &bl, r.in_pkts as f64);
            s.add(BE_OUTPKTS, &bl, r.out_pkts as f64);
            s.add(BE_INBYTES, &bl, r.in_bytes as f64);
            s.add(BE_OUTBYTES, &bl, r.out_bytes as f64);
            real_addr.clear();
            real_addr.push_str(&r.ip);
            real_addr.push(':');
            real_addr.push_str(&rport);
            // A real server without a health entry has no checkers (or
            // the checkers are not running): it stays in rotation.
            let up = !matches!(
                health.get(&(svc_name.as_str(), real_addr.as_str())),
                Some(h) if h.state != "up"
            );
            s.add(UP, &bl, if up { 1.0 } else { 0.0 });
        }
    }
    // Transitions and checkers come from the health report itself, so a
    // real server the report knows and the snapshot lost (quiesced out of
    // the list) still shows its checkers.
    for h in &st.health.reals {
        let (Some((proto, vip, vport)), Some((rip, rport))) =
            (split_service(&h.service), h.address.rsplit_once(':'))
        else {
            continue;
        };
        s.add(
            TRANSITIONS,
            &[vip, vport, rip, rport, proto],
            h.transitions as f64,
        );
        for (i, c) in h.checkers.iter().enumerate() {
            let idx = i.to_string();
            let cl = [vip, vport, rip, rport, proto, c.kind.as_str(), idx.as_str()];
            if let Some(us) = c.latency_us {
                s.add(LATENCY, &cl, us as f64 / 1e6);
            }
        }
    }
    s.add(PUBLISHES, &[], st.health.publishes as f64);
    workers(st, s);
    control(st, s);
}

fn workers(st: &Status, s: &mut Samples<'_>) {
    const RX_PKTS: usize = fam_index("fulcrum_worker_rx_packets_total");
    const RX_BYTES: usize = fam_index("fulcrum_worker_rx_bytes_total");
    const TX_PKTS: usize = fam_index("fulcrum_worker_tx_packets_total");
    const TX_BYTES: usize = fam_index("fulcrum_worker_tx_bytes_total");
    const DROPS: usize = fam_index("fulcrum_worker_drops_total");
    const REDIRECTS: usize = fam_index("fulcrum_worker_redirects_total");
    const POLLS: usize = fam_index("fulcrum_worker_polls_total");
    const CREATED: usize = fam_index("fulcrum_worker_connections_created_total");
    const CONNS: usize = fam_index("fulcrum_worker_connections");
    const SIZE: usize = fam_index("fulcrum_worker_conn_table_size");
    const FILL: usize = fam_index("fulcrum_worker_conn_table_fill_ratio");
    const EXCEPTION: usize = fam_index("fulcrum_worker_exception_packets_total");
    for w in &st.workers {
        let id = w.id.to_string();
        let wl = [id.as_str()];
        let c = |n: &str| w.counter(n) as f64;
        s.add(RX_PKTS, &wl, c("rx_pkts"));
        s.add(RX_BYTES, &wl, c("rx_bytes"));
        s.add(TX_PKTS, &wl, c("tx_pkts"));
        s.add(TX_BYTES, &wl, c("tx_bytes"));
        for (reason, &n) in &w.drops {
            s.add(DROPS, &[id.as_str(), reason.as_str()], n as f64);
        }
        s.add(REDIRECTS, &[id.as_str(), "out"], c("redirects_out"));
        s.add(REDIRECTS, &[id.as_str(), "in"], c("redirects_in"));
        s.add(POLLS, &[id.as_str(), "busy"], c("polls_busy"));
        s.add(POLLS, &[id.as_str(), "empty"], c("polls_empty"));
        s.add(CREATED, &wl, c("conns_created"));
        let conns = worker_conns(w);
        s.add(CONNS, &wl, conns as f64);
        s.add(SIZE, &wl, st.conn_table_size as f64);
        let fill = if st.conn_table_size == 0 {
            0.0
        } else {
            conns as f64 / st.conn_table_size as f64
        };
        s.add(FILL, &wl, fill);
        s.add(
            EXCEPTION,
            &[id.as_str(), "to_kernel"],
            c("exception_to_kernel"),
        );
        s.add(
            EXCEPTION,
            &[id.as_str(), "from_kernel"],
            c("exception_from_kernel"),
        );
    }
}

/// Connections in a worker's table: every connection is created once and
/// leaves once: by the timer wheel (`conns_expired`), by
/// `expire_nodest_conn` (`conns_expired_nodest`) or by a new SYN on its
/// closed tuple (`conns_reused`); the conn table has no other removal.
pub fn worker_conns(w: &crate::admin::WorkerStatus) -> u64 {
    w.counter("conns_created")
        .saturating_sub(w.counter("conns_expired"))
        .saturating_sub(w.counter("conns_expired_nodest"))
        .saturating_sub(w.counter("conns_reused"))
}

fn control(st: &Status, s: &mut Samples<'_>) {
    const IMISSED: usize = fam_index("fulcrum_port_imissed_total");
    const NOMBUF: usize = fam_index("fulcrum_port_rx_nombuf_total");
    const IERRORS: usize = fam_index("fulcrum_port_ierrors_total");
    const OERRORS: usize = fam_index("fulcrum_port_oerrors_total");
    const RELOADS: usize = fam_index("fulcrum_reloads_total");
    const RELOAD_AT: usize = fam_index("fulcrum_reload_last_timestamp_seconds");
    const RELOAD_OK: usize = fam_index("fulcrum_reload_last_success");
    const UPTIME: usize = fam_index("fulcrum_uptime_seconds");
    const BUILD: usize = fam_index("fulcrum_build_info");
    for p in &st.ports {
        let pl = [p.name.as_str(), p.device.as_str()];
        s.add(IMISSED, &pl, p.imissed as f64);
        s.add(NOMBUF, &pl, p.rx_nombuf as f64);
        s.add(IERRORS, &pl, p.ierrors as f64);
        s.add(OERRORS, &pl, p.oerrors as f64);
    }
    s.add(
        RELOADS,
        &[],
        st.reload.as_ref().map_or(0.0, |r| r.count as f64),
    );
    if let Some(r) = &st.reload {
        s.add(RELOAD_AT, &[], r.at_unix_s as f64);
        s.add(RELOAD_OK, &[], if r.ok { 1.0 } else { 0.0 });
    }
    s.add(UPTIME, &[], st.uptime_s as f64);
    s.add(BUILD, &[st.version.as_str()], 1.0);
}

/// A `prometheus` [`Collector`] that calls a [`StatusFn`] on each gather
/// and turns the status into [`FAMILIES`].
pub struct StatusCollector {
    status: StatusFn,
    descs: Vec<Desc>,
    /// The last scrape's families, reused by the next one ([`Samples`]),
    /// and its length in bytes: the next buffer starts that large (growing
    /// a 20 MB buffer by doubling cost a tenth of a large scrape in
    /// copies).
    last: Mutex<(Vec<MetricFamily>, usize)>,
}

impl StatusCollector {
    /// A collector over `status`.
    ///
    /// # Errors
    /// A [`FAMILIES`] entry the crate refuses (invalid name or label name,
    /// empty help): a programming error the unit tests catch.
    pub fn new(status: StatusFn) -> prometheus::Result<StatusCollector> {
        let descs = FAMILIES
            .iter()
            .map(|f| {
                Desc::new(
                    f.name.to_string(),
                    f.help.to_string(),
                    f.labels.iter().map(|l| (*l).to_string()).collect(),
                    HashMap::new(),
                )
            })
            .collect::<prometheus::Result<Vec<Desc>>>()?;
        Ok(StatusCollector {
            status,
            descs,
            last: Mutex::new((empty_families(), 64 * 1024)),
        })
    }
}

impl Collector for StatusCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        families(&(self.status)())
    }
}

/// One scrape: calls the collector's status function and encodes every
/// non-empty family in the Prometheus text format (version 0.0.4,
/// [`prometheus::TEXT_FORMAT`]), in [`FAMILIES`] order, samples in config
/// order. Scrapes are serialised (one lock, only the metrics thread takes
/// it).
///
/// Why not `Registry::gather` and one `TextEncoder::encode` call:
/// `gather` builds every family afresh and sorts each family's samples
/// by their label values, which for 1000 services × 10 real servers took
/// longer than the rest of the scrape together; the text format does not
/// need that order, and the collector's order is already stable. The
/// collector's [`Desc`]s are still checked by [`StatusCollector::new`],
/// and a unit test registers it in a registry.
///
/// # Errors
/// The encoder's error (a family whose samples disagree with its type).
pub fn encode(collector: &StatusCollector) -> prometheus::Result<Vec<u8>> {
    let st = (collector.status)();
    let mut last = collector
        .last
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    let (families, hint) = &mut *last;
    fill(&st, &mut Samples::new(families));
    let mut out = Vec::with_capacity(*hint + *hint / 8);
    let enc = TextEncoder::new();
    for f in families.iter().filter(|f| !f.get_metric().is_empty()) {
        enc.encode(std::slice::from_ref(f), &mut out)?;
    }
    *hint = out.len();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::sync::Arc;

    use dataplane::stats::DropReason;

    use super::*;
    use crate::metrics::testutil::{bare_fixture, fixture};

    /// Every family, its type and label names: renaming one, or changing
    /// its labels, must change this list too (dashboards and alerts
    /// depend on them).
    const SNAPSHOT: &str = "\
counter fulcrum_ipvs_connections_total{local_address,local_port,proto}
counter fulcrum_ipvs_incoming_packets_total{local_address,local_port,proto}
counter fulcrum_ipvs_outgoing_packets_total{local_address,local_port,proto}
counter fulcrum_ipvs_incoming_bytes_total{local_address,local_port,proto}
counter fulcrum_ipvs_outgoing_bytes_total{local_address,local_port,proto}
gauge fulcrum_ipvs_backend_connections_active{local_address,local_port,remote_address,remote_port,proto}
gauge fulcrum_ipvs_backend_connections_inactive{local_address,local_port,remote_address,remote_port,proto}
gauge fulcrum_ipvs_backend_weight{local_address,local_port,remote_address,remote_port,proto}
counter fulcrum_ipvs_backend_connections_total{local_address,local_port,remote_address,remote_port,proto}
counter fulcrum_ipvs_backend_incoming_packets_total{local_address,local_port,remote_address,remote_port,proto}
counter fulcrum_ipvs_backend_outgoing_packets_total{local_address,local_port,remote_address,remote_port,proto}
counter fulcrum_ipvs_backend_incoming_bytes_total{local_address,local_port,remote_address,remote_port,proto}
counter fulcrum_ipvs_backend_outgoing_bytes_total{local_address,local_port,remote_address,remote_port,proto}
gauge fulcrum_real_server_up{local_address,local_port,remote_address,remote_port,proto}
counter fulcrum_real_server_transitions_total{local_address,local_port,remote_address,remote_port,proto}
gauge fulcrum_health_check_latency_seconds{local_address,local_port,remote_address,remote_port,proto,checker,checker_index}
counter fulcrum_health_publishes_total{}
counter fulcrum_worker_rx_packets_total{worker}
counter fulcrum_worker_rx_bytes_total{worker}
counter fulcrum_worker_tx_packets_total{worker}
counter fulcrum_worker_tx_bytes_total{worker}
counter fulcrum_worker_drops_total{worker,reason}
counter fulcrum_worker_redirects_total{worker,direction}
counter fulcrum_worker_polls_total{worker,result}
counter fulcrum_worker_connections_created_total{worker}
gauge fulcrum_worker_connections{worker}
gauge fulcrum_worker_conn_table_size{worker}
gauge fulcrum_worker_conn_table_fill_ratio{worker}
counter fulcrum_worker_exception_packets_total{worker,direction}
counter fulcrum_port_imissed_total{port,device}
counter fulcrum_port_rx_nombuf_total{port,device}
counter fulcrum_port_ierrors_total{port,device}
counter fulcrum_port_oerrors_total{port,device}
counter fulcrum_reloads_total{}
gauge fulcrum_reload_last_timestamp_seconds{}
gauge fulcrum_reload_last_success{}
gauge fulcrum_uptime_seconds{}
gauge fulcrum_build_info{version}
";

    fn snapshot_line(f: &FamilyDef) -> String {
        let kind = match f.kind {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
        };
        format!("{kind} {}{{{}}}\n", f.name, f.labels.join(","))
    }

    #[test]
    fn test_families_snapshot() {
        let got: String = FAMILIES.iter().map(snapshot_line).collect();
        assert_eq!(got, SNAPSHOT);
        for f in FAMILIES {
            assert_eq!(
                f.name.ends_with("_total"),
                f.kind == Kind::Counter,
                "{}: counters end in _total, gauges do not",
                f.name
            );
        }
        let names: BTreeSet<&str> = FAMILIES.iter().map(|f| f.name).collect();
        assert_eq!(names.len(), FAMILIES.len(), "a family is declared twice");
    }

    /// `(name, [(label, value)], value)`: one sample line of a scrape.
    type Sample = (String, Vec<(String, String)>, f64);

    /// The [`Sample`] of each sample line of a text
    /// scrape, checking the `# TYPE` of each family on the way.
    fn parse(text: &str) -> Vec<Sample> {
        let mut out = Vec::new();
        for line in text.lines() {
            if line.starts_with('#') || line.is_empty() {
                continue;
            }
            let (head, value) = line.rsplit_once(' ').expect("sample value");
            let (name, labels) = match head.split_once('{') {
                Some((n, rest)) => (n, rest.strip_suffix('}').expect("closing brace")),
                None => (head, ""),
            };
            let labels = labels
                .split("\",")
                .filter(|l| !l.is_empty())
                .map(|l| {
                    let (k, v) = l.split_once("=\"").expect("label=\"value\"");
                    (k.to_string(), v.trim_end_matches('"').to_string())
                })
                .collect();
            out.push((name.to_string(), labels, value.parse().expect("number")));
        }
        out
    }

    fn scrape(st: crate::admin::Status) -> String {
        let c = StatusCollector::new(Arc::new(move || st.clone())).expect("collector");
        String::from_utf8(encode(&c).expect("encodes")).expect("utf8")
    }

    /// The collector's descriptors are accepted by a `prometheus`
    /// registry, and a registry gather yields the same samples as
    /// [`encode`] (sorted, not in config order).
    #[test]
    fn test_registry_accepts_collector() {
        let st = fixture();
        let want = parse(&scrape(st.clone()));
        let reg = prometheus::Registry::new();
        let c = StatusCollector::new(Arc::new(move || st.clone())).expect("collector");
        reg.register(Box::new(c)).expect("registers");
        let mut out = Vec::new();
        TextEncoder::new()
            .encode(&reg.gather(), &mut out)
            .expect("encodes");
        let got = parse(&String::from_utf8(out).expect("utf8"));
        let key = |v: &[Sample]| {
            let mut k: Vec<String> = v.iter().map(|s| format!("{s:?}")).collect();
            k.sort();
            k
        };
        assert_eq!(key(&got), key(&want));
    }

    fn value(samples: &[Sample], name: &str, want: &[(&str, &str)]) -> f64 {
        let hits: Vec<f64> = samples
            .iter()
            .filter(|(n, l, _)| {
                n == name
                    && want
                        .iter()
                        .all(|(k, v)| l.iter().any(|(lk, lv)| lk == k && lv == v))
            })
            .map(|s| s.2)
            .collect();
        assert_eq!(hits.len(), 1, "{name} {want:?}: {hits:?}");
        hits[0]
    }

    /// The fixture's scrape has every family, each sample with exactly its
    /// family's label names in order, and `# TYPE` lines as declared.
    #[test]
    fn test_scrape_families_and_labels() {
        let text = scrape(fixture());
        let samples = parse(&text);
        let defs: HashMap<&str, &FamilyDef> = FAMILIES.iter().map(|f| (f.name, f)).collect();
        let mut seen = BTreeSet::new();
        for (name, labels, _) in &samples {
            let def = defs
                .get(name.as_str())
                .unwrap_or_else(|| panic!("undeclared {name}"));
            let got: Vec<&str> = labels.iter().map(|(k, _)| k.as_str()).collect();
            assert_eq!(got, def.labels, "{name}");
            seen.insert(name.as_str());
        }
        assert_eq!(
            seen.len(),
            FAMILIES.len(),
            "the fixture covers every family"
        );
        for f in FAMILIES {
            let kind = match f.kind {
                Kind::Counter => "counter",
                Kind::Gauge => "gauge",
            };
            assert!(
                text.contains(&format!("# TYPE {} {kind}\n", f.name)),
                "{}",
                f.name
            );
            assert!(
                text.contains(&format!("# HELP {} {}\n", f.name, f.help)),
                "{}",
                f.name
            );
        }
    }

    #[test]
    fn test_scrape_values() {
        let s = parse(&scrape(fixture()));
        let svc = [
            ("local_address", "10.0.0.100"),
            ("local_port", "80"),
            ("proto", "TCP"),
        ];
        assert_eq!(value(&s, "fulcrum_ipvs_connections_total", &svc), 34.0);
        assert_eq!(value(&s, "fulcrum_ipvs_incoming_packets_total", &svc), 36.0);
        assert_eq!(value(&s, "fulcrum_ipvs_outgoing_packets_total", &svc), 38.0);
        assert_eq!(value(&s, "fulcrum_ipvs_incoming_bytes_total", &svc), 40.0);
        assert_eq!(value(&s, "fulcrum_ipvs_outgoing_bytes_total", &svc), 42.0);
        let udp = [
            ("local_address", "10.0.0.101"),
            ("local_port", "53"),
            ("proto", "UDP"),
        ];
        assert_eq!(value(&s, "fulcrum_ipvs_connections_total", &udp), 32.0);
        let r11 = [
            ("local_address", "10.0.0.100"),
            ("remote_address", "10.1.0.11"),
            ("remote_port", "80"),
        ];
        assert_eq!(
            value(&s, "fulcrum_ipvs_backend_connections_active", &r11),
            10.0
        );
        assert_eq!(
            value(&s, "fulcrum_ipvs_backend_connections_inactive", &r11),
            11.0
        );
        assert_eq!(value(&s, "fulcrum_ipvs_backend_weight", &r11), 1.0);
        assert_eq!(
            value(&s, "fulcrum_ipvs_backend_connections_total", &r11),
            12.0
        );
        assert_eq!(
            value(&s, "fulcrum_ipvs_backend_incoming_packets_total", &r11),
            13.0
        );
        assert_eq!(
            value(&s, "fulcrum_ipvs_backend_outgoing_packets_total", &r11),
            14.0
        );
        assert_eq!(
            value(&s, "fulcrum_ipvs_backend_incoming_bytes_total", &r11),
            15.0
        );
        assert_eq!(
            value(&s, "fulcrum_ipvs_backend_outgoing_bytes_total", &r11),
            16.0
        );
        assert_eq!(value(&s, "fulcrum_real_server_up", &r11), 1.0);
        assert_eq!(
            value(&s, "fulcrum_real_server_transitions_total", &r11),
            2.0
        );
        let r12 = [("remote_address", "10.1.0.12")];
        assert_eq!(value(&s, "fulcrum_real_server_up", &r12), 0.0);
        assert_eq!(value(&s, "fulcrum_ipvs_backend_weight", &r12), 0.0);
        // No health entry: no checkers, in rotation.
        assert_eq!(
            value(
                &s,
                "fulcrum_real_server_up",
                &[("remote_address", "10.1.0.21")]
            ),
            1.0
        );
        let http = [
            ("remote_address", "10.1.0.11"),
            ("checker", "HTTP_GET"),
            ("checker_index", "0"),
        ];
        assert_eq!(
            value(&s, "fulcrum_health_check_latency_seconds", &http),
            0.0045
        );
        let tcp = [("checker", "TCP_CHECK"), ("checker_index", "1")];
        assert_eq!(
            value(&s, "fulcrum_health_check_latency_seconds", &tcp),
            0.00025
        );
        // A checker without a result yet has no latency sample.
        assert!(!s
            .iter()
            .any(|(n, l, _)| n == "fulcrum_health_check_latency_seconds"
                && l.iter().any(|(_, v)| v == "10.1.0.12")));
        assert_eq!(value(&s, "fulcrum_health_publishes_total", &[]), 6.0);
        let w1 = [("worker", "1")];
        assert_eq!(value(&s, "fulcrum_worker_rx_packets_total", &w1), 2001.0);
        assert_eq!(value(&s, "fulcrum_worker_rx_bytes_total", &w1), 2002.0);
        assert_eq!(value(&s, "fulcrum_worker_tx_packets_total", &w1), 2003.0);
        assert_eq!(value(&s, "fulcrum_worker_tx_bytes_total", &w1), 2004.0);
        assert_eq!(
            value(
                &s,
                "fulcrum_worker_drops_total",
                &[("worker", "1"), ("reason", "no_route")]
            ),
            2013.0
        );
        assert_eq!(
            value(
                &s,
                "fulcrum_worker_drops_total",
                &[("worker", "1"), ("reason", "tx_full")]
            ),
            0.0
        );
        let n_drops = s
            .iter()
            .filter(|(n, _, _)| n == "fulcrum_worker_drops_total")
            .count();
        assert_eq!(n_drops, 2 * DropReason::COUNT);
        assert_eq!(
            value(
                &s,
                "fulcrum_worker_redirects_total",
                &[("worker", "1"), ("direction", "out")]
            ),
            2007.0
        );
        assert_eq!(
            value(
                &s,
                "fulcrum_worker_redirects_total",
                &[("worker", "1"), ("direction", "in")]
            ),
            2008.0
        );
        assert_eq!(
            value(
                &s,
                "fulcrum_worker_polls_total",
                &[("worker", "1"), ("result", "busy")]
            ),
            2009.0
        );
        assert_eq!(
            value(
                &s,
                "fulcrum_worker_polls_total",
                &[("worker", "1"), ("result", "empty")]
            ),
            2010.0
        );
        assert_eq!(
            value(&s, "fulcrum_worker_connections_created_total", &w1),
            2100.0
        );
        assert_eq!(value(&s, "fulcrum_worker_connections", &w1), 2035.0);
        assert_eq!(value(&s, "fulcrum_worker_conn_table_size", &w1), 10000.0);
        assert_eq!(
            value(&s, "fulcrum_worker_conn_table_fill_ratio", &w1),
            0.2035
        );
        assert_eq!(
            value(
                &s,
                "fulcrum_worker_exception_packets_total",
                &[("worker", "0"), ("direction", "to_kernel")]
            ),
            1011.0
        );
        assert_eq!(
            value(
                &s,
                "fulcrum_worker_exception_packets_total",
                &[("worker", "0"), ("direction", "from_kernel")]
            ),
            1012.0
        );
        let port = [("port", "outside<&>"), ("device", "net_af_packet0")];
        assert_eq!(value(&s, "fulcrum_port_imissed_total", &port), 71.0);
        assert_eq!(value(&s, "fulcrum_port_rx_nombuf_total", &port), 72.0);
        assert_eq!(value(&s, "fulcrum_port_ierrors_total", &port), 73.0);
        assert_eq!(value(&s, "fulcrum_port_oerrors_total", &port), 74.0);
        assert_eq!(value(&s, "fulcrum_reloads_total", &[]), 4.0);
        assert_eq!(
            value(&s, "fulcrum_reload_last_timestamp_seconds", &[]),
            1_700_000_100.0
        );
        assert_eq!(value(&s, "fulcrum_reload_last_success", &[]), 0.0);
        assert_eq!(value(&s, "fulcrum_uptime_seconds", &[]), 3725.0);
        assert_eq!(
            value(&s, "fulcrum_build_info", &[("version", "0.1.0")]),
            1.0
        );
    }

    /// A daemon without ports, reloads or services exports what it has and
    /// leaves the empty families out entirely (no HELP without samples).
    #[test]
    fn test_scrape_empty_status() {
        let st = bare_fixture();
        let text = scrape(st);
        let s = parse(&text);
        assert!(!text.contains("fulcrum_ipvs_"), "{text}");
        assert!(!text.contains("fulcrum_port_"));
        assert!(!text.contains("fulcrum_reload_last"));
        assert_eq!(value(&s, "fulcrum_reloads_total", &[]), 0.0);
        assert_eq!(value(&s, "fulcrum_health_publishes_total", &[]), 0.0);
        assert_eq!(
            value(&s, "fulcrum_worker_rx_packets_total", &[("worker", "0")]),
            1001.0
        );
    }

    /// Label values are escaped by the encoder, not cut or broken.
    #[test]
    fn test_scrape_escapes_label_values() {
        let mut st = fixture();
        st.ports[0].name = "a\"b\\c\nd".into();
        let text = scrape(st);
        assert!(
            text.contains(
                r#"fulcrum_port_imissed_total{port="a\"b\\c\nd",device="net_af_packet0"} 71"#
            ),
            "{text}"
        );
    }

    #[test]
    fn test_split_service() {
        assert_eq!(
            split_service("TCP 10.0.0.100:80"),
            Some(("TCP", "10.0.0.100", "80"))
        );
        assert_eq!(split_service("TCP"), None);
        assert_eq!(split_service("UDP 10.0.0.1"), None);
    }
}
