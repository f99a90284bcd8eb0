//! The configuration's value types: addresses, prefixes, netmasks, MACs,
//! names and bounded numbers, each checked inside deserialization.
//!
//! Layer: control, first stage. Guarantees: a value that deserializes is
//! valid on its own (a unicast host address, a prefix with zero host bits,
//! a contiguous netmask, ...). A refusal is raised inside deserialization,
//! marked with `VALUE_MARK`, so that `ron` reports where the value is and
//! [`super::error`] moves the position back to the value's start. Refuses
//! IPv6 and host names (fulcrum never resolves names, like `ipvsadm -n`).
#![forbid(unsafe_code)]

use std::fmt;
use std::net::{Ipv4Addr, SocketAddrV4};

use dataplane::snapshot::{ChecksumCheck, ClientAddress, Method, Proto, TunType, UnknownName};
use sched::SchedKind;
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

use super::{MAX_TIMEOUT_S, MAX_WEIGHT};

/// Marks a message as a value error raised by one of our newtypes, so the
/// error position is moved from the end of the value to its start.
pub(crate) const VALUE_MARK: char = '\u{1}';

/// Deserializes a string and converts it with `parse`, turning a refusal into
/// a positioned value error.
fn de_str<'de, D, T>(
    d: D,
    expecting: &'static str,
    parse: fn(&str) -> Result<T, String>,
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
{
    struct V<T> {
        expecting: &'static str,
        parse: fn(&str) -> Result<T, String>,
    }
    impl<'de, T> Visitor<'de> for V<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.expecting)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<T, E> {
            (self.parse)(v).map_err(|m| E::custom(format_args!("{VALUE_MARK}{m}")))
        }
    }
    d.deserialize_str(V { expecting, parse })
}

/// Deserializes an unsigned integer and checks it with `check`.
fn de_uint<'de, D, T>(
    d: D,
    expecting: &'static str,
    check: fn(u64) -> Result<T, String>,
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
{
    struct V<T> {
        expecting: &'static str,
        check: fn(u64) -> Result<T, String>,
    }
    impl<'de, T> Visitor<'de> for V<T> {
        type Value = T;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.expecting)
        }
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<T, E> {
            (self.check)(v).map_err(|m| E::custom(format_args!("{VALUE_MARK}{m}")))
        }
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<T, E> {
            match u64::try_from(v) {
                Ok(u) => self.visit_u64(u),
                Err(_) => Err(E::custom(format_args!(
                    "{VALUE_MARK}invalid value {v}: expected {}",
                    self.expecting
                ))),
            }
        }
    }
    // `deserialize_any` (not `_u64`) so that a string or float is reported
    // with what was expected instead of ron's bare "expected integer".
    d.deserialize_any(V { expecting, check })
}

/// Strict dotted-quad parser (no leading zeros, no short forms), so that a
/// typo is an error rather than a surprising address.
pub(super) fn parse_ipv4(s: &str) -> Option<Ipv4Addr> {
    s.parse::<Ipv4Addr>().ok()
}

fn parse_prefix_len(s: &str) -> Option<u8> {
    if s.is_empty() || s.len() > 2 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse::<u8>().ok().filter(|&l| l <= 32)
}

fn mask(len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        u32::MAX << (32 - u32::from(len))
    }
}

/// Whether `ip` may be a unicast host address on the wire: not 0.0.0.0/8,
/// loopback, multicast/reserved (224.0.0.0/3) nor limited broadcast.
fn is_unicast_host(ip: Ipv4Addr) -> bool {
    let o = ip.octets();
    !(o[0] == 0 || o[0] == 127 || o[0] >= 224)
}

/// A director interface address with its prefix length, as `ip addr add`
/// takes it: `"10.0.0.1/24"`. The address must be a unicast host address and,
/// for prefixes up to /30, neither the subnet's network nor its broadcast
/// address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Cidr {
    /// The address itself.
    pub addr: Ipv4Addr,
    /// Prefix length in bits, 0..=32.
    pub len: u8,
}

