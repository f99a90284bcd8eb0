//! `UDP_CHECK` (keepalived `check_udp.c`, `core/layer4.c`
//! `udp_socket_state`): send the payload on a connected UDP socket, then:
//! - an ICMP port unreachable (`ECONNREFUSED` on the receive) is down;
//! - with `require_reply`, a reply within `connect_timeout` whose length
//!   is within `min_reply_length..=max_reply_length` and whose first
//!   `min(len, prefix.len())` bytes equal the prefix is up; a reply that
//!   does not match, or silence, is down;
//! - without it, any reply, or silence until the timeout, is up.

use super::net::{connect_udp, io_reason};
use super::{Outcome, Probe, UdpCheck};

pub(super) async fn check(p: &Probe, u: &UdpCheck) -> Outcome {
    let deadline = tokio::time::Instant::now() + p.connect_timeout;
    let sock = match tokio::time::timeout_at(deadline, connect_udp(p)).await {
        Ok(Ok(s)) => s,
        Ok(Err(reason)) => return Outcome::Down { reason },
        Err(_) => return Outcome::down("timeout before the socket was ready"),
    };
    if let Err(e) = sock.send(&u.payload).await {
        return Outcome::down(format!("send: {}", io_reason(&e)));
    }
    // The largest UDP payload, so the reply's real length is known.
    let mut buf = vec![0u8; 65536];
    match tokio::time::timeout_at(deadline, sock.recv(&mut buf)).await {
        Err(_) if u.require_reply.is_some() => Outcome::down(format!(
            "no reply within {} ms",
            p.connect_timeout.as_millis()
        )),
        Err(_) => Outcome::UP,
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            Outcome::down("ICMP port unreachable")
        }
        Ok(Err(e)) => Outcome::down(format!("receive: {}", io_reason(&e))),
        Ok(Ok(n)) => match &u.require_reply {
            None => Outcome::UP,
            Some(prefix) => judge(&buf[..n], prefix, u),
        },
    }
}

fn judge(reply: &[u8], prefix: &[u8], u: &UdpCheck) -> Outcome {
    let n = reply.len();
    if n < u.min_reply_length || n > u.max_reply_length {
        return Outcome::down(format!(
            "reply of {n} bytes, expected {}..={}",
            u.min_reply_length, u.max_reply_length
        ));
    }
    let k = n.min(prefix.len());
    if reply[..k] != prefix[..k] {
        return Outcome::down(format!(
            "reply does not match the expected {} bytes",
            prefix.len()
        ));
    }
    Outcome::UP
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{rt, tcp_probe, unused_udp_port};
    use super::super::{probe, CheckKind, Outcome, UdpCheck};
    use std::time::Duration;
    use tokio::net::UdpSocket;

    fn udp(require: Option<&[u8]>) -> UdpCheck {
        UdpCheck {
            payload: b"ping?".to_vec(),
            require_reply: require.map(<[u8]>::to_vec),
            min_reply_length: 0,
            max_reply_length: 255,
        }
    }

    /// A server that answers each datagram with `answer(request)`, or
    /// stays silent on `None`; it records what it received.
    async fn server(
        answer: fn(&[u8]) -> Option<Vec<u8>>,
    ) -> (u16, tokio::sync::mpsc::UnboundedReceiver<Vec<u8>>) {
        let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let port = s.local_addr().unwrap().port();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut buf = [0u8; 2048];
            while let Ok((n, from)) = s.recv_from(&mut buf).await {
                let _ = tx.send(buf[..n].to_vec());
                if let Some(a) = answer(&buf[..n]) {
                    let _ = s.send_to(&a, from).await;
                }
            }
        });
        (port, rx)
    }

    #[test]
    fn udp_reply_matching_and_not() {
        rt().block_on(async {
            let (port, mut got) = server(|_| Some(b"pong!extra".to_vec())).await;
            let p = tcp_probe(
                port,
                CheckKind::Udp(udp(Some(b"pong"))),
                Duration::from_secs(1),
            );
            assert_eq!(probe(&p).await.outcome, Outcome::Up { weight: None });
            assert_eq!(
                got.recv().await.unwrap(),
                b"ping?",
                "the payload is what the server got"
            );

            let p = tcp_probe(
                port,
                CheckKind::Udp(udp(Some(b"PONG"))),
                Duration::from_secs(1),
            );
            assert_eq!(
                probe(&p).await.outcome,
                Outcome::down("reply does not match the expected 4 bytes")
            );

            let mut short = udp(Some(b""));
            short.max_reply_length = 5;
            let p = tcp_probe(port, CheckKind::Udp(short), Duration::from_secs(1));
            assert_eq!(
                probe(&p).await.outcome,
                Outcome::down("reply of 10 bytes, expected 0..=5")
            );
        });
    }

    #[test]
    fn udp_port_unreachable_is_down_either_way() {
        rt().block_on(async {
            for req in [None, Some(&b"x"[..])] {
                let p = tcp_probe(
                    unused_udp_port(),
                    CheckKind::Udp(udp(req)),
                    Duration::from_secs(1),
                );
                let r = probe(&p).await;
                assert_eq!(
                    r.outcome,
                    Outcome::down("ICMP port unreachable"),
                    "require_reply {req:?}"
                );
                assert!(r.latency < Duration::from_millis(500));
            }
        });
    }

    #[test]
    fn udp_silence_up_without_require_reply_down_with_it() {
        rt().block_on(async {
            let (port, _got) = server(|_| None).await;
            let p = tcp_probe(port, CheckKind::Udp(udp(None)), Duration::from_millis(200));
            let r = probe(&p).await;
            assert_eq!(
                r.outcome,
                Outcome::Up { weight: None },
                "keepalived: silence is up"
            );
            assert!(r.latency >= Duration::from_millis(200));

            let p = tcp_probe(
                port,
                CheckKind::Udp(udp(Some(b"pong"))),
                Duration::from_millis(200),
            );
            let r = probe(&p).await;
            assert_eq!(r.outcome, Outcome::down("no reply within 200 ms"));
            assert!(
                r.latency >= Duration::from_millis(200) && r.latency < Duration::from_millis(450),
                "{:?}",
                r.latency
            );
        });
    }
}
