//! Config loading end to end: the shipped example parses and validates, and
//! every kind of mistake is reported as one `file:line:col: message` line
//! pointing at the offending value.

use std::net::Ipv4Addr;
use std::path::PathBuf;

use control::config::{self, line_col, locate, parse, PathSeg, DEFAULT_ADMIN_SOCKET};
use dataplane::snapshot::{Method, Proto};
use sched::SchedKind;

/// A small valid config whose line/column layout the error tests rely on.
/// Line numbers are given in the comments of each test.
const BASE: &str = r#"(
    eal_args: ["-l", "0-1", "--no-pci"],
    workers: [1],
    ports: [
        (name: "outside", device: "net_af_packet0", addrs: ["10.0.0.1/24"]),
        (name: "inside", device: "net_af_packet1", addrs: ["10.1.0.1/24"], mac: "02:00:00:00:01:01"),
    ],
    routes: [ (dst: "0.0.0.0/0", via: "10.0.0.254") ],
    neighbours: [ (ip: "10.1.0.11", mac: "02:00:0a:01:00:0b") ],
    services: [
        (
            vip: "10.0.0.100:80",
            proto: "tcp",
            scheduler: "rr",
            forwarding: "nat",
            real_servers: [
                (addr: "10.1.0.11:80", weight: 1),
                (addr: "10.1.0.12:80"),
            ],
        ),
        (
            vip: "10.0.0.101:80",
            proto: "tcp",
            scheduler: "wrr",
            forwarding: "dr",
            real_servers: [
                (addr: "10.1.0.21:80", weight: 3),
            ],
        ),
    ],
)
"#;

/// `BASE` with exactly one occurrence of `from` replaced by `to`.
fn edit(from: &str, to: &str) -> String {
    assert_eq!(
        BASE.matches(from).count(),
        1,
        "edit target {from:?} must be unique"
    );
    BASE.replacen(from, to, 1)
}

/// The one-line error for `src`.
fn err(src: &str) -> String {
    let e = parse(src, "fulcrum.ron").expect_err("config must be rejected");
    let s = e.to_string();
    assert!(!s.contains('\n'), "error must be one line: {s:?}");
    s
}

fn example_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/fulcrum.example.ron")
}

#[test]
fn test_example_parses_and_validates() {
    let cfg = config::load(&example_path()).expect("docs/fulcrum.example.ron must be valid");
    assert_eq!(cfg.workers, vec![1]);
    assert_eq!(cfg.eal_args.len(), 9);
    assert_eq!(cfg.eal_args[0], "-l");
    assert_eq!(
        cfg.eal_args[8],
        "--vdev=net_af_packet1,iface=veth-in,qpairs=1"
    );
    assert_eq!(
        (cfg.mbufs_per_socket, cfg.rx_desc, cfg.tx_desc, cfg.burst),
        (16383, 1024, 1024, 32)
    );
    assert_eq!((cfg.idle_sleep_us, cfg.conn_table_size), (0, 1_048_576));
    assert_eq!(cfg.admin_socket, PathBuf::from(DEFAULT_ADMIN_SOCKET));
    assert_eq!(cfg.ports.len(), 2);
    assert_eq!(cfg.ports[1].name, "inside");
    assert_eq!(cfg.ports[1].device, "net_af_packet1");
    assert_eq!(cfg.ports[1].mac.map(|m| m.0), Some([2, 0, 0, 0, 1, 1]));
    assert_eq!(cfg.ports[0].mac, None);
    assert_eq!(cfg.ports[0].addrs[0].addr, Ipv4Addr::new(10, 0, 0, 1));
    assert_eq!(cfg.ports[0].addrs[0].len, 24);
    assert_eq!(cfg.routes.len(), 1);
    assert_eq!(cfg.routes[0].via.0, Ipv4Addr::new(10, 0, 0, 254));
    assert_eq!(cfg.neighbours[0].mac.0, [2, 0, 0x0a, 1, 0, 0x0b]);
    assert_eq!(cfg.timeouts.tcp_established.0, 900);
    assert_eq!(cfg.timeouts.tcp_syn_recv.0, 60);
    assert_eq!(cfg.services.len(), 3);
    let nat = &cfg.services[0];
    assert_eq!(
        (nat.proto.0, nat.scheduler.0, nat.forwarding.0),
        (Proto::Tcp, SchedKind::Rr, Method::Nat)
    );
    assert_eq!(nat.real_servers.len(), 2);
    let dr = &cfg.services[1];
    assert_eq!(
        (dr.scheduler.0, dr.forwarding.0),
        (SchedKind::Wrr, Method::Dr)
    );
    assert_eq!(dr.real_servers[0].weight.0, 3);
    assert_eq!(dr.real_servers[0].addr.port(), 80);
    assert_eq!(dr.persistence_timeout.map(|t| t.0), Some(300));
    assert_eq!(dr.persistence_netmask.map(|m| m.bits()), Some(0xffff_ff00));
    assert_eq!(nat.persistence_timeout, None);
    let mh = &cfg.services[2];
    assert_eq!((mh.proto.0, mh.scheduler.0), (Proto::Udp, SchedKind::Mh));
    assert!(mh.sched_flags().mh_port && !mh.sched_flags().mh_fallback);
    let p = mh.sched_params();
    assert_eq!((p.mh_table_len, p.mh_seed), (65537, 12345));
}

