//! `fulcrum-healthbench detect`: the detection time of each checker type.
//!
//! Every checker runs in [`Checkers`] (the daemon's driver) against a
//! target this process owns and flips: a tokio listener closed and
//! reopened (TCP_CHECK, HTTP_GET, SSL_GET), a real nginx stopped and
//! started (HTTP_GET), a UDP or DNS server stopped and started (ICMP port
//! unreachable while stopped), a UDP server that keeps its socket but stops
//! answering (a timeout), an address added to and removed from `lo`
//! (PING_CHECK: with the address gone the echo is routed onto `lo` and
//! dropped without an error, a timeout), a script's exit status (MISC_CHECK)
//! and a file's content (FILE_CHECK). Everything runs on one current-thread
//! runtime inside a network namespace of its own (`unshare(CLONE_NEWNET)` on
//! the bench thread), so ports and addresses collide with nothing.
//!
//! One transition is measured from the wall-clock moment the target's new
//! state is in place (the listener dropped or bound, the process gone or
//! listening, the file renamed into place) to the `at` of the checker's
//! first [`CheckerEvent`] carrying a transition to that state. Before each
//! flip the bench waits a random part of `delay_loop`, so flips land at
//! every phase of the probe cycle.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{bail, Context, Result};
use control::health::{
    CheckKind, CheckerEvent, CheckerId, CheckerSpec, Checkers, DnsCheck, DnsType, FileCheck,
    HttpCheck, MiscCheck, Probe, TlsCheck, UdpCheck, UrlCheck,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::{stats_ms, Args};

/// The checker kinds measured, in table order.
const ROWS: &[&str] = &[
    "TCP_CHECK",
    "HTTP_GET",
    "HTTP_GET-nginx",
    "SSL_GET",
    "UDP_CHECK",
    "UDP_CHECK-silent",
    "PING_CHECK",
    "DNS_CHECK",
    "MISC_CHECK",
    "FILE_CHECK",
];

/// The address PING_CHECK probes inside the namespace (see [`netns`]).
const PING_IP: Ipv4Addr = Ipv4Addr::new(10, 255, 0, 2);

/// A target whose state the bench flips.
enum Target {
    /// A tokio TCP listener serving `serve` on each connection.
    Listener {
        port: u16,
        kind: Serve,
        task: Option<JoinHandle<()>>,
    },
    /// nginx with `conf`, serving on `port`.
    Nginx {
        conf: PathBuf,
        port: u16,
        child: Option<tokio::process::Child>,
    },
    /// A UDP server answering `pong`, or a DNS server; stopped = socket closed.
    Udp {
        port: u16,
        dns: bool,
        task: Option<JoinHandle<()>>,
    },
    /// A UDP server that stays bound and only stops answering.
    UdpSilent { answer: Arc<AtomicBool> },
    /// [`PING_IP`] on `lo` or not.
    PingAddr,
    /// A file the script reads its exit status from, or FILE_CHECK's file.
    File {
        path: PathBuf,
        up: &'static str,
        down: &'static str,
    },
}

#[derive(Clone, Copy)]
enum Serve {
    Accept,
    Http,
    Https,
}

/// A self-signed certificate for 127.0.0.1 and the acceptor serving it.
fn tls_acceptor() -> Result<tokio_rustls::TlsAcceptor> {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    let ck = rcgen::generate_simple_self_signed(vec!["127.0.0.1".into()])?;
    let cert: CertificateDer<'static> = ck.cert.der().clone();
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ck.key_pair.serialize_der()));
    let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_no_client_auth()
    .with_single_cert(vec![cert], key)?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(cfg)))
}

const OK_RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";

/// Reads a request head (up to its blank line, at most 8 KiB) and answers 200.
async fn answer_http<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(mut s: S) {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") && buf.len() < 8192 {
        match s.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let _ = s.write_all(OK_RESPONSE).await;
    let _ = s.shutdown().await;
}

async fn serve_tcp(l: TcpListener, kind: Serve, tls: Option<tokio_rustls::TlsAcceptor>) {
    while let Ok((s, _)) = l.accept().await {
        match kind {
            Serve::Accept => drop(s),
            Serve::Http => {
                tokio::spawn(answer_http(s));
            }
            Serve::Https => {
                let acc = tls.clone().expect("an acceptor for Https");
                tokio::spawn(async move {
                    if let Ok(t) = acc.accept(s).await {
                        answer_http(t).await;
                    }
                });
            }
        }
    }
}

