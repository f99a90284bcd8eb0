//! VRRP advertisements: parse and build VRRPv2 (RFC 3768) and VRRPv3
//! (RFC 5798, IPv4 only) messages.
//!
//! Layer: dataplane wire, but a slow-path codec: VRRP adverts are read and
//! sent by the control plane's VRRP driver (raw IP sockets on the exception
//! path), never by a worker. The owned [`Advert`] record is what the state
//! machine (`control::vrrp::machine`) consumes and produces.
//!
//! Guarantees: [`parse`] and [`parse_ip`] never panic on any bytes; every
//! refusal is one [`VrrpError`] variant with a stable snake_case
//! [`VrrpError::name`] (the driver's drop-counter label). [`build`] writes
//! exactly the bytes keepalived 2.2 would send for the same advert and
//! fills the checksum. Addresses are `u32` in host order (`10.0.0.1` is
//! `0x0a00_0001`). No allocation, no `unsafe`.
//!
//! Refuses: IPv6 VRRP (not implemented), any message type but
//! ADVERTISEMENT, zero addresses (fulcrum always advertises at least one
//! VIP), more than [`MAX_ADDRS`] addresses, trailing bytes after the
//! message (keepalived refuses "vrrp packet too long" too), bad checksums,
//! a zero advert interval. Policy that needs the instance's configuration
//! (VRID, version, authentication, interval match, address list) is the
//! state machine's, not the codec's.

use super::checksum;
use super::ipv4::{check_options, Ipv4Packet, OptionsCheck, MIN_HEADER_LEN};

/// IP protocol number of VRRP (IANA; RFC 3768 §5.2.4, RFC 5798 §5.1.1.3).
pub const PROTO_VRRP: u8 = 112;
/// The VRRP IPv4 multicast group 224.0.0.18, host order (RFC 3768 §5.2.2,
/// RFC 5798 §5.1.1.2).
pub const MCAST_ADDR: u32 = 0xe000_0012;
/// The Ethernet multicast MAC 224.0.0.18 maps to (01:00:5e:00:00:12,
/// RFC 1112 §6.4), wire order.
pub const MCAST_MAC: [u8; 6] = [0x01, 0, 0x5e, 0, 0, 0x12];
/// Cap on addresses per advert that [`parse`] accepts and [`build`] writes
/// (keepalived warns above 20 VIPs per instance for the same reason: the
/// advert must fit one frame comfortably).
pub const MAX_ADDRS: usize = 20;
/// The IPv4 TTL every advert is sent with and must be received with
/// (RFC 3768 §5.2.3, §7.1; RFC 5798 §5.1.1.3, §7.1).
pub const TTL: u8 = 255;
/// The IPv4 TOS byte keepalived sends adverts with: precedence 6, Internet
/// Network Control (0xc0).
pub const IP_TOS: u8 = 0xc0;
/// Length in bytes of the fixed VRRP header (both versions).
pub const VRRP_HEADER_LEN: usize = 8;
/// Length in bytes of the VRRPv2 authentication data after the addresses
/// (RFC 3768 §5.3.10).
pub const AUTH_DATA_LEN: usize = 8;
/// VRRP message type ADVERTISEMENT, the only type defined (RFC 3768
/// §5.3.2, RFC 5798 §5.2.2).
pub const TYPE_ADVERT: u8 = 1;
/// VRRPv2 Auth Type "No Authentication" (RFC 3768 §5.3.6).
pub const AUTH_NONE: u8 = 0;
/// VRRPv2 Auth Type "Simple Text Password", keepalived's `auth_type PASS`
/// (RFC 2338 §5.3.6.1; kept by keepalived for compatibility).
pub const AUTH_PASS: u8 = 1;