impl Cidr {
    /// The connected subnet: the address with host bits cleared.
    pub fn network(self) -> Ipv4Net {
        Ipv4Net {
            addr: Ipv4Addr::from(u32::from(self.addr) & mask(self.len)),
            len: self.len,
        }
    }
    /// Whether `ip` lies on this address's subnet.
    pub fn contains(self, ip: Ipv4Addr) -> bool {
        self.network().contains(ip)
    }

    fn parse(s: &str) -> Result<Cidr, String> {
        let bad = || {
            format!("invalid CIDR {s:?}: expected IPv4 address/prefix length like \"10.0.0.1/24\"")
        };
        let (a, l) = s.split_once('/').ok_or_else(bad)?;
        let addr = parse_ipv4(a).ok_or_else(bad)?;
        let len = parse_prefix_len(l).ok_or_else(bad)?;
        if !is_unicast_host(addr) {
            return Err(format!(
                "invalid CIDR {s:?}: {addr} is not a unicast host address"
            ));
        }
        if len <= 30 {
            let host = u32::from(addr) & !mask(len);
            if host == 0 || host == !mask(len) {
                return Err(format!(
                    "invalid CIDR {s:?}: {addr} is the subnet's network or broadcast address, expected a host address"
                ));
            }
        }
        Ok(Cidr { addr, len })
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl<'de> Deserialize<'de> for Cidr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        de_str(
            d,
            "an IPv4 address with prefix length like \"10.0.0.1/24\"",
            Cidr::parse,
        )
    }
}

/// A network prefix as `ip route` takes it: `"10.2.0.0/16"`, host bits zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Ipv4Net {
    /// Network address (host bits zero).
    pub addr: Ipv4Addr,
    /// Prefix length in bits, 0..=32.
    pub len: u8,
}

impl Ipv4Net {
    /// Whether `ip` lies inside the prefix.
    pub fn contains(self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & mask(self.len) == u32::from(self.addr)
    }

    fn parse(s: &str) -> Result<Ipv4Net, String> {
        let bad =
            || format!("invalid prefix {s:?}: expected network/prefix length like \"10.2.0.0/16\"");
        let (a, l) = s.split_once('/').ok_or_else(bad)?;
        let addr = parse_ipv4(a).ok_or_else(bad)?;
        let len = parse_prefix_len(l).ok_or_else(bad)?;
        let net = Ipv4Addr::from(u32::from(addr) & mask(len));
        if net != addr {
            return Err(format!(
                "invalid prefix {s:?}: host bits set, expected \"{net}/{len}\""
            ));
        }
        Ok(Ipv4Net { addr, len })
    }
}

impl fmt::Display for Ipv4Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.len)
    }
}

impl<'de> Deserialize<'de> for Ipv4Net {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        de_str(d, "an IPv4 prefix like \"10.2.0.0/16\"", Ipv4Net::parse)
    }
}

/// A unicast IPv4 host address written as a string: `"10.0.0.254"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Ipv4Str(pub Ipv4Addr);

impl Ipv4Str {
    fn parse(s: &str) -> Result<Ipv4Str, String> {
        let ip = parse_ipv4(s).ok_or_else(|| {
            format!("invalid IPv4 address {s:?}: expected a dotted quad like \"10.0.0.254\"")
        })?;
        if !is_unicast_host(ip) {
            return Err(format!(
                "invalid IPv4 address {s:?}: not a unicast host address"
            ));
        }
        Ok(Ipv4Str(ip))
    }
}

impl<'de> Deserialize<'de> for Ipv4Str {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        de_str(d, "an IPv4 address like \"10.0.0.254\"", Ipv4Str::parse)
    }
}

/// A contiguous IPv4 netmask written as a dotted quad: `"255.255.255.0"`
/// (ones from the top, then zeros; `"0.0.0.0"` and `"255.255.255.255"`
/// included).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Netmask(pub Ipv4Addr);

