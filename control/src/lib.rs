//! control: fulcrum's control plane.
//!
//! Layer: control. Turns the RON configuration into a validated
//! [`config::Config`] ([`config`]), compiles it into the immutable
//! `dataplane::snapshot::Snapshot` the workers read ([`compile`]), serves
//! status to `fulcrumctl` over a local Unix socket ([`admin`]) and applies
//! its runtime edits ([`edit`]), and serves Prometheus metrics and a status
//! page over HTTP ([`metrics`]). Nothing here runs on the packet path.
//!
//! The daemon itself (`daemon`: EAL, ports, workers) is behind the default
//! cargo feature `daemon`, the only part that needs DPDK; without it the
//! rest, `fulcrumctl` included, builds and tests with no DPDK installed.
pub mod admin;
pub mod commands;
pub mod compile;
pub mod config;
pub mod conns;
#[cfg(feature = "daemon")]
pub mod daemon;
pub mod edit;
pub mod health;
#[cfg(feature = "daemon")]
pub mod kernel;
pub mod metrics;
pub mod rates;
#[cfg(feature = "daemon")]
pub mod telemetry;
pub mod vrrp;