mod field {
    pub const VER_TYPE: usize = 0;
    pub const VRID: usize = 1;
    pub const PRIORITY: usize = 2;
    pub const COUNT: usize = 3;
    /// v2: Auth Type (1 byte); v3: rsvd (4 bits) + high 4 bits of the
    /// 12-bit Max Adver Int.
    pub const AUTH_TYPE: usize = 4;
    /// v2: Adver Int in seconds (1 byte); v3: low byte of Max Adver Int.
    pub const ADVER_INT: usize = 5;
    pub const V3_INTERVAL: core::ops::Range<usize> = 4..6;
    pub const CHECKSUM: core::ops::Range<usize> = 6..8;
    pub const ADDRS: usize = 8;
}

/// Mask of the 12-bit VRRPv3 Max Adver Int (RFC 5798 §5.2.7).
const V3_INTERVAL_MASK: u16 = 0x0fff;

/// VRRP protocol version of an advert.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    /// VRRPv2, RFC 3768 (keepalived's default, `version 2`).
    V2,
    /// VRRPv3, RFC 5798 (`version 3`), IPv4 only here.
    V3,
}

impl Version {
    /// The version nibble on the wire: 2 or 3.
    pub const fn number(self) -> u8 {
        match self {
            Version::V2 => 2,
            Version::V3 => 3,
        }
    }
}

/// One VRRP advertisement, owned (a slow-path `Repr`).
///
/// Shape: up to [`MAX_ADDRS`] IPv4 addresses, host order, the first
/// `count` of `addrs` valid; the rest are zero in what [`parse`] returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Advert {
    /// Protocol version.
    pub version: Version,
    /// Virtual Router Identifier, keepalived's `virtual_router_id`
    /// (RFC 3768 §5.3.3; 1..=255 in use, 0 is not refused by the codec).
    pub vrid: u8,
    /// Sender's priority: 255 address owner, 1..=254 backups, 0 "stop
    /// participating" (RFC 3768 §5.3.4, RFC 5798 §5.2.4).
    pub priority: u8,
    /// v3: Max Adver Int in centiseconds (12 bits, 1..=4095); v2: advert
    /// interval in whole seconds * 100 (100..=25500, multiples of 100).
    pub advert_int_cs: u16,
    /// v2 only: 0 none, 1 simple text password (PASS); v3: always 0.
    pub auth_type: u8,
    /// v2 PASS: the 8 password bytes, NUL padded; zero otherwise.
    pub auth_data: [u8; 8],
    /// Number of addresses (Count IPvX Addr), 1..=[`MAX_ADDRS`].
    pub count: u8,
    /// Host order, first `count` valid.
    pub addrs: [u32; MAX_ADDRS],
}

impl Advert {
    /// The first `count` addresses, host order; clamped to [`MAX_ADDRS`],
    /// so it never panics whatever `count` holds.
    pub fn addrs(&self) -> &[u32] {
        &self.addrs[..usize::from(self.count).min(MAX_ADDRS)]
    }
}

/// Why an advert was refused by [`parse`], [`parse_ip`] or [`build`]. Each
/// variant is one named drop counter ([`VrrpError::name`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VrrpError {
    /// Shorter than the header + addresses (+ 8 auth bytes for v2), or a
    /// buffer shorter than an IPv4 header; for `build`, `out` too short.
    #[error("VRRP message truncated")]
    Truncated,
    /// IP TTL != 255: the advert crossed a router (RFC 5798 §7.1, RFC 3768
    /// §7.1).
    #[error("VRRP advert with IP TTL other than 255")]
    BadTtl,
    /// Version field neither 2 nor 3 (RFC 3768 §5.3.1, RFC 5798 §5.2.1).
    #[error("VRRP version neither 2 nor 3")]
    BadVersion,
    /// Type field other than 1, ADVERTISEMENT (RFC 3768 §5.3.2).
    #[error("VRRP type is not ADVERTISEMENT")]
    BadType,
    /// The VRRP checksum does not verify (RFC 3768 §5.3.8, RFC 5798
    /// §5.2.8).
    #[error("VRRP checksum mismatch")]
    BadChecksum,
    /// Address count 0, above [`MAX_ADDRS`], or not matching the length.
    #[error("VRRP address count invalid or inconsistent with the length")]
    BadAddrCount,
    /// IPv4 header invalid (version, IHL, lengths, header checksum),
    /// a fragment, malformed or source-route options, or protocol != 112.
    #[error("IPv4 header of a VRRP advert invalid")]
    BadIpHeader,
    /// Advert interval 0 (v2 and v3); for `build` also a v2 interval that is
    /// not whole seconds up to 255 s, or a v3 interval above 4095 cs.
    #[error("VRRP advert interval invalid")]
    BadInterval,
}