#[test]
fn test_example_compiles() {
    let cfg = config::load(&example_path()).expect("valid");
    let snap = control::compile::compile(
        &cfg,
        &[[2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 1, 1]],
        1,
        None,
        &[],
    );
    assert_eq!(snap.services.len(), 3);
    assert_eq!(snap.reals.len(), 7);
    // The mh service carries its prebuilt table; the others none.
    let t = snap.services[2].mh_table.as_ref().expect("mh table");
    assert_eq!((t.len(), t.seed()), (65537, 12345));
    assert!(snap.services[..2].iter().all(|s| s.mh_table.is_none()));
    assert_eq!(snap.routes.last().map(|r| r.via), Some(Some(0x0a00_00fe)));
}

#[test]
fn test_base_is_valid_and_defaults_apply() {
    let cfg = parse(BASE, "fulcrum.ron").expect("BASE must be valid");
    assert_eq!(cfg.burst, 32);
    assert_eq!(cfg.conn_table_size, 1_048_576);
    assert_eq!(cfg.timeouts, config::TimeoutsConfig::default());
    assert_eq!(cfg.timeouts.udp.0, 300);
    // Weight defaults to 1.
    assert_eq!(cfg.services[0].real_servers[1].weight.0, 1);
    assert_eq!(cfg.services[0].real_servers[1].forwarding, None);
}

#[test]
fn test_load_missing_file() {
    let e = config::load(std::path::Path::new("/nonexistent/fulcrum.ron")).expect_err("no file");
    let s = e.to_string();
    assert!(
        s.starts_with("/nonexistent/fulcrum.ron: cannot read config: "),
        "{s}"
    );
    assert!(!s.contains('\n'));
    assert_eq!(e.position(), None);
}

// --- syntax and type errors (positions from ron) ---

#[test]
fn test_error_syntax_missing_comma() {
    // Line 3 loses its comma; ron stops at `ports` on line 4.
    assert_eq!(
        err(&edit("workers: [1],", "workers: [1]")),
        "fulcrum.ron:4:5: expected `,`"
    );
}

#[test]
fn test_error_unknown_field() {
    // Line 6: `maac` starts at column 76.
    assert_eq!(
        err(&edit("mac: \"02:00:00:00:01:01\"", "maac: \"02:00:00:00:01:01\"")),
        "fulcrum.ron:6:76: unknown field `maac` in a port: expected one of name, device, addrs, mac, verify_checksums, kernel_iface, mtu"
    );
}

#[test]
fn test_error_unknown_top_level_field() {
    assert_eq!(
        err(&edit("    workers: [1],\n", "    workers: [1],\n    wrokers: 2,\n")),
        "fulcrum.ron:4:5: unknown field `wrokers` in the top level: expected one of eal_args, workers, \
         mbufs_per_socket, rx_desc, tx_desc, burst, idle_sleep_us, conn_table_size, admin_socket, admin_group, \
         ports, routes, neighbours, timeouts, services, expire_nodest_conn, fullnat_lport_min, fullnat_lport_max, \
         enable_script_security, exception_path, icmp_rate_limit, metrics, vrrp_instance, vrrp_script, vrrp_sync_group"
    );
}

#[test]
fn test_error_missing_field() {
    // The port struct on line 5 (column 9) has no `device`.
    assert_eq!(
        err(&edit(
            "(name: \"outside\", device: \"net_af_packet0\", ",
            "(name: \"outside\", "
        )),
        "fulcrum.ron:5:9: missing field `device` in a port"
    );
}

#[test]
fn test_error_wrong_type() {
    // Line 17: the weight is a string.
    assert_eq!(
        err(&edit("weight: 1)", "weight: \"1\")")),
        "fulcrum.ron:17:48: expected a weight 0..=65535, found the string \"1\""
    );
}

#[test]
fn test_error_integer_out_of_bounds() {
    assert_eq!(
        err(&edit(
            "    workers: [1],\n",
            "    workers: [1],\n    rx_desc: 70000,\n"
        )),
        "fulcrum.ron:4:14: integer out of range for this field"
    );
}

// --- value errors (raised inside deserialization) ---

#[test]
fn test_error_bad_cidr() {
    assert_eq!(
        err(&edit("\"10.1.0.1/24\"", "\"10.1.0.1/33\"")),
        "fulcrum.ron:6:60: invalid CIDR \"10.1.0.1/33\": expected IPv4 address/prefix length like \"10.0.0.1/24\""
    );
}

#[test]
fn test_error_cidr_network_address() {
    assert_eq!(
        err(&edit("\"10.0.0.1/24\"", "\"10.0.0.0/24\"")),
        "fulcrum.ron:5:61: invalid CIDR \"10.0.0.0/24\": 10.0.0.0 is the subnet's network or broadcast \
         address, expected a host address"
    );
}

#[test]
fn test_error_bad_mac() {
    assert_eq!(
        err(&edit("\"02:00:00:00:01:01\"", "\"02:00:00:00:01\"")),
        "fulcrum.ron:6:81: invalid MAC address \"02:00:00:00:01\": expected six hex octets like \"02:00:00:00:01:01\""
    );
}

#[test]
fn test_error_multicast_mac() {
    assert_eq!(
        err(&edit("\"02:00:0a:01:00:0b\"", "\"01:00:5e:00:00:01\"")),
        "fulcrum.ron:9:42: invalid MAC address \"01:00:5e:00:00:01\": multicast/broadcast, expected a unicast MAC"
    );
}

#[test]
fn test_error_unknown_scheduler() {
    assert_eq!(
        err(&edit("\"wrr\"", "\"wrrr\"")),
        "fulcrum.ron:24:24: invalid scheduler \"wrrr\": expected one of rr, wrr, lc, wlc, lblc, lblcr, dh, sh, sed, nq, fo, ovf, mh, twos"
    );
}

