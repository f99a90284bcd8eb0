//! The health-check part of the schema: keepalived's checkers and their
//! knobs, with keepalived's names, units and defaults.
//!
//! Layer: control, first stage. A checker is written as keepalived's block
//! name with its parameters: `TCP_CHECK(connect_timeout: 3)`,
//! `HTTP_GET(url: [(path: "/health", status_code: [200])])`,
//! `MISC_CHECK(misc_path: "/etc/fulcrum/check.sh web1", misc_timeout: 5)`.
//! Every checker takes the common parameters (`connect_ip`, `connect_port`,
//! `bindto`, `connect_timeout`, `retry`, `delay_before_retry`, `warmup`,
//! `delay_loop`, `alpha`); the type-specific ones are refused on another
//! type by [`super::validate()`](mod@super::validate) with a positioned
//! error. Timing knobs are looked up checker → real server → virtual
//! service → keepalived's default ([`Timing`]).
//!
//! Guarantees: the value types here ([`Seconds`], [`HexBytes`],
//! [`Md5Digest`], [`StatusCodes`], [`DnsTypeName`]) are valid once they
//! deserialize; their errors are positioned at the value.
#![forbid(unsafe_code)]

use std::fmt;
use std::time::Duration;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::Deserialize;

use super::types::{Ipv4Str, VALUE_MARK};

/// Longest accepted time knob: one day, in seconds.
pub const MAX_SECONDS: f64 = 86_400.0;

fn value_err<E: de::Error>(m: impl fmt::Display) -> E {
    E::custom(format_args!("{VALUE_MARK}{m}"))
}

/// A duration in seconds as keepalived's timers take it: an integer or a
/// decimal (`2`, `0.5`), 0..=86400, resolved to microseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Seconds(pub Duration);

impl Seconds {
    /// From whole seconds.
    pub const fn secs(s: u64) -> Seconds {
        Seconds(Duration::from_secs(s))
    }

    fn check<E: de::Error>(v: f64) -> Result<Seconds, E> {
        if !v.is_finite() || !(0.0..=MAX_SECONDS).contains(&v) {
            return Err(value_err(format_args!(
                "invalid time {v}: expected 0..=86400 seconds"
            )));
        }
        Ok(Seconds(Duration::from_micros((v * 1e6).round() as u64)))
    }
}

impl fmt::Display for Seconds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} s", self.0.as_secs_f64())
    }
}

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Seconds;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a time in seconds (e.g. 3 or 0.5)")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Seconds, E> {
                Seconds::check(v as f64)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Seconds, E> {
                Seconds::check(v as f64)
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Seconds, E> {
                Seconds::check(v)
            }
        }
        d.deserialize_any(V)
    }
}

/// Bytes written as hexadecimal text (keepalived's `UDP_CHECK` `payload`
/// and `require_reply`): an even number of hex digits, at most 1472 bytes
/// (one unfragmented UDP datagram on a 1500-byte link).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct HexBytes(pub Vec<u8>);

/// Most bytes of a [`HexBytes`] value.
pub const MAX_HEX_BYTES: usize = 1472;

fn parse_hex(s: &str) -> Result<Vec<u8>, String> {
    let t: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    if !t.len().is_multiple_of(2) {
        return Err(format!(
            "invalid hex \"{s}\": expected an even number of hex digits"
        ));
    }
    let out: Option<Vec<u8>> = (0..t.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(t.get(i..i + 2)?, 16).ok())
        .collect();
    out.ok_or_else(|| format!("invalid hex \"{s}\": expected only 0-9, a-f"))
}

impl<'de> Deserialize<'de> for HexBytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let b = parse_hex(&s).map_err(value_err::<D::Error>)?;
        if b.len() > MAX_HEX_BYTES {
            return Err(value_err(format_args!(
                "{} bytes of payload: expected at most {MAX_HEX_BYTES}",
                b.len()
            )));
        }
        Ok(HexBytes(b))
    }
}

/// keepalived's HTTP_GET `digest`: the MD5 of the page body as 32 hex
/// digits (what `genhash` prints).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Md5Digest(pub [u8; 16]);

