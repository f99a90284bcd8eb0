//! Workers and the scalar settings: `workers`, `burst`, `mbufs_per_socket`,
//! `rx_desc`, `tx_desc`, `conn_table_size`, `admin_socket`, `admin_group`,
//! `fullnat_lport_min`/`fullnat_lport_max`.
#![forbid(unsafe_code)]

use std::collections::HashSet;

use super::verr;
use crate::config::error::{PathSeg, ValidationError};
use crate::config::schema::Config;
use crate::config::{MAX_BURST, MAX_WORKERS};

/// 1..=64 distinct worker lcores; `burst` 1..=64; non-zero pool, ring and
/// table sizes; a non-empty `admin_socket`; an `admin_group` that exists
/// in the group database.
pub(super) fn check(cfg: &Config) -> Result<(), ValidationError> {
    use PathSeg::{Field as F, Index as I};

    // Workers.
    if cfg.workers.is_empty() {
        return Err(verr(
            vec![F("workers")],
            "no workers: expected at least one worker lcore, like workers: [1]".into(),
        ));
    }
    if cfg.workers.len() > MAX_WORKERS {
        return Err(verr(
            vec![F("workers"), I(MAX_WORKERS)],
            format!(
                "too many workers ({}): expected at most {MAX_WORKERS}",
                cfg.workers.len()
            ),
        ));
    }
    let mut lcores = HashSet::new();
    for (i, &l) in cfg.workers.iter().enumerate() {
        if !lcores.insert(l) {
            return Err(verr(
                vec![F("workers"), I(i)],
                format!(
                    "duplicate worker lcore {l}: expected each lcore once (one worker per lcore)"
                ),
            ));
        }
    }

    // FullNAT's local port range.
    if cfg.fullnat_lport_min == 0 {
        return Err(verr(
            vec![F("fullnat_lport_min")],
            "fullnat_lport_min 0: expected a port 1..=65535".into(),
        ));
    }
    if cfg.fullnat_lport_max < cfg.fullnat_lport_min {
        return Err(verr(
            vec![F("fullnat_lport_max")],
            format!(
                "fullnat_lport_max {} is below fullnat_lport_min {}: expected max >= min",
                cfg.fullnat_lport_max, cfg.fullnat_lport_min
            ),
        ));
    }

    // Scalars.
    if !(1..=MAX_BURST).contains(&cfg.burst) {
        return Err(verr(
            vec![F("burst")],
            format!("invalid burst {}: expected 1..=64 packets", cfg.burst),
        ));
    }
    for (name, zero) in [
        ("mbufs_per_socket", cfg.mbufs_per_socket == 0),
        ("rx_desc", cfg.rx_desc == 0),
        ("tx_desc", cfg.tx_desc == 0),
        ("conn_table_size", cfg.conn_table_size == 0),
    ] {
        if zero {
            return Err(verr(
                vec![F(name)],
                format!("invalid {name} 0: expected at least 1"),
            ));
        }
    }
    if cfg.admin_socket.as_os_str().is_empty() {
        return Err(verr(
            vec![F("admin_socket")],
            "empty admin_socket: expected a path like \"/run/fulcrum/fulcrum.sock\"".into(),
        ));
    }
    if let Some(name) = &cfg.admin_group {
        match nix::unistd::Group::from_name(name) {
            Ok(Some(_)) => {}
            Ok(None) => {
                return Err(verr(
                    vec![F("admin_group")],
                    format!("no such group {name:?}: expected an existing group name (getent group), or no admin_group"),
                ))
            }
            Err(e) => {
                return Err(verr(
                    vec![F("admin_group")],
                    format!("cannot look up group {name:?}: {e}"),
                ))
            }
        }
    }
    Ok(())
}