async fn serve_udp(s: UdpSocket, dns: bool, answer: Arc<AtomicBool>) {
    use hickory_proto::op::{Message, MessageType};
    use hickory_proto::rr::{rdata::A, RData, Record};
    let mut buf = [0u8; 1500];
    while let Ok((n, from)) = s.recv_from(&mut buf).await {
        if !answer.load(Ordering::Relaxed) {
            continue;
        }
        let out = if dns {
            let Ok(q) = Message::from_vec(&buf[..n]) else {
                continue;
            };
            let Some(qq) = q.queries().first().cloned() else {
                continue;
            };
            let mut r = Message::new();
            r.set_id(q.id())
                .set_message_type(MessageType::Response)
                .add_query(qq.clone());
            r.add_answer(Record::from_rdata(
                qq.name().clone(),
                60,
                RData::A(A::new(10, 1, 2, 3)),
            ));
            match r.to_vec() {
                Ok(v) => v,
                Err(_) => continue,
            }
        } else {
            b"pong".to_vec()
        };
        let _ = s.send_to(&out, from).await;
    }
}

/// Polls until something accepts on 127.0.0.1:`port` (1 ms steps, 10 s).
async fn wait_listening(port: u16) -> Result<()> {
    for _ in 0..10_000 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    bail!("nothing listens on port {port} after 10 s")
}

fn ip(args: &[&str]) -> Result<()> {
    let st = std::process::Command::new("ip").args(args).status()?;
    if !st.success() {
        bail!("ip {args:?} failed");
    }
    Ok(())
}

/// Writes `text` to `path` atomically (a temporary file renamed over it).
fn write_atomic(path: &Path, text: &str) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)?;
    Ok(())
}

impl Target {
    /// Puts the target in state `up`; returns when that state is in place.
    async fn set(&mut self, up: bool, tls: &tokio_rustls::TlsAcceptor) -> Result<()> {
        match self {
            Target::Listener { port, kind, task } => {
                if up {
                    let l = TcpListener::bind(("127.0.0.1", *port)).await?;
                    let acc = matches!(kind, Serve::Https).then(|| tls.clone());
                    *task = Some(tokio::spawn(serve_tcp(l, *kind, acc)));
                } else if let Some(t) = task.take() {
                    t.abort();
                    let _ = t.await; // the listener is dropped when this returns
                }
            }
            Target::Nginx { conf, port, child } => {
                if up {
                    let c = tokio::process::Command::new("nginx")
                        .arg("-c")
                        .arg(&*conf)
                        .arg("-g")
                        .arg("daemon off; master_process off;")
                        .kill_on_drop(true)
                        .spawn()
                        .context("nginx")?;
                    *child = Some(c);
                    wait_listening(*port).await?;
                } else if let Some(mut c) = child.take() {
                    // SIGTERM: nginx's fast shutdown closes the listener.
                    if let Some(pid) = c.id() {
                        let _ = nix::sys::signal::kill(
                            nix::unistd::Pid::from_raw(pid as i32),
                            nix::sys::signal::Signal::SIGTERM,
                        );
                    }
                    c.wait().await?;
                }
            }
            Target::Udp { port, dns, task } => {
                if up {
                    let s = UdpSocket::bind(("127.0.0.1", *port)).await?;
                    *task = Some(tokio::spawn(serve_udp(
                        s,
                        *dns,
                        Arc::new(AtomicBool::new(true)),
                    )));
                } else if let Some(t) = task.take() {
                    t.abort();
                    let _ = t.await;
                }
            }
            Target::UdpSilent { answer } => answer.store(up, Ordering::Relaxed),
            Target::PingAddr => {
                let op = if up { "add" } else { "del" };
                ip(&["addr", op, "10.255.0.2/32", "dev", "lo"])?;
            }
            Target::File {
                path,
                up: u,
                down: d,
            } => {
                write_atomic(path, if up { u } else { d })?;
            }
        }
        Ok(())
    }
}

/// A free TCP (or UDP) port on 127.0.0.1 of the namespace.
fn free_port(udp: bool) -> Result<u16> {
    Ok(if udp {
        std::net::UdpSocket::bind("127.0.0.1:0")?
            .local_addr()?
            .port()
    } else {
        std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port()
    })
}

