//! A service's persistence: a `persistence_netmask` only together with a
//! `persistence_timeout` (ipvsadm `-M` needs `-p`). The values themselves
//! are checked by their types.
#![forbid(unsafe_code)]

use super::verr;
use crate::config::error::{PathSeg, ValidationError};
use crate::config::schema::ServiceConfig;

/// Checks the persistence settings of service `i` (`s`).
pub(super) fn check(i: usize, s: &ServiceConfig) -> Result<(), ValidationError> {
    use PathSeg::{Field as F, Index as I};
    if s.persistence_netmask.is_some() && s.persistence_timeout.is_none() {
        return Err(verr(
            vec![F("services"), I(i), F("persistence_netmask")],
            "persistence_netmask without persistence_timeout: expected a persistence_timeout in seconds too (ipvsadm -M needs -p)".into(),
        ));
    }
    Ok(())
}