impl Netmask {
    /// The mask as a host-order `u32` (`255.255.255.0` is `0xffff_ff00`).
    pub fn bits(self) -> u32 {
        u32::from(self.0)
    }
    fn parse(s: &str) -> Result<Netmask, String> {
        let ip = parse_ipv4(s).ok_or_else(|| {
            format!("invalid netmask {s:?}: expected a dotted quad like \"255.255.255.0\"")
        })?;
        let m = u32::from(ip);
        // Contiguous: the inverted mask is 2^k - 1.
        if (!m).wrapping_add(1) & !m != 0 {
            return Err(format!(
                "invalid netmask {s:?}: not contiguous, expected ones then zeros like \"255.255.255.0\""
            ));
        }
        Ok(Netmask(ip))
    }
}

impl<'de> Deserialize<'de> for Netmask {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        de_str(d, "a netmask like \"255.255.255.0\"", Netmask::parse)
    }
}

/// A unicast IPv4 address and port written as a string: `"10.0.0.100:80"`.
/// Port 0..=65535 (0 has the IPVS meaning "all ports" for a VIP).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SocketAddrV4Str(pub SocketAddrV4);

impl SocketAddrV4Str {
    /// The IPv4 address.
    pub fn ip(self) -> Ipv4Addr {
        *self.0.ip()
    }
    /// The port, host order.
    pub fn port(self) -> u16 {
        self.0.port()
    }

    fn parse(s: &str) -> Result<SocketAddrV4Str, String> {
        let bad = || format!("invalid address {s:?}: expected IPv4:port like \"10.0.0.100:80\"");
        let (a, p) = s.rsplit_once(':').ok_or_else(bad)?;
        let ip = parse_ipv4(a).ok_or_else(bad)?;
        if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let port: u32 = p.parse().map_err(|_| bad())?;
        let port = u16::try_from(port)
            .map_err(|_| format!("invalid address {s:?}: port {port} out of range 0..=65535"))?;
        if !is_unicast_host(ip) {
            return Err(format!(
                "invalid address {s:?}: {ip} is not a unicast host address"
            ));
        }
        Ok(SocketAddrV4Str(SocketAddrV4::new(ip, port)))
    }
}

impl<'de> Deserialize<'de> for SocketAddrV4Str {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        de_str(
            d,
            "an IPv4:port string like \"10.0.0.100:80\"",
            SocketAddrV4Str::parse,
        )
    }
}

/// A unicast Ethernet address, `"02:00:00:00:01:01"`: six two-digit hex
/// octets separated by `:` (either case). Group (multicast/broadcast) and
/// all-zero addresses are refused because neither a port nor a neighbour can
/// own them. Stored in wire order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MacAddr(pub [u8; 6]);

impl MacAddr {
    fn parse(s: &str) -> Result<MacAddr, String> {
        let bad = || {
            format!("invalid MAC address {s:?}: expected six hex octets like \"02:00:00:00:01:01\"")
        };
        let mut out = [0u8; 6];
        let mut n = 0;
        for part in s.split(':') {
            if n == 6 || part.len() != 2 || !part.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(bad());
            }
            out[n] = u8::from_str_radix(part, 16).map_err(|_| bad())?;
            n += 1;
        }
        if n != 6 {
            return Err(bad());
        }
        if out[0] & 1 != 0 {
            return Err(format!(
                "invalid MAC address {s:?}: multicast/broadcast, expected a unicast MAC"
            ));
        }
        if out == [0; 6] {
            return Err(format!(
                "invalid MAC address {s:?}: all zero, expected a unicast MAC"
            ));
        }
        Ok(MacAddr(out))
    }
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            m[0], m[1], m[2], m[3], m[4], m[5]
        )
    }
}

impl<'de> Deserialize<'de> for MacAddr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        de_str(
            d,
            "a MAC address like \"02:00:00:00:01:01\"",
            MacAddr::parse,
        )
    }
}

