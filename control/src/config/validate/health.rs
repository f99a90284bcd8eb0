//! Health checking of one service: its checkers' parameters (each type
//! takes only its own, in range, and can work on this service), quorum and
//! hysteresis, the sorry server, and every script (`misc_path`,
//! `notify_up`/`notify_down`, `quorum_up`/`quorum_down`) under keepalived's
//! `enable_script_security` rule.
#![forbid(unsafe_code)]

use std::collections::HashSet;
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;

use dataplane::snapshot::{Method, Proto};

use super::{connected_subnets, verr, Dips};
use crate::config::error::{PathSeg, ValidationError};
use crate::config::health::{CheckerConfig, CheckerParams, Seconds};
use crate::config::schema::{Config, ServiceConfig};
use crate::health::{check_script_security, parse_command};

/// Shortest `delay_loop`: 10 ms (probe load stays bounded).
const MIN_DELAY_LOOP: Duration = Duration::from_millis(10);
/// Shortest `connect_timeout` / `misc_timeout`: 1 ms.
const MIN_TIMEOUT: Duration = Duration::from_millis(1);
/// Most `retry`.
const MAX_RETRY: u32 = 100;
/// Longest UDP reply.
const MAX_UDP_REPLY: u32 = 65_507;

type Path_ = Vec<PathSeg>;

/// Whether this process runs as root (the owner of `/proc/self`), for the
/// script-ownership rule.
fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// Checks one script command (`what` names the knob in messages).
pub(super) fn script(
    cfg: &Config,
    path: Path_,
    what: &str,
    cmd: &str,
) -> Result<(), ValidationError> {
    let argv = parse_command(cmd).map_err(|e| verr(path.clone(), format!("{what}: {e}")))?;
    let Some(prog) = argv.first() else {
        return Err(verr(
            path,
            format!("{what} is empty: expected an absolute path to a script"),
        ));
    };
    if !prog.starts_with('/') {
        return Err(verr(
            path,
            format!("{what} \"{prog}\" is not an absolute path: expected /path/to/script"),
        ));
    }
    if cfg.enable_script_security {
        check_script_security(Path::new(prog), running_as_root())
            .map_err(|e| verr(path, format!("{what}: {e}")))?;
    }
    Ok(())
}

fn at_least(
    path: Path_,
    name: &str,
    v: Option<Seconds>,
    min: Duration,
) -> Result<(), ValidationError> {
    match v {
        Some(s) if s.0 < min => Err(verr(
            path,
            format!(
                "{name} {s} is too short: expected at least {} s",
                min.as_secs_f64()
            ),
        )),
        _ => Ok(()),
    }
}

/// The common timing knobs of one level (service, real server, checker).
fn timing_knobs(
    base: &dyn Fn(&'static str) -> Path_,
    delay_loop: Option<Seconds>,
    connect_timeout: Option<Seconds>,
    retry: Option<u32>,
) -> Result<(), ValidationError> {
    at_least(base("delay_loop"), "delay_loop", delay_loop, MIN_DELAY_LOOP)?;
    at_least(
        base("connect_timeout"),
        "connect_timeout",
        connect_timeout,
        MIN_TIMEOUT,
    )?;
    if let Some(r) = retry.filter(|&r| r > MAX_RETRY) {
        return Err(verr(
            base("retry"),
            format!("retry {r} is out of range: expected 0..={MAX_RETRY}"),
        ));
    }
    Ok(())
}

/// Checks health checking of service `i` (`s`).
pub(super) fn check(
    cfg: &Config,
    dips: &Dips,
    vips: &HashSet<Ipv4Addr>,
    i: usize,
    s: &ServiceConfig,
) -> Result<(), ValidationError> {
    use PathSeg::{Field as F, Index as I};
    let svc = |f: &'static str| vec![F("services"), I(i), F(f)];
    timing_knobs(&svc, s.delay_loop, s.connect_timeout, s.retry)?;
    if s.quorum == 0 {
        return Err(verr(
            svc("quorum"),
            "quorum 0: expected at least 1 (a total weight of live real servers)".into(),
        ));
    }
    if s.hysteresis >= s.quorum {
        return Err(verr(
            svc("hysteresis"),
            format!(
                "hysteresis {} must be below quorum {}: quorum is lost below quorum - hysteresis",
                s.hysteresis, s.quorum
            ),
        ));
    }
    if let Some(h) = &s.virtualhost {
        host_header(svc("virtualhost"), h)?;
    }
    for (knob, cmd) in [("quorum_up", &s.quorum_up), ("quorum_down", &s.quorum_down)] {
        if let Some(c) = cmd {
            script(cfg, svc(knob), knob, c)?;
        }
    }
    if let Some(sorry) = s.sorry_server {
        sorry_server(cfg, dips, vips, i, s, sorry.ip(), sorry.port())?;
    }
    for (j, r) in s.real_servers.iter().enumerate() {
        let rs = |f: &'static str| vec![F("services"), I(i), F("real_servers"), I(j), F(f)];
        timing_knobs(&rs, r.delay_loop, r.connect_timeout, r.retry)?;
        for (knob, cmd) in [("notify_up", &r.notify_up), ("notify_down", &r.notify_down)] {
            if let Some(c) = cmd {
                script(cfg, rs(knob), knob, c)?;
            }
        }
        for (k, c) in r.checkers.iter().enumerate() {
            let at = |f: &'static str| {
                vec![
                    F("services"),
                    I(i),
                    F("real_servers"),
                    I(j),
                    F("checkers"),
                    I(k),
                    F(f),
                ]
            };
            let whole = vec![
                F("services"),
                I(i),
                F("real_servers"),
                I(j),
                F("checkers"),
                I(k),
            ];
            checker(cfg, dips, s, r.addr.port(), c, &at, whole)?;
        }
    }
    Ok(())
}

