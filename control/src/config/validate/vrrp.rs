//! The VRRP sections: `vrrp_instance`, `vrrp_script`, `vrrp_sync_group`.
//!
//! Rules (keepalived 2.2's, made errors where keepalived only warns, so
//! both directors of a pair visibly agree): the exception path is on
//! (adverts reach the control side through it); each instance has a unique
//! name and a unique (interface, `virtual_router_id`), an interface that is
//! a port, a VRID 1..=255 and a priority 1..=255, `version` 2 or 3, an
//! `advert_int` of whole seconds 1..=255 for v2 and 0.01..=40.95 s in
//! centiseconds for v3, 1..=20 `virtual_ipaddress`es that are each a
//! service VIP or a floating address on one of the interface's subnets
//! (never a DIP), held by one instance only; `nopreempt` only with
//! `state: "BACKUP"`; `unicast_src_ip` a DIP of the interface; unicast
//! peers not director addresses; `authentication` only with v2, `"PASS"`
//! and 1..=8 printable bytes; tracked ports, scripts and services exist and
//! weights are -253..=253; notify scripts are absolute paths passing
//! `enable_script_security`; `garp_master_repeat` and
//! `garp_master_refresh_repeat` 1..=255, `garp_master_delay` and
//! `preempt_delay` at most 1000 s; `split_brain_adverts` 1..=1000. Each
//! `vrrp_script` has a unique name, a checked command, an `interval` of at
//! least 10 ms, `rise`/`fall` 1..=1000. Each sync group has a unique name
//! and 2 or more existing instances, none of which is in another group.
#![forbid(unsafe_code)]

use std::collections::{HashMap, HashSet};
use std::net::Ipv4Addr;
use std::time::Duration;

use super::health::script;
use super::verr;
use crate::config::error::{PathSeg, ValidationError};
use crate::config::schema::Config;
use crate::config::vrrp::{InitialState, VrrpInstanceConfig};

/// Most addresses one instance holds (an advert's address list).
pub const MAX_VRRP_ADDRS: usize = 20;
/// Largest `|weight|` of a track entry (keepalived's range).
const MAX_WEIGHT: i32 = 253;

fn name_ok(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_.-".contains(&b))
}

