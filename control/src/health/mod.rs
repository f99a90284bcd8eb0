//! Real-server health checking (keepalived's check daemon).
#![forbid(unsafe_code)]

pub mod pool;
