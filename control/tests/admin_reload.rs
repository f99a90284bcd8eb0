//! Safe reload (`SIGHUP` / `fulcrumctl --reload`): the file read again,
//! only its difference published; a broken file or a restart-only change
//! changes nothing. Through `Editor::reload_file`, the admin socket's
//! `reload` command with the built `fulcrumctl`, and the health supervisor
//! restarting its checkers for the new real servers.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use control::admin::{build_status, AdminServer, Handlers, Reloader, SharedReload};
use control::compile::compile;
use control::config::Config;
use control::edit::{EditError, Editor};
use control::health::supervisor::{SharedReport, Supervisor};
use dataplane::snapshot::Snapshot;
use dataplane::stats::SharedStats;
use serde_json::json;

mod common;
use common::TempDir;

fn temp_dir() -> TempDir {
    common::temp_dir_named("frel")
}

/// A config whose one service has the real servers `reals` (RIP:port
/// text, each with `rs_extra` RON), and `top` added at the top level.
fn config_text(reals: &[&str], rs_extra: &str, top: &str) -> String {
    let reals: String = reals
        .iter()
        .map(|r| format!("            (addr: \"{r}\", weight: 1, {rs_extra}),\n"))
        .collect();
    format!(
        r#"(
    eal_args: ["-l", "0-1"],
    workers: [1],
    {top}
    ports: [
        (name: "outside", device: "net_null0", addrs: ["10.0.0.1/24"]),
        (name: "inside", device: "net_null1", addrs: ["10.1.0.1/24"]),
    ],
    services: [
        (vip: "10.0.0.100:80", proto: "tcp", scheduler: "rr", forwarding: "nat",
         real_servers: [
{reals}         ]),
    ],
)
"#
    )
}

struct Rig {
    editor: Arc<Editor>,
    swap: Arc<ArcSwap<Snapshot>>,
    file: PathBuf,
    _dir: TempDir,
}

fn rig(text: &str) -> Rig {
    let dir = temp_dir();
    let file = dir.0.join("fulcrum.ron");
    std::fs::write(&file, text).expect("write");
    let cfg: Config = control::config::load(&file).expect("valid");
    let macs = vec![[2, 0, 0, 0, 0, 1], [2, 0, 0, 0, 0, 2]];
    let snap = compile(&cfg, &macs, 1, None, &[]);
    let stats = Arc::new(SharedStats::new(snap.reals.len()));
    let swap = Arc::new(ArcSwap::from_pointee(snap));
    let editor = Arc::new(Editor::new(cfg, macs, Arc::clone(&swap), vec![stats]));
    Rig {
        editor,
        swap,
        file,
        _dir: dir,
    }
}

/// `RIP:port` → real-server id in service 0 of the running snapshot.
fn ids(swap: &ArcSwap<Snapshot>) -> Vec<(String, u32)> {
    let s = swap.load();
    s.services[0]
        .reals
        .iter()
        .map(|&id| {
            let r = &s.reals[id as usize];
            (format!("{}:{}", std::net::Ipv4Addr::from(r.ip), r.port), id)
        })
        .collect()
}

#[test]
fn test_reload_applies_difference_and_keeps_ids() {
    let r = rig(&config_text(&["10.1.0.11:80", "10.1.0.12:80"], "", ""));
    assert_eq!(
        ids(&r.swap),
        vec![("10.1.0.11:80".into(), 1), ("10.1.0.12:80".into(), 2)]
    );
    // A runtime edit, dropped by the reload (the file wins).
    r.editor
        .handle(
            &json!({"cmd": "add_real", "vip": "10.0.0.100:80", "proto": "tcp",
                        "real": {"addr": "10.1.0.14:80", "forwarding": "nat"}}),
        )
        .expect("edit");
    assert_eq!(r.swap.load().generation, 2);
    std::fs::write(
        &r.file,
        config_text(&["10.1.0.12:80", "10.1.0.13:80"], "", ""),
    )
    .expect("write");
    let v0 = r.editor.config_version();
    let o = r.editor.reload_file(&r.file).expect("reload");
    assert_eq!(
        (
            o.generation,
            o.changed,
            o.reals_added,
            o.reals_removed,
            o.reals_kept,
            o.dropped_edits
        ),
        (3, true, 1, 2, 1, 1),
        "{o:?}"
    );
    let snap = r.swap.load();
    assert_eq!(snap.generation, 3);
    // 10.1.0.12 keeps id 2; 10.1.0.13 gets a fresh id after the edit's 3.
    assert_eq!(
        ids(&r.swap),
        vec![("10.1.0.12:80".into(), 2), ("10.1.0.13:80".into(), 4)]
    );
    assert_eq!(snap.reals.len(), 5, "retired ids 1 and 3 stay (draining)");
    assert_eq!(r.editor.config_version(), v0 + 1, "the supervisor resyncs");
    assert_eq!(r.editor.config().services[0].real_servers.len(), 2);
    // The same file again: nothing published, no edits left to drop.
    let o = r.editor.reload_file(&r.file).expect("reload");
    assert_eq!((o.generation, o.changed, o.dropped_edits), (3, false, 0));
    assert_eq!(r.swap.load().generation, 3);
}