/// The checker of row `name` and its target, both for `args`' timers.
fn make(
    id: u32,
    name: &str,
    args: &Args,
    dir: &Path,
    silent_answer: &Arc<AtomicBool>,
) -> Result<(CheckerSpec, Target)> {
    let http = |tls: Option<TlsCheck>| {
        CheckKind::Http(HttpCheck {
            urls: vec![UrlCheck {
                path: "/".into(),
                status_code: Some(vec![200]),
                digest: None,
            }],
            virtualhost: None,
            tls,
        })
    };
    let udp_kind = CheckKind::Udp(UdpCheck {
        payload: b"ping?".to_vec(),
        require_reply: Some(b"pong".to_vec()),
        min_reply_length: 0,
        max_reply_length: 255,
    });
    let (kind, port, target) = match name {
        "TCP_CHECK" | "HTTP_GET" | "SSL_GET" => {
            let port = free_port(false)?;
            let (kind, serve) = match name {
                "TCP_CHECK" => (CheckKind::Tcp, Serve::Accept),
                "HTTP_GET" => (http(None), Serve::Http),
                _ => (http(Some(TlsCheck::default())), Serve::Https),
            };
            (
                kind,
                port,
                Target::Listener {
                    port,
                    kind: serve,
                    task: None,
                },
            )
        }
        "HTTP_GET-nginx" => {
            let port = free_port(false)?;
            let conf = dir.join("nginx.conf");
            std::fs::write(
                &conf,
                format!(
                    "error_log {d}/nginx-error.log;\npid {d}/nginx.pid;\n\
                     events {{ worker_connections 64; }}\n\
                     http {{\n  access_log off;\n  client_body_temp_path {d};\n\
                     proxy_temp_path {d};\n  fastcgi_temp_path {d};\n  uwsgi_temp_path {d};\n\
                     scgi_temp_path {d};\n\
                     server {{ listen 127.0.0.1:{port}; location / {{ return 200 \"ok\"; }} }}\n}}\n",
                    d = dir.display()
                ),
            )?;
            (
                http(None),
                port,
                Target::Nginx {
                    conf,
                    port,
                    child: None,
                },
            )
        }
        "UDP_CHECK" | "DNS_CHECK" => {
            let port = free_port(true)?;
            let dns = name == "DNS_CHECK";
            let kind = if dns {
                CheckKind::Dns(DnsCheck {
                    name: "www.example.com".into(),
                    qtype: DnsType::A,
                    require_answer: true,
                })
            } else {
                udp_kind
            };
            (
                kind,
                port,
                Target::Udp {
                    port,
                    dns,
                    task: None,
                },
            )
        }
        "UDP_CHECK-silent" => (
            udp_kind,
            0, // set by the caller: the server is started once, below
            Target::UdpSilent {
                answer: Arc::clone(silent_answer),
            },
        ),
        "PING_CHECK" => (CheckKind::Ping, 0, Target::PingAddr),
        "MISC_CHECK" => {
            use std::os::unix::fs::PermissionsExt;
            let state = dir.join("misc-state");
            let script = dir.join("misc.sh");
            std::fs::write(
                &script,
                format!("#!/bin/sh\nexit \"$(cat {})\"\n", state.display()),
            )?;
            std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))?;
            (
                CheckKind::Misc(MiscCheck {
                    argv: vec![script.display().to_string()],
                    timeout: args.connect_timeout,
                    dynamic: false,
                }),
                0,
                Target::File {
                    path: state,
                    up: "0\n",
                    down: "1\n",
                },
            )
        }
        "FILE_CHECK" => {
            let path = dir.join("weight");
            (
                CheckKind::File(FileCheck {
                    path: path.clone(),
                    dynamic: false,
                }),
                0,
                Target::File {
                    path,
                    up: "1\n",
                    down: "0\n",
                },
            )
        }
        other => bail!("unknown checker row {other}"),
    };
    let addr = if name == "PING_CHECK" {
        PING_IP
    } else {
        Ipv4Addr::LOCALHOST
    };
    let spec = CheckerSpec {
        id: CheckerId(id),
        label: format!("{name} bench"),
        probe: Probe {
            kind,
            target: SocketAddrV4::new(addr, port),
            bindto: None,
            connect_timeout: args.connect_timeout,
        },
        timing: args.timing(),
    };
    Ok((spec, target))
}

