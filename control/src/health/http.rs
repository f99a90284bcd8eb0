//! `HTTP_GET` and `SSL_GET` (keepalived `check_http.c`, `check_ssl.c`) on
//! hyper's HTTP/1.1 client and rustls (ring provider).
//!
//! Per url, as keepalived: a new connection, one `GET <path>` with
//! `Host:` = the virtualhost or `ip:port`, `User-Agent: KeepAliveClient`,
//! `Connection: close`; the status must be in the url's set (default
//! 200-299) and, with a digest, the MD5 of the body must match. The url's
//! whole exchange (connect, handshake, request, headers, body) is bounded
//! by `connect_timeout`, so a server that trickles bytes is a timeout; the
//! body is read to its end (hashing as it streams) and is down past
//! [`MAX_BODY`] bytes, so an endless body costs neither memory nor time.

use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::header::{CONNECTION, HOST, USER_AGENT};
use hyper_util::rt::TokioIo;
use md5::{Digest, Md5};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite};

use super::net::{connect_tcp, within};
use super::{HttpCheck, Outcome, Probe, TlsCheck, UrlCheck};

/// The largest response body accepted, 1 MiB; a longer body is down
/// (`body exceeds 1048576 bytes`). keepalived has no limit; health pages
/// are small.
pub const MAX_BODY: usize = 1 << 20;

/// The system CA bundle used by `verify` without a `ca_file` (Debian's).
const SYSTEM_CA: &str = "/etc/ssl/certs/ca-certificates.crt";

pub(super) async fn check(p: &Probe, h: &HttpCheck) -> Outcome {
    let tls = match &h.tls {
        None => None,
        Some(t) => match tls_setup(p, h, t) {
            Ok(v) => Some(v),
            Err(reason) => return Outcome::Down { reason },
        },
    };
    if h.urls.is_empty() {
        // Connection (and handshake) only.
        let phase = Phase::default();
        let r = within(p.connect_timeout, || phase.name().into(), async {
            let s = connect_tcp(p).await?;
            if let Some((cfg, name)) = &tls {
                phase.set(Phase::TLS);
                handshake(s, cfg, name).await?;
            }
            Ok(())
        })
        .await;
        return match r {
            Ok(()) => Outcome::UP,
            Err(reason) => Outcome::Down { reason },
        };
    }
    let host = match &h.virtualhost {
        Some(v) => v.clone(),
        None => p.target.to_string(),
    };
    for url in &h.urls {
        let phase = Phase::default();
        let r = within(
            p.connect_timeout,
            || phase.name().into(),
            fetch(p, &host, url, tls.as_ref(), &phase),
        )
        .await;
        let verdict = r.and_then(|(status, body)| judge(url, status, body));
        if let Err(reason) = verdict {
            let reason = if h.urls.len() > 1 {
                format!("url {}: {reason}", url.path)
            } else {
                reason
            };
            return Outcome::Down { reason };
        }
    }
    Outcome::UP
}

/// Status and body digest against the url's expectations.
fn judge(url: &UrlCheck, status: u16, digest: [u8; 16]) -> Result<(), String> {
    let ok = match &url.status_code {
        None => (200..=299).contains(&status),
        Some(set) => set.contains(&status),
    };
    if !ok {
        let want = match &url.status_code {
            None => "200-299".to_string(),
            Some(set) => set.iter().map(u16::to_string).collect::<Vec<_>>().join(","),
        };
        return Err(format!("status {status}, expected {want}"));
    }
    if let Some(want) = url.digest {
        if want != digest {
            return Err(format!(
                "body digest {}, expected {}",
                hex(&digest),
                hex(&want)
            ));
        }
    }
    Ok(())
}

fn hex(d: &[u8; 16]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// Which part of the exchange a url is in, for the timeout's reason.
#[derive(Default)]
struct Phase(AtomicU8);

impl Phase {
    const CONNECT: u8 = 0;
    const TLS: u8 = 1;
    const HEADERS: u8 = 2;
    const BODY: u8 = 3;
    fn set(&self, v: u8) {
        self.0.store(v, Ordering::Relaxed);
    }
    fn name(&self) -> &'static str {
        match self.0.load(Ordering::Relaxed) {
            Self::CONNECT => "connect",
            Self::TLS => "TLS handshake",
            Self::HEADERS => "waiting for the response header",
            _ => "reading the body",
        }
    }
}

