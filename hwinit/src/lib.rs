//! hwinit: the one crate of fulcrum that calls C.
pub mod mem;
pub mod port;
pub use port::{PacketBuf, PortQueue};
