//! HTTP_GET / SSL_GET against scripted tokio servers, a tokio-rustls
//! server with rcgen certificates, and a real nginx.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;
use std::time::Duration;

use md5::{Digest, Md5};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

use super::super::testutil::{rt, tcp_probe, unused_port, TempDir};
use super::super::{probe, CheckKind, HttpCheck, Outcome, Probe, TlsCheck, UrlCheck};
use super::MAX_BODY;

/// How a scripted server answers.
#[derive(Clone)]
enum Reply {
    /// These bytes, then close.
    Bytes(Vec<u8>),
    /// A valid header, then the body one byte every 100 ms, forever.
    Trickle,
    /// A chunked body that never ends.
    Endless,
    /// Read the request, then reset the connection (SO_LINGER 0).
    Reset,
    /// Read the request, never answer, keep the connection open.
    Silent,
    /// Read the request, close without a byte.
    Close,
}

fn response(status: u16, body: &str) -> Reply {
    Reply::Bytes(
        format!(
            "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
    )
}

/// Reads one request head (to the blank line).
async fn read_head<S: AsyncRead + Unpin>(s: &mut S) -> String {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match s.read(&mut b).await {
            Ok(1) => head.push(b[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&head).into_owned()
}

async fn answer<S: AsyncRead + AsyncWrite + Unpin>(
    mut s: S,
    reply: &Reply,
    heads: &UnboundedSender<String>,
) {
    let _ = heads.send(read_head(&mut s).await);
    match reply {
        Reply::Bytes(b) => {
            let _ = s.write_all(b).await;
            let _ = s.shutdown().await;
        }
        Reply::Trickle => {
            let _ = s
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
                .await;
            loop {
                if s.write_all(b"x").await.is_err() {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        Reply::Endless => {
            let _ = s
                .write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                .await;
            let chunk = format!("4000\r\n{}\r\n", "y".repeat(0x4000));
            while s.write_all(chunk.as_bytes()).await.is_ok() {}
        }
        Reply::Silent => tokio::time::sleep(Duration::from_secs(60)).await,
        Reply::Close | Reply::Reset => {}
    }
}

/// A plain-TCP scripted server; the request heads come out of the channel.
async fn server(reply: Reply) -> (u16, UnboundedReceiver<String>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let (tx, rx) = unbounded_channel();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let (reply, tx) = (reply.clone(), tx.clone());
            tokio::spawn(async move {
                if matches!(reply, Reply::Reset) {
                    let mut s = s;
                    let _ = tx.send(read_head(&mut s).await);
                    socket2::SockRef::from(&s)
                        .set_linger(Some(Duration::ZERO))
                        .unwrap();
                    drop(s);
                } else {
                    answer(s, &reply, &tx).await;
                }
            });
        }
    });
    (port, rx)
}

fn url(path: &str) -> UrlCheck {
    UrlCheck {
        path: path.into(),
        status_code: None,
        digest: None,
    }
}

fn http(port: u16, urls: Vec<UrlCheck>, ms: u64) -> Probe {
    tcp_probe(
        port,
        CheckKind::Http(HttpCheck {
            urls,
            virtualhost: None,
            tls: None,
        }),
        Duration::from_millis(ms),
    )
}

fn md5(b: &[u8]) -> [u8; 16] {
    Md5::digest(b).into()
}

fn down(p: &Probe) -> String {
    match rt().block_on(probe(p)).outcome {
        Outcome::Down { reason } => reason,
        o => panic!("expected down, got {o:?}"),
    }
}

#[test]
fn http_up_and_the_request_sent() {
    rt().block_on(async {
        let (port, mut heads) = server(response(200, "hello")).await;
        let r = probe(&http(port, vec![url("/health?x=1")], 1000)).await;
        assert_eq!(r.outcome, Outcome::Up { weight: None });
        let head = heads.recv().await.unwrap();
        assert!(head.starts_with("GET /health?x=1 HTTP/1.1\r\n"), "{head}");
        let lower = head.to_ascii_lowercase();
        assert!(
            lower.contains(&format!("host: 127.0.0.1:{port}\r\n")),
            "Host is ip:port without a virtualhost: {head}"
        );
        assert!(lower.contains("user-agent: keepaliveclient\r\n"), "{head}");
        assert!(lower.contains("connection: close\r\n"), "{head}");
    });
}

#[test]
fn http_virtualhost_header_is_sent() {
    rt().block_on(async {
        let (port, mut heads) = server(response(200, "")).await;
        let mut p = http(port, vec![url("/")], 1000);
        if let CheckKind::Http(h) = &mut p.kind {
            h.virtualhost = Some("www.example.com".into());
        }
        assert_eq!(probe(&p).await.outcome, Outcome::Up { weight: None });
        let head = heads.recv().await.unwrap().to_ascii_lowercase();
        assert!(head.contains("host: www.example.com\r\n"), "{head}");
    });
}

#[test]
fn http_status_rules() {
    rt().block_on(async {
        let (p503, _a) = server(response(503, "busy")).await;
        let (p204, _b) = server(response(204, "")).await;
        let (p301, _c) = server(response(301, "")).await;
        assert_eq!(
            probe(&http(p503, vec![url("/")], 1000)).await.outcome,
            Outcome::down("status 503, expected 200-299")
        );
        assert_eq!(
            probe(&http(p204, vec![url("/")], 1000)).await.outcome,
            Outcome::Up { weight: None },
            "any 2xx by default"
        );
        let only200 = UrlCheck {
            status_code: Some(vec![200]),
            ..url("/")
        };
        assert_eq!(
            probe(&http(p204, vec![only200.clone()], 1000))
                .await
                .outcome,
            Outcome::down("status 204, expected 200")
        );
        let redirects = UrlCheck {
            status_code: Some(vec![301, 302]),
            ..url("/")
        };
        assert_eq!(
            probe(&http(p301, vec![redirects], 1000)).await.outcome,
            Outcome::Up { weight: None }
        );
        // every url must pass; the failing one is named
        assert_eq!(
            probe(&http(p204, vec![url("/a"), only200], 1000))
                .await
                .outcome,
            Outcome::down("url /: status 204, expected 200")
        );
    });
}

#[test]
fn http_digest_match_and_mismatch() {
    rt().block_on(async {
        let (port, _h) = server(response(200, "<html>ok</html>\n")).await;
        let good = UrlCheck {
            digest: Some(md5(b"<html>ok</html>\n")),
            ..url("/")
        };
        assert_eq!(
            probe(&http(port, vec![good], 1000)).await.outcome,
            Outcome::Up { weight: None }
        );
        let want = md5(b"something else");
        let bad = UrlCheck {
            digest: Some(want),
            ..url("/")
        };
        let got: String = md5(b"<html>ok</html>\n")
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let wanted: String = want.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            probe(&http(port, vec![bad], 1000)).await.outcome,
            Outcome::down(format!("body digest {got}, expected {wanted}"))
        );
    });
    // a chunked body is hashed decoded
    rt().block_on(async {
        let (port, _h) =
            server(Reply::Bytes(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n".to_vec())).await;
        let u = UrlCheck { digest: Some(md5(b"abcde")), ..url("/") };
        assert_eq!(probe(&http(port, vec![u], 1000)).await.outcome, Outcome::Up { weight: None });
    });
}

#[test]
fn http_garbage_reset_close_refused() {
    let r = rt();
    let (garbage, _a) = r.block_on(server(Reply::Bytes(b"SSH-2.0-OpenSSH_9.2\r\n".to_vec())));
    let (reset, _b) = r.block_on(server(Reply::Reset));
    let (close, _c) = r.block_on(server(Reply::Close));
    let (short, _d) = r.block_on(server(Reply::Bytes(
        b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nonly this".to_vec(),
    )));
    // the servers run on `r`; probe on it too
    let down_on = |p: Probe| match r.block_on(probe(&p)).outcome {
        Outcome::Down { reason } => reason,
        o => panic!("{o:?}"),
    };
    let g = down_on(http(garbage, vec![url("/")], 1000));
    assert!(g.starts_with("not an HTTP response"), "{g}");
    let rs = down_on(http(reset, vec![url("/")], 1000));
    assert!(rs.contains("reset") || rs.contains("closed"), "{rs}");
    let c = down_on(http(close, vec![url("/")], 1000));
    assert!(c.contains("closed before"), "{c}");
    let s = down_on(http(short, vec![url("/")], 1000));
    assert!(s.starts_with("body:"), "a truncated body is down: {s}");
    assert_eq!(
        down(&http(unused_port(), vec![url("/")], 1000)),
        "connect: connection refused"
    );
}

#[test]
fn http_slow_loris_half_open_and_endless_body_are_bounded() {
    let r = rt();
    let (trickle, _a) = r.block_on(server(Reply::Trickle));
    let (silent, _b) = r.block_on(server(Reply::Silent));
    let (endless, _c) = r.block_on(server(Reply::Endless));
    let timed = |p: Probe| {
        let res = r.block_on(probe(&p));
        assert!(
            res.latency >= Duration::from_millis(400) && res.latency < Duration::from_millis(650),
            "{:?}",
            res.latency
        );
        res.outcome
    };
    assert_eq!(
        timed(http(trickle, vec![url("/")], 400)),
        Outcome::down("timeout after 400 ms (reading the body)")
    );
    assert_eq!(
        timed(http(silent, vec![url("/")], 400)),
        Outcome::down("timeout after 400 ms (waiting for the response header)")
    );
    let res = r.block_on(probe(&http(endless, vec![url("/")], 5000)));
    assert_eq!(
        res.outcome,
        Outcome::down(format!("body exceeds {MAX_BODY} bytes"))
    );
    assert!(
        res.latency < Duration::from_secs(2),
        "stops at the cap, not the timeout: {:?}",
        res.latency
    );
}

// ---- SSL_GET ----

struct Pki {
    ca_pem: String,
    chain: Vec<rustls::pki_types::CertificateDer<'static>>,
    key: rustls::pki_types::PrivateKeyDer<'static>,
}

/// A CA and a leaf for `localhost` and 127.0.0.1 signed by it.
fn pki() -> Pki {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(rcgen::DnType::CommonName, "fulcrum test CA");
    let ca = ca.self_signed(&ca_key).unwrap();
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf =
        rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .unwrap()
            .signed_by(&leaf_key, &ca, &ca_key)
            .unwrap();
    Pki {
        ca_pem: ca.pem(),
        chain: vec![leaf.der().clone()],
        key: rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
    }
}

/// A TLS server answering `reply`; each connection's SNI comes out of the
/// second channel ("" for none).
async fn tls_server(
    p: &Pki,
    reply: Reply,
) -> (u16, UnboundedReceiver<String>, UnboundedReceiver<String>) {
    let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(p.chain.clone(), p.key.clone_key())
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let (tx, rx) = unbounded_channel();
    let (sni_tx, sni_rx) = unbounded_channel();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            let (acceptor, reply, tx, sni_tx) =
                (acceptor.clone(), reply.clone(), tx.clone(), sni_tx.clone());
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(s).await {
                    let _ = sni_tx.send(tls.get_ref().1.server_name().unwrap_or("").to_string());
                    answer(tls, &reply, &tx).await;
                }
            });
        }
    });
    (port, rx, sni_rx)
}