// --- scheduler settings: sched_flags, table_size, hash_seed ---

/// `BASE` with service 0 (two real servers) on scheduler `sched`
/// and `extra` written on a line of its own (line 16) after `forwarding`.
fn sched0(sched: &str, extra: &str) -> String {
    edit(
        "scheduler: \"rr\",\n            forwarding: \"nat\",\n",
        &format!(
            "scheduler: \"{sched}\",\n            forwarding: \"nat\",\n            {extra}\n"
        ),
    )
}

#[test]
fn test_sched_settings_default_and_apply() {
    use sched::{SchedFlags, SchedParams, MH_SEED_DEFAULT};
    let cfg = parse(BASE, "fulcrum.ron").expect("valid");
    let s = &cfg.services[0];
    assert!(s.sched_flags.is_empty());
    assert_eq!((s.table_size, s.hash_seed), (None, None));
    let settings = |sched: &str, extra: &str| {
        let cfg = parse(&sched0(sched, extra), "f").expect("valid");
        let s = &cfg.services[0];
        (s.sched_flags(), s.sched_params())
    };
    let d = SchedParams::default();
    let no = SchedFlags::default();
    assert_eq!(settings("rr", ""), (no, d));
    // flag-1/flag-2 are the fallback/port bits (IPVS SCHED1/SCHED2).
    let sh_both = SchedFlags {
        sh_port: true,
        sh_fallback: true,
        ..no
    };
    assert_eq!(
        settings(
            "sh",
            "sched_flags: [\"flag-1\", \"flag-2\"], table_size: 1024,"
        ),
        (
            sh_both,
            SchedParams {
                sh_table_len: 1024,
                ..d
            }
        )
    );
    let mh_port = SchedFlags {
        mh_port: true,
        ..no
    };
    assert_eq!(
        settings(
            "mh",
            "sched_flags: [\"mh-port\"], table_size: 307, hash_seed: 18446744073709551615,"
        ),
        (
            mh_port,
            SchedParams {
                mh_table_len: 307,
                mh_seed: u64::MAX,
                ..d
            }
        )
    );
    let mh_fb = SchedFlags {
        mh_fallback: true,
        ..no
    };
    assert_eq!(settings("mh", "sched_flags: [\"flag-1\"],"), (mh_fb, d));
    assert_eq!(d.mh_seed, MH_SEED_DEFAULT);
    // dh takes a table size too; the smallest is 2 (IPVS TAB_BITS 1).
    assert_eq!(
        settings("dh", "table_size: 2,"),
        (
            no,
            SchedParams {
                dh_table_len: 2,
                ..d
            }
        )
    );
}

#[test]
fn test_error_sched_flag_not_for_scheduler() {
    assert_eq!(
        err(&sched0("rr", "sched_flags: [\"sh-port\"],")),
        "fulcrum.ron:16:27: scheduler flag \"sh-port\" does not apply to scheduler \"rr\": scheduler \"rr\" \
         takes no flags (only sh takes sh-port, sh-fallback and mh takes mh-port, mh-fallback)"
    );
    assert_eq!(
        err(&sched0("sh", "sched_flags: [\"sh-port\", \"mh-fallback\"],")),
        "fulcrum.ron:16:38: scheduler flag \"mh-fallback\" does not apply to scheduler \"sh\": scheduler \"sh\" \
         accepts sh-fallback, sh-port, flag-1 (= sh-fallback), flag-2 (= sh-port)"
    );
    assert_eq!(
        err(&sched0("wlc", "sched_flags: [\"flag-1\"],")),
        "fulcrum.ron:16:27: scheduler flag \"flag-1\" does not apply to scheduler \"wlc\": scheduler \"wlc\" \
         takes no flags (only sh takes sh-port, sh-fallback and mh takes mh-port, mh-fallback)"
    );
}

#[test]
fn test_error_sched_flag_unknown() {
    assert_eq!(
        err(&sched0("mh", "sched_flags: [\"mh-port\", \"flag-3\"],")),
        "fulcrum.ron:16:38: unknown scheduler flag \"flag-3\": scheduler \"mh\" accepts mh-fallback, mh-port, \
         flag-1 (= mh-fallback), flag-2 (= mh-port)"
    );
}

#[test]
fn test_error_sched_flag_duplicate() {
    assert_eq!(
        err(&sched0("sh", "sched_flags: [\"sh-port\", \"sh-fallback\", \"sh-port\"],")),
        "fulcrum.ron:16:53: duplicate scheduler flag \"sh-port\": already set by sched_flags[0]; expected each flag once"
    );
    // An alias of a flag already set is a duplicate too.
    assert_eq!(
        err(&sched0("mh", "sched_flags: [\"mh-fallback\", \"flag-1\"],")),
        "fulcrum.ron:16:42: duplicate scheduler flag \"mh-fallback\" (flag-1 = mh-fallback): already set by \
         sched_flags[0]; expected each flag once"
    );
}

