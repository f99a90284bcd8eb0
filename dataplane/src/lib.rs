//! dataplane: fulcrum's packet path.
//!
//! Layer: everything between "a frame arrived" and "a frame leaves", with no
//! config parsing, no locks and no allocation per packet. `wire` holds the
//! zero-copy header views, `conn` the per-worker connection table, `persist`
//! the persistent templates, `xmit` one file per forwarding method, `pipeline`
//! the per-packet stages (one file each), and `worker` the run-to-completion loop over any
//! [`hwinit::PortQueue`].

pub mod conn;
pub mod frag;
pub mod frame;
pub mod lport;
pub mod neigh;
pub mod owner;
pub mod persist;
pub mod pipeline;
pub mod snapshot;
pub mod stats;
pub mod wire;
pub mod worker;
pub mod xmit;

pub use frame::Frame;
pub use pipeline::{Core, Verdict};
pub use snapshot::Snapshot;