fn ssl(port: u16, tls: TlsCheck, vhost: Option<&str>) -> Probe {
    tcp_probe(
        port,
        CheckKind::Http(HttpCheck {
            urls: vec![url("/")],
            virtualhost: vhost.map(String::from),
            tls: Some(tls),
        }),
        Duration::from_secs(2),
    )
}

#[test]
fn ssl_get_without_verification_accepts_any_certificate() {
    let pki = pki();
    rt().block_on(async {
        let (port, mut heads, mut sni) = tls_server(&pki, response(200, "tls ok")).await;
        let p = ssl(port, TlsCheck::default(), None);
        assert_eq!(p.kind.name(), "SSL_GET");
        assert_eq!(probe(&p).await.outcome, Outcome::Up { weight: None });
        assert!(heads.recv().await.unwrap().starts_with("GET / HTTP/1.1"));
        assert_eq!(sni.recv().await.unwrap(), "", "no SNI for an IP target");
        // with a virtualhost, SNI and Host carry it
        let p = ssl(port, TlsCheck::default(), Some("www.example.com:8443"));
        assert_eq!(probe(&p).await.outcome, Outcome::Up { weight: None });
        assert_eq!(sni.recv().await.unwrap(), "www.example.com");
        assert!(heads
            .recv()
            .await
            .unwrap()
            .to_ascii_lowercase()
            .contains("host: www.example.com:8443\r\n"));
    });
}