#[test]
fn test_reload_added_alpha_real_starts_down() {
    let r = rig(&config_text(&["10.1.0.11:80"], "", ""));
    let text = config_text(&["10.1.0.11:80"], "", "").replace(
        "         ]),",
        "            (addr: \"10.1.0.13:80\", alpha: true, checkers: [TCP_CHECK()]),\n         ]),",
    );
    std::fs::write(&r.file, text).expect("write");
    let o = r.editor.reload_file(&r.file).expect("reload");
    assert_eq!((o.reals_added, o.reals_kept), (1, 1));
    let snap = r.swap.load();
    let avail: Vec<(String, bool)> = snap
        .reals
        .iter()
        .skip(1)
        .map(|x| {
            (
                format!("{}:{}", std::net::Ipv4Addr::from(x.ip), x.port),
                x.available,
            )
        })
        .collect();
    assert_eq!(
        avail,
        vec![
            ("10.1.0.11:80".into(), true),
            ("10.1.0.13:80".into(), false)
        ],
        "alpha: out of rotation until its checker passes"
    );
}

#[test]
fn test_reload_broken_file_changes_nothing() {
    let r = rig(&config_text(&["10.1.0.11:80"], "", ""));
    let before = r.swap.load_full();
    let cfg = r.editor.config();
    let bad = config_text(&["10.1.0.11:80"], "", "").replace("\"rr\"", "\"bogus\"");
    std::fs::write(&r.file, &bad).expect("write");
    let e = r.editor.reload_file(&r.file).expect_err("refused");
    let file = r.file.display().to_string();
    assert!(matches!(e, EditError::ConfigFile(_)), "{e:?}");
    let msg = e.to_string();
    assert!(
        msg.starts_with(&format!("{file}:10:57: invalid scheduler \"bogus\"")),
        "{msg}"
    );
    assert!(Arc::ptr_eq(&before, &r.swap.load_full()), "same snapshot");
    assert_eq!(r.editor.config(), cfg);
    // A cross-field error is positioned too.
    let dip = config_text(&["10.1.0.1:80"], "", "");
    std::fs::write(&r.file, dip).expect("write");
    let msg = r
        .editor
        .reload_file(&r.file)
        .expect_err("refused")
        .to_string();
    assert!(
        msg.starts_with(&format!(
            "{file}:12:20: real server 10.1.0.1 is one of the director"
        )),
        "{msg}"
    );
    // A missing file.
    std::fs::remove_file(&r.file).expect("rm");
    let msg = r
        .editor
        .reload_file(&r.file)
        .expect_err("refused")
        .to_string();
    assert!(msg.contains(&file), "{msg}");
    assert!(Arc::ptr_eq(&before, &r.swap.load_full()));
}

#[test]
fn test_reload_refuses_restart_only_changes() {
    let text = config_text(&["10.1.0.11:80"], "", "");
    let r = rig(&text);
    let before = r.swap.load_full();
    for (from, to, field) in [
        ("workers: [1]", "workers: [1, 2]", "workers"),
        ("\"-l\", \"0-1\"", "\"-l\", \"0-2\"", "eal_args"),
        ("device: \"net_null1\"", "device: \"net_null2\"", "ports"),
        (
            "workers: [1],",
            "workers: [1], conn_table_size: 4096,",
            "conn_table_size",
        ),
    ] {
        // The service change alone would be fine; with the restart-only
        // one, nothing applies.
        let t = text
            .replace(from, to)
            .replace("10.1.0.11:80", "10.1.0.12:80");
        std::fs::write(&r.file, t).expect("write");
        let e = r.editor.reload_file(&r.file).expect_err(field);
        assert_eq!(e, EditError::NeedsRestart(field.into()));
        assert!(
            e.to_string()
                .starts_with(&format!("needs a restart: {field} changed")),
            "{e}"
        );
        assert!(Arc::ptr_eq(&before, &r.swap.load_full()), "{field}");
        assert_eq!(
            r.editor.config().services[0].real_servers[0]
                .addr
                .0
                .to_string(),
            "10.1.0.11:80"
        );
    }
    // Timeouts are reloadable.
    let t = text.replace(
        "workers: [1],",
        "workers: [1], timeouts: (tcp_established: 60),",
    );
    std::fs::write(&r.file, t).expect("write");
    let o = r.editor.reload_file(&r.file).expect("timeouts reload");
    assert!(o.changed);
    assert_eq!(r.swap.load().generation, 2);
}

fn fulcrumctl(sock: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_fulcrumctl"))
        .arg("--socket")
        .arg(sock)
        .args(args)
        .output()
        .expect("run fulcrumctl")
}

