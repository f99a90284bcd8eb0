//! The real servers of one service: none twice, none on a director
//! address (DIP or VIP); a DR real server on a connected subnet with the
//! virtual port (DR only rewrites the MAC); a NAT or FullNAT real server
//! reachable by some route, with port 0 exactly in a port-0 service; a TUN
//! real server reachable by some route with the virtual port (the packet
//! is carried unchanged), its `tun_type`/`tun_port` consistent, the
//! service's `tun_src` one of the director's addresses; a FullNAT
//! service's local addresses (present, each once, on a connected subnet,
//! not a director address) and client address method (TCP only).
#![forbid(unsafe_code)]

use std::collections::HashSet;
use std::net::Ipv4Addr;

use dataplane::snapshot::{ClientAddress, Method, Proto, TunType};

use super::{connected_subnets, verr, Dips};
use crate::config::error::{PathSeg, ValidationError};
use crate::config::schema::{Config, RealServerConfig, ServiceConfig};

/// Checks the real servers of service `i` (`s`), given the DIPs `dips` and
/// every VIP of the config `vips`.
pub(super) fn check(
    cfg: &Config,
    dips: &Dips,
    vips: &HashSet<Ipv4Addr>,
    i: usize,
    s: &ServiceConfig,
) -> Result<(), ValidationError> {
    use PathSeg::{Field as F, Index as I};
    let (vip, vport, pname) = (s.vip.ip(), s.vip.port(), s.proto.0);
    if let Some(src) = s.tun_src {
        let path = vec![F("services"), I(i), F("tun_src")];
        if !dips.contains_key(&src.0) && !vips.contains(&src.0) {
            return Err(verr(
                path,
                format!(
                    "tun_src {} is not one of the director's addresses: expected a DIP or VIP",
                    src.0
                ),
            ));
        }
        let tunnelled = s.real_servers.iter().any(|r| r.method(s) == Method::Tun)
            || (s.sorry_server.is_some()
                && s.sorry_server_forwarding.map_or(s.forwarding.0, |f| f.0) == Method::Tun);
        if !tunnelled {
            return Err(verr(
                path,
                "tun_src in a service without a \"tun\" real server: expected it only with forwarding \"tun\"".to_string(),
            ));
        }
    }
    let mut seen = HashSet::new();
    for (j, r) in s.real_servers.iter().enumerate() {
        tun_fields(i, j, s, r)?;
        let path = || vec![F("services"), I(i), F("real_servers"), I(j), F("addr")];
        let (rip, rport) = (r.addr.ip(), r.addr.port());
        if !seen.insert((rip, rport)) {
            return Err(verr(
                path(),
                format!(
                    "duplicate real server {rip}:{rport} in virtual service {pname} {vip}:{vport}"
                ),
            ));
        }
        if dips.contains_key(&rip) || vips.contains(&rip) {
            return Err(verr(
                path(),
                format!("real server {rip} is one of the director's own addresses: expected another host"),
            ));
        }
        let method = r.method(s);
        // DR and TUN deliver the client's packet with its own ports (the
        // real server holds the VIP), as IPVS does.
        if let (Method::Dr | Method::Tun, true) = (method, rport != vport) {
            let how = if method == Method::Dr {
                "direct routing"
            } else {
                "tunnelling"
            };
            return Err(verr(
                path(),
                format!(
                    "{how} cannot change the port: real server port {rport} must equal the virtual port {vport}"
                ),
            ));
        }
        match method {
            Method::Dr => {
                if cfg.connected_port(rip).is_none() {
                    return Err(verr(
                        path(),
                        format!(
                            "direct-routing real server {rip} is not on a connected subnet: DR only rewrites the MAC, expected an address inside {}",
                            connected_subnets(cfg)
                        ),
                    ));
                }
            }
            Method::Tun => {
                if !cfg.has_route(rip) {
                    return Err(verr(
                        path(),
                        format!(
                            "no route to tunnel real server {rip}: expected it on a connected subnet ({}) or covered by a static route",
                            connected_subnets(cfg)
                        ),
                    ));
                }
            }
            Method::Nat | Method::FullNat => {
                if vport == 0 && rport != 0 {
                    return Err(verr(
                        path(),
                        format!(
                            "real server port {rport} in a port-0 service: expected port 0 (every port is forwarded unchanged)"
                        ),
                    ));
                }
                if vport != 0 && rport == 0 {
                    return Err(verr(
                        path(),
                        "real server port 0: expected a port 1..=65535 (0 only in a port-0 service)".to_string(),
                    ));
                }
                if !cfg.has_route(rip) {
                    return Err(verr(
                        path(),
                        format!(
                            "no route to NAT real server {rip}: expected it on a connected subnet ({}) or covered by a static route",
                            connected_subnets(cfg)
                        ),
                    ));
                }
            }
        }
    }
    local_addresses(cfg, dips, vips, i, s)
}