/// A `Host:` value: no whitespace or control characters.
fn host_header(path: Path_, h: &str) -> Result<(), ValidationError> {
    if h.is_empty() || h.len() > 255 || h.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(verr(
            path,
            format!(
                "invalid virtualhost \"{h}\": expected a host name (1..=255 characters, no spaces)"
            ),
        ));
    }
    Ok(())
}

/// The sorry server: not one of the service's real servers nor a director
/// address, and reachable by its forwarding method.
fn sorry_server(
    cfg: &Config,
    dips: &Dips,
    vips: &HashSet<Ipv4Addr>,
    i: usize,
    s: &ServiceConfig,
    ip: Ipv4Addr,
    port: u16,
) -> Result<(), ValidationError> {
    use PathSeg::{Field as F, Index as I};
    let path = || vec![F("services"), I(i), F("sorry_server")];
    if s.real_servers
        .iter()
        .any(|r| r.addr.ip() == ip && r.addr.port() == port)
    {
        return Err(verr(
            path(),
            format!("sorry server {ip}:{port} is also a real server of this service: expected another address"),
        ));
    }
    if dips.contains_key(&ip) || vips.contains(&ip) {
        return Err(verr(
            path(),
            format!(
                "sorry server {ip} is one of the director's own addresses: expected another host"
            ),
        ));
    }
    let method = s.sorry_server_forwarding.map_or(s.forwarding.0, |f| f.0);
    let vport = s.vip.port();
    match method {
        Method::Dr if port != vport || cfg.connected_port(ip).is_none() => Err(verr(
            path(),
            format!(
                "direct-routing sorry server {ip}:{port} must be on a connected subnet ({}) with the virtual port {vport}",
                connected_subnets(cfg)
            ),
        )),
        Method::Nat | Method::FullNat if !cfg.has_route(ip) => Err(verr(
            path(),
            format!("no route to NAT sorry server {ip}: expected it on a connected subnet or covered by a static route"),
        )),
        Method::Nat | Method::FullNat if (vport == 0) != (port == 0) => Err(verr(
            path(),
            "sorry server port: expected port 0 exactly in a port-0 service".into(),
        )),
        Method::Tun if port != vport || !cfg.has_route(ip) => Err(verr(
            path(),
            format!(
                "tunnel sorry server {ip}:{port} must have the virtual port {vport} and a route (connected subnet or static route)"
            ),
        )),
        _ => Ok(()),
    }
}