#[test]
fn ssl_get_with_verification() {
    let pki = pki();
    let dir = TempDir::new("ssl");
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &pki.ca_pem).unwrap();
    let other = dir.path().join("other.pem");
    std::fs::write(
        &other,
        rcgen::generate_simple_self_signed(vec!["x".to_string()])
            .unwrap()
            .cert
            .pem(),
    )
    .unwrap();
    rt().block_on(async {
        let (port, _h, mut sni) = tls_server(&pki, response(200, "")).await;
        let v = |ca: &std::path::Path, sni: Option<&str>| TlsCheck {
            verify: true,
            sni: sni.map(String::from),
            ca_file: Some(ca.to_path_buf()),
        };
        assert_eq!(
            probe(&ssl(port, v(&ca, Some("localhost")), None))
                .await
                .outcome,
            Outcome::Up { weight: None }
        );
        assert_eq!(sni.recv().await.unwrap(), "localhost");
        assert_eq!(
            probe(&ssl(port, v(&ca, None), None)).await.outcome,
            Outcome::Up { weight: None },
            "the IP SAN verifies"
        );
        match probe(&ssl(port, v(&ca, Some("wrong.example")), None))
            .await
            .outcome
        {
            Outcome::Down { reason } => assert!(
                reason.starts_with("TLS handshake:") && reason.contains("not valid for name"),
                "{reason}"
            ),
            o => panic!("{o:?}"),
        }
        match probe(&ssl(port, v(&other, Some("localhost")), None))
            .await
            .outcome
        {
            Outcome::Down { reason } => assert!(reason.contains("UnknownIssuer"), "{reason}"),
            o => panic!("{o:?}"),
        }
    });
}

