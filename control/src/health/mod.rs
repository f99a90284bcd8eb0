//! Real-server health checkers: keepalived's checker types as a tokio
//! library (issue 9, "Checkers").
//!
//! Layer: control. Nothing here touches the packet path. The pieces:
//! - [`probe`]: one attempt of one checker ([`CheckKind`]) against one
//!   target, bounded by its deadline ([`Probe::deadline`]); never panics,
//!   every failure is a [`Outcome::Down`] with a one-line reason.
//! - [`Machine`]: keepalived's per-checker up/down state machine
//!   (`retry`, `delay_before_retry`, `delay_loop`, `alpha`, `warmup`), pure,
//!   so it runs on a virtual clock in tests.
//! - [`Checkers`]: the driver, one tokio task per checker, a semaphore
//!   bounding the probes in flight, events out on an mpsc channel.
//! - [`parse_command`], [`check_script_security`], [`run_script`]: scripts
//!   (`MISC_CHECK`, and the config's `notify_*` / `quorum_*`), with
//!   keepalived's `enable_script_security` rule.
//!
//! - [`pool`]: checker results → real-server state → quorum and the sorry
//!   server → the health view snapshots are compiled with (pure);
//! - [`supervisor`]: the thread that runs it all in the daemon;
//! - [`report`]: what `fulcrumctl --health` shows.
//!
//! keepalived facts mirrored here are cited per item, from keepalived's
//! `keepalived/check/check_*.c`, `check_data.c`, `core/layer4.c` and
//! `core/notify.c`.

mod dns;
mod driver;
mod file;
mod http;
mod machine;
mod misc;
mod net;
mod ping;
pub mod pool;
pub mod report;
mod script;
pub mod supervisor;
mod tcp;
#[cfg(test)]
mod testutil;
mod udp;

use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::PathBuf;
use std::time::{Duration, Instant};

pub use driver::{CheckerEvent, CheckerSpec, Checkers};
pub use http::MAX_BODY;
pub use machine::{Machine, Step, Timing, Transition};
pub use script::{check_script_security, parse_command, run_script, ScriptError, ScriptOutcome};

/// A checker's identity, chosen by the caller (the config's numbering);
/// carried back in every [`CheckerEvent`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CheckerId(pub u32);

/// What one checker does: keepalived's checker types.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckKind {
    /// `TCP_CHECK`: up when a TCP connection to the target completes.
    Tcp,
    /// `HTTP_GET` (`tls: None`) or `SSL_GET` (`tls: Some`).
    Http(HttpCheck),
    /// `UDP_CHECK`.
    Udp(UdpCheck),
    /// `PING_CHECK`: ICMP echo to the target's address (port unused).
    Ping,
    /// `DNS_CHECK`.
    Dns(DnsCheck),
    /// `MISC_CHECK`: a script's exit status (the target is not contacted).
    Misc(MiscCheck),
    /// `FILE_CHECK`: a number in a file (the target is not contacted).
    File(FileCheck),
}

impl CheckKind {
    /// The checker's keyword as keepalived spells it: `TCP_CHECK`,
    /// `HTTP_GET`, `SSL_GET`, `UDP_CHECK`, `PING_CHECK`, `DNS_CHECK`,
    /// `MISC_CHECK`, `FILE_CHECK`.
    pub fn name(&self) -> &'static str {
        match self {
            CheckKind::Tcp => "TCP_CHECK",
            CheckKind::Http(h) if h.tls.is_some() => "SSL_GET",
            CheckKind::Http(_) => "HTTP_GET",
            CheckKind::Udp(_) => "UDP_CHECK",
            CheckKind::Ping => "PING_CHECK",
            CheckKind::Dns(_) => "DNS_CHECK",
            CheckKind::Misc(_) => "MISC_CHECK",
            CheckKind::File(_) => "FILE_CHECK",
        }
    }
}

/// `HTTP_GET` / `SSL_GET`: each of `urls` is fetched on its own
/// connection (as keepalived does, one request per connection with
/// `Connection: close`) and every one must pass.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpCheck {
    /// The URLs to fetch; an empty list is up once the connection (and
    /// TLS handshake) succeeds without a request, which the config should
    /// refuse (keepalived requires at least one `url`).
    pub urls: Vec<UrlCheck>,
    /// The `Host:` header (keepalived `virtualhost`); `None`: the target as
    /// `ip:port`, as keepalived sends it.
    pub virtualhost: Option<String>,
    /// `Some` for `SSL_GET`.
    pub tls: Option<TlsCheck>,
}