/// A scheduler name as ipvsadm `-s` spells it, limited to the ones fulcrum
/// implements ([`SchedKind::NAMES`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SchedulerName(pub SchedKind);

impl<'de> Deserialize<'de> for SchedulerName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        de_str(d, "a scheduler name like \"rr\"", |s| {
            SchedKind::from_name(s).map(SchedulerName).ok_or_else(|| {
                format!(
                    "invalid scheduler {s:?}: expected one of {}",
                    SchedKind::NAMES.join(", ")
                )
            })
        })
    }
}

/// A virtual service protocol as the config spells it: `"tcp"` (ipvsadm
/// `-t`) or `"udp"` (`-u`); the words are [`Proto`]'s `FromStr`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ProtoName(pub Proto);

impl<'de> Deserialize<'de> for ProtoName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        de_str(d, "\"tcp\" or \"udp\"", |s| {
            s.parse()
                .map(ProtoName)
                .map_err(|e: UnknownName| e.to_string())
        })
    }
}

/// A forwarding method as the config spells it: `"nat"` (alias `"masq"`,
/// ipvsadm `-m`), `"dr"` (alias `"route"`, ipvsadm `-g`), `"tun"` (alias
/// `"tunnel"`, ipvsadm `-i`) or `"fullnat"` (DPVS, ipvsadm `--fullnat`);
/// the words are [`Method`]'s `FromStr`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ForwardingName(pub Method);

impl<'de> Deserialize<'de> for ForwardingName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        de_str(d, "a forwarding method like \"nat\"", |s| {
            s.parse()
                .map(ForwardingName)
                .map_err(|e: UnknownName| e.to_string())
        })
    }
}

/// A VS/TUN encapsulation as the config spells it: `"ipip"` (RFC 2003) or
/// `"gue"` (IPVS `--tun-type`); the words are [`TunType`]'s `FromStr`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TunTypeName(pub TunType);

impl<'de> Deserialize<'de> for TunTypeName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        de_str(d, "\"ipip\" or \"gue\"", |s| {
            s.parse()
                .map(TunTypeName)
                .map_err(|e: UnknownName| e.to_string())
        })
    }
}

/// How a FullNAT service passes the client address to its real servers, as
/// the config spells it: `"none"` (default), `"toa"` (the TOA TCP option,
/// DPVS / Alibaba LVS) or `"proxy_v2"` (PROXY protocol v2); the words are
/// [`ClientAddress`]'s `FromStr`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ClientAddressName(pub ClientAddress);

impl<'de> Deserialize<'de> for ClientAddressName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        de_str(d, "\"none\", \"toa\" or \"proxy_v2\"", |s| {
            s.parse()
                .map(ClientAddressName)
                .map_err(|e: UnknownName| e.to_string())
        })
    }
}

/// Which TCP/UDP checksums a port verifies, as the config spells it:
/// `"new_flows"` (default: packets that would create a connection, and
/// packets to the director) or `"all"` (every packet); the words are
/// [`ChecksumCheck`]'s `FromStr`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ChecksumCheckName(pub ChecksumCheck);

impl<'de> Deserialize<'de> for ChecksumCheckName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        de_str(d, "\"new_flows\" or \"all\"", |s| {
            s.parse()
                .map(ChecksumCheckName)
                .map_err(|e: UnknownName| e.to_string())
        })
    }
}

/// An IPVS weight, 0..=65535; default 1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Weight(pub u32);

impl Default for Weight {
    fn default() -> Self {
        Weight(1)
    }
}

impl<'de> Deserialize<'de> for Weight {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        de_uint(d, "a weight 0..=65535", |v| {
            if v <= u64::from(MAX_WEIGHT) {
                Ok(Weight(v as u32))
            } else {
                Err(format!("invalid weight {v}: expected 0..=65535"))
            }
        })
    }
}

/// A connection timeout in seconds, 1..=2592000.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TimeoutSecs(pub u32);

