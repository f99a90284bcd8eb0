//! fulcrumctl's commands beyond the listing and the edits: ipvsadm's `-Z`,
//! `--set`, `-R`, `-L -c` and `-L --timeout`, and `--reload`'s summary.
//!
//! Layer: control CLI. Each sends one admin request (the daemon's `zero`,
//! `set_timeouts`, `restore`, `conns`, `timeouts`, `reload` commands) and
//! prints the answer in ipvsadm's words (`format.rs`).

use std::io::Write;
use std::process::ExitCode;

use control::admin::request;
use control::conns::ConnEntry;
use serde_json::{json, Value};

use super::format::{format_conns, format_timeouts};
use clap::Parser;

use super::{admin_fail, check_options, command, edit_request, fail, service, Cli, Cmd};

/// The `-S` rules in `text` (what `fulcrumctl -S` prints) as the edit
/// requests that apply them, with each one's 1-based line number. Empty
/// lines and `#` comments are skipped; every line must be one of ipvsadm's
/// rule commands (`-A -E -D -a -e -d -C`) with valid options.
///
/// # Errors
/// `line N: what is wrong` for the first bad line; nothing is sent then.
pub(super) fn parse_rules(text: &str) -> Result<(Vec<Value>, Vec<usize>), String> {
    let mut rules = Vec::new();
    let mut lines = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let t = line.trim();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let words = std::iter::once("fulcrumctl").chain(t.split_whitespace());
        let cli = Cli::try_parse_from(words).map_err(|e| {
            let text = e.render().to_string();
            let first = text.lines().next().unwrap_or("bad arguments").to_string();
            format!("line {n}: {}", first.trim_start_matches("error: "))
        })?;
        let cmd = command(&cli).filter(|c| {
            matches!(
                c,
                Cmd::AddService
                    | Cmd::EditService
                    | Cmd::DeleteService
                    | Cmd::AddReal
                    | Cmd::EditReal
                    | Cmd::DeleteReal
                    | Cmd::Clear
            )
        });
        let Some(cmd) = cmd else {
            return Err(format!(
                "line {n}: expected a rule (-A, -E, -D, -a, -e, -d or -C), got {t:?}"
            ));
        };
        if cli.socket.is_some() {
            return Err(format!("line {n}: --socket is not allowed in a rule"));
        }
        check_options(&cli, cmd).map_err(|m| format!("line {n}: {m}"))?;
        rules.push(edit_request(&cli, cmd).map_err(|m| format!("line {n}: {m}"))?);
        lines.push(n);
    }
    Ok((rules, lines))
}

/// Runs `-Z`, `--set`, `-R`, `-L -c` and `-L --timeout`; `None` for the
/// other commands.
pub(super) fn run_ipvs_command(cli: &Cli, cmd: Cmd, socket: &std::path::Path) -> Option<ExitCode> {
    let service_filter = |req: &mut Value| -> Result<(), String> {
        if cli.tcp_service.is_some() || cli.udp_service.is_some() {
            let (vip, proto, _) = service(cli)?;
            req["vip"] = json!(vip);
            req["proto"] = json!(proto);
        }
        Ok(())
    };
    let req = match cmd {
        Cmd::Zero => {
            let mut req = json!({ "cmd": "zero" });
            if let Err(m) = service_filter(&mut req) {
                return Some(fail(&m));
            }
            req
        }
        Cmd::SetTimeouts => {
            let v = cli.set.clone().unwrap_or_default();
            json!({ "cmd": "set_timeouts", "tcp": v[0], "tcpfin": v[1], "udp": v[2] })
        }
        Cmd::Restore => {
            let mut text = String::new();
            if let Err(e) = std::io::Read::read_to_string(&mut std::io::stdin(), &mut text) {
                return Some(fail(&format!("cannot read the rules from stdin: {e}")));
            }
            match parse_rules(&text) {
                Ok((rules, lines)) => json!({ "cmd": "restore", "rules": rules, "lines": lines }),
                Err(m) => return Some(fail(&m)),
            }
        }
        Cmd::Conns => {
            let mut req = json!({ "cmd": "conns" });
            if let Err(m) = service_filter(&mut req) {
                return Some(fail(&m));
            }
            if let Some(r) = &cli.real_server {
                req["real"] = json!(r);
            }
            req
        }
        Cmd::Timeouts => json!({ "cmd": "timeouts" }),
        _ => return None,
    };
    let reply = match request(socket, &req) {
        Ok(v) => v,
        Err(e) => return Some(admin_fail(&e)),
    };
    let text = match cmd {
        Cmd::Conns => {
            let conns: Vec<ConnEntry> = match serde_json::from_value(reply["conns"].clone()) {
                Ok(c) => c,
                Err(e) => return Some(fail(&format!("bad connection listing: {e}"))),
            };
            if cli.json {
                let mut s = serde_json::to_string_pretty(&conns).unwrap_or_default();
                s.push('\n');
                s
            } else {
                format_conns(&conns)
            }
        }
        Cmd::Timeouts => {
            let n = |k: &str| reply[k].as_u64().unwrap_or(0);
            format_timeouts(n("tcp"), n("tcpfin"), n("udp"))
        }
        // -Z, --set and -R print nothing, as ipvsadm.
        _ => String::new(),
    };
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            return Some(fail(&format!("cannot write output: {e}")));
        }
    }
    Some(ExitCode::SUCCESS)
}

/// The one line `--reload` prints for the daemon's reply.
pub(super) fn reload_summary(r: &Value) -> String {
    let n = |k: &str| r.get(k).and_then(Value::as_u64).unwrap_or(0);
    let file = r.get("file").and_then(Value::as_str).unwrap_or("?");
    if r.get("changed") == Some(&Value::Bool(false)) {
        return format!(
            "reloaded {file}: unchanged (generation {})",
            n("generation")
        );
    }
    format!(
        "reloaded {file}: generation {}, {} real server(s) added, {} removed, {} kept; {} runtime edit(s) dropped",
        n("generation"),
        n("reals_added"),
        n("reals_removed"),
        n("reals_kept"),
        n("dropped_edits")
    )
}