/// One checker `c` of a real server with port `rport` in service `s`.
fn checker(
    cfg: &Config,
    dips: &Dips,
    s: &ServiceConfig,
    rport: u16,
    c: &CheckerConfig,
    at: &dyn Fn(&'static str) -> Path_,
    whole: Path_,
) -> Result<(), ValidationError> {
    let name = c.name();
    let p: &CheckerParams = c.params();
    let own = c.own_params();
    if let Some(bad) = p.set_params().into_iter().find(|f| !own.contains(f)) {
        let takes = if own.is_empty() {
            "only the common parameters".to_string()
        } else {
            own.join(", ")
        };
        return Err(verr(
            at(bad),
            format!("`{bad}` is not a {name} parameter: {name} takes {takes} besides connect_ip, connect_port, bindto, connect_timeout, retry, delay_before_retry, warmup, delay_loop, alpha"),
        ));
    }
    timing_knobs(at, p.delay_loop, p.connect_timeout, p.retry)?;
    if c.uses_network() && !cfg.exception_path.enabled {
        return Err(verr(
            whole,
            format!("{name} probes over the director's kernel, which reaches the real servers only through the exception path: expected exception_path enabled, or MISC_CHECK/FILE_CHECK (every server would otherwise fail its checks and leave rotation)"),
        ));
    }
    if let Some(b) = p.bindto {
        if !dips.contains_key(&b.0) {
            return Err(verr(
                at("bindto"),
                format!(
                    "bindto {} is not a director address: expected one of the ports' DIPs",
                    b.0
                ),
            ));
        }
    }
    let port = p.connect_port.unwrap_or(rport);
    let proto = s.proto.0;
    if c.uses_network() && !matches!(c, CheckerConfig::PING_CHECK(_)) {
        if port == 0 {
            return Err(verr(
                at("connect_port"),
                format!("{name} needs a port: the real server's port is 0 (a port-0 service), expected connect_port"),
            ));
        }
        let wants_udp = matches!(c, CheckerConfig::UDP_CHECK(_) | CheckerConfig::DNS_CHECK(_));
        let service_udp = proto == Proto::Udp;
        if p.connect_port.is_none() && wants_udp != service_udp {
            return Err(verr(
                whole,
                format!(
                    "{name} cannot check a {proto} service's own port: it speaks {}; expected a checker of that protocol or a connect_port where the real server runs one",
                    if wants_udp { "UDP" } else { "TCP" }
                ),
            ));
        }
    }
    match c {
        CheckerConfig::HTTP_GET(_) | CheckerConfig::SSL_GET(_) => {
            if p.url.is_empty() {
                return Err(verr(
                    at("url"),
                    format!("{name} without url: expected at least one (path: \"/...\")"),
                ));
            }
            for (u, url) in p.url.iter().enumerate() {
                let ok = url.path.starts_with('/')
                    && url.path.len() <= 2048
                    && !url
                        .path
                        .chars()
                        .any(|ch| ch.is_whitespace() || ch.is_control());
                if !ok {
                    let mut path = at("url");
                    path.push(PathSeg::Index(u));
                    path.push(PathSeg::Field("path"));
                    return Err(verr(
                        path,
                        format!(
                            "invalid url path \"{}\": expected an absolute path starting with / without spaces",
                            url.path
                        ),
                    ));
                }
            }
            if let Some(h) = &p.virtualhost {
                host_header(at("virtualhost"), h)?;
            }
        }
        CheckerConfig::UDP_CHECK(_) => {
            let min = p.min_reply_length.unwrap_or(0);
            let max = p.max_reply_length.unwrap_or(MAX_UDP_REPLY);
            if max > MAX_UDP_REPLY || min > max {
                return Err(verr(
                    at(if max > MAX_UDP_REPLY {
                        "max_reply_length"
                    } else {
                        "min_reply_length"
                    }),
                    format!("reply lengths {min}..={max}: expected min <= max <= {MAX_UDP_REPLY}"),
                ));
            }
        }
        CheckerConfig::DNS_CHECK(_) => {
            if let Some(n) = &p.name {
                let labels_ok = n == "."
                    || n.trim_end_matches('.').split('.').all(|l| {
                        !l.is_empty()
                            && l.len() <= 63
                            && l.bytes()
                                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                    });
                if n.len() > 253 || !labels_ok {
                    return Err(verr(
                        at("name"),
                        format!("invalid DNS name \"{n}\": expected labels of 1..=63 letters, digits, - or _, 253 characters at most"),
                    ));
                }
            }
        }
        CheckerConfig::MISC_CHECK(_) => {
            let Some(cmd) = &p.misc_path else {
                return Err(verr(
                    whole,
                    "MISC_CHECK without misc_path: expected the script to run".into(),
                ));
            };
            at_least(
                at("misc_timeout"),
                "misc_timeout",
                p.misc_timeout,
                MIN_TIMEOUT,
            )?;
            script(cfg, at("misc_path"), "misc_path", cmd)?;
        }
        CheckerConfig::FILE_CHECK(_) => match &p.file {
            Some(f) if f.starts_with('/') => {}
            Some(f) => {
                return Err(verr(
                    at("file"),
                    format!("file \"{f}\" is not an absolute path: expected /path/to/file"),
                ))
            }
            None => {
                return Err(verr(
                    whole,
                    "FILE_CHECK without file: expected the file to read".into(),
                ))
            }
        },
        CheckerConfig::TCP_CHECK(_) | CheckerConfig::PING_CHECK(_) => {}
    }
    Ok(())
}