/// A FullNAT service's `local_addresses` and `client_address`.
fn local_addresses(
    cfg: &Config,
    dips: &Dips,
    vips: &HashSet<Ipv4Addr>,
    i: usize,
    s: &ServiceConfig,
) -> Result<(), ValidationError> {
    use PathSeg::{Field as F, Index as I};
    let fullnat = s
        .real_servers
        .iter()
        .any(|r| r.method(s) == Method::FullNat)
        || (s.sorry_server.is_some()
            && s.sorry_server_forwarding.map_or(s.forwarding.0, |f| f.0) == Method::FullNat);
    if fullnat && s.local_addresses.is_empty() {
        return Err(verr(
            vec![F("services"), I(i), F("local_addresses")],
            "a FullNAT service without local addresses: expected local_addresses: [\"10.x.y.z\", ...] on a connected subnet".into(),
        ));
    }
    let mut seen = HashSet::new();
    for (j, a) in s.local_addresses.iter().enumerate() {
        let path = || vec![F("services"), I(i), F("local_addresses"), I(j)];
        let ip = a.0;
        if !seen.insert(ip) {
            return Err(verr(path(), format!("duplicate local address {ip}")));
        }
        if dips.contains_key(&ip) || vips.contains(&ip) {
            return Err(verr(
                path(),
                format!("local address {ip} is a DIP or VIP: expected an address of its own"),
            ));
        }
        if cfg.connected_port(ip).is_none() {
            return Err(verr(
                path(),
                format!(
                    "local address {ip} is not on a connected subnet: fulcrum answers ARP for it on that port, expected an address inside {}",
                    connected_subnets(cfg)
                ),
            ));
        }
    }
    if s.client_address.0 != ClientAddress::None && s.proto.0 != Proto::Tcp {
        return Err(verr(
            vec![F("services"), I(i), F("client_address")],
            format!(
                "client_address {:?} needs a TCP service (TOA and PROXY v2 ride on TCP): expected \"none\"",
                s.client_address.0.config_name()
            ),
        ));
    }
    Ok(())
}

/// `tun_type` and `tun_port` of real server `j` (`r`) of service `i`: only
/// with forwarding `"tun"`; `tun_port` (1..=65535) exactly with `"gue"`.
fn tun_fields(
    i: usize,
    j: usize,
    s: &ServiceConfig,
    r: &RealServerConfig,
) -> Result<(), ValidationError> {
    use PathSeg::{Field as F, Index as I};
    let path = |f| vec![F("services"), I(i), F("real_servers"), I(j), F(f)];
    if r.method(s) != Method::Tun {
        if r.tun_type.is_some() {
            return Err(verr(
                path("tun_type"),
                "tun_type on a real server that is not tunnelled: expected forwarding \"tun\""
                    .to_string(),
            ));
        }
        if r.tun_port.is_some() {
            return Err(verr(
                path("tun_port"),
                "tun_port on a real server that is not tunnelled: expected forwarding \"tun\" with tun_type \"gue\"".to_string(),
            ));
        }
        return Ok(());
    }
    match (r.tun_type.map_or(TunType::Ipip, |t| t.0), r.tun_port) {
        (TunType::Gue, None) => Err(verr(
            path("tun_type"),
            "tun_type \"gue\" without tun_port: expected the real server's GUE UDP port"
                .to_string(),
        )),
        (TunType::Gue, Some(0)) => Err(verr(
            path("tun_port"),
            "tun_port 0: expected a UDP port 1..=65535".to_string(),
        )),
        (TunType::Ipip, Some(_)) => Err(verr(
            path("tun_port"),
            "tun_port with tun_type \"ipip\": expected it only with tun_type \"gue\"".to_string(),
        )),
        _ => Ok(()),
    }
}
