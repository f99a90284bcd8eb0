//! `DNS_CHECK` (keepalived `check_dns.c`): one query (RD set, random id)
//! for `name`/`type` over UDP to the target. keepalived's rule, mirrored:
//! a datagram shorter than a DNS header, with another id, or that is not a
//! response (QR clear) is ignored and the wait goes on until the timeout;
//! a response with RCODE other than NOERROR is down; any other response
//! with our id is up. fulcrum adds: a response that does not parse is down
//! (keepalived only reads the header), and with
//! [`DnsCheck::require_answer`](super::DnsCheck) at least one answer
//! record of the asked type is needed.

use hickory_proto::op::{Message, MessageType, Query, ResponseCode};
use hickory_proto::rr::{Name, RecordType};

use super::net::{connect_udp, io_reason};
use super::{DnsCheck, DnsType, Outcome, Probe};

/// A DNS header's size (RFC 1035 §4.1.1).
const HEADER: usize = 12;

pub(super) fn record_type(t: DnsType) -> RecordType {
    match t {
        DnsType::A => RecordType::A,
        DnsType::Ns => RecordType::NS,
        DnsType::Cname => RecordType::CNAME,
        DnsType::Soa => RecordType::SOA,
        DnsType::Mx => RecordType::MX,
        DnsType::Txt => RecordType::TXT,
        DnsType::Aaaa => RecordType::AAAA,
    }
}

/// The query datagram and its id.
fn query(d: &DnsCheck) -> Result<(u16, Vec<u8>), String> {
    let name = if d.name.is_empty() {
        Name::root()
    } else {
        Name::from_ascii(&d.name).map_err(|e| format!("invalid name {:?}: {e}", d.name))?
    };
    let id = fastrand::u16(..);
    let mut m = Message::new();
    m.set_id(id)
        .set_message_type(MessageType::Query)
        .set_recursion_desired(true);
    m.add_query(Query::query(name, record_type(d.qtype)));
    let bytes = m
        .to_vec()
        .map_err(|e| format!("cannot encode the query: {e}"))?;
    Ok((id, bytes))
}

pub(super) async fn check(p: &Probe, d: &DnsCheck) -> Outcome {
    let deadline = tokio::time::Instant::now() + p.connect_timeout;
    let (id, q) = match query(d) {
        Ok(v) => v,
        Err(reason) => return Outcome::Down { reason },
    };
    let talk = async {
        let sock = connect_udp(p).await?;
        sock.send(&q)
            .await
            .map_err(|e| format!("send: {}", io_reason(&e)))?;
        let mut buf = vec![0u8; 4096];
        loop {
            let n = match sock.recv(&mut buf).await {
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                    return Err("ICMP port unreachable".to_string())
                }
                Err(e) => return Err(format!("receive: {}", io_reason(&e))),
            };
            let b = &buf[..n];
            if n < HEADER || u16::from_be_bytes([b[0], b[1]]) != id || b[2] & 0x80 == 0 {
                continue; // keepalived: too short, other id, or not a response
            }
            return judge(b, d);
        }
    };
    match tokio::time::timeout_at(deadline, talk).await {
        Ok(Ok(())) => Outcome::UP,
        Ok(Err(reason)) => Outcome::Down { reason },
        Err(_) => Outcome::down(format!(
            "no answer within {} ms",
            p.connect_timeout.as_millis()
        )),
    }
}

