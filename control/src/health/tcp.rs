//! `TCP_CHECK` (keepalived `check_tcp.c`): up when the three-way
//! handshake completes within `connect_timeout`; refused, unreachable and
//! timeout are down. The connection is closed at once (no data sent).

use super::net::{connect_tcp, within};
use super::{Outcome, Probe};

pub(super) async fn check(p: &Probe) -> Outcome {
    match within(p.connect_timeout, || "connect".into(), connect_tcp(p)).await {
        Ok(_stream) => Outcome::UP,
        Err(reason) => Outcome::Down { reason },
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{full_backlog_listener, in_netns, rt, tcp_probe, unused_port};
    use super::super::{probe, CheckKind, Outcome, Probe};
    use std::net::{Ipv4Addr, SocketAddrV4};
    use std::time::Duration;

    #[test]
    fn tcp_up_refused_and_bindto() {
        rt().block_on(async {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = l.local_addr().unwrap().port();
            let accept = tokio::spawn(async move { l.accept().await.map(|(_, peer)| peer) });
            let mut p = tcp_probe(port, CheckKind::Tcp, Duration::from_secs(1));
            p.bindto = Some(Ipv4Addr::new(127, 0, 0, 7));
            let r = probe(&p).await;
            assert_eq!(r.outcome, Outcome::Up { weight: None });
            let peer = accept.await.unwrap().unwrap();
            assert_eq!(
                peer.ip(),
                Ipv4Addr::new(127, 0, 0, 7),
                "bindto is the source address"
            );

            let p = tcp_probe(unused_port(), CheckKind::Tcp, Duration::from_secs(1));
            let r = probe(&p).await;
            assert_eq!(
                r.outcome,
                Outcome::Down {
                    reason: "connect: connection refused".into()
                }
            );
        });
    }

    #[test]
    fn tcp_timeout_honoured() {
        rt().block_on(async {
            // A listener whose accept queue is full: Linux drops the SYN.
            let (port, _keep) = full_backlog_listener().await;
            let p = tcp_probe(port, CheckKind::Tcp, Duration::from_millis(300));
            let r = probe(&p).await;
            assert_eq!(r.outcome, Outcome::down("timeout after 300 ms (connect)"));
            assert!(r.latency >= Duration::from_millis(300), "{:?}", r.latency);
            assert!(r.latency < Duration::from_millis(550), "{:?}", r.latency);
        });
    }

    /// In a private namespace: a silent address (SYN dropped) times out,
    /// an `unreachable` route is down at once with the kernel's reason.
    #[test]
    fn tcp_blackhole_and_unreachable() {
        let (silent, unreach) = in_netns(|| {
            let rt = rt();
            let at = |ip: [u8; 4], ms: u64| Probe {
                kind: CheckKind::Tcp,
                target: SocketAddrV4::new(Ipv4Addr::from(ip), 80),
                bindto: None,
                connect_timeout: Duration::from_millis(ms),
            };
            (
                rt.block_on(probe(&at([10, 255, 0, 2], 300))),
                rt.block_on(probe(&at([10, 254, 0, 1], 1000))),
            )
        });
        assert_eq!(
            silent.outcome,
            Outcome::down("timeout after 300 ms (connect)")
        );
        assert!(
            silent.latency >= Duration::from_millis(300)
                && silent.latency < Duration::from_millis(550)
        );
        assert_eq!(unreach.outcome, Outcome::down("connect: no route to host"));
        assert!(unreach.latency < Duration::from_millis(100));
    }
}
