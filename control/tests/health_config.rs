//! Health checking in the config and in compile: keepalived's checker
//! blocks parse with their knobs and inheritance, each mistake is one
//! positioned error, and compile applies the checkers' view the way
//! keepalived drives IPVS (removed or quiesced, ids kept, the sorry server
//! following quorum).

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use control::compile::{compile, compile_with_health, HealthView, VrrpView};
use control::config::{parse, CheckerConfig};
use control::health::pool::Pool;
use control::health::supervisor::probe_of;
use control::health::{CheckKind, DnsType};
use dataplane::snapshot::{Proto, ServiceKey};

/// A NAT service whose three real servers carry every kind of checker.
/// `@SVC@` and `@RS3@` are replaced by the tests.
const BASE: &str = r#"(
    eal_args: [], workers: [1],
    ports: [
        (name: "outside", device: "d0", addrs: ["10.0.0.1/24"]),
        (name: "inside", device: "d1", addrs: ["10.1.0.1/24"]),
    ],
    services: [
        (vip: "10.0.0.100:80", proto: "tcp", scheduler: "rr", forwarding: "nat",
         delay_loop: 2, connect_timeout: 0.5, virtualhost: "www.example.org",
         @SVC@
         real_servers: [
            (addr: "10.1.0.11:80", weight: 2, checkers: [
                HTTP_GET(url: [(path: "/health", status_code: [200, "300-302"],
                                digest: "9e107d9d372bb6826bd81d3542a419d6")]),
                TCP_CHECK(connect_port: 8080, retry: 3, delay_before_retry: 0.25),
            ]),
            (addr: "10.1.0.12:80", inhibit_on_failure: true, delay_loop: 1, checkers: [
                SSL_GET(url: [(path: "/")], enable_sni: true, connect_port: 443),
                PING_CHECK(alpha: true),
            ]),
            (addr: "10.1.0.13:80", checkers: [
                @RS3@
            ]),
         ]),
        (vip: "10.0.0.100:53", proto: "udp", scheduler: "rr", forwarding: "nat",
         real_servers: [
            (addr: "10.1.0.21:53", checkers: [
                DNS_CHECK(name: "example.org", type: "A"),
                UDP_CHECK(payload: "00ff", require_reply: ""),
            ]),
         ]),
    ],
)"#;

fn cfg(svc: &str, rs3: &str) -> String {
    BASE.replace("@SVC@", svc).replace("@RS3@", rs3)
}

fn err(src: &str) -> String {
    parse(src, "h.ron")
        .expect_err("config must be rejected")
        .to_string()
}

#[test]
fn test_health_config_parses_with_inheritance() {
    let c = parse(&cfg("", "TCP_CHECK()"), "h.ron").expect("valid");
    let s = &c.services[0];
    let r1 = &s.real_servers[0];
    assert_eq!(r1.checkers.len(), 2);
    let CheckerConfig::HTTP_GET(p) = &r1.checkers[0] else {
        panic!("HTTP_GET");
    };
    let codes = p.url[0].status_code.as_ref().expect("codes");
    assert_eq!(codes.0, vec![200, 300, 301, 302]);
    assert_eq!(p.url[0].digest.expect("digest").0[0], 0x9e);
    // Checker > real server > service > keepalived's defaults.
    let t = r1.timing(s, &r1.checkers[1]);
    assert_eq!(t.delay_loop, Duration::from_secs(2));
    assert_eq!(t.connect_timeout, Duration::from_millis(500));
    assert_eq!(t.retry, 3);
    assert_eq!(t.delay_before_retry, Duration::from_millis(250));
    let r2 = &s.real_servers[1];
    let t2 = r2.timing(s, &r2.checkers[1]);
    assert_eq!(t2.delay_loop, Duration::from_secs(1));
    assert!(t2.alpha && !r2.timing(s, &r2.checkers[0]).alpha);
    assert_eq!(t2.retry, 1, "keepalived's default retry");
    // keepalived's per-type defaults: HTTP waits 3 s before a retry, the
    // first check spreads over one delay_loop.
    let t0 = r1.timing(s, &r1.checkers[0]);
    assert_eq!(t0.delay_before_retry, Duration::from_secs(3));
    assert_eq!(t0.warmup, t0.delay_loop);
    let dns = &c.services[1].real_servers[0];
    assert_eq!(dns.timing(&c.services[1], &dns.checkers[0]).retry, 3);
    assert!(r2.inhibit(s) && !r1.inhibit(s));

    // The probes the supervisor starts.
    let (pool, plans) = Pool::from_config(&c, None);
    assert_eq!(plans.len(), 7);
    assert_eq!(plans[1].port, 8080);
    assert_eq!(plans[1].label(), "TCP_CHECK 10.1.0.11:8080");
    let CheckKind::Http(h) = probe_of(&plans[0]).kind else {
        panic!("http probe");
    };
    assert_eq!(h.virtualhost.as_deref(), Some("www.example.org"));
    assert!(h.tls.is_none());
    let CheckKind::Http(h) = probe_of(&plans[2]).kind else {
        panic!("ssl probe");
    };
    let tls = h.tls.expect("SSL_GET has TLS");
    assert_eq!(tls.sni.as_deref(), Some("www.example.org"));
    assert!(!tls.verify, "keepalived does not verify by default");
    assert_eq!(probe_of(&plans[2]).target.port(), 443);
    let CheckKind::Dns(d) = probe_of(&plans[5]).kind else {
        panic!("dns probe");
    };
    assert_eq!((d.name.as_str(), d.qtype), ("example.org", DnsType::A));
    let CheckKind::Udp(u) = probe_of(&plans[6]).kind else {
        panic!("udp probe");
    };
    assert_eq!(u.payload, vec![0, 0xff]);
    assert_eq!(u.require_reply, Some(vec![]));
    // PING_CHECK with alpha starts down: rs2 is out until its first success.
    assert!(!pool.reals[1].up && pool.reals[0].up);
}

