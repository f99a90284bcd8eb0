//! dataplane: fulcrum's packet path.
//!
//! Layer: everything between "a frame arrived" and "a frame leaves", with no
//! config parsing, no locks and no allocation per packet. `wire` holds the
//! zero-copy header views, `conn` the per-worker connection table, `persist`
//! the persistent templates, `xmit` one file per forwarding method, `process`
//! the per-packet decision, and `worker` the run-to-completion loop over any
//! [`hwinit::PortQueue`].
#![deny(unsafe_code)]

pub mod conn;
pub mod neigh;
pub mod owner;
pub mod persist;
pub mod process;
pub mod snapshot;
pub mod stats;
pub mod wire;
pub mod worker;
pub mod xmit;

pub use process::{Core, Verdict};
pub use snapshot::Snapshot;
