//! control: fulcrum's control plane.
//!
//! Layer: control. Turns the RON configuration into a validated
//! [`config::Config`] ([`config`]), compiles it into the immutable
//! `dataplane::snapshot::Snapshot` the workers read ([`compile`]), serves
//! status to `fulcrumctl` over a local Unix socket ([`admin`]) and applies
//! its runtime edits ([`edit`]). Nothing here runs on the packet path.
pub mod admin;
pub mod compile;
pub mod config;
pub mod daemon;
pub mod edit;