#[test]
fn test_error_table_size() {
    let pow2 = "expected a power of two between 2 and 1048576 (hash buckets)";
    let prime = "expected a prime between 2 and 16777216 (Maglev table size)";
    for (sched, size, want) in [
        (
            "sh",
            100u64,
            format!("invalid table_size 100 for scheduler \"sh\": {pow2}"),
        ),
        (
            "dh",
            1,
            format!("invalid table_size 1 for scheduler \"dh\": {pow2}"),
        ),
        (
            "sh",
            2097152,
            format!("invalid table_size 2097152 for scheduler \"sh\": {pow2}"),
        ),
        (
            "mh",
            65536,
            format!("invalid table_size 65536 for scheduler \"mh\": {prime}, like 65537"),
        ),
        (
            "mh",
            4000000000,
            format!("invalid table_size 4000000000 for scheduler \"mh\": {prime}, like 16777213"),
        ),
        // Two real servers need M ≥ 200.
        (
            "mh",
            197,
            "table_size 197 is too small for scheduler \"mh\": 2 real servers need table_size \
             ≥ 100 × 2 = 200 (Maglev: M ≥ 100·N keeps shares within 1 %), like 211"
                .to_string(),
        ),
        (
            "wrr",
            256,
            "table_size does not apply to scheduler \"wrr\": expected it only with dh or sh \
             (hash buckets) or mh (Maglev table size)"
                .to_string(),
        ),
    ] {
        assert_eq!(
            err(&sched0(sched, &format!("table_size: {size},"))),
            format!("fulcrum.ron:16:25: {want}")
        );
    }
}

#[test]
fn test_error_mh_default_table_too_small() {
    // 656 real servers: 100 × 656 = 65600 > the default 65537. The error
    // points at the 656th server (index 655), the first the default
    // cannot hold.
    let reals: String = (0..656)
        .map(|i| format!("(addr: \"10.1.{}.{}:80\"),", i / 200, 10 + i % 200))
        .collect();
    let src = edit(
        "(addr: \"10.1.0.11:80\", weight: 1),\n                (addr: \"10.1.0.12:80\"),",
        &reals,
    )
    .replacen("\"10.1.0.1/24\"", "\"10.1.0.1/16\"", 1)
    .replacen("scheduler: \"rr\"", "scheduler: \"mh\"", 1);
    let e = err(&src);
    let col = 17 + reals.find("(addr: \"10.1.3.65:80\")").unwrap();
    assert_eq!(
        e,
        format!(
            "fulcrum.ron:17:{col}: the default mh table_size 65537 is too small: 656 real servers need table_size \
             ≥ 100 × 656 = 65600 (Maglev: M ≥ 100·N keeps shares within 1 %), like 65609"
        )
    );
    // With a big enough table it is accepted.
    let ok = src.replacen(
        "forwarding: \"nat\",",
        "forwarding: \"nat\", table_size: 65609,",
        1,
    );
    parse(&ok, "f").expect("65609 ≥ 65600 is a prime");
}

#[test]
fn test_error_hash_seed_not_mh() {
    assert_eq!(
        err(&sched0("sh", "hash_seed: 7,")),
        "fulcrum.ron:16:24: hash_seed does not apply to scheduler \"sh\": expected it only with mh (Maglev)"
    );
}

#[test]
fn test_error_unknown_proto() {
    assert_eq!(
        err(&edit(
            "vip: \"10.0.0.101:80\",\n            proto: \"tcp\"",
            "vip: \"10.0.0.101:80\",\n            proto: \"sctp\""
        )),
        "fulcrum.ron:23:20: invalid protocol \"sctp\": expected one of tcp, udp"
    );
}

#[test]
fn test_error_unknown_forwarding() {
    assert_eq!(
        err(&edit("\"dr\"", "\"ipip\"")),
        "fulcrum.ron:25:25: invalid forwarding method \"ipip\": expected one of nat, masq, dr, route, tun, tunnel, fullnat"
    );
}

#[test]
fn test_error_weight_70000() {
    assert_eq!(
        err(&edit("weight: 3)", "weight: 70000)")),
        "fulcrum.ron:27:48: invalid weight 70000: expected 0..=65535"
    );
}

#[test]
fn test_error_bad_port_number() {
    assert_eq!(
        err(&edit("\"10.1.0.12:80\"", "\"10.1.0.12:65536\"")),
        "fulcrum.ron:18:24: invalid address \"10.1.0.12:65536\": port 65536 out of range 0..=65535"
    );
}

#[test]
fn test_error_bad_ip() {
    assert_eq!(
        err(&edit("\"10.0.0.254\"", "\"10.0.0.256\"")),
        "fulcrum.ron:8:39: invalid IPv4 address \"10.0.0.256\": expected a dotted quad like \"10.0.0.254\""
    );
}

#[test]
fn test_error_timeout_zero() {
    assert_eq!(
        err(&edit(
            "    workers: [1],\n",
            "    workers: [1],\n    timeouts: (udp: 0),\n"
        )),
        "fulcrum.ron:4:21: invalid timeout 0 s: expected 1..=2592000 seconds"
    );
}

#[test]
fn test_error_route_dst_host_bits() {
    assert_eq!(
        err(&edit("\"0.0.0.0/0\"", "\"10.9.1.1/16\"")),
        "fulcrum.ron:8:21: invalid prefix \"10.9.1.1/16\": host bits set, expected \"10.9.0.0/16\""
    );
}

// --- cross-field errors (found after parsing, located in the text) ---

#[test]
fn test_error_duplicate_vip() {
    assert_eq!(
        err(&edit("\"10.0.0.101:80\"", "\"10.0.0.100:80\"")),
        "fulcrum.ron:22:18: duplicate virtual service TCP 10.0.0.100:80: already defined by services[0]"
    );
}

#[test]
fn test_same_vip_other_proto_is_fine() {
    let src = edit(
        "vip: \"10.0.0.101:80\",\n            proto: \"tcp\"",
        "vip: \"10.0.0.100:80\",\n            proto: \"udp\"",
    );
    let cfg = parse(&src, "fulcrum.ron").expect("TCP and UDP on one VIP:port are two services");
    assert_eq!(cfg.services[1].proto.0, Proto::Udp);
}