/// One `url { path .. status_code .. digest .. }` block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UrlCheck {
    /// The request target, e.g. `/health` (sent as is).
    pub path: String,
    /// Accepted status codes; `None`: any of 200..=299 (keepalived's
    /// default when a url has no `status_code`, `check_http.h`).
    pub status_code: Option<Vec<u16>>,
    /// MD5 of the response body (keepalived's `digest`, the hex string
    /// `genhash` prints, decoded to 16 bytes). keepalived hashes the bytes
    /// after the header up to Content-Length or the close; this client
    /// hashes the decoded body, which is the same bytes whenever the server
    /// sends no chunked transfer coding (a keepalived request is HTTP/1.0,
    /// which never gets one). At most [`MAX_BODY`] bytes are accepted.
    pub digest: Option<[u8; 16]>,
}

/// `SSL_GET`'s TLS settings.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct TlsCheck {
    /// Verify the server's certificate chain and name; `false` (keepalived's
    /// behaviour: it never verifies) accepts any certificate but still
    /// checks the handshake's signatures.
    pub verify: bool,
    /// The SNI name, also the name verified; `None`: the virtualhost if
    /// any, else no SNI (an IP address is verified against the
    /// certificate's IP SANs).
    pub sni: Option<String>,
    /// PEM file of the CA certificates trusted when `verify` is set
    /// (fulcrum's addition: keepalived has no such knob); `None`:
    /// the system bundle `/etc/ssl/certs/ca-certificates.crt`.
    pub ca_file: Option<PathBuf>,
}

/// `UDP_CHECK`, after keepalived's `check_udp.c`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UdpCheck {
    /// The datagram sent (keepalived `payload`; empty is allowed).
    pub payload: Vec<u8>,
    /// keepalived `require_reply`: `Some(prefix)` makes a reply within the
    /// timeout mandatory; the reply's length must be within
    /// `min_reply_length..=max_reply_length` and its first
    /// `min(len, prefix.len())` bytes must equal the prefix (keepalived
    /// compares the shorter of the two). `Some(vec![])`: any reply within
    /// the length bounds. `None`: silence until the timeout is up (as
    /// keepalived), only an ICMP port unreachable is down.
    pub require_reply: Option<Vec<u8>>,
    /// keepalived `min_reply_length`, default 0.
    pub min_reply_length: usize,
    /// keepalived `max_reply_length`, default 255 (longer replies are down).
    pub max_reply_length: usize,
}

/// DNS record types `DNS_CHECK` may ask for: keepalived's list
/// (`check_dns.c`); keepalived's default is `SOA`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DnsType {
    /// IPv4 address (RFC 1035 §3.4.1).
    A,
    /// Name server (RFC 1035 §3.3.11).
    Ns,
    /// Canonical name (RFC 1035 §3.3.1).
    Cname,
    /// Start of authority (RFC 1035 §3.3.13), keepalived's default.
    Soa,
    /// Mail exchange (RFC 1035 §3.3.9).
    Mx,
    /// Text (RFC 1035 §3.3.14).
    Txt,
    /// IPv6 address (RFC 3596).
    Aaaa,
}

impl DnsType {
    /// The type's mnemonic as keepalived's config spells it (`"A"`, `"NS"`, ..).
    pub fn name(self) -> &'static str {
        match self {
            DnsType::A => "A",
            DnsType::Ns => "NS",
            DnsType::Cname => "CNAME",
            DnsType::Soa => "SOA",
            DnsType::Mx => "MX",
            DnsType::Txt => "TXT",
            DnsType::Aaaa => "AAAA",
        }
    }
}

/// `DNS_CHECK`, after keepalived's `check_dns.c`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DnsCheck {
    /// The name asked for; `""` or `"."` is the root (keepalived's default).
    pub name: String,
    /// The type asked for (keepalived `type`).
    pub qtype: DnsType,
    /// fulcrum's addition: also require at least one answer record of
    /// `qtype`. keepalived (`false` here) is up on any response with our id,
    /// QR set and RCODE NOERROR, answers or not.
    pub require_answer: bool,
}

/// `MISC_CHECK`, after keepalived's `check_misc.c`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MiscCheck {
    /// The command (keepalived `misc_path`, split by [`parse_command`]).
    pub argv: Vec<String>,
    /// keepalived `misc_timeout`; keepalived's default when unset is the
    /// virtual server's `delay_loop` (the config's business).
    pub timeout: Duration,
    /// keepalived `misc_dynamic`: exit 2..=255 is up with weight
    /// `status - 2`.
    pub dynamic: bool,
}