impl<'de> Deserialize<'de> for Md5Digest {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        let b = parse_hex(&s).map_err(value_err::<D::Error>)?;
        let arr: [u8; 16] = b.try_into().map_err(|_| {
            value_err::<D::Error>(format_args!(
                "invalid digest \"{s}\": expected 32 hex digits (an MD5, as genhash prints)"
            ))
        })?;
        Ok(Md5Digest(arr))
    }
}

/// keepalived's `status_code`: a list of codes and ranges, each a number
/// (`200`) or a `"from-to"` string (`"200-299"`), every code in 100..=599.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct StatusCodes(pub Vec<u16>);

impl<'de> Deserialize<'de> for StatusCodes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        fn code<E: de::Error>(v: u64) -> Result<u16, E> {
            if (100..=599).contains(&v) {
                Ok(v as u16)
            } else {
                Err(value_err(format_args!(
                    "invalid HTTP status {v}: expected 100..=599"
                )))
            }
        }
        impl<'de> Visitor<'de> for V {
            type Value = StatusCodes;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of HTTP status codes or \"from-to\" ranges")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<StatusCodes, A::Error> {
                let mut out = Vec::new();
                while let Some(item) = seq.next_element::<CodeItem>()? {
                    let (a, b) = match item {
                        CodeItem::One(c) => (c, c),
                        CodeItem::Range(s) => {
                            let (a, b) = s.split_once('-').ok_or_else(|| {
                                value_err::<A::Error>(format_args!(
                                    "invalid status range \"{s}\": expected \"from-to\""
                                ))
                            })?;
                            let p = |t: &str| {
                                t.trim().parse::<u64>().map_err(|_| {
                                    value_err::<A::Error>(format_args!(
                                        "invalid status range \"{s}\": expected numbers"
                                    ))
                                })
                            };
                            (p(a)?, p(b)?)
                        }
                    };
                    let (a, b) = (code::<A::Error>(a)?, code::<A::Error>(b)?);
                    if a > b {
                        return Err(value_err(format_args!(
                            "invalid status range {a}-{b}: expected from <= to"
                        )));
                    }
                    out.extend(a..=b);
                }
                out.sort_unstable();
                out.dedup();
                Ok(StatusCodes(out))
            }
        }
        d.deserialize_seq(V)
    }
}

#[derive(Deserialize)]
#[serde(untagged)]
enum CodeItem {
    One(u64),
    Range(String),
}

/// DNS_CHECK's `type`, as keepalived accepts it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DnsTypeName(pub u16);

/// The record types keepalived's DNS_CHECK knows, with their RFC 1035 /
/// RFC 3596 numbers.
pub const DNS_TYPES: [(&str, u16); 7] = [
    ("A", 1),
    ("NS", 2),
    ("CNAME", 5),
    ("SOA", 6),
    ("MX", 15),
    ("TXT", 16),
    ("AAAA", 28),
];

impl DnsTypeName {
    /// The type's name (`"A"`, `"MX"`, ...).
    pub fn name(self) -> &'static str {
        DNS_TYPES
            .iter()
            .find(|(_, n)| *n == self.0)
            .map_or("?", |(s, _)| s)
    }
}

impl<'de> Deserialize<'de> for DnsTypeName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        DNS_TYPES
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(&s))
            .map(|&(_, t)| DnsTypeName(t))
            .ok_or_else(|| {
                value_err(format_args!(
                    "unknown DNS type \"{s}\": expected one of A, NS, CNAME, SOA, MX, TXT, AAAA"
                ))
            })
    }
}

/// One checker of a real server, named as keepalived's block.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[allow(non_camel_case_types)]
pub enum CheckerConfig {
    /// Connect to the port.
    TCP_CHECK(CheckerParams),
    /// HTTP GET of each `url`; status and optional body digest.
    HTTP_GET(CheckerParams),
    /// HTTP_GET over TLS.
    SSL_GET(CheckerParams),
    /// Send `payload`; `require_reply` makes a matching reply necessary.
    UDP_CHECK(CheckerParams),
    /// ICMP echo to the real server.
    PING_CHECK(CheckerParams),
    /// A DNS query of `name`/`type`.
    DNS_CHECK(CheckerParams),
    /// Run `misc_path`: exit 0 up, 1 down, 2..=255 up with weight code-2
    /// when `misc_dynamic`.
    MISC_CHECK(CheckerParams),
    /// A number in `file`: 0 down, else up (with `dynamic`, the weight).
    FILE_CHECK(CheckerParams),
}

