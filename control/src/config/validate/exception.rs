//! The exception path: `exception_path`'s ranges and each port's kernel
//! interface name (`kernel_iface`, or its `fc-<name>` default); and
//! `icmp_rate_limit`'s ranges, the other per-worker token bucket.
#![forbid(unsafe_code)]

use std::collections::HashMap;

use super::verr;
use crate::config::error::{PathSeg, ValidationError};
use crate::config::schema::{Config, MAX_IFACE_NAME};

/// Most packets per second a worker may hand the kernel.
pub const MAX_EXCEPTION_RATE_PPS: u32 = 10_000_000;
/// Deepest token bucket of the exception path, packets.
pub const MAX_EXCEPTION_BURST: u32 = 1_000_000;
/// Most ICMP errors per second a worker may send (`icmp_rate_limit`).
pub const MAX_ICMP_RATE_PPS: u32 = 1_000_000;
/// Deepest ICMP error token bucket, errors.
pub const MAX_ICMP_BURST: u32 = 100_000;

/// `rate_pps` 1..=10000000 and `burst` 1..=1000000; every port's kernel
/// interface name 1..=15 bytes of `[A-Za-z0-9_.-]` (what Linux accepts
/// without quoting trouble: no `/`, whitespace, `:` or `%`) and unique.
/// Names are checked even with the path disabled, so enabling it later
/// cannot fail on them.
pub(super) fn check(cfg: &Config) -> Result<(), ValidationError> {
    use PathSeg::{Field as F, Index as I};
    let x = &cfg.exception_path;
    for (name, v, max) in [
        ("rate_pps", x.rate_pps, MAX_EXCEPTION_RATE_PPS),
        ("burst", x.burst, MAX_EXCEPTION_BURST),
    ] {
        if !(1..=max).contains(&v) {
            return Err(verr(
                vec![F("exception_path"), F(name)],
                format!("invalid exception_path.{name} {v}: expected 1..={max} packets"),
            ));
        }
    }
    let r = &cfg.icmp_rate_limit;
    for (name, v, max) in [
        ("rate_pps", r.rate_pps, MAX_ICMP_RATE_PPS),
        ("burst", r.burst, MAX_ICMP_BURST),
    ] {
        if !(1..=max).contains(&v) {
            return Err(verr(
                vec![F("icmp_rate_limit"), F(name)],
                format!("invalid icmp_rate_limit.{name} {v}: expected 1..={max} ICMP errors"),
            ));
        }
    }
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (i, p) in cfg.ports.iter().enumerate() {
        let iface = p.kernel_iface();
        // A default name is positioned at the port's name it came from.
        let (path, how, fix) = match &p.kernel_iface {
            Some(_) => (
                vec![F("ports"), I(i), F("kernel_iface")],
                "kernel_iface",
                "",
            ),
            None => (
                vec![F("ports"), I(i), F("name")],
                "the default kernel_iface, fc-<name>",
                "; set kernel_iface on this port",
            ),
        };
        let bad = iface.is_empty()
            || iface.len() > MAX_IFACE_NAME
            || !iface
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
        if bad || iface == "." || iface == ".." {
            return Err(verr(
                path,
                format!(
                    "invalid kernel interface name {iface:?} ({how}): expected 1..={MAX_IFACE_NAME} \
                     bytes of A-Z a-z 0-9 _ . -{fix}"
                ),
            ));
        }
        if let Some(&first) = seen.get(&iface) {
            return Err(verr(
                path,
                format!(
                    "duplicate kernel interface name {iface:?} ({how}): already used by \
                     ports[{first}]: expected a distinct kernel_iface"
                ),
            ));
        }
        seen.insert(iface, i);
    }
    Ok(())
}
