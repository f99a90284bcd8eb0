//! VS/TUN in the config: `forwarding: "tun"`, the service's `tun_src`, the
//! real server's `tun_type`/`tun_port`, through validation and compile into
//! the snapshot's `RealServer::tun`; every inconsistent combination is one
//! `file:line:col: message` error pointing at the offending field.

use control::config::parse;
use dataplane::snapshot::{Method, TunConf, TunType};

/// A valid config with a tunnelled service: rs .11 IPIP, rs .12 GUE on
/// 6080, rs .13 NAT (override, another port). Line numbers in the tests.
const BASE: &str = r#"(
    eal_args: ["-l", "0-1", "--no-pci"],
    workers: [1],
    ports: [
        (name: "outside", device: "net_af_packet0", addrs: ["10.0.0.1/24"]),
        (name: "inside", device: "net_af_packet1", addrs: ["10.1.0.1/24"]),
    ],
    routes: [ (dst: "10.9.0.0/16", via: "10.1.0.254") ],
    services: [
        (
            vip: "10.0.0.100:80",
            proto: "tcp",
            scheduler: "rr",
            forwarding: "tunnel",
            tun_src: "10.0.0.100",
            real_servers: [
                (addr: "10.9.0.11:80"),
                (addr: "10.1.0.12:80", tun_type: "gue", tun_port: 6080),
                (addr: "10.1.0.13:8080", forwarding: "nat"),
            ],
        ),
    ],
)
"#;

fn edit(from: &str, to: &str) -> String {
    assert_eq!(
        BASE.matches(from).count(),
        1,
        "edit target {from:?} must be unique"
    );
    BASE.replacen(from, to, 1)
}

fn err(src: &str) -> String {
    let e = parse(src, "fulcrum.ron").expect_err("config must be rejected");
    e.to_string()
}

#[test]
fn test_tun_config_compiles() {
    let cfg = parse(BASE, "fulcrum.ron").expect("BASE must be valid");
    let snap = control::compile::compile(
        &cfg,
        &[[2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 1, 1]],
        1,
        None,
        &[],
    );
    let got: Vec<(u32, Method, TunConf)> = snap.reals[1..]
        .iter()
        .map(|r| (r.ip, r.method, r.tun))
        .collect();
    let src = 0x0a00_0064;
    assert_eq!(
        got,
        vec![
            (
                0x0a09_000b,
                Method::Tun,
                TunConf {
                    kind: TunType::Ipip,
                    port: 0,
                    src
                }
            ),
            (
                0x0a01_000c,
                Method::Tun,
                TunConf {
                    kind: TunType::Gue,
                    port: 6080,
                    src
                }
            ),
            (0x0a01_000d, Method::Nat, TunConf::default()),
        ]
    );
}

#[test]
fn test_tun_src_defaults_to_zero() {
    let cfg = parse(&edit("            tun_src: \"10.0.0.100\",\n", ""), "f").expect("valid");
    let snap = control::compile::compile(
        &cfg,
        &[[2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 1, 1]],
        1,
        None,
        &[],
    );
    assert_eq!(snap.reals[1].tun.src, 0, "0 = the egress port's DIP");
}

#[test]
fn test_error_gue_without_port() {
    assert_eq!(
        err(&edit(", tun_port: 6080", "")),
        "fulcrum.ron:18:50: tun_type \"gue\" without tun_port: expected the real server's GUE UDP port"
    );
}

#[test]
fn test_error_tun_port_zero() {
    assert_eq!(
        err(&edit("tun_port: 6080", "tun_port: 0")),
        "fulcrum.ron:18:67: tun_port 0: expected a UDP port 1..=65535"
    );
}

#[test]
fn test_error_tun_port_with_ipip() {
    assert_eq!(
        err(&edit("tun_type: \"gue\"", "tun_type: \"ipip\"")),
        "fulcrum.ron:18:68: tun_port with tun_type \"ipip\": expected it only with tun_type \"gue\""
    );
}

#[test]
fn test_error_tun_type_on_nat_server() {
    assert_eq!(
        err(&edit("forwarding: \"nat\"", "forwarding: \"nat\", tun_type: \"ipip\"")),
        "fulcrum.ron:19:71: tun_type on a real server that is not tunnelled: expected forwarding \"tun\""
    );
}

#[test]
fn test_error_unknown_tun_type() {
    assert!(err(&edit("\"gue\"", "\"vxlan\""))
        .contains("invalid tunnel type \"vxlan\": expected one of ipip, gue"));
}

#[test]
fn test_error_tun_port_mismatch() {
    assert_eq!(
        err(&edit("\"10.9.0.11:80\"", "\"10.9.0.11:81\"")),
        "fulcrum.ron:17:24: tunnelling cannot change the port: real server port 81 must equal the virtual port 80"
    );
}

#[test]
fn test_error_tun_no_route() {
    assert_eq!(
        err(&edit("\"10.9.0.11:80\"", "\"10.8.0.11:80\"")),
        "fulcrum.ron:17:24: no route to tunnel real server 10.8.0.11: expected it on a connected subnet \
         (10.0.0.0/24, 10.1.0.0/24) or covered by a static route"
    );
}

#[test]
fn test_error_tun_src_not_ours() {
    assert_eq!(
        err(&edit("tun_src: \"10.0.0.100\"", "tun_src: \"10.0.0.7\"")),
        "fulcrum.ron:15:22: tun_src 10.0.0.7 is not one of the director's addresses: expected a DIP or VIP"
    );
}

#[test]
fn test_error_tun_src_without_tun_server() {
    let src = edit("forwarding: \"tunnel\"", "forwarding: \"nat\"")
        .replace(", tun_type: \"gue\", tun_port: 6080", "")
        .replace("10.1.0.12:80", "10.1.0.12:8080")
        .replace("10.9.0.11:80", "10.9.0.11:8080");
    assert_eq!(
        err(&src),
        "fulcrum.ron:15:22: tun_src in a service without a \"tun\" real server: expected it only with forwarding \"tun\""
    );
}
