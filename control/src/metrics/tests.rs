//! The metrics listener over real sockets, and the Grafana dashboard's
//! queries against the exported families.
#![forbid(unsafe_code)]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::testutil::fixture;
use super::*;

fn server() -> MetricsServer {
    let addr: SocketAddr = "127.0.0.1:0".parse().expect("addr");
    MetricsServer::start(addr, false, Arc::new(fixture)).expect("starts")
}

/// Sends `raw` and reads until the server closes: `(status code, head,
/// body)`.
fn http(addr: SocketAddr, raw: &[u8]) -> (u16, String, Vec<u8>) {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    s.write_all(raw).expect("send");
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).expect("read");
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("end of head");
    let head = String::from_utf8(buf[..split].to_vec()).expect("ascii head");
    let code = head[9..12].parse().expect("status code");
    (code, head, buf[split + 4..].to_vec())
}

fn get(addr: SocketAddr, path: &str) -> (u16, String, Vec<u8>) {
    http(
        addr,
        format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes(),
    )
}

#[test]
fn test_server_metrics() {
    let srv = server();
    let (code, head, body) = get(srv.local_addr(), "/metrics");
    assert_eq!(code, 200, "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    let body = String::from_utf8(body).expect("utf8");
    assert!(body.contains("# TYPE fulcrum_ipvs_connections_total counter\n"));
    assert!(body.contains(
        "fulcrum_ipvs_connections_total{local_address=\"10.0.0.100\",local_port=\"80\",proto=\"TCP\"} 34\n"
    ));
    // The query string is not part of the path.
    let (code, _, _) = get(srv.local_addr(), "/metrics?x=1");
    assert_eq!(code, 200);
    srv.stop();
}

#[test]
fn test_server_page_and_head() {
    let srv = server();
    let (code, head, body) = get(srv.local_addr(), "/");
    assert_eq!(code, 200, "{head}");
    assert!(head
        .to_ascii_lowercase()
        .contains("content-type: text/html; charset=utf-8"));
    let body = String::from_utf8(body).expect("utf8");
    assert!(body.starts_with("<!DOCTYPE html>"), "{body}");
    assert!(body.contains("10.1.0.11:80"));
    let (code, head, body) = http(
        srv.local_addr(),
        b"HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    assert_eq!(code, 200, "{head}");
    assert!(body.is_empty(), "HEAD has no body");
}

#[test]
fn test_server_refuses_other_paths_and_methods() {
    let srv = server();
    let addr = srv.local_addr();
    for path in ["/metricsx", "/index.html", "/metrics/", "/../metrics"] {
        let (code, _, _) = get(addr, path);
        assert_eq!(code, 404, "{path}");
    }
    let (code, head, _) = http(
        addr,
        b"POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(code, 405);
    assert!(
        head.to_ascii_lowercase().contains("allow: get, head"),
        "{head}"
    );
    let (code, _, _) = http(addr, b"DELETE / HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(code, 405);
}

/// A request head beyond the bound is refused (431), and a client that
/// sends nothing is closed after the head timeout, not held forever.
#[test]
fn test_server_bounds_requests() {
    let srv = server();
    let addr = srv.local_addr();
    let big = format!(
        "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Pad: {}\r\n\r\n",
        "a".repeat(2 * MAX_HEAD_BYTES)
    );
    let (code, _, _) = http(addr, big.as_bytes());
    assert_eq!(code, 431);
    let mut idle = TcpStream::connect(addr).expect("connect");
    idle.set_read_timeout(Some(HEAD_READ_TIMEOUT * 3))
        .expect("timeout");
    let mut buf = Vec::new();
    // hyper answers 408 or just closes; either way the server ends the
    // connection (EOF), where a server that kept it open would leave this
    // read to fail on its own timeout.
    idle.read_to_end(&mut buf)
        .expect("the server closes an idle connection");
    assert!(
        buf.is_empty() || buf.starts_with(b"HTTP/1.1 408"),
        "idle client got {:?}",
        String::from_utf8_lossy(&buf)
    );
    // Meanwhile the server still serves.
    assert_eq!(get(addr, "/metrics").0, 200);
}

/// Every scrape calls the status function again: the numbers are live.
#[test]
fn test_server_reads_status_per_request() {
    let calls = Arc::new(AtomicU64::new(0));
    let c = Arc::clone(&calls);
    let status: StatusFn = Arc::new(move || {
        let mut st = fixture();
        st.uptime_s = c.fetch_add(1, Ordering::Relaxed) + 100;
        st
    });
    let srv =
        MetricsServer::start("127.0.0.1:0".parse().expect("addr"), false, status).expect("starts");
    let a = String::from_utf8(get(srv.local_addr(), "/metrics").2).expect("utf8");
    let b = String::from_utf8(get(srv.local_addr(), "/metrics").2).expect("utf8");
    assert!(a.contains("\nfulcrum_uptime_seconds 100\n"), "{a}");
    assert!(b.contains("\nfulcrum_uptime_seconds 101\n"), "{b}");
}

#[test]
fn test_server_non_loopback_needs_allow_remote() {
    let st: StatusFn = Arc::new(fixture);
    for addr in ["0.0.0.0:0", "[::]:0", "10.0.0.1:9469"] {
        let a: SocketAddr = addr.parse().expect("addr");
        match MetricsServer::start(a, false, Arc::clone(&st)) {
            Err(MetricsError::NotLoopback { addr }) => assert_eq!(addr, a),
            other => panic!("{addr}: {:?}", other.map(|s| s.local_addr())),
        }
    }
    // Allowed: binds the wildcard address.
    let srv = MetricsServer::start("0.0.0.0:0".parse().expect("addr"), true, st).expect("allowed");
    assert!(srv.local_addr().ip().is_unspecified());
}

#[test]
fn test_server_bind_failure_is_an_error() {
    let srv = server();
    let e = MetricsServer::start(srv.local_addr(), false, Arc::new(fixture))
        .err()
        .expect("port in use");
    assert!(matches!(e, MetricsError::Bind { .. }), "{e}");
    assert!(e.to_string().contains("cannot bind"), "{e}");
}

/// Every metric name a query of the Grafana dashboard uses (panel `expr`s
/// and the template variables' queries) is one the endpoint exports
/// ([`FAMILIES`]), and every panel has a query.
#[test]
fn test_grafana_dashboard_queries_exported_metrics() {
    let dash: serde_json::Value =
        serde_json::from_str(include_str!("../../../deploy/grafana/fulcrum.json"))
            .expect("dashboard is JSON");
    let mut exprs = Vec::new();
    fn walk<'a>(v: &'a serde_json::Value, out: &mut Vec<&'a str>) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, x) in m {
                    match (k.as_str(), x.as_str()) {
                        ("expr" | "query" | "definition", Some(e)) => out.push(e),
                        _ => walk(x, out),
                    }
                }
            }
            serde_json::Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            _ => {}
        }
    }
    walk(&dash, &mut exprs);
    let panels = dash["panels"].as_array().expect("panels");
    let with_query = panels
        .iter()
        .filter(|p| p["type"] != "row")
        .filter(|p| {
            p["targets"].as_array().is_some_and(|t| {
                t.iter()
                    .any(|t| t["expr"].as_str().is_some_and(|e| !e.is_empty()))
            })
        })
        .count();
    let n_panels = panels.iter().filter(|p| p["type"] != "row").count();
    assert!(n_panels >= 5, "{n_panels} panels");
    assert_eq!(with_query, n_panels, "a panel without a query");
    let known: std::collections::BTreeSet<&str> = FAMILIES.iter().map(|f| f.name).collect();
    let mut used = 0;
    for e in &exprs {
        let bytes = e.as_bytes();
        let mut i = 0;
        while let Some(at) = e[i..].find("fulcrum_") {
            let start = i + at;
            let ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b':';
            if start > 0 && ident(bytes[start - 1]) {
                i = start + 1;
                continue;
            }
            let end = e[start..]
                .bytes()
                .position(|b| !ident(b))
                .map_or(e.len(), |n| start + n);
            let name = &e[start..end];
            assert!(
                known.contains(name),
                "dashboard query {e:?} uses {name}, which /metrics does not export"
            );
            used += 1;
            i = end;
        }
    }
    assert!(used >= 8, "the dashboard uses {used} fulcrum metrics");
}