#[test]
fn test_fulcrumctl_reload_and_status() {
    let r = rig(&config_text(&["10.1.0.11:80"], "", ""));
    let sock = r._dir.0.join("f.sock");
    let last: SharedReload = Arc::default();
    let reloader = Arc::new(Reloader::new(
        Arc::clone(&r.editor),
        r.file.clone(),
        Arc::clone(&last),
    ));
    let status = {
        let (swap, last) = (Arc::clone(&r.swap), Arc::clone(&last));
        Arc::new(move || {
            let mut st = build_status(&swap.load(), &[], &[], 0, 0);
            st.reload = last.lock().expect("lock").clone();
            st
        })
    };
    let server = AdminServer::start_with(
        &sock,
        Handlers {
            status,
            edit: None,
            commands: vec![reloader.command()],
        },
    )
    .expect("start");
    std::fs::write(
        &r.file,
        config_text(&["10.1.0.11:80", "10.1.0.13:80"], "", ""),
    )
    .expect("write");
    let o = fulcrumctl(&sock, &["--reload"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        format!(
            "reloaded {}: generation 2, 1 real server(s) added, 0 removed, 1 kept; 0 runtime edit(s) dropped\n",
            r.file.display()
        )
    );
    let st = control::admin::query(&sock).expect("status");
    let rs = st.reload.expect("reload status");
    assert_eq!((rs.ok, rs.generation, rs.count), (true, Some(2), 1));
    assert!(rs.error.is_empty());
    assert_eq!(st.services[0].reals.len(), 2);

    std::fs::write(&r.file, "(eal_args: [], workers: [1], ports: [(name: 1)])").expect("write");
    let o = fulcrumctl(&sock, &["--reload"]);
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr).into_owned();
    let want = format!("fulcrumctl: {}:1:45: ", r.file.display());
    assert!(err.starts_with(&want), "{err}");
    let rs = control::admin::query(&sock)
        .expect("status")
        .reload
        .expect("reload status");
    assert_eq!((rs.ok, rs.generation, rs.count), (false, None, 2));
    assert_eq!(format!("fulcrumctl: {}\n", rs.error), err);
    assert_eq!(
        r.swap.load().generation,
        2,
        "the broken file changed nothing"
    );
    server.stop();
}

/// Lines in `path` (0 if absent): how many checks a MISC_CHECK ran.
fn lines(path: &Path) -> usize {
    std::fs::read_to_string(path).map_or(0, |t| t.lines().count())
}

#[test]
fn test_supervisor_restarts_checkers_after_reload() {
    let dir = temp_dir();
    let (la, lb) = (dir.0.join("a.log"), dir.0.join("b.log"));
    // MISC_CHECKs that log each run: the supervisor's real checkers, with
    // no network needed.
    let svc = |reals: &[(&str, &Path)]| {
        let body: String = reals
            .iter()
            .map(|(a, log)| {
                format!(
                    "            (addr: \"{a}\", checkers: [MISC_CHECK(misc_path: \"/bin/sh -c 'echo x >> {}'\")]),\n",
                    log.display()
                )
            })
            .collect();
        config_text(&[], "", "enable_script_security: false,").replace(
            "real_servers: [\n",
            &format!("delay_loop: 0.1,\n         real_servers: [\n{body}"),
        )
    };
    let r = rig(&svc(&[("10.1.0.11:80", &la)]));
    let report: SharedReport = Arc::default();
    let sup = Supervisor::start(Arc::clone(&r.editor), Arc::clone(&report)).expect("start");
    let wait = |what: &str, f: &dyn Fn() -> bool| {
        let t0 = Instant::now();
        while !f() {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "timed out waiting for {what}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    wait("the first checks of 10.1.0.11", &|| lines(&la) >= 2);
    assert_eq!(lines(&lb), 0);
    std::fs::write(&r.file, svc(&[("10.1.0.13:80", &lb)])).expect("write");
    r.editor.reload_file(&r.file).expect("reload");
    wait("10.1.0.13 checked and up in the report", &|| {
        let rep = report.lock().expect("lock");
        rep.reals.len() == 1
            && rep.reals[0].address == "10.1.0.13:80"
            && rep.reals[0]
                .checkers
                .first()
                .is_some_and(|c| c.state == "up" && c.checks > 0)
    });
    assert!(lines(&lb) > 0, "the new checker ran");
    // The removed real server's checker is gone: no more runs in 10
    // delay_loops (one in flight at the reload may still land).
    std::thread::sleep(Duration::from_millis(200));
    let a = lines(&la);
    let b = lines(&lb);
    std::thread::sleep(Duration::from_millis(1000));
    assert_eq!(lines(&la), a, "the old checker still runs");
    assert!(
        lines(&lb) >= b + 5,
        "the new one runs every delay_loop: {b} -> {}",
        lines(&lb)
    );
    sup.stop();
}
