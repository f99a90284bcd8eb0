//! A service's scheduler settings: `sched_flags`, `table_size`,
//! `hash_seed`, and for `mh` the Maglev bound M ≥ 100·N.
#![forbid(unsafe_code)]

use sched::{SchedFlag, SchedKind};

use super::verr;
use crate::config::error::{PathSeg, ValidationError};
use crate::config::schema::ServiceConfig;

/// Smallest `mh` table size per real server (Maglev §3.4: M ≥ 100·N keeps
/// the shares within about 1 %).
pub const MH_SLOTS_PER_REAL: u64 = 100;

/// A valid `mh` table size to suggest: the smallest prime ≥ both `m` and
/// `need`, or the largest prime allowed when that one is too big.
fn mh_size_hint(m: u64, need: u64) -> u64 {
    let max = sched::MH_TABLE_LEN_MAX as u64;
    let up = (m.max(need).max(2)..=max).find(|&p| sched::is_prime(p));
    up.or_else(|| (2..=max).rev().find(|&p| sched::is_prime(p)))
        .unwrap_or(2)
}

/// The scheduler settings of service `i`: `sched_flags`, `table_size`,
/// `hash_seed`, and, for `mh`, M ≥ 100·N and at most 65535 real servers
/// (slots are u16). Rules and messages are listed in docs/config.md.
pub(super) fn check(i: usize, s: &ServiceConfig) -> Result<(), ValidationError> {
    use PathSeg::{Field as F, Index as I};
    let kind = s.scheduler.0;
    let sname = kind.name();
    let accepted = || {
        let n = kind.flags();
        if n.is_empty() {
            format!(
                "scheduler \"{sname}\" takes no flags (only sh takes sh-port, sh-fallback and mh takes mh-port, mh-fallback)"
            )
        } else {
            format!(
                "scheduler \"{sname}\" accepts {}, {}, flag-1 (= {0}), flag-2 (= {1})",
                n[0], n[1]
            )
        }
    };
    let mut set: Vec<(SchedFlag, usize)> = Vec::new();
    for (j, name) in s.sched_flags.iter().enumerate() {
        let path = || vec![F("services"), I(i), F("sched_flags"), I(j)];
        let generic = matches!(name.as_str(), "flag-1" | "flag-2");
        let Some(c) = kind.canonical_flag(name) else {
            let what = match name.parse::<SchedFlag>() {
                Err(unknown) if !generic => unknown.to_string(),
                _ => format!("scheduler flag {name:?} does not apply to scheduler \"{sname}\""),
            };
            return Err(verr(path(), format!("{what}: {}", accepted())));
        };
        if let Some(&(_, first)) = set.iter().find(|(n, _)| *n == c) {
            let alias = if c.to_string() == *name {
                String::new()
            } else {
                format!(" ({name} = {c})")
            };
            return Err(verr(
                path(),
                format!(
                    "duplicate scheduler flag \"{c}\"{alias}: already set by sched_flags[{first}]; expected each flag once"
                ),
            ));
        }
        set.push((c, j));
    }

    let n_reals = s.real_servers.len() as u64;
    match (kind, s.table_size) {
        (SchedKind::Dh | SchedKind::Sh, Some(n)) => {
            let n = n as usize;
            if n < 2 || !n.is_power_of_two() || n > sched::POW2_TABLE_LEN_MAX {
                return Err(verr(
                    vec![F("services"), I(i), F("table_size")],
                    format!(
                        "invalid table_size {n} for scheduler \"{sname}\": expected a power of two between 2 and {} (hash buckets)",
                        sched::POW2_TABLE_LEN_MAX
                    ),
                ));
            }
        }
        (SchedKind::Mh, size) => {
            let m = size.map_or(sched::MH_TABLE_LEN_DEFAULT as u64, u64::from);
            let need = MH_SLOTS_PER_REAL * n_reals;
            let max = sched::MH_TABLE_LEN_MAX as u64;
            if size.is_some() && (m > max || !sched::is_prime(m)) {
                return Err(verr(
                    vec![F("services"), I(i), F("table_size")],
                    format!(
                        "invalid table_size {m} for scheduler \"mh\": expected a prime between 2 and {max} (Maglev table size), like {}",
                        mh_size_hint(m, need)
                    ),
                ));
            }
            if n_reals > u64::from(sched::mh::NO_SERVER) {
                return Err(verr(
                    vec![
                        F("services"),
                        I(i),
                        F("real_servers"),
                        I(usize::from(sched::mh::NO_SERVER)),
                    ],
                    format!(
                        "too many real servers ({n_reals}) for scheduler \"mh\": expected at most {}",
                        sched::mh::NO_SERVER
                    ),
                ));
            }
            if m < need {
                let hint = format!(
                    "{} real servers need table_size ≥ {MH_SLOTS_PER_REAL} × {n_reals} = {need} (Maglev: M ≥ 100·N keeps shares within 1 %), like {}",
                    n_reals,
                    mh_size_hint(need, need)
                );
                return Err(match size {
                    Some(_) => verr(
                        vec![F("services"), I(i), F("table_size")],
                        format!("table_size {m} is too small for scheduler \"mh\": {hint}"),
                    ),
                    // Point at the first real server the default cannot
                    // hold, so the operator sees why a size is needed.
                    None => verr(
                        vec![
                            F("services"),
                            I(i),
                            F("real_servers"),
                            I((m / MH_SLOTS_PER_REAL) as usize),
                        ],
                        format!("the default mh table_size {m} is too small: {hint}"),
                    ),
                });
            }
        }
        (_, Some(_)) => {
            return Err(verr(
                vec![F("services"), I(i), F("table_size")],
                format!(
                    "table_size does not apply to scheduler \"{sname}\": expected it only with dh or sh (hash buckets) or mh (Maglev table size)"
                ),
            ));
        }
        (_, None) => {}
    }
    if s.hash_seed.is_some() && kind != SchedKind::Mh {
        return Err(verr(
            vec![F("services"), I(i), F("hash_seed")],
            format!(
                "hash_seed does not apply to scheduler \"{sname}\": expected it only with mh (Maglev)"
            ),
        ));
    }
    Ok(())
}