#[test]
fn test_error_dr_port_mismatch() {
    assert_eq!(
        err(&edit("\"10.1.0.21:80\"", "\"10.1.0.21:8080\"")),
        "fulcrum.ron:27:24: direct routing cannot change the port: real server port 8080 must equal the virtual port 80"
    );
}

#[test]
fn test_error_dr_off_subnet() {
    assert_eq!(
        err(&edit("\"10.1.0.21:80\"", "\"10.7.0.21:80\"")),
        "fulcrum.ron:27:24: direct-routing real server 10.7.0.21 is not on a connected subnet: DR only rewrites \
         the MAC, expected an address inside 10.0.0.0/24, 10.1.0.0/24"
    );
}

#[test]
fn test_error_via_off_subnet() {
    assert_eq!(
        err(&edit("\"10.0.0.254\"", "\"10.9.0.254\"")),
        "fulcrum.ron:8:39: gateway 10.9.0.254 is not on a connected subnet: expected an address inside \
         10.0.0.0/24, 10.1.0.0/24"
    );
}

#[test]
fn test_error_empty_workers() {
    assert_eq!(
        err(&edit("workers: [1]", "workers: []")),
        "fulcrum.ron:3:14: no workers: expected at least one worker lcore, like workers: [1]"
    );
}

#[test]
fn test_error_duplicate_worker() {
    assert_eq!(
        err(&edit("workers: [1]", "workers: [1, 2, 1]")),
        "fulcrum.ron:3:21: duplicate worker lcore 1: expected each lcore once (one worker per lcore)"
    );
}

#[test]
fn test_error_too_many_workers() {
    let list: Vec<String> = (0..65).map(|i| i.to_string()).collect();
    let src = edit("workers: [1]", &format!("workers: [{}]", list.join(",")));
    // Element 64 ("64") follows `    workers: [` (14 columns), 10 one-digit
    // and 54 two-digit elements (118) and 64 commas: column 14 + 118 + 64 + 1.
    assert_eq!(
        err(&src),
        "fulcrum.ron:3:197: too many workers (65): expected at most 64"
    );
}

#[test]
fn test_error_burst_out_of_range() {
    assert_eq!(
        err(&edit(
            "    workers: [1],\n",
            "    workers: [1],\n    burst: 65,\n"
        )),
        "fulcrum.ron:4:12: invalid burst 65: expected 1..=64 packets"
    );
}

#[test]
fn test_error_duplicate_port_name() {
    assert_eq!(
        err(&edit("(name: \"inside\"", "(name: \"outside\"")),
        "fulcrum.ron:6:16: duplicate port name \"outside\": already used by ports[0]"
    );
}

#[test]
fn test_error_duplicate_device() {
    assert_eq!(
        err(&edit("\"net_af_packet1\"", "\"net_af_packet0\"")),
        "fulcrum.ron:6:34: duplicate device \"net_af_packet0\": already used by ports[0]"
    );
}

#[test]
fn test_error_duplicate_real_server() {
    assert_eq!(
        err(&edit("\"10.1.0.12:80\"", "\"10.1.0.11:80\"")),
        "fulcrum.ron:18:24: duplicate real server 10.1.0.11:80 in virtual service TCP 10.0.0.100:80"
    );
}

#[test]
fn test_error_neighbour_off_subnet() {
    assert_eq!(
        err(&edit("ip: \"10.1.0.11\"", "ip: \"10.5.0.11\"")),
        "fulcrum.ron:9:24: neighbour 10.5.0.11 is not on a connected subnet: expected an address inside \
         10.0.0.0/24, 10.1.0.0/24"
    );
}

#[test]
fn test_error_nat_no_route() {
    // Without the default route, 10.8.0.12 is unreachable.
    let src = edit(
        "    routes: [ (dst: \"0.0.0.0/0\", via: \"10.0.0.254\") ],\n",
        "",
    )
    .replacen("\"10.1.0.12:80\"", "\"10.8.0.12:80\"", 1);
    assert_eq!(
        err(&src),
        "fulcrum.ron:17:24: no route to NAT real server 10.8.0.12: expected it on a connected subnet \
         (10.0.0.0/24, 10.1.0.0/24) or covered by a static route"
    );
    // With the default route it is fine.
    parse(&edit("\"10.1.0.12:80\"", "\"10.8.0.12:80\""), "fulcrum.ron")
        .expect("routed by default route");
}

#[test]
fn test_error_vip_is_dip() {
    assert_eq!(
        err(&edit("\"10.0.0.101:80\"", "\"10.0.0.1:80\"")),
        "fulcrum.ron:22:18: VIP 10.0.0.1 is a director address (DIP) of port \"outside\": expected a separate address"
    );
}

#[test]
fn test_error_no_ports() {
    let start = BASE.find("    ports: [").expect("ports");
    let end = BASE.find("    routes:").expect("routes");
    let src = format!("{}    ports: [],\n{}", &BASE[..start], &BASE[end..]);
    assert_eq!(
        err(&src),
        "fulcrum.ron:4:12: no ports: expected at least one port"
    );
}

// --- positions survive comments, explicit Some(...), struct names, Unicode ---

#[test]
fn test_error_position_ignores_commented_copy() {
    // A commented-out copy of the value comes first; the error must point at
    // the live one on line 18.
    let src = edit(
        "                (addr: \"10.1.0.12:80\"),\n",
        "                // (addr: \"10.1.0.11:80\"),\n                (addr: \"10.1.0.11:80\"),\n",
    );
    assert_eq!(
        err(&src),
        "fulcrum.ron:19:24: duplicate real server 10.1.0.11:80 in virtual service TCP 10.0.0.100:80"
    );
}

