//! dataplane: fulcrum's packet path.
#![deny(unsafe_code)]
pub mod snapshot;
pub mod stats;