/// One row's measurements: detection times in ms, down and up.
#[derive(Default)]
struct Row {
    down: Vec<f64>,
    up: Vec<f64>,
    missed: usize,
    reasons: Vec<String>,
}

/// Flips `target` `n` times each way and times each transition from `rx`.
async fn drive(
    mut target: Target,
    mut rx: mpsc::UnboundedReceiver<CheckerEvent>,
    n: usize,
    delay_loop: Duration,
    tls: tokio_rustls::TlsAcceptor,
) -> Result<Row> {
    let mut row = Row::default();
    let limit = Duration::from_secs(15);
    // Wait for the checker's first result to be up (the target is up).
    loop {
        let ev = tokio::time::timeout(limit, rx.recv())
            .await
            .context("no first result")?
            .context("checker gone")?;
        if ev.up {
            break;
        }
    }
    for _ in 0..n {
        for up in [false, true] {
            // A random phase of the probe cycle.
            tokio::time::sleep(delay_loop.mul_f64(fastrand::f64())).await;
            // Results of the old state that arrive late are skipped below.
            target.set(up, &tls).await?;
            let t0 = SystemTime::now();
            let got = tokio::time::timeout(limit, async {
                loop {
                    let ev = rx.recv().await?;
                    if let Some(t) = &ev.transition {
                        if t.up == up {
                            return Some((ev.at, t.reason.clone()));
                        }
                    }
                }
            })
            .await;
            match got {
                Ok(Some((at, reason))) => {
                    let ms = at
                        .duration_since(t0)
                        .map(|d| d.as_secs_f64() * 1e3)
                        .unwrap_or(0.0);
                    if up {
                        row.up.push(ms);
                    } else {
                        row.down.push(ms);
                        if !row.reasons.contains(&reason) {
                            row.reasons.push(reason);
                        }
                    }
                }
                Ok(None) => bail!("checker channel closed"),
                Err(_) => {
                    row.missed += 1;
                    // Resynchronise: put the state back and wait for it.
                }
            }
        }
    }
    target.set(false, &tls).await?;
    Ok(row)
}

/// Moves the calling thread into a new network namespace with `lo` up and
/// 10.255.0.0/24 routed onto `lo` (an address of it that is not local is
/// dropped without an ICMP error: forwarding is off).
fn netns() -> Result<()> {
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNET)
        .context("unshare(CLONE_NEWNET): run as root")?;
    ip(&["link", "set", "lo", "up"])?;
    ip(&["route", "add", "10.255.0.0/24", "dev", "lo"])?;
    Ok(())
}

pub fn run(args: &Args) -> Result<()> {
    let args = args.clone();
    std::thread::spawn(move || -> Result<()> {
        netns()?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        rt.block_on(bench(&args))
    })
    .join()
    .map_err(|_| anyhow::anyhow!("bench thread panicked"))?
}