#[test]
fn test_explicit_some_and_struct_name() {
    let src = format!("Config{}", BASE).replacen(
        "mac: \"02:00:00:00:01:01\"",
        "mac: Some(\"02:00:00:00:01:01\")",
        1,
    );
    let cfg = parse(&src, "f.ron").expect("Config(...) and Some(...) are accepted");
    assert_eq!(cfg.ports[1].mac.map(|m| m.0), Some([2, 0, 0, 0, 1, 1]));
    // And a cross-field error still finds its value through the struct name.
    let bad = src.replacen("workers: [1]", "workers: []", 1);
    assert_eq!(
        err(&bad),
        "fulcrum.ron:3:14: no workers: expected at least one worker lcore, like workers: [1]"
    );
}

#[test]
fn test_error_column_counts_characters() {
    // "é" is two bytes; the column is in characters.
    let src = edit("(name: \"inside\"", "(name: \"intérieur\"").replacen(
        "\"10.1.0.1/24\"",
        "\"10.1.0.1/99\"",
        1,
    );
    let e = err(&src);
    assert!(
        e.starts_with("fulcrum.ron:6:63: invalid CIDR \"10.1.0.1/99\""),
        "{e}"
    );
}

// --- the locator helper ---

#[test]
fn test_locate_paths() {
    use PathSeg::{Field as F, Index as I};
    let at = |path: &[PathSeg]| locate(BASE, path).map(|o| line_col(BASE, o));
    assert_eq!(at(&[F("workers")]), Some((3, 14)));
    assert_eq!(at(&[F("workers"), I(0)]), Some((3, 15)));
    assert_eq!(at(&[F("ports"), I(1), F("mac")]), Some((6, 81)));
    assert_eq!(at(&[F("services"), I(1), F("vip")]), Some((22, 18)));
    assert_eq!(
        at(&[F("services"), I(0), F("real_servers"), I(1), F("addr")]),
        Some((18, 24))
    );
    assert_eq!(
        at(&[F("services"), I(1), F("real_servers"), I(0), F("weight")]),
        Some((27, 48))
    );
    assert_eq!(at(&[F("routes"), I(0), F("via")]), Some((8, 39)));
    // Absent paths.
    assert_eq!(at(&[F("burst")]), None);
    assert_eq!(at(&[F("services"), I(2)]), None);
    assert_eq!(at(&[F("ports"), I(0), F("mac")]), None);
    assert_eq!(locate("", &[F("workers")]), None);
}

#[test]
fn test_locate_skips_strings_and_comments() {
    use PathSeg::{Field as F, Index as I};
    let src = "( /* workers: [9] */ a: \"workers: [8]\", // workers: [7]\n  workers: [ 5 , 6 ] )";
    let off = locate(src, &[F("workers"), I(1)]).expect("found");
    assert_eq!(&src[off..off + 1], "6");
    assert_eq!(line_col(src, off), (2, 18));
}

#[test]
fn test_locate_never_panics_on_garbage() {
    use PathSeg::{Field as F, Index as I};
    for src in [
        "(",
        ")",
        "\"unterminated",
        "r#\"raw",
        "/* open",
        "([(",
        "(a: [1, (b: ",
        "é(ü: [",
        "'",
    ] {
        let _ = locate(src, &[F("a"), I(3), F("b")]);
        let _ = parse(src, "x.ron").expect_err("garbage is rejected");
    }
}

#[test]
fn test_line_col() {
    let src = "ab\ncé\nx";
    assert_eq!(line_col(src, 0), (1, 1));
    assert_eq!(line_col(src, 3), (2, 1));
    // After "cé" (3 bytes): column 3.
    assert_eq!(line_col(src, 6), (2, 3));
    assert_eq!(line_col(src, 7), (3, 1));
    assert_eq!(line_col(src, 100), (3, 2));
}

#[test]
fn test_config_md_example_parses() {
    let md = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../docs/config.md"),
    )
    .expect("docs/config.md");
    let start = md.find("```ron\n").expect("a ```ron block") + "```ron\n".len();
    let len = md[start..].find("```").expect("closed block");
    let cfg = parse(&md[start..start + len], "config.md").expect("the documented example is valid");
    assert_eq!(cfg.services.len(), 2);
    assert_eq!(
        cfg.services[0].real_servers[1].forwarding.map(|f| f.0),
        Some(Method::Nat)
    );
    assert_eq!(cfg.services[1].forwarding.0, Method::Dr);
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

    /// Any text, valid UTF-8 or not RON at all, gives a config or a one-line
    /// positioned error, never a panic.
    #[test]
    fn test_parse_never_panics(src in "\\PC{0,200}") {
        if let Err(e) = parse(&src, "p.ron") {
            let s = e.to_string();
            proptest::prop_assert!(s.starts_with("p.ron:"));
            proptest::prop_assert!(!s.contains('\n'));
        }
        let _ = locate(&src, &[PathSeg::Field("services"), PathSeg::Index(1), PathSeg::Field("vip")]);
    }

    /// Cutting the valid config anywhere, or overwriting one byte with RON
    /// punctuation, still yields a well-formed error whose position lies
    /// inside the text.
    #[test]
    fn test_parse_mutated_base(cut in 0usize..BASE.len(), at in 0usize..BASE.len(), ch in proptest::sample::select(vec!['(', ')', '[', ']', '"', ',', ':', '/', '*', 'x', '9', ' '])) {
        let mut cut_at = cut;
        while !BASE.is_char_boundary(cut_at) { cut_at -= 1; }
        for src in [BASE[..cut_at].to_string(), {
            let mut s = BASE.to_string();
            if s.is_char_boundary(at) && s.is_char_boundary(at + 1) {
                s.replace_range(at..at + 1, &ch.to_string());
            }
            s
        }] {
            if let Err(e) = parse(&src, "m.ron") {
                let s = e.to_string();
                proptest::prop_assert!(!s.contains('\n'));
                let (line, col) = e.position().expect("positioned");
                let n_lines = src.lines().count().max(1);
                proptest::prop_assert!(line >= 1 && line <= n_lines + 1, "{s}");
                proptest::prop_assert!(col >= 1, "{s}");
            }
        }
    }
}