impl VrrpError {
    /// Stable snake_case label of the variant, used as a counter/metric
    /// label (`truncated`, `bad_ttl`, ...).
    pub const fn name(self) -> &'static str {
        match self {
            VrrpError::Truncated => "truncated",
            VrrpError::BadTtl => "bad_ttl",
            VrrpError::BadVersion => "bad_version",
            VrrpError::BadType => "bad_type",
            VrrpError::BadChecksum => "bad_checksum",
            VrrpError::BadAddrCount => "bad_addr_count",
            VrrpError::BadIpHeader => "bad_ip_header",
            VrrpError::BadInterval => "bad_interval",
        }
    }
}

/// Length in bytes of a VRRP message with `count` IPv4 addresses:
/// v2 `8 + 4*count + 8`, v3 `8 + 4*count`.
pub const fn message_len(version: Version, count: u8) -> usize {
    let base = VRRP_HEADER_LEN + 4 * count as usize;
    match version {
        Version::V2 => base + AUTH_DATA_LEN,
        Version::V3 => base,
    }
}

/// Whether the checksum stored in `msg` verifies: v2 over the message alone
/// (RFC 3768 §5.3.8), v3 over the IPv4 pseudo-header + message like UDP
/// (RFC 5798 §5.2.8).
fn checksum_ok(version: Version, msg: &[u8], src: u32, dst: u32) -> bool {
    match version {
        Version::V2 => checksum::verifies(msg),
        Version::V3 => {
            checksum::fold(checksum::add(
                v3_pseudo(src, dst, msg.len()),
                checksum::sum(msg),
            )) == 0xffff
        }
    }
}

/// Unfolded sum of the v3 pseudo-header; `len` is at most
/// `message_len(V3, 20)` = 88 bytes, so the cast cannot truncate.
fn v3_pseudo(src: u32, dst: u32, len: usize) -> u32 {
    checksum::pseudo_header_v4(src, dst, PROTO_VRRP, len as u16)
}

