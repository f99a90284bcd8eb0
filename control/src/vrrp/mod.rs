//! VRRP failover (keepalived's `vrrp_instance` and `vrrp_sync_group`),
//! the pure part.
//!
//! Layer: control. [`machine`] is one instance's RFC 5798 / RFC 3768 state
//! machine on a caller-supplied clock; [`group`] propagates state changes
//! through sync groups. Neither does I/O: the driver (sockets, timers,
//! snapshot publication, notify scripts) feeds them adverts parsed with
//! `dataplane::wire::vrrp` and performs the actions they return.
pub mod group;
pub mod machine;
