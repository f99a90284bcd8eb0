//! Direct routing (ipvsadm `-g`), as IPVS's `ip_vs_dr_xmit`.
//!
//! The IP packet is not touched at all: not the addresses, not the ports, not
//! the TTL (IPVS takes DR traffic at LOCAL_IN, so the director does not route
//! it). Only the Ethernet destination becomes the real server's MAC and the
//! source becomes the output port's MAC. The real server holds the VIP on a
//! loopback (with `arp_ignore=1`, `arp_announce=2`) and answers the client
//! directly, so replies never reach the director; this is why DR needs the
//! real server on a connected subnet and an unchanged port.

/// Rewrites a DR frame for a real server at `rs_mac` behind a port whose MAC
/// is `port_mac` (both wire order). Frames shorter than 12 bytes are left as
/// they are (the caller has already parsed at least an Ethernet header).
#[inline]
pub fn rewrite(frame: &mut [u8], port_mac: [u8; 6], rs_mac: [u8; 6]) {
    super::set_macs(frame, port_mac, rs_mac);
}