/// Every rule of the module doc, in config order.
pub(super) fn check(cfg: &Config) -> Result<(), ValidationError> {
    use PathSeg::{Field as F, Index as I};
    if !cfg.vrrp_instance.is_empty() && !cfg.exception_path.enabled {
        return Err(verr(
            vec![F("exception_path"), F("enabled")],
            "vrrp_instance needs the exception path (adverts reach the control thread through the \
             kernel interfaces): expected exception_path.enabled: true"
                .into(),
        ));
    }
    let mut scripts = HashSet::new();
    for (i, s) in cfg.vrrp_script.iter().enumerate() {
        let p = |f| vec![F("vrrp_script"), I(i), F(f)];
        if !name_ok(&s.name) || !scripts.insert(s.name.as_str()) {
            return Err(verr(
                p("name"),
                format!(
                    "vrrp_script name {:?} is empty, too long, has characters outside [A-Za-z0-9_.-] \
                     or is used twice: expected a unique name",
                    s.name
                ),
            ));
        }
        script(cfg, p("script"), "vrrp_script", &s.script)?;
        if s.interval.0 < Duration::from_millis(10) {
            return Err(verr(
                p("interval"),
                format!(
                    "vrrp_script interval {}: expected at least 0.01 s",
                    s.interval
                ),
            ));
        }
        if s.timeout.is_some_and(|t| t.0 < Duration::from_millis(1)) {
            return Err(verr(
                p("timeout"),
                "vrrp_script timeout 0: expected at least 0.001 s".into(),
            ));
        }
        weight(p("weight"), s.weight)?;
        for (f, v) in [("rise", s.rise), ("fall", s.fall)] {
            if !(1..=1000).contains(&v) {
                return Err(verr(p(f), format!("{f} {v}: expected 1..=1000")));
            }
        }
    }
    let mut names = HashSet::new();
    let mut vrids = HashSet::new();
    let mut held: HashMap<Ipv4Addr, usize> = HashMap::new();
    for (i, v) in cfg.vrrp_instance.iter().enumerate() {
        let p = |f| vec![F("vrrp_instance"), I(i), F(f)];
        if !name_ok(&v.name) || !names.insert(v.name.as_str()) {
            return Err(verr(
                p("name"),
                format!(
                    "vrrp_instance name {:?} is empty, too long, has characters outside \
                     [A-Za-z0-9_.-] or is used twice: expected a unique name",
                    v.name
                ),
            ));
        }
        instance(cfg, i, v, &scripts)?;
        if !vrids.insert((v.interface.as_str(), v.virtual_router_id)) {
            return Err(verr(
                p("virtual_router_id"),
                format!(
                    "virtual_router_id {} is used twice on interface {:?}: expected one instance per \
                     VRID and interface",
                    v.virtual_router_id, v.interface
                ),
            ));
        }
        for (j, a) in v.virtual_ipaddress.iter().enumerate() {
            if let Some(other) = held.insert(a.0, i) {
                return Err(verr(
                    vec![F("vrrp_instance"), I(i), F("virtual_ipaddress"), I(j)],
                    format!(
                        "{} is already held by vrrp_instance {:?}: expected each address in one \
                         instance",
                        a.0, cfg.vrrp_instance[other].name
                    ),
                ));
            }
        }
    }
    let mut grouped: HashMap<&str, &str> = HashMap::new();
    let mut groups = HashSet::new();
    for (g, sg) in cfg.vrrp_sync_group.iter().enumerate() {
        let p = |f| vec![F("vrrp_sync_group"), I(g), F(f)];
        if !name_ok(&sg.name) || !groups.insert(sg.name.as_str()) {
            return Err(verr(
                p("name"),
                format!(
                    "vrrp_sync_group name {:?} is invalid or used twice",
                    sg.name
                ),
            ));
        }
        if sg.group.len() < 2 {
            return Err(verr(
                p("group"),
                format!(
                    "vrrp_sync_group {:?} has {} instance(s): expected 2 or more",
                    sg.name,
                    sg.group.len()
                ),
            ));
        }
        for (k, m) in sg.group.iter().enumerate() {
            let at = vec![F("vrrp_sync_group"), I(g), F("group"), I(k)];
            if !names.contains(m.as_str()) {
                return Err(verr(
                    at,
                    format!(
                        "no vrrp_instance named {m:?}: expected one of {}",
                        list(&names)
                    ),
                ));
            }
            if let Some(other) = grouped.insert(m.as_str(), sg.name.as_str()) {
                return Err(verr(
                    at,
                    format!(
                        "vrrp_instance {m:?} is already in vrrp_sync_group {other:?}: expected one \
                         group per instance"
                    ),
                ));
            }
        }
        for (knob, cmd) in [
            ("notify_master", &sg.notify_master),
            ("notify_backup", &sg.notify_backup),
            ("notify_fault", &sg.notify_fault),
            ("notify", &sg.notify),
        ] {
            if let Some(c) = cmd {
                script(cfg, p(knob), knob, c)?;
            }
        }
    }
    Ok(())
}

fn list(names: &HashSet<&str>) -> String {
    let mut v: Vec<&str> = names.iter().copied().collect();
    v.sort_unstable();
    v.join(", ")
}

fn weight(path: Vec<PathSeg>, w: i32) -> Result<(), ValidationError> {
    if (-MAX_WEIGHT..=MAX_WEIGHT).contains(&w) {
        Ok(())
    } else {
        Err(verr(path, format!("weight {w}: expected -253..=253")))
    }
}