/// Parses the VRRP message `msg` (IP payload only, exactly one message).
///
/// `src`/`dst` are the IPv4 header's addresses (host order), used only for
/// the v3 pseudo-header checksum (RFC 5798 §5.2.8: pseudo-header + VRRP
/// message, as for TCP/UDP); v2's checksum covers the message only
/// (RFC 3768 §5.3.8). v2 intervals are returned as seconds * 100; the v3
/// reserved bits are ignored (RFC 5798 §5.2.5: "ignored on receipt").
///
/// # Errors
/// In this order: [`VrrpError::Truncated`] (under 8 bytes),
/// [`VrrpError::BadVersion`], [`VrrpError::BadType`],
/// [`VrrpError::BadAddrCount`] (count 0 or > [`MAX_ADDRS`]),
/// [`VrrpError::Truncated`] (shorter than the count needs),
/// [`VrrpError::BadAddrCount`] (longer than the count needs),
/// [`VrrpError::BadChecksum`], [`VrrpError::BadInterval`] (0).
pub fn parse(msg: &[u8], src: u32, dst: u32) -> Result<Advert, VrrpError> {
    let Some(head) = msg.first_chunk::<VRRP_HEADER_LEN>() else {
        return Err(VrrpError::Truncated);
    };
    let version = match head[field::VER_TYPE] >> 4 {
        2 => Version::V2,
        3 => Version::V3,
        _ => return Err(VrrpError::BadVersion),
    };
    if head[field::VER_TYPE] & 0x0f != TYPE_ADVERT {
        return Err(VrrpError::BadType);
    }
    let count = head[field::COUNT];
    if count == 0 || usize::from(count) > MAX_ADDRS {
        return Err(VrrpError::BadAddrCount);
    }
    let len = message_len(version, count);
    if msg.len() < len {
        return Err(VrrpError::Truncated);
    }
    if msg.len() > len {
        return Err(VrrpError::BadAddrCount);
    }
    if !checksum_ok(version, msg, src, dst) {
        return Err(VrrpError::BadChecksum);
    }
    let (advert_int_cs, auth_type) = match version {
        Version::V2 => (
            u16::from(head[field::ADVER_INT]) * 100,
            head[field::AUTH_TYPE],
        ),
        Version::V3 => {
            let raw = u16::from_be_bytes([head[field::V3_INTERVAL.start], head[field::ADVER_INT]]);
            (raw & V3_INTERVAL_MASK, 0)
        }
    };
    if advert_int_cs == 0 {
        return Err(VrrpError::BadInterval);
    }
    let mut addrs = [0u32; MAX_ADDRS];
    let addr_bytes = &msg[field::ADDRS..field::ADDRS + 4 * usize::from(count)];
    for (slot, b) in addrs.iter_mut().zip(addr_bytes.chunks_exact(4)) {
        *slot = u32::from_be_bytes([b[0], b[1], b[2], b[3]]);
    }
    let mut auth_data = [0u8; AUTH_DATA_LEN];
    if version == Version::V2 {
        auth_data.copy_from_slice(&msg[len - AUTH_DATA_LEN..len]);
    }
    Ok(Advert {
        version,
        vrid: head[field::VRID],
        priority: head[field::PRIORITY],
        advert_int_cs,
        auth_type,
        auth_data,
        count,
        addrs,
    })
}

/// Parses a whole IPv4 packet as a raw IP socket returns it (IPv4 header
/// first, then the VRRP message). Returns `(src, dst, advert)`, addresses
/// host order. Bytes past the IPv4 total length are ignored (link padding).
///
/// Checks, in order, with [`Ipv4Packet`]: a 20-byte header
/// ([`VrrpError::Truncated`]), version 4, IHL >= 5, header and total
/// length inside the buffer, the header checksum, not a fragment, options
/// well formed and not a source route, protocol 112 (each
/// [`VrrpError::BadIpHeader`]); TTL == 255 ([`VrrpError::BadTtl`],
/// RFC 5798 §7.1); then [`parse`] on the payload.
///
/// # Errors
/// As above, then as [`parse`].
pub fn parse_ip(packet: &[u8]) -> Result<(u32, u32, Advert), VrrpError> {
    let ip = Ipv4Packet::new_checked(packet).map_err(|e| match e {
        super::Error::Truncated if packet.len() < MIN_HEADER_LEN => VrrpError::Truncated,
        _ => VrrpError::BadIpHeader,
    })?;
    if !ip.verify_checksum()
        || ip.is_fragment()
        || check_options(ip.options()) != OptionsCheck::Ok
        || ip.protocol() != PROTO_VRRP
    {
        return Err(VrrpError::BadIpHeader);
    }
    if ip.ttl() != TTL {
        return Err(VrrpError::BadTtl);
    }
    let (src, dst) = (ip.src_addr(), ip.dst_addr());
    let adv = parse(ip.payload(), src, dst)?;
    Ok((src, dst, adv))
}

