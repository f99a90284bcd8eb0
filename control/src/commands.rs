//! The admin socket commands for ipvsadm's `-Z`, `--set`, `--timeout` and
//! `-R`, registered by the daemon with [`crate::admin::Handlers`] (the
//! connection listing, `-c`, is [`crate::conns`]).
//!
//! Layer: control, slow path. Requests and answers (one JSON line each):
//! - `zero` (mutates): `{"cmd":"zero"}` zeroes every service's counters and
//!   rates, `{"cmd":"zero","vip":"10.0.0.100:80","proto":"tcp"}` one
//!   service's (`fulcrumctl -Z [-t|-u VIP:PORT]`) → `{"ok":true,"zeroed":N}`.
//!   Refuses a service that does not exist ("no such service").
//! - `set_timeouts` (mutates): `{"cmd":"set_timeouts","tcp":S,"tcpfin":S,
//!   "udp":S}` (`fulcrumctl --set TCP TCPFIN UDP`, 0 = unchanged) through the
//!   [`Editor`] → `{"ok":true,"generation":N}`.
//! - `timeouts` (read-only): → `{"tcp":S,"tcpfin":S,"udp":S}`, the
//!   ESTABLISHED, FIN_WAIT and UDP timeouts new connections get
//!   (`fulcrumctl -L --timeout`).
//! - `restore` (mutates): `{"cmd":"restore","rules":[edit request, ...],
//!   "lines":[line number, ...]}` (`fulcrumctl -R`): every rule applied in
//!   order and published once, or none ([`Editor::handle_all`]); a refusal
//!   names the rule's input line when `lines` gives it.
#![forbid(unsafe_code)]

use std::net::SocketAddrV4;
use std::sync::{Arc, Mutex, PoisonError};

use arc_swap::ArcSwap;
use dataplane::snapshot::{Proto, ServiceKey, Snapshot};
use dataplane::stats::SharedStats;
use serde_json::{json, Value};

use crate::admin::Command;
use crate::edit::{EditError, Editor};
use crate::rates::{real_totals, Rates};

/// The `zero` command over the daemon's estimator state, snapshot and
/// workers' counters.
pub fn zero(
    rates: Arc<Mutex<Rates>>,
    snapshot: Arc<ArcSwap<Snapshot>>,
    stats: Vec<Arc<SharedStats>>,
) -> Command {
    Command {
        name: "zero",
        mutates: true,
        run: Arc::new(move |req: &Value| {
            let only = service_key(req)?;
            let snap = snapshot.load();
            let n = rates.lock().unwrap_or_else(PoisonError::into_inner).zero(
                &snap,
                |id| real_totals(&stats, id),
                only,
            );
            if let (Some(k), 0) = (only, n) {
                return Err(EditError::NoService(format!(
                    "{} {}",
                    k.proto,
                    SocketAddrV4::new(k.vip.into(), k.vport)
                )));
            }
            Ok(json!({ "ok": true, "zeroed": n }))
        }),
    }
}

/// The service a request names with `vip` and `proto` (`tcp` when absent),
/// `None` when it names none.
fn service_key(req: &Value) -> Result<Option<ServiceKey>, EditError> {
    let Some(v) = req.get("vip").and_then(Value::as_str) else {
        return Ok(None);
    };
    let addr: SocketAddrV4 = v.parse().map_err(|_| {
        EditError::BadRequest(format!("vip {v:?}: expected VIP:PORT like 10.0.0.100:80"))
    })?;
    let proto = match req.get("proto").and_then(Value::as_str).unwrap_or("tcp") {
        "tcp" => Proto::Tcp,
        "udp" => Proto::Udp,
        p => {
            return Err(EditError::BadRequest(format!(
                "proto {p:?}: expected \"tcp\" or \"udp\""
            )))
        }
    };
    Ok(Some(ServiceKey {
        vip: u32::from(*addr.ip()),
        vport: addr.port(),
        proto,
    }))
}

/// The `set_timeouts`, `timeouts` and `restore` commands over `editor`.
pub fn editor_commands(editor: Arc<Editor>) -> Vec<Command> {
    let set = Arc::clone(&editor);
    let get = Arc::clone(&editor);
    vec![
        Command {
            name: "set_timeouts",
            mutates: true,
            run: Arc::new(move |req: &Value| {
                let generation = set.handle(req)?;
                Ok(json!({ "ok": true, "generation": generation }))
            }),
        },
        Command {
            name: "timeouts",
            mutates: false,
            run: Arc::new(move |_req: &Value| {
                let t = get.config().timeouts;
                Ok(json!({
                    "tcp": t.tcp_established.0,
                    "tcpfin": t.tcp_fin_wait.0,
                    "udp": t.udp.0,
                }))
            }),
        },
        Command {
            name: "restore",
            mutates: true,
            run: Arc::new(move |req: &Value| restore(&editor, req)),
        },
    ]
}

/// The `restore` command's handler (see the module doc).
fn restore(editor: &Editor, req: &Value) -> Result<Value, EditError> {
    let rules = req
        .get("rules")
        .and_then(Value::as_array)
        .ok_or_else(|| EditError::BadRequest("restore needs a \"rules\" array".into()))?;
    let lines = req.get("lines").and_then(Value::as_array);
    match editor.handle_all(rules) {
        Ok(generation) => Ok(json!({ "ok": true, "generation": generation, "rules": rules.len() })),
        Err((i, e)) => {
            let at = match lines.and_then(|l| l.get(i)).and_then(Value::as_u64) {
                Some(n) => format!("line {n}"),
                None if i < rules.len() => format!("rules[{i}]"),
                None => "restore".to_string(),
            };
            Err(EditError::Refused(format!("{at}: {e}; nothing restored")))
        }
    }
}
