//! Virtual services: at most 65535; each VIP:port/proto once; a VIP may
//! not be a DIP; then, per service, its persistence, scheduler settings and
//! real servers.
#![forbid(unsafe_code)]

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;

use dataplane::snapshot::Proto;

use super::{health, persistence, real_servers, sched, verr, Dips};
use crate::config::error::{PathSeg, ValidationError};
use crate::config::schema::Config;

/// Checks `services` in config order against the DIPs `dips`.
pub(super) fn check(cfg: &Config, dips: &Dips) -> Result<(), ValidationError> {
    use PathSeg::{Field as F, Index as I};
    // Index u16::MAX is `NO_SERVICE`, the mark of a retired real server.
    if cfg.services.len() > usize::from(u16::MAX) {
        return Err(verr(
            vec![F("services"), I(usize::from(u16::MAX))],
            "too many services: expected at most 65535".into(),
        ));
    }
    let vips: HashSet<Ipv4Addr> = cfg.services.iter().map(|s| s.vip.ip()).collect();
    let mut keys: HashMap<(Ipv4Addr, u16, Proto), usize> = HashMap::new();
    for (i, s) in cfg.services.iter().enumerate() {
        let (vip, vport, proto) = (s.vip.ip(), s.vip.port(), s.proto.0);
        persistence::check(i, s)?;
        if let Some(&first) = keys.get(&(vip, vport, proto)) {
            return Err(verr(
                vec![F("services"), I(i), F("vip")],
                format!(
                    "duplicate virtual service {proto} {vip}:{vport}: already defined by services[{first}]"
                ),
            ));
        }
        keys.insert((vip, vport, proto), i);
        if let Some(&p) = dips.get(&vip) {
            return Err(verr(
                vec![F("services"), I(i), F("vip")],
                format!(
                    "VIP {vip} is a director address (DIP) of port {:?}: expected a separate address",
                    cfg.ports[p].name
                ),
            ));
        }
        sched::check(i, s)?;
        real_servers::check(cfg, dips, &vips, i, s)?;
        health::check(cfg, dips, &vips, i, s)?;
    }
    Ok(())
}