#[test]
fn test_health_config_errors_are_positioned() {
    // A parameter of another checker type.
    assert_eq!(
        err(&cfg("", r#"TCP_CHECK(url: [(path: "/")])"#)),
        "h.ron:22:32: `url` is not a TCP_CHECK parameter: TCP_CHECK takes only the common parameters besides connect_ip, connect_port, bindto, connect_timeout, retry, delay_before_retry, warmup, delay_loop, alpha"
    );
    // An out-of-range value, refused inside deserialization.
    let e = err(&cfg("", "TCP_CHECK(connect_timeout: -1)"));
    assert!(
        e.starts_with("h.ron:22:44: invalid time -1: expected 0..=86400 seconds"),
        "{e}"
    );
    assert!(err(&cfg("", "TCP_CHECK(retry: 101)"))
        .contains("retry 101 is out of range: expected 0..=100"));
    assert!(
        err(&cfg("", "TCP_CHECK(delay_loop: 0.001)")).contains("delay_loop 0.001 s is too short")
    );
    // A checker that cannot work on the service.
    let e = err(&cfg("", "UDP_CHECK()"));
    assert!(
        e.starts_with("h.ron:22:17: UDP_CHECK cannot check a TCP service's own port"),
        "{e}"
    );
    let udp_http = BASE
        .replace("@SVC@", "")
        .replace("@RS3@", "TCP_CHECK()")
        .replace(
            r#"DNS_CHECK(name: "example.org", type: "A"),"#,
            r#"HTTP_GET(url: [(path: "/")]),"#,
        );
    assert!(err(&udp_http).contains("HTTP_GET cannot check a UDP service's own port"));
    // Required parameters and bad values.
    assert!(err(&cfg("", r#"HTTP_GET()"#)).contains("HTTP_GET without url"));
    assert!(err(&cfg("", r#"HTTP_GET(url: [(path: "no-slash")])"#))
        .contains("invalid url path \"no-slash\""));
    assert!(
        err(&cfg("", r#"HTTP_GET(url: [(path: "/", digest: "abc")])"#)).contains("invalid hex")
    );
    assert!(err(&cfg(
        "",
        r#"HTTP_GET(url: [(path: "/", status_code: [700])])"#
    ))
    .contains("invalid HTTP status 700"));
    assert!(err(&cfg("", r#"DNS_CHECK(type: "PTR", connect_port: 53)"#))
        .contains("unknown DNS type \"PTR\""));
    assert!(err(&cfg("", "MISC_CHECK()")).contains("MISC_CHECK without misc_path"));
    assert!(
        err(&cfg("", r#"MISC_CHECK(misc_path: "check.sh")"#)).contains("is not an absolute path")
    );
    assert!(err(&cfg("", r#"TCP_CHECK(bindto: "10.9.9.9")"#))
        .contains("bindto 10.9.9.9 is not a director address"));
    // Quorum and the sorry server.
    assert!(err(&cfg("quorum: 2, hysteresis: 2,", "TCP_CHECK()"))
        .contains("hysteresis 2 must be below quorum 2"));
    assert!(err(&cfg(r#"sorry_server: "10.1.0.12:80","#, "TCP_CHECK()"))
        .contains("is also a real server"));
    assert!(err(&cfg(r#"sorry_server: "10.9.0.1:80","#, "TCP_CHECK()"))
        .contains("no route to NAT sorry server 10.9.0.1"));
    // Network checkers need the exception path; file and script checkers
    // do not.
    let off = cfg("", "TCP_CHECK()").replacen(
        "eal_args: [],",
        "eal_args: [], exception_path: (enabled: false),",
        1,
    );
    let e = err(&off);
    assert!(
        e.starts_with("h.ron:13:17: HTTP_GET probes over the director's kernel"),
        "{e}"
    );
    let only_files = r#"(eal_args: [], workers: [1], exception_path: (enabled: false),
        ports: [(name: "i", device: "d1", addrs: ["10.1.0.1/24"])],
        services: [(vip: "10.1.0.100:80", proto: "tcp", scheduler: "rr", forwarding: "nat",
            real_servers: [(addr: "10.1.0.11:80", checkers: [FILE_CHECK(file: "/run/drain")])])])"#;
    parse(only_files, "h.ron").expect("a file checker needs no exception path");
}

#[test]
fn test_health_script_security() {
    // Under /run (root's, 0755), not /tmp or the checkout, whose parents
    // may be writable by others wherever CI clones it. The tests run as
    // root (make test needs it for DPDK and namespaces anyway).
    let dir = std::path::Path::new("/run").join(format!("fc-health-cfg-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    let script = dir.join("check.sh");
    std::fs::write(&script, "#!/bin/sh\nexit 0\n").expect("script");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let misc = format!(r#"MISC_CHECK(misc_path: "{} arg")"#, script.display());
    let src = cfg("", &misc);
    parse(&src, "h.ron").expect("a root-owned 0755 script in a 0700 directory passes");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o757)).expect("chmod");
    let e = err(&src);
    assert!(e.starts_with("h.ron:22:39: misc_path: script "), "{e}");
    // The same rule for notify and quorum scripts.
    let src2 = cfg(
        &format!(r#"quorum_down: "{}","#, script.display()),
        "TCP_CHECK()",
    );
    assert!(err(&src2).contains("quorum_down: "));
    // Security off: accepted (as keepalived without enable_script_security).
    let off = src.replacen(
        "eal_args: [],",
        "eal_args: [], enable_script_security: false,",
        1,
    );
    parse(&off, "h.ron").expect("accepted without script security");
    std::fs::remove_dir_all(&dir).expect("cleanup");
}

fn key(c: &control::config::Config) -> ServiceKey {
    let s = &c.services[0];
    ServiceKey {
        vip: u32::from(s.vip.ip()),
        vport: s.vip.port(),
        proto: Proto::Tcp,
    }
}

#[test]
fn test_compile_with_health_removes_quiesces_and_keeps_ids() {
    let c = parse(
        &cfg(r#"sorry_server: "10.1.0.99:8080","#, "TCP_CHECK()"),
        "h.ron",
    )
    .expect("valid");
    let macs = [[2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]];
    let s0 = compile(&c, &macs, 1, None, &[]);
    let svc = &s0.services[0];
    // Three real servers; the sorry server has an id but is not listed.
    assert_eq!(svc.reals, vec![1, 2, 3]);
    assert_eq!(s0.reals[4].ip, 0x0a01_0063);
    assert!(!s0.reals[4].available);
    let k = key(&c);
    let mut v = HealthView::default();
    v.down.insert((k, 0x0a01_000b, 80)); // rs1, removed on failure
    v.down.insert((k, 0x0a01_000c, 80)); // rs2, inhibit_on_failure
    v.weights.insert((k, 0x0a01_000d, 80), 7);
    let s1 = compile_with_health(&c, &macs, 2, Some(&s0), &[], &v, &VrrpView::default());
    let svc = &s1.services[0];
    assert_eq!(svc.reals, vec![2, 3], "rs1 out, rs2 quiesced, rs3 in");
    assert_eq!((s1.reals[1].weight, s1.reals[1].available), (0, false));
    assert_eq!(s1.reals[1].service, 0, "rs1 still belongs to its service");
    assert_eq!((s1.reals[2].weight, s1.reals[2].available), (0, false));
    assert_eq!((s1.reals[3].weight, s1.reals[3].available), (7, true));
    // Quorum lost: the sorry server is in, at weight 1.
    v.down.insert((k, 0x0a01_000d, 80));
    v.sorry.insert(k);
    let s2 = compile_with_health(&c, &macs, 3, Some(&s1), &[], &v, &VrrpView::default());
    assert_eq!(s2.services[0].reals, vec![2, 4]);
    assert_eq!((s2.reals[4].weight, s2.reals[4].available), (1, true));
    // Everyone back: the same ids as at the start, nothing retired.
    let s3 = compile_with_health(
        &c,
        &macs,
        4,
        Some(&s2),
        &[],
        &HealthView::default(),
        &VrrpView::default(),
    );
    assert_eq!(s3.services[0].reals, vec![1, 2, 3]);
    assert_eq!(s3.reals.len(), s0.reals.len());
    assert!(s3.reals[1..4].iter().all(|r| r.available && r.weight > 0));
    assert_eq!(s3.reals[1].weight, 2);
}