#[test]
fn ssl_get_against_plain_http_is_down() {
    rt().block_on(async {
        // A plain server that speaks first: the client reads HTTP bytes
        // where a ServerHello belongs.
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                let _ = s
                    .write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                    .await;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        });
        match probe(&ssl(port, TlsCheck::default(), None)).await.outcome {
            Outcome::Down { reason } => assert!(reason.starts_with("TLS handshake:"), "{reason}"),
            o => panic!("{o:?}"),
        }
        // A plain server waiting for a request line never answers the
        // ClientHello: the handshake times out.
        let (port, _h) = server(response(200, "plain")).await;
        let mut p = ssl(port, TlsCheck::default(), None);
        p.connect_timeout = Duration::from_millis(300);
        assert_eq!(
            probe(&p).await.outcome,
            Outcome::down("timeout after 300 ms (TLS handshake)")
        );
    });
}

// ---- a real nginx ----

/// nginx on 127.0.0.1:`port` with its own prefix, config, pid and logs in
/// a temp dir; killed on drop.
struct Nginx {
    child: std::process::Child,
    port: u16,
    _dir: TempDir,
}

impl Nginx {
    const BIN: &'static str = "/usr/sbin/nginx";

    fn start() -> Nginx {
        assert!(
            std::path::Path::new(Self::BIN).exists(),
            "{} is missing: the HTTP_GET tests against a real server need nginx (apt-get install nginx-light)",
            Self::BIN
        );
        let dir = TempDir::new("nginx");
        let d = dir.path();
        std::fs::create_dir_all(d.join("www")).unwrap();
        std::fs::write(d.join("www/index.html"), "<h1>fulcrum real server</h1>\n").unwrap();
        let port = unused_port();
        let conf = format!(
            r#"daemon off;
master_process off;
pid {d}/nginx.pid;
error_log {d}/error.log;
events {{ worker_connections 64; }}
http {{
    access_log {d}/access.log;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    server {{
        listen 127.0.0.1:{port} default_server;
        location / {{ return 404; }}
    }}
    server {{
        listen 127.0.0.1:{port};
        server_name app.example;
        root {d}/www;
        location = /fail {{ return 503; }}
    }}
}}
"#,
            d = d.display()
        );
        std::fs::write(d.join("nginx.conf"), conf).unwrap();
        let child = std::process::Command::new(Self::BIN)
            .arg("-p")
            .arg(d)
            .arg("-c")
            .arg(d.join("nginx.conf"))
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("cannot start nginx");
        let ready = (0..100).any(|_| {
            if std::net::TcpStream::connect(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port)).is_ok() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
            false
        });
        let log = std::fs::read_to_string(d.join("error.log")).unwrap_or_default();
        let mut n = Nginx {
            child,
            port,
            _dir: dir,
        };
        if !ready {
            let _ = n.child.kill();
            panic!("nginx did not listen on 127.0.0.1:{port} within 5 s; error.log:\n{log}");
        }
        n
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn http_get_against_nginx() {
    let ng = Nginx::start();
    let body = b"<h1>fulcrum real server</h1>\n";
    let vhost = |urls: Vec<UrlCheck>, host: Option<&str>| {
        tcp_probe(
            ng.port,
            CheckKind::Http(HttpCheck {
                urls,
                virtualhost: host.map(String::from),
                tls: None,
            }),
            Duration::from_secs(2),
        )
    };
    let rt = rt();
    // the virtualhost selects nginx's server block: the page, its digest
    let ok = UrlCheck {
        digest: Some(md5(body)),
        status_code: Some(vec![200]),
        ..url("/index.html")
    };
    assert_eq!(
        rt.block_on(probe(&vhost(vec![ok.clone()], Some("app.example"))))
            .outcome,
        Outcome::Up { weight: None }
    );
    // without it, Host is ip:port: the default server's 404
    assert_eq!(
        rt.block_on(probe(&vhost(vec![ok.clone()], None))).outcome,
        Outcome::down("status 404, expected 200")
    );
    let fail = url("/fail");
    assert_eq!(
        rt.block_on(probe(&vhost(vec![ok.clone(), fail], Some("app.example"))))
            .outcome,
        Outcome::down("url /fail: status 503, expected 200-299")
    );
    let wrong = UrlCheck {
        digest: Some(md5(b"changed")),
        ..url("/index.html")
    };
    match rt
        .block_on(probe(&vhost(vec![wrong], Some("app.example"))))
        .outcome
    {
        Outcome::Down { reason } => assert!(reason.starts_with("body digest "), "{reason}"),
        o => panic!("{o:?}"),
    }
    // nginx stopped: refused
    let port = ng.port;
    drop(ng);
    let p = tcp_probe(
        port,
        CheckKind::Http(HttpCheck {
            urls: vec![ok],
            virtualhost: None,
            tls: None,
        }),
        Duration::from_secs(1),
    );
    assert_eq!(
        rt.block_on(probe(&p)).outcome,
        Outcome::down("connect: connection refused")
    );
}
