//! Static routes: each destination once; each gateway on a connected
//! subnet and not one of the director's own addresses.
#![forbid(unsafe_code)]

use std::collections::HashSet;

use super::{connected_subnets, verr, Dips};
use crate::config::error::{PathSeg, ValidationError};
use crate::config::schema::Config;

/// Checks `routes` in config order against the DIPs `dips`.
pub(super) fn check(cfg: &Config, dips: &Dips) -> Result<(), ValidationError> {
    use PathSeg::{Field as F, Index as I};
    let mut dsts = HashSet::new();
    for (i, r) in cfg.routes.iter().enumerate() {
        if !dsts.insert(r.dst) {
            return Err(verr(
                vec![F("routes"), I(i), F("dst")],
                format!(
                    "duplicate route to {}: expected each destination once",
                    r.dst
                ),
            ));
        }
        let via = r.via.0;
        if dips.contains_key(&via) {
            return Err(verr(
                vec![F("routes"), I(i), F("via")],
                format!("gateway {via} is a director address: expected a neighbouring router"),
            ));
        }
        if cfg.connected_port(via).is_none() {
            return Err(verr(
                vec![F("routes"), I(i), F("via")],
                format!(
                    "gateway {via} is not on a connected subnet: expected an address inside {}",
                    connected_subnets(cfg)
                ),
            ));
        }
    }

    Ok(())
}