/// Builds the VRRP message (IP payload only) for `adv` into the start of
/// `out`, checksum filled, and returns its length: v2 `8 + 4*count + 8`,
/// v3 `8 + 4*count`. `src`/`dst` (host order) feed the v3 pseudo-header
/// checksum only. Writes v2's `auth_type`/`auth_data` as given; v3 writes
/// the reserved bits as zero and no authentication (RFC 5798 §5.2.5).
/// Bytes of `out` past the returned length are untouched.
///
/// Source: the layouts of RFC 3768 §5.1 and RFC 5798 §5.1, as keepalived
/// 2.2's `vrrp_build_vrrp_v2`/`_v3` fill them.
///
/// # Errors
/// [`VrrpError::BadAddrCount`] for count 0 or > [`MAX_ADDRS`];
/// [`VrrpError::BadInterval`] for interval 0, a v2 interval that is not a
/// multiple of 100 cs or above 255 s, a v3 interval above 4095 cs;
/// [`VrrpError::Truncated`] if `out` is shorter than the message.
pub fn build(adv: &Advert, src: u32, dst: u32, out: &mut [u8]) -> Result<usize, VrrpError> {
    if adv.count == 0 || usize::from(adv.count) > MAX_ADDRS {
        return Err(VrrpError::BadAddrCount);
    }
    let int = adv.advert_int_cs;
    let int_ok = match adv.version {
        Version::V2 => int != 0 && int.is_multiple_of(100) && int / 100 <= 255,
        Version::V3 => int != 0 && int <= V3_INTERVAL_MASK,
    };
    if !int_ok {
        return Err(VrrpError::BadInterval);
    }
    let len = message_len(adv.version, adv.count);
    let Some(msg) = out.get_mut(..len) else {
        return Err(VrrpError::Truncated);
    };
    msg[field::VER_TYPE] = (adv.version.number() << 4) | TYPE_ADVERT;
    msg[field::VRID] = adv.vrid;
    msg[field::PRIORITY] = adv.priority;
    msg[field::COUNT] = adv.count;
    match adv.version {
        Version::V2 => {
            msg[field::AUTH_TYPE] = adv.auth_type;
            // `int / 100 <= 255` was checked above.
            msg[field::ADVER_INT] = (int / 100) as u8;
        }
        Version::V3 => msg[field::V3_INTERVAL].copy_from_slice(&int.to_be_bytes()),
    }
    msg[field::CHECKSUM].copy_from_slice(&[0, 0]);
    for (b, addr) in msg[field::ADDRS..].chunks_exact_mut(4).zip(adv.addrs()) {
        b.copy_from_slice(&addr.to_be_bytes());
    }
    if adv.version == Version::V2 {
        msg[len - AUTH_DATA_LEN..].copy_from_slice(&adv.auth_data);
    }
    let csum = match adv.version {
        Version::V2 => checksum::checksum(msg),
        Version::V3 => !checksum::fold(checksum::add(v3_pseudo(src, dst, len), checksum::sum(msg))),
    };
    msg[field::CHECKSUM].copy_from_slice(&csum.to_be_bytes());
    Ok(len)
}