/// `FILE_CHECK`: the state of a real server read from a file, for
/// draining by hand.
///
/// The file's first 127 bytes are read and parsed as keepalived's
/// `track_file` reads them (`trackers/track_file.c`): C `strtol` with base
/// 0 (leading blanks, optional sign, `0x` hex or leading-`0` octal, anything
/// after the number ignored); a missing, unreadable or empty file, or text
/// with no number, reads as 0. Out of the 32-bit range is down ("invalid").
///
/// The meaning is fulcrum's (keepalived's own meaning, with `weight 0`,
/// is the reverse: a non-zero value is a fault): **0 or negative is down**,
/// positive is up; with `dynamic`, up with that weight (clamped to
/// 65535, IPVS's largest), so `echo 0 > file` drains a server and
/// `echo 50 > file` sets its weight. The file is read on every check
/// (`delay_loop`), not watched with inotify as keepalived does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileCheck {
    /// The file read.
    pub path: PathBuf,
    /// Up carries the file's number as the weight.
    pub dynamic: bool,
}

/// One checker's probe: what to do, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Probe {
    /// The checker type and its settings.
    pub kind: CheckKind,
    /// keepalived `connect_ip`:`connect_port` (default: the real server).
    pub target: SocketAddrV4,
    /// keepalived `bindto`: the source address of the probe's socket.
    pub bindto: Option<Ipv4Addr>,
    /// keepalived `connect_timeout` (default 5 s, `check_data.c`): the
    /// whole exchange of a network check, connect to last byte.
    pub connect_timeout: Duration,
}

impl Probe {
    /// The longest one [`probe`] of this checker can take: `connect_timeout`
    /// for TCP, UDP, PING and DNS; `connect_timeout` per url for HTTP
    /// (each url is its own connection, as in keepalived); the misc
    /// timeout for `MISC_CHECK`; one second for `FILE_CHECK`'s read.
    pub fn deadline(&self) -> Duration {
        match &self.kind {
            CheckKind::Http(h) => self.connect_timeout * (h.urls.len().max(1) as u32),
            CheckKind::Misc(m) => m.timeout,
            CheckKind::File(_) => file::READ_TIMEOUT,
            _ => self.connect_timeout,
        }
    }
}

/// The verdict of one probe.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The check passed. `weight`: a weight the check reports
    /// (`misc_dynamic`'s exit status - 2, a dynamic `FILE_CHECK`'s number);
    /// `None`: keep the configured weight.
    Up { weight: Option<u32> },
    /// The check failed; `reason` is one line without the checker's label,
    /// e.g. `status 503, expected 200-299` or `connect: connection refused`.
    Down { reason: String },
}

impl Outcome {
    /// True for [`Outcome::Up`].
    pub fn is_up(&self) -> bool {
        matches!(self, Outcome::Up { .. })
    }

    pub(crate) fn down(reason: impl Into<String>) -> Self {
        Outcome::Down {
            reason: reason.into(),
        }
    }

    pub(crate) const UP: Outcome = Outcome::Up { weight: None };
}

/// One probe's verdict and how long it took (start to verdict, wall clock).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProbeResult {
    /// Up (with an optional weight) or down (with the reason).
    pub outcome: Outcome,
    /// From the probe's start to its verdict.
    pub latency: Duration,
}

/// Runs one attempt of `p`'s check and returns its verdict.
///
/// Never panics and never takes longer than [`Probe::deadline`] (plus the
/// scheduler's wake-up latency): a server that accepts and then stalls, or
/// trickles bytes, is a timeout. Needs a tokio runtime with the IO and
/// time drivers enabled.
pub async fn probe(p: &Probe) -> ProbeResult {
    let start = Instant::now();
    let outcome = match &p.kind {
        CheckKind::Tcp => tcp::check(p).await,
        CheckKind::Http(h) => http::check(p, h).await,
        CheckKind::Udp(u) => udp::check(p, u).await,
        CheckKind::Ping => ping::check(p).await,
        CheckKind::Dns(d) => dns::check(p, d).await,
        CheckKind::Misc(m) => misc::check(m).await,
        CheckKind::File(f) => file::check(f).await,
    };
    ProbeResult {
        outcome,
        latency: start.elapsed(),
    }
}