impl CheckerConfig {
    /// keepalived's name of the checker type.
    pub fn name(&self) -> &'static str {
        match self {
            CheckerConfig::TCP_CHECK(_) => "TCP_CHECK",
            CheckerConfig::HTTP_GET(_) => "HTTP_GET",
            CheckerConfig::SSL_GET(_) => "SSL_GET",
            CheckerConfig::UDP_CHECK(_) => "UDP_CHECK",
            CheckerConfig::PING_CHECK(_) => "PING_CHECK",
            CheckerConfig::DNS_CHECK(_) => "DNS_CHECK",
            CheckerConfig::MISC_CHECK(_) => "MISC_CHECK",
            CheckerConfig::FILE_CHECK(_) => "FILE_CHECK",
        }
    }

    /// The parameters, whatever the type.
    pub fn params(&self) -> &CheckerParams {
        match self {
            CheckerConfig::TCP_CHECK(p)
            | CheckerConfig::HTTP_GET(p)
            | CheckerConfig::SSL_GET(p)
            | CheckerConfig::UDP_CHECK(p)
            | CheckerConfig::PING_CHECK(p)
            | CheckerConfig::DNS_CHECK(p)
            | CheckerConfig::MISC_CHECK(p)
            | CheckerConfig::FILE_CHECK(p) => p,
        }
    }

    /// Whether the checker talks TCP to `connect_port` (and so cannot
    /// check a UDP service's own port).
    pub fn is_tcp(&self) -> bool {
        matches!(
            self,
            CheckerConfig::TCP_CHECK(_) | CheckerConfig::HTTP_GET(_) | CheckerConfig::SSL_GET(_)
        )
    }

    /// Whether the checker probes over the network at all (MISC_CHECK and
    /// FILE_CHECK do not; PING_CHECK has no port).
    pub fn uses_network(&self) -> bool {
        !matches!(
            self,
            CheckerConfig::MISC_CHECK(_) | CheckerConfig::FILE_CHECK(_)
        )
    }

    /// keepalived's default `retry` of this type: 0 for MISC_CHECK and
    /// FILE_CHECK (`check_misc.c`), 3 for DNS_CHECK (`check_dns.c`), else 1
    /// (`check_api.c`).
    pub fn default_retry(&self) -> u32 {
        match self {
            CheckerConfig::MISC_CHECK(_) | CheckerConfig::FILE_CHECK(_) => 0,
            CheckerConfig::DNS_CHECK(_) => 3,
            _ => DEFAULT_RETRY,
        }
    }

    /// keepalived's default `delay_before_retry` of this type: 3 s for
    /// HTTP_GET and SSL_GET (`check_http.c`), else 1 s.
    pub fn default_delay_before_retry(&self) -> Duration {
        match self {
            CheckerConfig::HTTP_GET(_) | CheckerConfig::SSL_GET(_) => Duration::from_secs(3),
            _ => Duration::from_secs(DEFAULT_DELAY_BEFORE_RETRY_S),
        }
    }

    /// The type-specific parameters this checker type accepts.
    pub fn own_params(&self) -> &'static [&'static str] {
        match self {
            CheckerConfig::TCP_CHECK(_) | CheckerConfig::PING_CHECK(_) => &[],
            CheckerConfig::HTTP_GET(_) => &["url", "virtualhost"],
            CheckerConfig::SSL_GET(_) => &["url", "virtualhost", "enable_sni", "verify_cert"],
            CheckerConfig::UDP_CHECK(_) => &[
                "payload",
                "require_reply",
                "min_reply_length",
                "max_reply_length",
            ],
            CheckerConfig::DNS_CHECK(_) => &["name", "type"],
            CheckerConfig::MISC_CHECK(_) => &["misc_path", "misc_timeout", "misc_dynamic"],
            CheckerConfig::FILE_CHECK(_) => &["file", "dynamic"],
        }
    }
}