fn judge(b: &[u8], d: &DnsCheck) -> Result<(), String> {
    let m = Message::from_vec(b).map_err(|e| format!("malformed response: {e}"))?;
    if m.response_code() != ResponseCode::NoError {
        return Err(format!("response code {}", m.response_code()));
    }
    let want = record_type(d.qtype);
    if d.require_answer && !m.answers().iter().any(|r| r.record_type() == want) {
        return Err(format!("no {} record in the answer", d.qtype.name()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{rt, tcp_probe, unused_udp_port};
    use super::super::{probe, CheckKind, DnsCheck, DnsType, Outcome};
    use hickory_proto::op::{Message, MessageType, ResponseCode};
    use hickory_proto::rr::{rdata::A, RData, Record};
    use std::time::Duration;
    use tokio::net::UdpSocket;

    #[derive(Clone, Copy)]
    enum Mode {
        Answer,
        Empty,
        NxDomain,
        Garbage,
        WrongIdThenRight,
        WrongIdOnly,
        QueryEcho,
    }

    /// A DNS server answering each query as `mode` says; it sends back
    /// what it parsed as the question (for the test to check).
    async fn server(
        mode: Mode,
    ) -> (
        u16,
        tokio::sync::mpsc::UnboundedReceiver<(String, String, bool)>,
    ) {
        let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let port = s.local_addr().unwrap().port();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut buf = [0u8; 1500];
            while let Ok((n, from)) = s.recv_from(&mut buf).await {
                let q = Message::from_vec(&buf[..n]).unwrap();
                let qq = q.queries()[0].clone();
                let _ = tx.send((
                    qq.name().to_string(),
                    qq.query_type().to_string(),
                    q.recursion_desired(),
                ));
                let mut r = Message::new();
                r.set_id(q.id())
                    .set_message_type(MessageType::Response)
                    .add_query(qq.clone());
                let rec = Record::from_rdata(qq.name().clone(), 60, RData::A(A::new(10, 1, 2, 3)));
                let out: Vec<Vec<u8>> = match mode {
                    Mode::Answer => vec![{
                        r.add_answer(rec);
                        r.to_vec().unwrap()
                    }],
                    Mode::Empty => vec![r.to_vec().unwrap()],
                    Mode::NxDomain => vec![{
                        r.set_response_code(ResponseCode::NXDomain);
                        r.to_vec().unwrap()
                    }],
                    Mode::Garbage => {
                        // our id and QR, then junk: not a DNS message
                        let id = q.id().to_be_bytes();
                        vec![vec![
                            id[0], id[1], 0x81, 0x80, 0, 1, 0, 9, 0xff, 0xff, 0xff, 0xff, 1, 2, 3,
                        ]]
                    }
                    Mode::WrongIdThenRight | Mode::WrongIdOnly => {
                        let mut wrong = r.clone();
                        wrong.set_id(q.id().wrapping_add(1));
                        wrong.add_answer(rec.clone());
                        let mut v = vec![wrong.to_vec().unwrap(), b"short".to_vec()];
                        if matches!(mode, Mode::WrongIdThenRight) {
                            r.add_answer(rec);
                            v.push(r.to_vec().unwrap());
                        }
                        v
                    }
                    Mode::QueryEcho => vec![buf[..n].to_vec()], // QR clear: ignored
                };
                for o in out {
                    let _ = s.send_to(&o, from).await;
                }
            }
        });
        (port, rx)
    }

    fn dns(name: &str, qtype: DnsType, require_answer: bool) -> CheckKind {
        CheckKind::Dns(DnsCheck {
            name: name.into(),
            qtype,
            require_answer,
        })
    }

    #[test]
    fn dns_answer_and_question_sent() {
        rt().block_on(async {
            let (port, mut got) = server(Mode::Answer).await;
            let p = tcp_probe(
                port,
                dns("www.example.com", DnsType::A, true),
                Duration::from_secs(1),
            );
            assert_eq!(probe(&p).await.outcome, Outcome::Up { weight: None });
            assert_eq!(
                got.recv().await.unwrap(),
                ("www.example.com.".into(), "A".into(), true)
            );
            // keepalived's default: root SOA
            let p = tcp_probe(port, dns("", DnsType::Soa, false), Duration::from_secs(1));
            assert_eq!(probe(&p).await.outcome, Outcome::Up { weight: None });
            assert_eq!(got.recv().await.unwrap(), (".".into(), "SOA".into(), true));
            // an A answer does not satisfy an MX question with require_answer
            let p = tcp_probe(
                port,
                dns("example.com", DnsType::Mx, true),
                Duration::from_secs(1),
            );
            assert_eq!(
                probe(&p).await.outcome,
                Outcome::down("no MX record in the answer")
            );
        });
    }

    #[test]
    fn dns_empty_answer_is_up_as_keepalived_unless_required() {
        rt().block_on(async {
            let (port, _got) = server(Mode::Empty).await;
            let p = tcp_probe(
                port,
                dns("a.example", DnsType::A, false),
                Duration::from_secs(1),
            );
            assert_eq!(probe(&p).await.outcome, Outcome::Up { weight: None });
            let p = tcp_probe(
                port,
                dns("a.example", DnsType::A, true),
                Duration::from_secs(1),
            );
            assert_eq!(
                probe(&p).await.outcome,
                Outcome::down("no A record in the answer")
            );
        });
    }

    #[test]
    fn dns_nxdomain_garbage_wrong_id_refused_timeout() {
        rt().block_on(async {
            let (port, _g1) = server(Mode::NxDomain).await;
            let p = tcp_probe(
                port,
                dns("nx.example", DnsType::A, false),
                Duration::from_secs(1),
            );
            assert_eq!(
                probe(&p).await.outcome,
                Outcome::down("response code Non-Existent Domain")
            );

            let (port, _g2) = server(Mode::Garbage).await;
            let p = tcp_probe(
                port,
                dns("g.example", DnsType::A, false),
                Duration::from_secs(1),
            );
            match probe(&p).await.outcome {
                Outcome::Down { reason } => {
                    assert!(reason.starts_with("malformed response"), "{reason}")
                }
                o => panic!("{o:?}"),
            }

            let (port, _g3) = server(Mode::WrongIdThenRight).await;
            let p = tcp_probe(
                port,
                dns("w.example", DnsType::A, true),
                Duration::from_secs(1),
            );
            assert_eq!(
                probe(&p).await.outcome,
                Outcome::Up { weight: None },
                "wrong id and runts are skipped"
            );

            for mode in [Mode::WrongIdOnly, Mode::QueryEcho] {
                let (port, _g4) = server(mode).await;
                let p = tcp_probe(
                    port,
                    dns("w.example", DnsType::A, false),
                    Duration::from_millis(250),
                );
                let r = probe(&p).await;
                assert_eq!(r.outcome, Outcome::down("no answer within 250 ms"));
                assert!(
                    r.latency >= Duration::from_millis(250)
                        && r.latency < Duration::from_millis(500),
                    "{:?}",
                    r.latency
                );
            }

            let p = tcp_probe(
                unused_udp_port(),
                dns("x", DnsType::A, false),
                Duration::from_secs(1),
            );
            assert_eq!(
                probe(&p).await.outcome,
                Outcome::down("ICMP port unreachable")
            );
        });
    }
}