/// One url: connect, optional TLS, request, response; the status and the
/// body's MD5.
async fn fetch(
    p: &Probe,
    host: &str,
    url: &UrlCheck,
    tls: Option<&(Arc<ClientConfig>, ServerName<'static>)>,
    phase: &Phase,
) -> Result<(u16, [u8; 16]), String> {
    let req = hyper::Request::get(url.path.as_str())
        .header(HOST, host)
        .header(USER_AGENT, "KeepAliveClient")
        .header(CONNECTION, "close")
        .body(Empty::<Bytes>::new())
        .map_err(|e| format!("bad request for url {:?}: {e}", url.path))?;
    let tcp = connect_tcp(p).await?;
    match tls {
        None => exchange(tcp, req, phase).await,
        Some((cfg, name)) => {
            phase.set(Phase::TLS);
            let s = handshake(tcp, cfg, name).await?;
            exchange(s, req, phase).await
        }
    }
}

async fn handshake(
    tcp: tokio::net::TcpStream,
    cfg: &Arc<ClientConfig>,
    name: &ServerName<'static>,
) -> Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>, String> {
    tokio_rustls::TlsConnector::from(cfg.clone())
        .connect(name.clone(), tcp)
        .await
        .map_err(|e| format!("TLS handshake: {}", super::net::io_reason(&e)))
}

/// Sends `req` on a fresh HTTP/1.1 connection over `io` and reads the
/// whole response, driving the connection in this task (nothing is
/// spawned, so dropping the future on timeout frees everything).
async fn exchange<S>(
    io: S,
    req: hyper::Request<Empty<Bytes>>,
    phase: &Phase,
) -> Result<(u16, [u8; 16]), String>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .map_err(|e| format!("HTTP handshake: {e}"))?;
    phase.set(Phase::HEADERS);
    let talk = async move {
        let resp = sender.send_request(req).await.map_err(hyper_reason)?;
        phase.set(Phase::BODY);
        let status = resp.status().as_u16();
        let mut body = resp.into_body();
        let mut md5 = Md5::new();
        let mut len = 0usize;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|e| format!("body: {}", hyper_reason(e)))?;
            if let Some(d) = frame.data_ref() {
                len += d.len();
                if len > MAX_BODY {
                    return Err(format!("body exceeds {MAX_BODY} bytes"));
                }
                md5.update(d);
            }
        }
        Ok((status, md5.finalize().into()))
    };
    drive(talk, conn).await
}

/// Polls `talk` while driving `conn` (the connection's I/O); if `conn`
/// ends first, `talk` sees its end through the response channels.
async fn drive<T>(talk: impl Future<Output = T>, conn: impl Future) -> T {
    let mut talk = pin!(talk);
    let mut conn = pin!(conn);
    tokio::select! {
        biased;
        r = &mut talk => r,
        _ = &mut conn => talk.await,
    }
}

fn hyper_reason(e: hyper::Error) -> String {
    let mut s = if e.is_parse() || e.is_parse_status() {
        format!("not an HTTP response ({e})")
    } else if e.is_incomplete_message() {
        "connection closed before the response was complete".to_string()
    } else {
        e.to_string()
    };
    let mut src = std::error::Error::source(&e);
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

/// The TLS client config and the server name for `SSL_GET`.
fn tls_setup(
    p: &Probe,
    h: &HttpCheck,
    t: &TlsCheck,
) -> Result<(Arc<ClientConfig>, ServerName<'static>), String> {
    let name = match t
        .sni
        .as_deref()
        .or(h.virtualhost.as_deref().map(strip_port))
    {
        Some(n) => ServerName::try_from(n.to_string())
            .map_err(|_| format!("invalid TLS server name {n:?}"))?,
        None => ServerName::IpAddress(std::net::IpAddr::V4(*p.target.ip()).into()),
    };
    let cfg = if t.verify {
        verifying_config(t)?
    } else {
        no_verify_config()?
    };
    Ok((cfg, name))
}

/// `virtualhost` may carry a port (`www.example.com:8443`); SNI may not.
fn strip_port(v: &str) -> &str {
    match v.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) && !h.contains(':') => h,
        _ => v,
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// keepalived's default: any certificate. Built once.
fn no_verify_config() -> Result<Arc<ClientConfig>, String> {
    static CFG: OnceLock<Result<Arc<ClientConfig>, String>> = OnceLock::new();
    CFG.get_or_init(|| {
        let prov = provider();
        let cfg = ClientConfig::builder_with_provider(prov.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("TLS setup: {e}"))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AnyCert(prov)))
            .with_no_client_auth();
        Ok(Arc::new(cfg))
    })
    .clone()
}

/// Verifying config from `ca_file` or the system bundle (read per probe:
/// a changed CA file applies at the next check).
fn verifying_config(t: &TlsCheck) -> Result<Arc<ClientConfig>, String> {
    let path = t.ca_file.clone().unwrap_or_else(|| SYSTEM_CA.into());
    let mut roots = RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(&path)
        .map_err(|e| format!("CA file {}: {e}", path.display()))?;
    for c in certs {
        let c = c.map_err(|e| format!("CA file {}: {e}", path.display()))?;
        roots
            .add(c)
            .map_err(|e| format!("CA file {}: {e}", path.display()))?;
    }
    if roots.is_empty() {
        return Err(format!("CA file {}: no certificates", path.display()));
    }
    let cfg = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(cfg))
}

/// Accepts any certificate (keepalived never verifies) but still checks
/// the handshake signatures with the provider's algorithms.
#[derive(Debug)]
struct AnyCert(Arc<CryptoProvider>);

impl ServerCertVerifier for AnyCert {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
#[path = "http_tests.rs"]
mod tests;
