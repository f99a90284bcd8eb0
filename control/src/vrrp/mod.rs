//! VRRP (RFC 5798 v3, RFC 3768 v2) for director failover, interoperating
//! with keepalived 2.2: the pure per-instance state machine (`machine`),
//! sync groups (`group`), the report `fulcrumctl --vrrp` prints
//! (`report`), and on the daemon side the thread that drives the machines
//! against the wire (`driver`), its sockets (`io`) and scripts
//! (`scripts`).
//!
//! Adverts reach the control thread through the exception path: the
//! dataplane checks each with `dataplane::wire::vrrp` (a named drop per
//! defect) and hands it to the port's kernel TAP interface, where a raw
//! socket reads it; what the control thread sends leaves the same way.
//! Address ownership is part of the snapshot (`compile::VrrpView`).
#![forbid(unsafe_code)]

#[cfg(feature = "daemon")]
pub mod driver;
pub mod group;
#[cfg(feature = "daemon")]
pub mod io;
pub mod machine;
pub mod report;
#[cfg(feature = "daemon")]
pub mod scripts;
