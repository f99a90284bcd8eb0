//! Permanent neighbours: each address once, on a connected subnet, and not
//! one of the director's own addresses.
#![forbid(unsafe_code)]

use std::collections::HashSet;

use super::{connected_subnets, verr, Dips};
use crate::config::error::{PathSeg, ValidationError};
use crate::config::schema::Config;

/// Checks `neighbours` in config order against the DIPs `dips`.
pub(super) fn check(cfg: &Config, dips: &Dips) -> Result<(), ValidationError> {
    use PathSeg::{Field as F, Index as I};
    let mut neigh = HashSet::new();
    for (i, n) in cfg.neighbours.iter().enumerate() {
        let ip = n.ip.0;
        if !neigh.insert(ip) {
            return Err(verr(
                vec![F("neighbours"), I(i), F("ip")],
                format!("duplicate neighbour {ip}: expected each address once"),
            ));
        }
        if dips.contains_key(&ip) {
            return Err(verr(
                vec![F("neighbours"), I(i), F("ip")],
                format!("neighbour {ip} is a director address: expected another host"),
            ));
        }
        if cfg.connected_port(ip).is_none() {
            return Err(verr(
                vec![F("neighbours"), I(i), F("ip")],
                format!(
                    "neighbour {ip} is not on a connected subnet: expected an address inside {}",
                    connected_subnets(cfg)
                ),
            ));
        }
    }

    Ok(())
}