// --- persistence (ipvsadm -p / -M) ---

/// `BASE` with `fields` added to the first service after its scheduler
/// (so they start on line 15).
fn with_persistence(fields: &str) -> String {
    edit(
        "scheduler: \"rr\",\n",
        &format!("scheduler: \"rr\",\n            {fields}\n"),
    )
}

#[test]
fn test_persistence_parses_and_compiles() {
    let src = with_persistence("persistence_timeout: 300, persistence_netmask: \"255.255.255.0\",");
    let cfg = parse(&src, "fulcrum.ron").expect("valid persistence");
    let s = &cfg.services[0];
    assert_eq!(s.persistence_timeout.map(|t| t.0), Some(300));
    assert_eq!(s.persistence_netmask.map(|m| m.bits()), Some(0xffff_ff00));
    assert_eq!(cfg.services[1].persistence_timeout, None);
    let snap = control::compile::compile(
        &cfg,
        &[[2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 1, 1]],
        1,
        None,
        &[],
    );
    assert_eq!(
        snap.services[0].persistence,
        Some(dataplane::snapshot::Persistence {
            timeout_ms: 300_000,
            mask: 0xffff_ff00
        })
    );
    assert_eq!(snap.services[1].persistence, None);
    // Without a netmask: one template per client address (ipvsadm -M
    // default 255.255.255.255); "0.0.0.0" groups every client.
    for (mask, bits) in [("", u32::MAX), ("persistence_netmask: \"0.0.0.0\",", 0)] {
        let src = with_persistence(&format!("persistence_timeout: 60, {mask}"));
        let cfg = parse(&src, "fulcrum.ron").expect("valid");
        let snap = control::compile::compile(
            &cfg,
            &[[2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 1, 1]],
            1,
            None,
            &[],
        );
        assert_eq!(
            snap.services[0].persistence.map(|p| (p.timeout_ms, p.mask)),
            Some((60_000, bits))
        );
    }
}

#[test]
fn test_error_persistence_timeout_zero() {
    assert_eq!(
        err(&with_persistence("persistence_timeout: 0,")),
        "fulcrum.ron:15:34: invalid timeout 0 s: expected 1..=2592000 seconds"
    );
    assert_eq!(
        err(&with_persistence("persistence_timeout: 2592001,")),
        "fulcrum.ron:15:34: invalid timeout 2592001 s: expected 1..=2592000 seconds"
    );
}

#[test]
fn test_error_persistence_netmask_not_contiguous() {
    assert_eq!(
        err(&with_persistence("persistence_timeout: 60, persistence_netmask: \"255.0.255.0\",")),
        "fulcrum.ron:15:59: invalid netmask \"255.0.255.0\": not contiguous, expected ones then zeros \
         like \"255.255.255.0\""
    );
    assert_eq!(
        err(&with_persistence("persistence_timeout: 60, persistence_netmask: \"255.255.255\",")),
        "fulcrum.ron:15:59: invalid netmask \"255.255.255\": expected a dotted quad like \"255.255.255.0\""
    );
    // A prefix length is not accepted (ipvsadm -M takes a mask too); ron
    // reports the type mismatch as for every string-typed value.
    assert_eq!(
        err(&with_persistence(
            "persistence_timeout: 60, persistence_netmask: 24,"
        )),
        "fulcrum.ron:15:59: expected string"
    );
}

#[test]
fn test_error_persistence_netmask_without_timeout() {
    assert_eq!(
        err(&with_persistence("persistence_netmask: \"255.255.255.0\",")),
        "fulcrum.ron:15:34: persistence_netmask without persistence_timeout: expected a \
         persistence_timeout in seconds too (ipvsadm -M needs -p)"
    );
}

#[test]
fn test_verify_checksums_per_port() {
    use dataplane::snapshot::ChecksumCheck;
    let src = edit(
        "addrs: [\"10.0.0.1/24\"])",
        "addrs: [\"10.0.0.1/24\"], verify_checksums: \"all\")",
    );
    let cfg = parse(&src, "fulcrum.ron").expect("valid");
    assert_eq!(cfg.ports[0].verify_checksums.0, ChecksumCheck::All);
    assert_eq!(cfg.ports[1].verify_checksums.0, ChecksumCheck::NewFlows);
    let snap = control::compile::compile(
        &cfg,
        &[[2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 1, 1]],
        1,
        None,
        &[],
    );
    assert_eq!(snap.ports[0].verify_checksums, ChecksumCheck::All);
    assert_eq!(snap.ports[1].verify_checksums, ChecksumCheck::NewFlows);
    let bad = edit(
        "addrs: [\"10.0.0.1/24\"])",
        "addrs: [\"10.0.0.1/24\"], verify_checksums: \"some\")",
    );
    let e = err(&bad);
    assert!(e.starts_with("fulcrum.ron:5:"), "{e}");
    assert!(e.contains("new_flows, all"), "{e}");
}

