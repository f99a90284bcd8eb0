//! Ports: 1..=64, each with a unique non-empty `name` and `device` and at
//! least one address; no director address (DIP) on two ports; `mtu`
//! 576..=9000.
#![forbid(unsafe_code)]

use std::collections::HashMap;

use super::{verr, Dips};
use crate::config::error::{PathSeg, ValidationError};
use crate::config::schema::Config;
use crate::config::MAX_PORTS;
use dataplane::snapshot::{MAX_MTU, MIN_MTU};

/// Checks the ports and returns every DIP with the index of its port.
pub(super) fn check(cfg: &Config) -> Result<Dips, ValidationError> {
    use PathSeg::{Field as F, Index as I};
    if cfg.ports.is_empty() {
        return Err(verr(
            vec![F("ports")],
            "no ports: expected at least one port".into(),
        ));
    }
    if cfg.ports.len() > MAX_PORTS {
        return Err(verr(
            vec![F("ports"), I(MAX_PORTS)],
            format!(
                "too many ports ({}): expected at most {MAX_PORTS}",
                cfg.ports.len()
            ),
        ));
    }
    let mut names: HashMap<&str, usize> = HashMap::new();
    let mut devices: HashMap<&str, usize> = HashMap::new();
    let mut dips: Dips = HashMap::new();
    for (i, p) in cfg.ports.iter().enumerate() {
        if p.name.is_empty() {
            return Err(verr(
                vec![F("ports"), I(i), F("name")],
                "empty port name: expected a label like \"outside\"".into(),
            ));
        }
        if let Some(&first) = names.get(p.name.as_str()) {
            return Err(verr(
                vec![F("ports"), I(i), F("name")],
                format!(
                    "duplicate port name {:?}: already used by ports[{first}]",
                    p.name
                ),
            ));
        }
        names.insert(&p.name, i);
        if p.device.is_empty() {
            return Err(verr(
                vec![F("ports"), I(i), F("device")],
                "empty device: expected a DPDK device name like \"net_af_packet0\"".into(),
            ));
        }
        if let Some(&first) = devices.get(p.device.as_str()) {
            return Err(verr(
                vec![F("ports"), I(i), F("device")],
                format!(
                    "duplicate device {:?}: already used by ports[{first}]",
                    p.device
                ),
            ));
        }
        devices.insert(&p.device, i);
        if !(MIN_MTU..=MAX_MTU).contains(&p.mtu) {
            return Err(verr(
                vec![F("ports"), I(i), F("mtu")],
                format!(
                    "invalid mtu {} on port {:?}: expected {MIN_MTU}..={MAX_MTU} bytes \
                     (the largest IPv4 datagram the port sends; RFC 791 asks every host \
                     to take 576)",
                    p.mtu, p.name
                ),
            ));
        }
        if p.addrs.is_empty() {
            return Err(verr(
                vec![F("ports"), I(i), F("addrs")],
                format!(
                    "port {:?} has no address: expected at least one DIP like \"10.0.0.1/24\"",
                    p.name
                ),
            ));
        }
        for (j, a) in p.addrs.iter().enumerate() {
            if let Some(&other) = dips.get(&a.addr) {
                return Err(verr(
                    vec![F("ports"), I(i), F("addrs"), I(j)],
                    format!(
                        "duplicate director address {}: already on port {:?}",
                        a.addr, cfg.ports[other].name
                    ),
                ));
            }
            dips.insert(a.addr, i);
        }
    }
    Ok(dips)
}
