//! The metrics listener: `metrics.listen` must be an `IP:port` with a
//! non-zero port, and an address other than loopback needs `allow_remote`.
//!
//! Why the second rule: `/metrics` and the status page have no
//! authentication and list every service, real server and counter, so an
//! endpoint reachable from the network is a decision the operator writes
//! down, not a typo's side effect (node_exporter listens on every address by
//! default; fulcrum does not).
#![forbid(unsafe_code)]

use super::verr;
use crate::config::error::{PathSeg, ValidationError};
use crate::config::schema::Config;

/// `listen` parses as `IP:port` (IPv4, or IPv6 in brackets), the port is
/// 1..=65535, and the address is loopback (`127.0.0.0/8`, `::1`) unless
/// `allow_remote: true`. Checked even with `enabled: false`, so enabling it
/// later cannot fail on them.
pub(super) fn check(cfg: &Config) -> Result<(), ValidationError> {
    use PathSeg::Field as F;
    let m = &cfg.metrics;
    let path = || vec![F("metrics"), F("listen")];
    let Some(addr) = m.listen_addr() else {
        return Err(verr(
            path(),
            format!(
                "invalid metrics.listen {:?}: expected IP:port like \"127.0.0.1:9469\" or \"[::1]:9469\"",
                m.listen
            ),
        ));
    };
    if addr.port() == 0 {
        return Err(verr(
            path(),
            format!(
                "invalid metrics.listen {:?}: port 0 would pick a random port Prometheus cannot find: expected 1..=65535",
                m.listen
            ),
        ));
    }
    if !addr.ip().is_loopback() && !m.allow_remote {
        return Err(verr(
            path(),
            format!(
                "metrics.listen {:?} is not a loopback address: the endpoint has no authentication, \
                 expected 127.0.0.1 or ::1, or `allow_remote: true` in the metrics section",
                m.listen
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::config::parse;

    const BASE: &str = r#"(
    eal_args: [],
    workers: [1],
    ports: [(name: "outside", device: "net_null0", addrs: ["10.0.0.1/24"])],
    METRICS
)"#;

    fn with(section: &str) -> String {
        BASE.replace("METRICS", section)
    }

    fn err(section: &str) -> String {
        parse(&with(section), "fulcrum.ron")
            .expect_err("refused")
            .to_string()
    }

    #[test]
    fn test_metrics_defaults() {
        let cfg = parse(&with(""), "fulcrum.ron").expect("valid");
        assert!(cfg.metrics.enabled);
        assert!(!cfg.metrics.allow_remote);
        assert_eq!(
            cfg.metrics.listen_addr(),
            Some("127.0.0.1:9469".parse().expect("addr"))
        );
        let cfg = parse(
            &with(r#"metrics: (listen: "[::1]:9100", enabled: false),"#),
            "fulcrum.ron",
        )
        .expect("valid");
        assert!(!cfg.metrics.enabled);
        assert_eq!(cfg.metrics.listen_addr().map(|a| a.port()), Some(9100));
    }

    #[test]
    fn test_metrics_remote_needs_allow_remote() {
        assert_eq!(
            err(r#"metrics: (listen: "0.0.0.0:9469"),"#),
            "fulcrum.ron:5:23: metrics.listen \"0.0.0.0:9469\" is not a loopback address: the \
             endpoint has no authentication, expected 127.0.0.1 or ::1, or `allow_remote: true` \
             in the metrics section"
        );
        assert!(err(r#"metrics: (listen: "10.0.0.1:9469"),"#).contains("not a loopback"));
        let cfg = parse(
            &with(r#"metrics: (listen: "0.0.0.0:9469", allow_remote: true),"#),
            "fulcrum.ron",
        )
        .expect("allowed");
        assert!(cfg.metrics.allow_remote);
    }

    #[test]
    fn test_metrics_bad_listen() {
        assert_eq!(
            err(r#"metrics: (listen: "127.0.0.1:0"),"#),
            "fulcrum.ron:5:23: invalid metrics.listen \"127.0.0.1:0\": port 0 would pick a random \
             port Prometheus cannot find: expected 1..=65535"
        );
        let e = err(r#"metrics: (listen: "localhost:9469"),"#);
        assert!(
            e.starts_with(
                "fulcrum.ron:5:23: invalid metrics.listen \"localhost:9469\": expected IP:port"
            ),
            "{e}"
        );
        let e = err(r#"metrics: (port: 9469),"#);
        assert!(
            e.starts_with("fulcrum.ron:5:") && e.contains("unknown field `port`"),
            "{e}"
        );
    }
}
