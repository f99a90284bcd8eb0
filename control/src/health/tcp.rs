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
    use super::super::testutil::{rt, tcp_probe, unused_port};
    use super::super::{probe, CheckKind, Outcome};
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
            // A listener with a full backlog and SYN cookies off would be
            // host-dependent; instead an address that drops SYNs: a
            // blackhole route is not ours to add, so use a listener whose
            // backlog (1) is filled by two un-accepted connections.
            let (port, _keep) = super::super::testutil::full_backlog_listener().await;
            let p = tcp_probe(port, CheckKind::Tcp, Duration::from_millis(300));
            let r = probe(&p).await;
            match &r.outcome {
                Outcome::Down { reason } => assert_eq!(reason, "timeout after 300 ms (connect)"),
                o => panic!("expected a timeout, got {o:?}"),
            }
            assert!(r.latency >= Duration::from_millis(300), "{:?}", r.latency);
            assert!(r.latency < Duration::from_millis(450), "{:?}", r.latency);
            let _ = SocketAddrV4::new(Ipv4Addr::LOCALHOST, port);
        });
    }
}