impl TimeoutSecs {
    /// The timeout in milliseconds (fits `u32` thanks to the range check).
    pub fn as_ms(self) -> u32 {
        self.0.saturating_mul(1000)
    }
}

impl<'de> Deserialize<'de> for TimeoutSecs {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        de_uint(d, "a timeout in seconds 1..=2592000", |v| {
            if (1..=u64::from(MAX_TIMEOUT_S)).contains(&v) {
                Ok(TimeoutSecs(v as u32))
            } else {
                Err(format!(
                    "invalid timeout {v} s: expected 1..=2592000 seconds"
                ))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_parse_cidr() {
        assert_eq!(
            Cidr::parse("10.0.0.1/24"),
            Ok(Cidr {
                addr: Ipv4Addr::new(10, 0, 0, 1),
                len: 24
            })
        );
        assert_eq!(
            Cidr::parse("10.0.0.1/24").map(|c| c.network().to_string()),
            Ok("10.0.0.0/24".to_string())
        );
        // /31 and /32 have no network/broadcast addresses (RFC 3021).
        assert!(Cidr::parse("10.0.0.0/31").is_ok());
        assert!(Cidr::parse("10.0.0.7/32").is_ok());
        for bad in [
            "10.0.0.1",
            "10.0.0.1/",
            "10.0.0.1/33",
            "10.0.0.1/+8",
            "10.0.0/24",
            "010.0.0.1/24",
            "10.0.0.255/24",
            "224.0.0.1/4",
            "0.0.0.1/8",
        ] {
            assert!(Cidr::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn test_parse_ipv4_net() {
        assert_eq!(
            Ipv4Net::parse("0.0.0.0/0"),
            Ok(Ipv4Net {
                addr: Ipv4Addr::UNSPECIFIED,
                len: 0
            })
        );
        let n = Ipv4Net::parse("10.2.0.0/16").expect("valid");
        assert!(n.contains(Ipv4Addr::new(10, 2, 255, 1)));
        assert!(!n.contains(Ipv4Addr::new(10, 3, 0, 1)));
        assert_eq!(
            Ipv4Net::parse("10.2.0.1/16"),
            Err("invalid prefix \"10.2.0.1/16\": host bits set, expected \"10.2.0.0/16\"".into())
        );
    }

    #[test]
    fn test_parse_socket_addr() {
        let a = SocketAddrV4Str::parse("10.0.0.100:0").expect("port 0 is allowed");
        assert_eq!((a.ip(), a.port()), (Ipv4Addr::new(10, 0, 0, 100), 0));
        assert_eq!(
            SocketAddrV4Str::parse("10.0.0.100:65535").map(|a| a.port()),
            Ok(65535)
        );
        for bad in [
            "10.0.0.100",
            "10.0.0.100:",
            "10.0.0.100:-1",
            "10.0.0.100:123456",
            "10.0.0.100:8o",
            ":80",
            "0.0.0.0:80",
            "255.255.255.255:80",
        ] {
            assert!(SocketAddrV4Str::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(
            SocketAddrV4Str::parse("10.0.0.1:70000"),
            Err("invalid address \"10.0.0.1:70000\": port 70000 out of range 0..=65535".into())
        );
    }

    #[test]
    fn test_parse_mac() {
        assert_eq!(
            MacAddr::parse("02:00:0A:01:00:0b"),
            Ok(MacAddr([2, 0, 0x0a, 1, 0, 0x0b]))
        );
        assert_eq!(
            MacAddr([2, 0, 0x0a, 1, 0, 0x0b]).to_string(),
            "02:00:0a:01:00:0b"
        );
        for bad in [
            "02:00:00:00:01",
            "02:00:00:00:01:01:01",
            "02-00-00-00-01-01",
            "2:00:00:00:01:01",
            "02:00:00:00:01:0g",
            "ff:ff:ff:ff:ff:ff",
            "00:00:00:00:00:00",
            "01:00:5e:00:00:01",
        ] {
            assert!(MacAddr::parse(bad).is_err(), "{bad}");
        }
    }
}
