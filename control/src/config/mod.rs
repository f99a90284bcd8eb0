//! The director's configuration file: RON text → validated [`Config`].
//!
//! Layer: control, first stage (`RON → Config → validate() → compile()`).
//!
//! Guarantees: [`load`] and [`parse`] return either a whole, validated
//! [`Config`] or one [`ConfigError`] whose `Display` is a single line
//! `file:line:col: message` (1-based line, 1-based column counted in
//! characters). Nothing half-applies: there is no partially filled config on
//! error.
//!
//! How positions are found:
//! - Syntax and type errors carry the position `ron` reports.
//! - Value errors (bad IPv4 address, netmask, CIDR, MAC, port number,
//!   scheduler, protocol, forwarding method, weight, timeout) are raised *inside*
//!   deserialization by the small newtypes below ([`Cidr`], [`MacAddr`],
//!   [`SchedulerName`], ...), so `ron` knows where the value is; the position is
//!   then moved back from the end of the offending value to its start.
//! - Cross-field errors found by [`validate()`] name a [`PathSeg`] path (such as
//!   `services[1].real_servers[0].addr`); [`locate()`] finds that value's text in
//!   the source with a small comment-aware RON tokenizer.
//!
//! Module map:
//! - [`schema`]: the serde structs a file deserializes into, with every
//!   default and unit documented ([`Config`] and its sections);
//! - [`types`]: the value newtypes checked inside deserialization
//!   ([`Cidr`], [`MacAddr`], [`SocketAddrV4Str`], ...);
//! - [`error`]: [`ConfigError`] (`file:line:col: message`),
//!   [`ValidationError`] and the conversion of `ron`'s errors;
//! - [`validate()`](mod@validate): the cross-field rules, one file per section;
//! - [`locate()`](mod@locate): byte offset → line/column, and a path → the
//!   value's position in the source.
//!
//! Everything is re-exported here, so `control::config::X` names every
//! public item whichever file holds it.
//!
//! Refuses: unknown fields (`deny_unknown_fields` everywhere), IPv6, host names
//! (fulcrum never resolves names, like `ipvsadm -n`), and anything listed
//! under [`validate()`]. `Option` fields may be written bare (`mac: "02:..."`)
//! or as `Some(...)`: the parser enables RON's `implicit_some` extension.
#![forbid(unsafe_code)]

pub mod error;
pub mod health;
pub mod locate;
pub mod schema;
pub mod types;
pub mod validate;
pub mod vrrp;

use std::path::Path;

pub use error::{display_path, ConfigError, PathSeg, ValidationError};
pub use health::{
    CheckerConfig, CheckerParams, DnsTypeName, HexBytes, Md5Digest, Seconds, StatusCodes, Timing,
    UrlConfig,
};
pub use locate::{line_col, locate};
pub use schema::{
    Config, ExceptionPathConfig, IcmpRateLimitConfig, MetricsConfig, NeighbourConfig, PortConfig,
    RealServerConfig, RouteConfig, ServiceConfig, TimeoutsConfig, MAX_IFACE_NAME,
};
pub(crate) use types::VALUE_MARK;
pub use types::{
    Cidr, ForwardingName, Ipv4Net, Ipv4Str, MacAddr, Netmask, ProtoName, SchedulerName,
    SocketAddrV4Str, TimeoutSecs, TunTypeName, Weight,
};
pub use validate::{validate, MAX_EXCEPTION_BURST, MAX_EXCEPTION_RATE_PPS, MH_SLOTS_PER_REAL};
pub use vrrp::{
    AuthConfig, InitialState, TrackScriptRef, TrackServiceRef, VrrpInstanceConfig,
    VrrpScriptConfig, VrrpSyncGroupConfig,
};

/// Most workers (and, separately, most ports) one director may have: port and
/// worker sets are 64-bit masks in the snapshot (`LocalAddr::arp_ports`).
pub const MAX_WORKERS: usize = 64;
/// Most dataplane ports; see [`MAX_WORKERS`].
pub const MAX_PORTS: usize = 64;
/// Largest `burst` (packets per `rte_eth_rx_burst`), matching the workers'
/// fixed-size burst arrays.
pub const MAX_BURST: u16 = 64;
/// Largest IPVS weight (`ipvsadm -w` accepts 0..=65535).
pub const MAX_WEIGHT: u32 = 65_535;
/// Longest connection timeout in seconds (30 days), so that the value in
/// milliseconds still fits the snapshot's `u32`.
pub const MAX_TIMEOUT_S: u32 = 2_592_000;
/// Default admin socket path.
pub const DEFAULT_ADMIN_SOCKET: &str = "/run/fulcrum/fulcrum.sock";

/// Reads, parses and validates the config file at `path`.
///
/// # Errors
/// [`ConfigError::Io`] if the file cannot be read (or is not UTF-8),
/// otherwise whatever [`parse`] returns; error positions name `path` as
/// given.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let file = path.display().to_string();
    let src = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
        file: file.clone(),
        source,
    })?;
    parse(&src, &file)
}

/// Parses and validates config text; `file_name` only labels error positions.
///
/// # Errors
/// [`ConfigError::Parse`] for RON syntax, unknown or missing fields, wrong
/// types and bad values; [`ConfigError::Invalid`] for the cross-field rules
/// of [`validate()`]. Either way the message is `file:line:col: what`.
pub fn parse(src: &str, file_name: &str) -> Result<Config, ConfigError> {
    let opts = ron::Options::default().with_default_extension(
        ron::extensions::Extensions::IMPLICIT_SOME
            | ron::extensions::Extensions::UNWRAP_VARIANT_NEWTYPES,
    );
    let cfg: Config = opts
        .from_str(src)
        .map_err(|e| error::ron_error(src, file_name, &e))?;
    validate(&cfg).map_err(|e| {
        let offset = locate::locate_best(src, &e.path);
        let (line, col) = line_col(src, offset);
        ConfigError::Invalid {
            file: file_name.to_string(),
            line,
            col,
            message: e.message,
            path: display_path(&e.path),
        }
    })?;
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_parse_struct_name_error() {
        let src = r#"(eal_args: [], workers: [1], ports: [Port(name: "a", device: "d", addrs: ["10.0.0.1/24"])])"#;
        let e = parse(src, "t.ron").expect_err("named struct");
        assert_eq!(
            e.to_string(),
            "t.ron:1:38: unexpected struct name `Port`: expected `(` without a name"
        );
    }
}