/// The parameters of one checker: the common ones every type takes, then
/// each type's own (refused on another type by validation).
#[derive(Clone, Debug, PartialEq, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CheckerParams {
    /// Address probed; default the real server's RIP.
    pub connect_ip: Option<Ipv4Str>,
    /// Port probed; default the real server's port.
    pub connect_port: Option<u16>,
    /// Source address of the probe; default the kernel's choice (the DIP
    /// of the port towards the real server).
    pub bindto: Option<Ipv4Str>,
    /// Time allowed for the whole probe (connect, request, answer);
    /// default 5 s (keepalived).
    pub connect_timeout: Option<Seconds>,
    /// Failed attempts retried before an up checker goes down; keepalived's
    /// default 1 (0 for MISC_CHECK/FILE_CHECK, 3 for DNS_CHECK). At
    /// start-up, before any success, one failure is enough (keepalived).
    pub retry: Option<u32>,
    /// Wait between a failure and its retry; default 1 s (3 s for
    /// HTTP_GET/SSL_GET, keepalived).
    pub delay_before_retry: Option<Seconds>,
    /// First check after a random delay up to this; default `delay_loop`
    /// (keepalived), so the first checks spread over one interval.
    pub warmup: Option<Seconds>,
    /// Interval between checks; default the real server's or service's,
    /// else 60 s (keepalived).
    pub delay_loop: Option<Seconds>,
    /// Start down until the first success; default the real server's or
    /// service's, else false.
    pub alpha: Option<bool>,
    /// HTTP_GET/SSL_GET: the pages to fetch; at least one.
    pub url: Vec<UrlConfig>,
    /// HTTP_GET/SSL_GET: the `Host:` header; default the service's, else
    /// the connect address.
    pub virtualhost: Option<String>,
    /// SSL_GET: send `virtualhost` as the TLS server name (SNI).
    pub enable_sni: bool,
    /// SSL_GET: verify the server's certificate against the system roots
    /// and `virtualhost`; default false, as keepalived does not verify.
    pub verify_cert: bool,
    /// UDP_CHECK: the datagram to send, hex; default empty.
    pub payload: Option<HexBytes>,
    /// UDP_CHECK: a reply is required and must start with these bytes
    /// (hex; `""` = any reply); without it silence until the timeout is up.
    pub require_reply: Option<HexBytes>,
    /// UDP_CHECK: shortest accepted reply, bytes; default 0.
    pub min_reply_length: Option<u32>,
    /// UDP_CHECK: longest accepted reply, bytes; default 255 (keepalived).
    pub max_reply_length: Option<u32>,
    /// DNS_CHECK: the name queried; default `"."`.
    pub name: Option<String>,
    /// DNS_CHECK: the record type; default `"SOA"` (keepalived).
    #[serde(rename = "type")]
    pub qtype: Option<DnsTypeName>,
    /// MISC_CHECK: the script and its arguments, split as a shell would
    /// (keepalived quoting). Required for MISC_CHECK.
    pub misc_path: Option<String>,
    /// MISC_CHECK: time the script may run; default `delay_loop`.
    pub misc_timeout: Option<Seconds>,
    /// MISC_CHECK: exit codes 2..=255 set the weight to code - 2.
    pub misc_dynamic: bool,
    /// FILE_CHECK: the file read; required for FILE_CHECK.
    pub file: Option<String>,
    /// FILE_CHECK: a positive number in the file is the weight.
    pub dynamic: bool,
}

impl CheckerParams {
    /// Names of the type-specific parameters that are set (for the
    /// "not a parameter of this type" rule).
    pub fn set_params(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        let mut add = |set: bool, name: &'static str| {
            if set {
                v.push(name);
            }
        };
        add(!self.url.is_empty(), "url");
        add(self.virtualhost.is_some(), "virtualhost");
        add(self.enable_sni, "enable_sni");
        add(self.verify_cert, "verify_cert");
        add(self.payload.is_some(), "payload");
        add(self.require_reply.is_some(), "require_reply");
        add(self.min_reply_length.is_some(), "min_reply_length");
        add(self.max_reply_length.is_some(), "max_reply_length");
        add(self.name.is_some(), "name");
        add(self.qtype.is_some(), "type");
        add(self.misc_path.is_some(), "misc_path");
        add(self.misc_timeout.is_some(), "misc_timeout");
        add(self.misc_dynamic, "misc_dynamic");
        add(self.file.is_some(), "file");
        add(self.dynamic, "dynamic");
        v
    }
}