#[test]
fn test_exception_path_defaults_and_kernel_iface_names() {
    let cfg = parse(BASE, "fulcrum.ron").expect("valid");
    let x = &cfg.exception_path;
    assert_eq!((x.enabled, x.rate_pps, x.burst), (true, 10_000, 1000));
    assert_eq!(cfg.ports[0].kernel_iface(), "fc-outside");
    assert_eq!(cfg.ports[1].kernel_iface(), "fc-inside");
    // Only the fields given change; a long port name is cut to 15 bytes.
    let src = edit(
        "workers: [1],",
        "workers: [1], exception_path: (rate_pps: 500),",
    )
    .replacen("name: \"inside\"", "name: \"inside-very-long-name\"", 1)
    .replacen(
        "addrs: [\"10.0.0.1/24\"])",
        "addrs: [\"10.0.0.1/24\"], kernel_iface: \"tap-out\")",
        1,
    );
    let cfg = parse(&src, "fulcrum.ron").expect("valid");
    let x = &cfg.exception_path;
    assert_eq!((x.enabled, x.rate_pps, x.burst), (true, 500, 1000));
    assert_eq!(cfg.ports[0].kernel_iface(), "tap-out");
    assert_eq!(cfg.ports[1].kernel_iface(), "fc-inside-very-");
    let off = edit(
        "workers: [1],",
        "workers: [1], exception_path: (enabled: false),",
    );
    assert!(
        !parse(&off, "fulcrum.ron")
            .expect("valid")
            .exception_path
            .enabled
    );
}

#[test]
fn test_port_mtu_and_icmp_rate_limit() {
    let cfg = parse(BASE, "fulcrum.ron").expect("valid");
    assert_eq!((cfg.ports[0].mtu, cfg.ports[1].mtu), (1500, 1500));
    let r = &cfg.icmp_rate_limit;
    assert_eq!((r.rate_pps, r.burst), (1000, 50));
    let src = edit(
        "workers: [1],",
        "workers: [1], icmp_rate_limit: (burst: 10),",
    )
    .replacen(
        "addrs: [\"10.0.0.1/24\"])",
        "addrs: [\"10.0.0.1/24\"], mtu: 1280)",
        1,
    );
    let cfg = parse(&src, "fulcrum.ron").expect("valid");
    assert_eq!((cfg.ports[0].mtu, cfg.ports[1].mtu), (1280, 1500));
    let r = &cfg.icmp_rate_limit;
    assert_eq!((r.rate_pps, r.burst), (1000, 10));
    let snap = control::compile::compile(
        &cfg,
        &[[2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 1, 1]],
        1,
        None,
        &[],
    );
    assert_eq!((snap.ports[0].mtu, snap.ports[1].mtu), (1280, 1500));
    let bad = BASE.replacen(
        "addrs: [\"10.0.0.1/24\"])",
        "addrs: [\"10.0.0.1/24\"], mtu: 575)",
        1,
    );
    let e = err(&bad);
    assert!(e.contains("invalid mtu 575 on port"), "{e}");
    assert!(e.contains("expected 576..=9000 bytes"), "{e}");
    assert!(err(&edit(
        "workers: [1],",
        "workers: [1], icmp_rate_limit: (rate_pps: 0),"
    ))
    .ends_with("invalid icmp_rate_limit.rate_pps 0: expected 1..=1000000 ICMP errors"));
}

#[test]
fn test_error_exception_path_ranges() {
    assert_eq!(
        err(&edit(
            "workers: [1],",
            "workers: [1], exception_path: (burst: 0),"
        )),
        "fulcrum.ron:3:43: invalid exception_path.burst 0: expected 1..=1000000 packets"
    );
    assert_eq!(
        err(&edit(
            "workers: [1],",
            "workers: [1], exception_path: (rate_pps: 20000000),"
        )),
        "fulcrum.ron:3:46: invalid exception_path.rate_pps 20000000: expected 1..=10000000 packets"
    );
    let e = err(&edit(
        "workers: [1],",
        "workers: [1], exception_path: (rate: 5),",
    ));
    assert!(
        e.starts_with("fulcrum.ron:3:") && e.contains("unknown field `rate`"),
        "{e}"
    );
}

#[test]
fn test_error_kernel_iface_names() {
    let with_iface = |name: &str| {
        edit(
            "addrs: [\"10.0.0.1/24\"])",
            &format!("addrs: [\"10.0.0.1/24\"], kernel_iface: {name:?})"),
        )
    };
    let e = err(&with_iface("has space"));
    assert!(
        e.starts_with("fulcrum.ron:5:91: invalid kernel interface name \"has space\" (kernel_iface): expected 1..=15 bytes of A-Z a-z 0-9 _ . -"),
        "{e}"
    );
    let e = err(&with_iface("sixteen-bytes-xx"));
    assert!(e.contains("expected 1..=15 bytes"), "{e}");
    assert!(err(&with_iface("")).contains("invalid kernel interface name \"\""));
    // Both ports asking for one name: the later one is refused.
    let dup = with_iface("fc-inside");
    let e = err(&dup);
    assert!(
        e.starts_with("fulcrum.ron:6:16: duplicate kernel interface name \"fc-inside\" (the default kernel_iface, fc-<name>): already used by ports[0]"),
        "{e}"
    );
    // A default name that Linux would refuse points at the port's name.
    let e = err(&edit("name: \"outside\"", "name: \"out side\""));
    assert!(
        e.ends_with("invalid kernel interface name \"fc-out side\" (the default kernel_iface, fc-<name>): expected 1..=15 bytes of A-Z a-z 0-9 _ . -; set kernel_iface on this port"),
        "{e}"
    );
}
