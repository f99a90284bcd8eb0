//! `PING_CHECK` (keepalived `check_ping.c`): one ICMP echo request to the
//! target's address; up on the matching echo reply (same identifier,
//! sequence number and payload) within `connect_timeout`. keepalived uses
//! an unprivileged ICMP datagram socket and widens the
//! `net.ipv4.ping_group_range` sysctl for it; fulcrum runs as root and
//! uses a raw ICMP socket instead, connected to the target so the kernel
//! delivers only that host's ICMP, which leaves the sysctl alone.

use std::net::{SocketAddr, SocketAddrV4};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::UdpSocket;

use super::net::io_reason;
use super::{Outcome, Probe};

const ECHO_REQUEST: u8 = 8;
const ECHO_REPLY: u8 = 0;
const PAYLOAD: &[u8; 16] = b"fulcrum-health-c";

/// RFC 792 / RFC 1071 Internet checksum.
fn checksum(b: &[u8]) -> u16 {
    let mut sum: u32 = b
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn echo_request(id: u16, seq: u16) -> Vec<u8> {
    let mut p = vec![ECHO_REQUEST, 0, 0, 0];
    p.extend_from_slice(&id.to_be_bytes());
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(PAYLOAD);
    let c = checksum(&p);
    p[2..4].copy_from_slice(&c.to_be_bytes());
    p
}

/// Whether `pkt` (an IPv4 datagram as a raw socket reads it) is our reply.
fn is_our_reply(pkt: &[u8], id: u16, seq: u16) -> bool {
    let Some(&vihl) = pkt.first() else {
        return false;
    };
    let ihl = usize::from(vihl & 0x0f) * 4;
    if vihl >> 4 != 4 || ihl < 20 {
        return false;
    }
    let Some(icmp) = pkt.get(ihl..) else {
        return false;
    };
    icmp.len() >= 8 + PAYLOAD.len()
        && icmp[0] == ECHO_REPLY
        && icmp[1] == 0
        && u16::from_be_bytes([icmp[4], icmp[5]]) == id
        && u16::from_be_bytes([icmp[6], icmp[7]]) == seq
        && &icmp[8..8 + PAYLOAD.len()] == PAYLOAD
        && checksum(icmp) == 0
}

/// The raw socket, registered with tokio through the datagram socket type
/// (send/recv are the same system calls on a raw socket; no unsafe).
fn open(p: &Probe) -> Result<UdpSocket, String> {
    let s = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::ICMPV4)).map_err(|e| {
        format!(
            "raw ICMP socket: {} (PING_CHECK needs root or CAP_NET_RAW)",
            io_reason(&e)
        )
    })?;
    s.set_nonblocking(true)
        .map_err(|e| format!("socket: {}", io_reason(&e)))?;
    if let Some(src) = p.bindto {
        s.bind(&SocketAddr::V4(SocketAddrV4::new(src, 0)).into())
            .map_err(|e| format!("bind {src}: {}", io_reason(&e)))?;
    }
    s.connect(&SocketAddr::V4(SocketAddrV4::new(*p.target.ip(), 0)).into())
        .map_err(|e| format!("connect: {}", io_reason(&e)))?;
    UdpSocket::from_std(std::net::UdpSocket::from(s))
        .map_err(|e| format!("socket: {}", io_reason(&e)))
}

pub(super) async fn check(p: &Probe) -> Outcome {
    let (id, seq) = (fastrand::u16(..), fastrand::u16(..));
    let talk = async {
        let sock = open(p)?;
        sock.send(&echo_request(id, seq))
            .await
            .map_err(|e| format!("send: {}", io_reason(&e)))?;
        let mut buf = [0u8; 1500];
        loop {
            let n = sock
                .recv(&mut buf)
                .await
                .map_err(|e| format!("receive: {}", io_reason(&e)))?;
            if is_our_reply(&buf[..n], id, seq) {
                return Ok(());
            } // else our own request seen on loopback, or another ping's reply
        }
    };
    match tokio::time::timeout(p.connect_timeout, talk).await {
        Ok(Ok(())) => Outcome::UP,
        Ok(Err(reason)) => Outcome::Down { reason },
        Err(_) => Outcome::down(format!(
            "no echo reply within {} ms",
            p.connect_timeout.as_millis()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{in_netns, rt};
    use super::super::{probe, CheckKind, Outcome, Probe};
    use super::*;
    use std::net::Ipv4Addr;
    use std::time::Duration;

    fn ping(ip: Ipv4Addr, ms: u64) -> Probe {
        Probe {
            kind: CheckKind::Ping,
            target: SocketAddrV4::new(ip, 0),
            bindto: None,
            connect_timeout: Duration::from_millis(ms),
        }
    }

    #[test]
    fn packet_shapes() {
        let req = echo_request(0x1234, 7);
        assert_eq!(checksum(&req), 0, "a valid checksum sums to 0");
        // our request turned into a reply, behind a 20-byte IP header
        let mut reply = vec![0x45; 1];
        reply.extend_from_slice(&[0; 19]);
        let mut icmp = req.clone();
        icmp[0] = ECHO_REPLY;
        icmp[2..4].copy_from_slice(&[0, 0]);
        let c = checksum(&icmp);
        icmp[2..4].copy_from_slice(&c.to_be_bytes());
        reply.extend_from_slice(&icmp);
        assert!(is_our_reply(&reply, 0x1234, 7));
        assert!(!is_our_reply(&reply, 0x1235, 7), "other identifier");
        assert!(!is_our_reply(&reply, 0x1234, 8), "other sequence");
        assert!(!is_our_reply(&reply[..30], 0x1234, 7), "truncated");
        let mut req_seen = reply[..20].to_vec();
        req_seen.extend_from_slice(&req);
        assert!(
            !is_our_reply(&req_seen, 0x1234, 7),
            "the request itself (seen on loopback)"
        );
    }

    #[test]
    fn ping_loopback_answers() {
        let r = rt().block_on(probe(&ping(Ipv4Addr::LOCALHOST, 1000)));
        assert_eq!(r.outcome, Outcome::Up { weight: None });
        assert!(r.latency < Duration::from_millis(100));
    }

    /// An address that really does not answer: inside a fresh network
    /// namespace, 10.255.0.2 is routed onto `lo` without being local, so
    /// the echo is dropped silently (see `testutil::in_netns`). The same namespace
    /// answers on 10.255.0.1 (a local address) and 127.0.0.1.
    #[test]
    fn ping_unanswered_times_out() {
        let (local, silent, lo) = in_netns(|| {
            let rt = rt();
            let local = rt.block_on(probe(&ping(Ipv4Addr::new(10, 255, 0, 1), 1000)));
            let silent = rt.block_on(probe(&ping(Ipv4Addr::new(10, 255, 0, 2), 300)));
            let lo = rt.block_on(probe(&ping(Ipv4Addr::LOCALHOST, 1000)));
            (local, silent, lo)
        });
        assert_eq!(local.outcome, Outcome::Up { weight: None });
        assert_eq!(lo.outcome, Outcome::Up { weight: None });
        assert_eq!(silent.outcome, Outcome::down("no echo reply within 300 ms"));
        assert!(
            silent.latency >= Duration::from_millis(300)
                && silent.latency < Duration::from_millis(550),
            "{:?}",
            silent.latency
        );
    }
}
