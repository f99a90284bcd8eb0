//! Cross-field validation: the rules a parsed [`Config`] must meet beyond
//! types and single values, one file per section.
//!
//! Layer: control, first stage (`RON → Config → validate() → compile()`).
//! Guarantees: stops at the first broken rule and names it with the
//! [`PathSeg`] path of the offending value, checking sections in this order:
//! workers and scalar settings (`settings.rs`), ports (`ports.rs`), the
//! exception path and the ports' kernel interface names (`exception.rs`), the
//! metrics listener (`metrics.rs`), routes (`routes.rs`), neighbours
//! (`neighbours.rs`), then each service in config order (`services.rs`: its
//! persistence (`persistence.rs`), its key, its
//! scheduler settings (`sched.rs`) and its real servers
//! (`real_servers.rs`)). Timeouts have no cross-field rule: each is checked by
//! its type ([`super::TimeoutSecs`]).
#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::net::Ipv4Addr;

use super::error::{PathSeg, ValidationError};
use super::schema::Config;

mod exception;
mod health;
mod metrics;
mod neighbours;
mod persistence;
mod ports;
mod real_servers;
mod routes;
mod sched;
mod services;
mod settings;
pub mod vrrp;

pub use self::exception::{
    MAX_EXCEPTION_BURST, MAX_EXCEPTION_RATE_PPS, MAX_ICMP_BURST, MAX_ICMP_RATE_PPS,
};
pub use self::sched::MH_SLOTS_PER_REAL;

/// The director's own interface addresses (DIPs), each with the index of
/// the port it is on.
type Dips = HashMap<Ipv4Addr, usize>;

fn verr(path: Vec<PathSeg>, message: String) -> ValidationError {
    ValidationError { path, message }
}

/// The connected subnets, deduplicated, in port and address order, joined
/// with `", "`: what messages about an address off every subnet suggest.
fn connected_subnets(cfg: &Config) -> String {
    let mut v: Vec<String> = Vec::new();
    for p in &cfg.ports {
        for a in &p.addrs {
            let n = a.network().to_string();
            if !v.contains(&n) {
                v.push(n);
            }
        }
    }
    v.join(", ")
}

/// Checks the rules a parsed config must meet beyond types and single
/// values; stops at the first failure, checking in this order: workers,
/// scalar settings, ports, routes, neighbours, services (each list in
/// config order).
///
/// Rules: 1..=64 distinct `workers`; `burst` 1..=64; non-zero `rx_desc`,
/// `tx_desc`, `mbufs_per_socket`, `conn_table_size` and a non-empty
/// `admin_socket`; 1..=64 ports with unique non-empty `name` and `device`, at
/// least one address each, `mtu` 576..=9000, and no DIP on two ports;
/// `exception_path.rate_pps` 1..=10000000 and `burst` 1..=1000000,
/// `icmp_rate_limit.rate_pps` 1..=1000000 and `burst` 1..=100000, each port's kernel interface name
/// 1..=15 bytes of `[A-Za-z0-9_.-]` and unique; each route's `dst` unique
/// and its `via` on a connected subnet and not a DIP; each neighbour on a
/// connected subnet, unique and not a DIP; at most 65535 services; each
/// VIP:port/proto once; a VIP may not be a DIP; in each service no real
/// server twice, no real server on a director address (DIP or VIP); a DR
/// real server on a connected subnet with its port equal to the vport; a NAT
/// real server reachable by some route, with port 0 exactly when the vport
/// is 0; a `persistence_netmask` only together with a
/// `persistence_timeout`; scheduler flags, `table_size` and `hash_seed` as
/// docs/config.md lists them.
///
/// # Errors
/// The first broken rule, with the path of the offending value.
pub fn validate(cfg: &Config) -> Result<(), ValidationError> {
    settings::check(cfg)?;
    let dips = ports::check(cfg)?;
    exception::check(cfg)?;
    metrics::check(cfg)?;
    routes::check(cfg, &dips)?;
    neighbours::check(cfg, &dips)?;
    services::check(cfg, &dips)?;
    vrrp::check(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_validate_in_memory_error_has_path() {
        let src = r#"(eal_args: [], workers: [1], burst: 0, ports: [(name: "a", device: "d", addrs: ["10.0.0.1/24"])])"#;
        let opts = ron::Options::default()
            .with_default_extension(ron::extensions::Extensions::IMPLICIT_SOME);
        let cfg: Config = opts.from_str(src).expect("parses");
        let e = validate(&cfg).expect_err("burst 0");
        assert_eq!(e.path, vec![PathSeg::Field("burst")]);
        assert_eq!(
            e.to_string(),
            "burst: invalid burst 0: expected 1..=64 packets"
        );
    }
}