async fn bench(args: &Args) -> Result<()> {
    let dir = std::env::temp_dir().join(format!("fulcrum-healthbench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let _cleanup = Cleanup(dir.clone());
    let tls = tls_acceptor()?;
    let rows: Vec<&str> = ROWS
        .iter()
        .copied()
        .filter(|r| args.only.is_empty() || args.only.iter().any(|o| o == r))
        .collect();

    // The silent UDP server: bound for the whole run.
    let silent_answer = Arc::new(AtomicBool::new(true));
    let silent = UdpSocket::bind("127.0.0.1:0").await?;
    let silent_port = silent.local_addr()?.port();
    tokio::spawn(serve_udp(silent, false, Arc::clone(&silent_answer)));

    let mut specs = Vec::new();
    let mut drivers = Vec::new();
    let mut senders = Vec::new();
    for (i, name) in rows.iter().enumerate() {
        let (mut spec, mut target) = make(i as u32, name, args, &dir, &silent_answer)?;
        if *name == "UDP_CHECK-silent" {
            spec.probe.target.set_port(silent_port);
        }
        target.set(true, &tls).await?;
        let (tx, rx) = mpsc::unbounded_channel();
        senders.push(tx);
        specs.push(spec);
        drivers.push(tokio::spawn(drive(
            target,
            rx,
            args.transitions,
            args.delay_loop,
            tls.clone(),
        )));
    }
    // One channel out of the driver, demultiplexed by checker id.
    let (tx, mut rx) = mpsc::unbounded_channel::<CheckerEvent>();
    tokio::spawn(async move {
        while let Some(ev) = rx.recv().await {
            if let Some(s) = senders.get(ev.id.0 as usize) {
                let _ = s.send(ev);
            }
        }
    });
    let checkers = Checkers::start(specs, tx, 64);

    let load_before = super::loadavg();
    let mut out = Vec::new();
    for (name, d) in rows.iter().zip(drivers) {
        out.push((*name, d.await??));
    }
    checkers.stop();
    let load_after = super::loadavg();

    let t = args.timing();
    let ct = args.connect_timeout.as_secs_f64() * 1e3;
    let dl = t.delay_loop.as_secs_f64() * 1e3;
    let dbr = t.delay_before_retry.as_secs_f64() * 1e3;
    let r = f64::from(t.retry);
    let refused_down = dl + r * dbr;
    let timeout_down = dl + r * dbr + (r + 1.0) * ct;
    println!(
        "Timers: delay_loop {dl:.0} ms, retry {}, delay_before_retry {dbr:.0} ms, \
         connect_timeout {ct:.0} ms, warmup 0; {} transitions each way per checker, all \
         checkers at once on one current-thread tokio runtime in a network namespace of \
         their own; load average {load_before} before, {load_after} after.",
        t.retry, args.transitions
    );
    println!();
    println!(
        "Bounds: down on an immediate failure (refused, port unreachable, exit 1, file 0) \
         ≤ delay_loop + retry·delay_before_retry = {refused_down:.0} ms (plus probe \
         time); down on a timeout ≤ delay_loop + retry·delay_before_retry + \
         (retry+1)·connect_timeout = {timeout_down:.0} ms; up ≤ delay_loop = {dl:.0} ms \
         (+ connect_timeout = {:.0} ms when the flip lands during a probe that times out).",
        dl + ct
    );
    println!();
    println!("| checker | target flipped by | failure | down median ms | down worst ms | down bound ms | up median ms | up worst ms | n down/up | missed |");
    println!("|---|---|---|---:|---:|---:|---:|---:|---:|---:|");
    for (name, row) in &out {
        let (how, timeout_kind) = match *name {
            "TCP_CHECK" => ("tokio listener closed / bound", false),
            "HTTP_GET" => ("tokio HTTP/1.1 server closed / bound", false),
            "HTTP_GET-nginx" => ("nginx 1.22 SIGTERM (exited) / started (listening)", false),
            "SSL_GET" => (
                "tokio-rustls server (rcgen self-signed) closed / bound",
                false,
            ),
            "UDP_CHECK" => ("UDP server socket closed / bound", false),
            "UDP_CHECK-silent" => ("UDP server stops / resumes answering", true),
            "PING_CHECK" => ("10.255.0.2 removed from / added to lo (netns)", true),
            "DNS_CHECK" => ("DNS server (hickory) socket closed / bound", false),
            "MISC_CHECK" => ("script's exit status 1 / 0", false),
            _ => ("file content 0 / 1 (renamed into place)", false),
        };
        let (dm, dw) = stats_ms(&row.down);
        let (um, uw) = stats_ms(&row.up);
        let bound = if timeout_kind {
            timeout_down
        } else {
            refused_down
        };
        println!(
            "| {name} | {how} | {} | {dm:.1} | {dw:.1} | {bound:.0} | {um:.1} | {uw:.1} | {}/{} | {} |",
            if timeout_kind { "timeout" } else { "immediate" },
            row.down.len(),
            row.up.len(),
            row.missed
        );
    }
    println!();
    println!("Down reasons logged (first of each kind):");
    println!();
    for (name, row) in &out {
        for r in &row.reasons {
            println!("- {name}: `{r}`");
        }
    }
    let missed: usize = out.iter().map(|(_, r)| r.missed).sum();
    if missed > 0 {
        bail!("{missed} transitions were not seen within 15 s");
    }
    Ok(())
}

/// Removes the bench's temporary directory on drop.
struct Cleanup(PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