/// Builds a whole IPv4 packet (20-byte header, no options, then the VRRP
/// message) into `out`, as keepalived sends it with `IP_HDRINCL`: TOS
/// [`IP_TOS`], identification 0, no fragment flags, TTL [`TTL`], protocol
/// [`PROTO_VRRP`], header checksum filled. `src`/`dst` host order (`dst`
/// is [`MCAST_ADDR`] unless unicast peers are configured). Returns the
/// packet length (`20 + message_len`).
///
/// # Errors
/// As [`build`]; [`VrrpError::Truncated`] if `out` cannot hold the packet.
pub fn build_ip(adv: &Advert, src: u32, dst: u32, out: &mut [u8]) -> Result<usize, VrrpError> {
    let Some(payload) = out.get_mut(MIN_HEADER_LEN..) else {
        return Err(VrrpError::Truncated);
    };
    let msg_len = build(adv, src, dst, payload)?;
    let total = MIN_HEADER_LEN + msg_len;
    let mut ip = Ipv4Packet::new_unchecked(&mut out[..total]);
    ip.set_version(4);
    ip.set_header_len(MIN_HEADER_LEN);
    ip.set_dscp_ecn(IP_TOS);
    // At most 20 + 88 bytes.
    ip.set_total_len(total as u16);
    ip.set_ident(0);
    ip.set_flags_and_frag(false, false, 0);
    ip.set_ttl(TTL);
    ip.set_protocol(PROTO_VRRP);
    ip.set_src_addr(src);
    ip.set_dst_addr(dst);
    ip.fill_checksum();
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn advert(version: Version, count: u8) -> Advert {
        let mut addrs = [0u32; MAX_ADDRS];
        for (i, a) in addrs.iter_mut().take(usize::from(count)).enumerate() {
            *a = 0x0a00_0064 + i as u32;
        }
        Advert {
            version,
            vrid: 51,
            priority: 100,
            advert_int_cs: 100,
            auth_type: 0,
            auth_data: [0; 8],
            count,
            addrs,
        }
    }

    #[test]
    fn test_error_names() {
        let all = [
            VrrpError::Truncated,
            VrrpError::BadTtl,
            VrrpError::BadVersion,
            VrrpError::BadType,
            VrrpError::BadChecksum,
            VrrpError::BadAddrCount,
            VrrpError::BadIpHeader,
            VrrpError::BadInterval,
        ];
        let names: Vec<_> = all.iter().map(|e| e.name()).collect();
        assert_eq!(
            names,
            [
                "truncated",
                "bad_ttl",
                "bad_version",
                "bad_type",
                "bad_checksum",
                "bad_addr_count",
                "bad_ip_header",
                "bad_interval"
            ]
        );
    }

    #[test]
    fn test_build_ip_parse_ip() {
        for version in [Version::V2, Version::V3] {
            let adv = advert(version, 3);
            let mut buf = [0u8; 128];
            let n = build_ip(&adv, 0x0a00_0001, MCAST_ADDR, &mut buf).unwrap();
            assert_eq!(n, 20 + message_len(version, 3));
            assert_eq!(parse_ip(&buf[..n]), Ok((0x0a00_0001, MCAST_ADDR, adv)));
            // Link padding past the total length is ignored.
            assert_eq!(parse_ip(&buf[..n + 6]).map(|r| r.2), Ok(adv));
            assert_eq!(
                build_ip(&adv, 1, 2, &mut buf[..n - 1]),
                Err(VrrpError::Truncated)
            );
        }
    }

    proptest! {
        #[test]
        fn prop_parse_never_panics(data in proptest::collection::vec(any::<u8>(), 0..140)) {
            if let Ok((src, dst, adv)) = parse_ip(&data) {
                let mut out = [0u8; 128];
                let n = build_ip(&adv, src, dst, &mut out).unwrap();
                prop_assert_eq!(parse_ip(&out[..n]).unwrap().2, adv);
            }
            let _ = parse(&data, 1, 2);
        }

        #[test]
        fn prop_build_parse_identity(
            v3 in any::<bool>(), vrid in any::<u8>(), priority in any::<u8>(),
            count in 1u8..=20, secs in 1u16..=255, cs in 1u16..=4095,
            auth_type in any::<u8>(), auth_data in any::<[u8; 8]>(),
            addrs in any::<[u32; MAX_ADDRS]>(), src in any::<u32>(), dst in any::<u32>(),
        ) {
            let mut adv = Advert { version: Version::V2, vrid, priority, advert_int_cs: secs * 100,
                auth_type, auth_data, count, addrs: [0; MAX_ADDRS] };
            adv.addrs[..usize::from(count)].copy_from_slice(&addrs[..usize::from(count)]);
            if v3 {
                adv = Advert { version: Version::V3, advert_int_cs: cs, auth_type: 0,
                    auth_data: [0; 8], ..adv };
            }
            let mut out = [0u8; 96];
            let n = build(&adv, src, dst, &mut out).unwrap();
            prop_assert_eq!(n, message_len(adv.version, count));
            prop_assert_eq!(parse(&out[..n], src, dst), Ok(adv));
        }
    }
}