/// One instance's own rules.
fn instance(
    cfg: &Config,
    i: usize,
    v: &VrrpInstanceConfig,
    scripts: &HashSet<&str>,
) -> Result<(), ValidationError> {
    use PathSeg::{Field as F, Index as I};
    let p = |f| vec![F("vrrp_instance"), I(i), F(f)];
    let Some(port) = cfg.ports.iter().position(|x| x.name == v.interface) else {
        let names: Vec<&str> = cfg.ports.iter().map(|x| x.name.as_str()).collect();
        return Err(verr(
            p("interface"),
            format!(
                "no port named {:?}: expected one of {}",
                v.interface,
                names.join(", ")
            ),
        ));
    };
    let port_cfg = &cfg.ports[port];
    if v.virtual_router_id == 0 {
        return Err(verr(
            p("virtual_router_id"),
            "virtual_router_id 0: expected 1..=255".into(),
        ));
    }
    if v.priority == 0 {
        return Err(verr(
            p("priority"),
            "priority 0 is reserved for a master's release (RFC 5798 §5.2.4): expected 1..=255"
                .into(),
        ));
    }
    let us = v.advert_int.0.as_micros();
    match v.version {
        2 => {
            if !us.is_multiple_of(1_000_000) || !(1..=255).contains(&(us / 1_000_000)) {
                return Err(verr(
                    p("advert_int"),
                    format!(
                        "advert_int {} with version 2: expected whole seconds 1..=255 (VRRPv2 \
                         carries seconds; use version: 3 for fractions)",
                        v.advert_int
                    ),
                ));
            }
        }
        3 => {
            if !us.is_multiple_of(10_000) || !(1..=4095).contains(&(us / 10_000)) {
                return Err(verr(
                    p("advert_int"),
                    format!(
                        "advert_int {} with version 3: expected 0.01..=40.95 s in steps of 0.01 s",
                        v.advert_int
                    ),
                ));
            }
        }
        n => {
            return Err(verr(
                p("version"),
                format!("version {n}: expected 2 (RFC 3768) or 3 (RFC 5798)"),
            ))
        }
    }
    if v.virtual_ipaddress.is_empty() || v.virtual_ipaddress.len() > MAX_VRRP_ADDRS {
        return Err(verr(
            p("virtual_ipaddress"),
            format!(
                "{} virtual_ipaddress entries: expected 1..={MAX_VRRP_ADDRS}",
                v.virtual_ipaddress.len()
            ),
        ));
    }
    for (j, a) in v.virtual_ipaddress.iter().enumerate() {
        let at = vec![F("vrrp_instance"), I(i), F("virtual_ipaddress"), I(j)];
        let ip = a.0;
        if cfg
            .ports
            .iter()
            .any(|x| x.addrs.iter().any(|c| c.addr == ip))
        {
            return Err(verr(
                at,
                format!(
                    "{ip} is a DIP (a port address, held by every director): expected a service \
                     VIP or a floating address that is not a port address"
                ),
            ));
        }
        let is_vip = cfg.services.iter().any(|s| s.vip.ip() == ip);
        if !is_vip && !port_cfg.addrs.iter().any(|c| c.contains(ip)) {
            return Err(verr(
                at,
                format!(
                    "{ip} is neither a service VIP nor on a subnet of port {:?}: expected a VIP, or \
                     a floating address on the interface's subnets",
                    v.interface
                ),
            ));
        }
    }
    if v.nopreempt && v.state == InitialState::Master {
        return Err(verr(
            p("nopreempt"),
            "nopreempt with state \"MASTER\": keepalived ignores one of them; expected state: \
             \"BACKUP\" with nopreempt"
                .into(),
        ));
    }
    for (f, s) in [
        ("preempt_delay", v.preempt_delay),
        ("garp_master_delay", v.garp_master_delay),
    ] {
        if s.0 > Duration::from_secs(1000) {
            return Err(verr(p(f), format!("{f} {s}: expected at most 1000 s")));
        }
    }
    for (f, n) in [
        ("garp_master_repeat", v.garp_master_repeat),
        ("garp_master_refresh_repeat", v.garp_master_refresh_repeat),
    ] {
        if !(1..=255).contains(&n) {
            return Err(verr(p(f), format!("{f} {n}: expected 1..=255")));
        }
    }
    if !(1..=1000).contains(&v.split_brain_adverts) {
        return Err(verr(
            p("split_brain_adverts"),
            format!(
                "split_brain_adverts {}: expected 1..=1000",
                v.split_brain_adverts
            ),
        ));
    }
    if let Some(src) = v.unicast_src_ip {
        if !port_cfg.addrs.iter().any(|c| c.addr == src.0) {
            return Err(verr(
                p("unicast_src_ip"),
                format!(
                    "unicast_src_ip {} is not an address of port {:?}: expected one of its addrs",
                    src.0, v.interface
                ),
            ));
        }
    }
    for (j, peer) in v.unicast_peer.iter().enumerate() {
        let dir = cfg
            .ports
            .iter()
            .any(|x| x.addrs.iter().any(|c| c.addr == peer.0))
            || cfg.services.iter().any(|s| s.vip.ip() == peer.0);
        if dir {
            return Err(verr(
                vec![F("vrrp_instance"), I(i), F("unicast_peer"), I(j)],
                format!(
                    "unicast_peer {} is this director's own address: expected the other director's",
                    peer.0
                ),
            ));
        }
    }
    if let Some(a) = &v.authentication {
        let at = vec![F("vrrp_instance"), I(i), F("authentication")];
        if v.version != 2 {
            return Err(verr(
                at,
                "authentication with version 3: RFC 5798 removed it; expected version: 2 or no \
                 authentication"
                    .into(),
            ));
        }
        if a.auth_type != "PASS" {
            return Err(verr(
                at,
                format!(
                    "auth_type {:?}: expected \"PASS\" (AH is not supported)",
                    a.auth_type
                ),
            ));
        }
        if !(1..=8).contains(&a.auth_pass.len())
            || !a.auth_pass.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(verr(
                at,
                "auth_pass: expected 1..=8 printable ASCII characters (VRRPv2 carries 8 bytes)"
                    .into(),
            ));
        }
    }
    for (j, t) in v.track_interface.iter().enumerate() {
        if !cfg.ports.iter().any(|x| &x.name == t) {
            return Err(verr(
                vec![F("vrrp_instance"), I(i), F("track_interface"), I(j)],
                format!("track_interface {t:?} is not a port name"),
            ));
        }
    }
    for (j, t) in v.track_script.iter().enumerate() {
        let at = |f| vec![F("vrrp_instance"), I(i), F("track_script"), I(j), F(f)];
        if !scripts.contains(t.script.as_str()) {
            return Err(verr(
                at("script"),
                format!("no vrrp_script named {:?}", t.script),
            ));
        }
        if let Some(w) = t.weight {
            weight(at("weight"), w)?;
        }
    }
    for (j, t) in v.track_service.iter().enumerate() {
        let at = |f| vec![F("vrrp_instance"), I(i), F("track_service"), I(j), F(f)];
        if !cfg
            .services
            .iter()
            .any(|s| s.vip.0 == t.vip.0 && s.proto.0 == t.proto.0)
        {
            return Err(verr(
                at("vip"),
                format!("no {} service at {}", t.proto.0, t.vip.0),
            ));
        }
        weight(at("weight"), t.weight)?;
    }
    for (knob, cmd) in [
        ("notify_master", &v.notify_master),
        ("notify_backup", &v.notify_backup),
        ("notify_fault", &v.notify_fault),
        ("notify", &v.notify),
    ] {
        if let Some(c) = cmd {
            script(cfg, p(knob), knob, c)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::config::parse;

    const BASE: &str = r#"(
    eal_args: [],
    workers: [1],
    enable_script_security: false,
    ports: [(name: "outside", device: "net_null0", addrs: ["10.0.0.1/24"]),
            (name: "inside", device: "net_null1", addrs: ["10.1.0.1/24"])],
    services: [(vip: "10.0.0.100:80", proto: "tcp", scheduler: "rr", forwarding: "dr",
                real_servers: [(addr: "10.0.0.11:80")])],
    vrrp_script: [(name: "chk", script: "/bin/true", interval: 1, weight: -20)],
    VRRP
)"#;

    const GOOD: &str = r#"vrrp_instance: [
        (name: "VI_OUT", interface: "outside", virtual_router_id: 51, priority: 150,
         virtual_ipaddress: ["10.0.0.100"], track_script: [(script: "chk")]),
        (name: "VI_IN", interface: "inside", virtual_router_id: 52, version: 3, advert_int: 0.1,
         virtual_ipaddress: ["10.1.0.100"])],
    vrrp_sync_group: [(name: "G1", group: ["VI_OUT", "VI_IN"])],"#;

    fn err(section: &str) -> String {
        parse(&BASE.replace("VRRP", section), "fulcrum.ron")
            .expect_err("refused")
            .to_string()
    }

    #[test]
    fn test_vrrp_good_config_and_defaults() {
        let cfg = parse(&BASE.replace("VRRP", GOOD), "fulcrum.ron").expect("valid");
        let v = &cfg.vrrp_instance[0];
        assert_eq!(v.version, 2);
        assert_eq!(v.advert_int_ms(), 1000);
        assert_eq!(v.garp_master_repeat, 5);
        assert_eq!(v.split_brain_adverts, 3);
        assert_eq!(cfg.vrrp_instance[1].advert_int_ms(), 100);
        assert_eq!(cfg.vrrp_sync_group[0].group, ["VI_OUT", "VI_IN"]);
        assert_eq!(v.state, crate::config::InitialState::Backup);
        let cfg = parse(
            &BASE.replace(
                "VRRP",
                &GOOD.replace("priority: 150,", "priority: 150, state: \"MASTER\","),
            ),
            "fulcrum.ron",
        )
        .expect("valid");
        assert_eq!(
            cfg.vrrp_instance[0].state,
            crate::config::InitialState::Master
        );
        let e = err(&GOOD.replace("priority: 150,", "priority: 150, state: \"master\","));
        assert!(
            e.contains("invalid state \"master\": expected \"MASTER\" or \"BACKUP\""),
            "{e}"
        );
        assert!(e.starts_with("fulcrum.ron:"), "{e}");
    }

    #[test]
    fn test_vrrp_refusals_name_the_value() {
        let one = |body: &str| {
            err(&format!(
                r#"vrrp_instance: [(name: "VI_1", interface: "outside", virtual_router_id: 51, {body})],"#
            ))
        };
        let e = one(r#"virtual_ipaddress: ["10.0.0.100"], advert_int: 0.5"#);
        assert!(e.starts_with("fulcrum.ron:"), "{e}");
        assert!(
            e.contains("advert_int 0.5 s with version 2: expected whole seconds"),
            "{e}"
        );
        let e = one(r#"virtual_ipaddress: ["10.0.0.1"]"#);
        assert!(e.contains("10.0.0.1 is a DIP"), "{e}");
        let e = one(r#"virtual_ipaddress: ["10.1.0.100"]"#);
        assert!(
            e.contains("neither a service VIP nor on a subnet of port \"outside\""),
            "{e}"
        );
        let e = one(r#"virtual_ipaddress: ["10.0.0.100"], priority: 0"#);
        assert!(e.contains("priority 0 is reserved"), "{e}");
        let e = one(
            r#"virtual_ipaddress: ["10.0.0.100"], version: 3, authentication: Some((auth_type: "PASS", auth_pass: "x"))"#,
        );
        assert!(e.contains("authentication with version 3"), "{e}");
        let e = one(
            r#"virtual_ipaddress: ["10.0.0.100"], authentication: Some((auth_type: "PASS", auth_pass: "toolongpass"))"#,
        );
        assert!(e.contains("1..=8 printable"), "{e}");
        let e = one(r#"virtual_ipaddress: ["10.0.0.100"], state: "MASTER", nopreempt: true"#);
        assert!(e.contains("nopreempt with state"), "{e}");
        let e = one(r#"virtual_ipaddress: ["10.0.0.100"], track_script: [(script: "nope")]"#);
        assert!(e.contains("no vrrp_script named \"nope\""), "{e}");
        let e = one(r#"virtual_ipaddress: ["10.0.0.100"], track_interface: ["eth9"]"#);
        assert!(
            e.contains("track_interface \"eth9\" is not a port name"),
            "{e}"
        );
        let e =
            one(r#"virtual_ipaddress: ["10.0.0.100"], track_service: [(vip: "10.0.0.100:81")]"#);
        assert!(e.contains("no TCP service at 10.0.0.100:81"), "{e}");
        let e = one(r#"virtual_ipaddress: ["10.0.0.100"], unicast_src_ip: Some("10.1.0.1")"#);
        assert!(e.contains("is not an address of port \"outside\""), "{e}");
        let e = err(
            r#"vrrp_instance: [(name: "VI_1", interface: "nope", virtual_router_id: 51, virtual_ipaddress: ["10.0.0.100"])],"#,
        );
        assert!(
            e.contains("no port named \"nope\": expected one of outside, inside"),
            "{e}"
        );
    }

    #[test]
    fn test_vrrp_cross_instance_rules() {
        let e = err(r#"vrrp_instance: [
            (name: "A", interface: "outside", virtual_router_id: 51, virtual_ipaddress: ["10.0.0.100"]),
            (name: "B", interface: "outside", virtual_router_id: 51, virtual_ipaddress: ["10.0.0.101"])],"#);
        assert!(e.contains("virtual_router_id 51 is used twice"), "{e}");
        let e = err(r#"vrrp_instance: [
            (name: "A", interface: "outside", virtual_router_id: 51, virtual_ipaddress: ["10.0.0.100"]),
            (name: "B", interface: "outside", virtual_router_id: 52, virtual_ipaddress: ["10.0.0.100"])],"#);
        assert!(e.contains("already held by vrrp_instance \"A\""), "{e}");
        let e = err(&format!(
            "{GOOD}\n    vrrp_sync_group: [(name: \"G2\", group: [\"VI_OUT\", \"VI_X\"])],"
        )
        .replace(
            "vrrp_sync_group: [(name: \"G1\", group: [\"VI_OUT\", \"VI_IN\"])],",
            "",
        ));
        assert!(e.contains("no vrrp_instance named \"VI_X\""), "{e}");
        let e = err(&format!("{GOOD}\n    exception_path: (enabled: false),"));
        assert!(e.contains("vrrp_instance needs the exception path"), "{e}");
    }
}