/// One page an HTTP_GET/SSL_GET checker fetches (keepalived's `url`
/// block).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UrlConfig {
    /// The request path, starting with `/`.
    pub path: String,
    /// Accepted statuses; default any 2xx (keepalived).
    #[serde(default)]
    pub status_code: Option<StatusCodes>,
    /// MD5 of the body (genhash); default not checked.
    #[serde(default)]
    pub digest: Option<Md5Digest>,
}

/// The timing of one checker after inheritance (checker → real server →
/// service → keepalived's defaults).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    /// Interval between checks.
    pub delay_loop: Duration,
    /// Whole-probe timeout.
    pub connect_timeout: Duration,
    /// Retries before down.
    pub retry: u32,
    /// Wait before a retry.
    pub delay_before_retry: Duration,
    /// Random start delay bound.
    pub warmup: Duration,
    /// Start down.
    pub alpha: bool,
}

/// keepalived's `delay_loop` default, seconds.
pub const DEFAULT_DELAY_LOOP_S: u64 = 60;
/// keepalived's `connect_timeout` default, seconds.
pub const DEFAULT_CONNECT_TIMEOUT_S: u64 = 5;
/// keepalived's `retry` default for a network checker.
pub const DEFAULT_RETRY: u32 = 1;
/// keepalived's `delay_before_retry` default, seconds.
pub const DEFAULT_DELAY_BEFORE_RETRY_S: u64 = 1;

/// The timing knobs one level (service, real server or checker) may set.
#[derive(Clone, Copy, Debug, Default)]
pub struct TimingLevel {
    /// `delay_loop`.
    pub delay_loop: Option<Seconds>,
    /// `connect_timeout`.
    pub connect_timeout: Option<Seconds>,
    /// `retry`.
    pub retry: Option<u32>,
    /// `delay_before_retry`.
    pub delay_before_retry: Option<Seconds>,
    /// `warmup`.
    pub warmup: Option<Seconds>,
    /// `alpha`.
    pub alpha: Option<bool>,
}

impl TimingLevel {
    /// The checker's own level.
    pub fn of_checker(p: &CheckerParams) -> TimingLevel {
        TimingLevel {
            delay_loop: p.delay_loop,
            connect_timeout: p.connect_timeout,
            retry: p.retry,
            delay_before_retry: p.delay_before_retry,
            warmup: p.warmup,
            alpha: p.alpha,
        }
    }

    /// Resolves `levels` (most specific first) over keepalived's defaults
    /// for checker type `c` ([`CheckerConfig::default_retry`],
    /// [`CheckerConfig::default_delay_before_retry`]; `warmup` defaults to
    /// the resolved `delay_loop`, as keepalived's `check_data.c`, so the
    /// first checks spread over one interval).
    pub fn resolve_for(c: &CheckerConfig, levels: &[TimingLevel]) -> Timing {
        let mut t = TimingLevel::resolve(levels);
        if levels.iter().all(|l| l.retry.is_none()) {
            t.retry = c.default_retry();
        }
        if levels.iter().all(|l| l.delay_before_retry.is_none()) {
            t.delay_before_retry = c.default_delay_before_retry();
        }
        if levels.iter().all(|l| l.warmup.is_none()) {
            t.warmup = t.delay_loop;
        }
        t
    }

    /// Resolves `levels` (most specific first) over the type-independent
    /// defaults.
    pub fn resolve(levels: &[TimingLevel]) -> Timing {
        let pick = |f: &dyn Fn(&TimingLevel) -> Option<Seconds>, d: u64| {
            levels
                .iter()
                .find_map(f)
                .map_or(Duration::from_secs(d), |s| s.0)
        };
        Timing {
            delay_loop: pick(&|l| l.delay_loop, DEFAULT_DELAY_LOOP_S),
            connect_timeout: pick(&|l| l.connect_timeout, DEFAULT_CONNECT_TIMEOUT_S),
            retry: levels.iter().find_map(|l| l.retry).unwrap_or(DEFAULT_RETRY),
            delay_before_retry: pick(&|l| l.delay_before_retry, DEFAULT_DELAY_BEFORE_RETRY_S),
            warmup: pick(&|l| l.warmup, 0),
            alpha: levels.iter().find_map(|l| l.alpha).unwrap_or(false),
        }
    }
}
