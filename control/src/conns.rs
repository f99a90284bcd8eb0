//! The admin socket's `conns` command: the connection listing behind
//! `fulcrumctl -L -n -c` (ipvsadm `-Lcn`).
//!
//! Layer: control, slow path. Each worker is asked for its connections in
//! slices over its [`DumpChannel`] (see `dataplane::conn::dump`: answered
//! on the worker's slow tick, never per packet); the records are filtered
//! here and answered as JSON.
//!
//! Request: `{"cmd":"conns"}`, optionally with a service filter
//! `"vip":"10.0.0.100:80","proto":"tcp"` (`-t`/`-u`) and a real-server
//! filter `"real":"10.1.0.11"` or `"10.1.0.11:80"` (`-r`). Reply:
//! `{"conns":[ConnEntry, ...]}` sorted by worker, then slab order.
//!
//! Refuses: a filter that does not parse ([`EditError::BadRequest`]); a
//! worker that does not answer a slice within [`SLICE_DEADLINE`] fails the
//! whole listing ([`EditError::Refused`]) rather than listing part of
//! the table or holding the admin thread.
#![forbid(unsafe_code)]

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;
use std::time::Duration;

use dataplane::conn::{ConnRecord, DumpChannel};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::admin::Command;
use crate::edit::EditError;

/// Records per slice a worker fills at most (28 bytes each: 112 KiB).
pub const SLICE_LEN: usize = 4096;

/// How long one worker may take to answer one slice.
pub const SLICE_DEADLINE: Duration = Duration::from_secs(1);

/// One connection of the listing, as `fulcrumctl -L -n -c --json` prints
/// it; the text form is ipvsadm's `pro expire state source virtual
/// destination`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnEntry {
    /// `"TCP"` or `"UDP"` (ipvsadm's `pro`).
    pub proto: String,
    /// Milliseconds left on the connection's timer (ipvsadm prints whole
    /// seconds as `mm:ss`).
    pub expire_ms: u64,
    /// IPVS state name (`ESTABLISHED`, `TIME_WAIT`, ..., `UDP`).
    pub state: String,
    /// Client address (CIP), dotted quad.
    pub cip: String,
    /// Client port.
    pub cport: u16,
    /// Virtual IP.
    pub vip: String,
    /// Virtual port.
    pub vport: u16,
    /// Real server address (RIP).
    pub rip: String,
    /// Real server port.
    pub rport: u16,
    /// The worker that owns the connection.
    pub worker: u32,
}

impl ConnEntry {
    /// The entry for `r`, owned by `worker`.
    pub fn of(r: &ConnRecord, worker: u32) -> ConnEntry {
        ConnEntry {
            proto: match r.proto {
                6 => "TCP".to_string(),
                17 => "UDP".to_string(),
                p => format!("IP{p}"),
            },
            expire_ms: u64::from(r.expire_ms),
            state: r.state.name().to_string(),
            cip: Ipv4Addr::from(r.cip).to_string(),
            cport: r.cport,
            vip: Ipv4Addr::from(r.vip).to_string(),
            vport: r.vport,
            rip: Ipv4Addr::from(r.rip).to_string(),
            rport: r.rport,
            worker,
        }
    }
}

/// The filters of one request: which records to keep.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    /// VIP:port and IP protocol number of the service (`-t`/`-u`).
    pub service: Option<(SocketAddrV4, u8)>,
    /// RIP and, when given, real server port (`-r`).
    pub real: Option<(Ipv4Addr, Option<u16>)>,
}

impl Filter {
    /// Reads the filters of a `conns` request (see the module doc).
    ///
    /// # Errors
    /// [`EditError::BadRequest`] naming the field that does not parse.
    pub fn from_request(req: &Value) -> Result<Filter, EditError> {
        let text = |f: &str| req.get(f).and_then(Value::as_str);
        let service = match text("vip") {
            None => None,
            Some(v) => {
                let addr: SocketAddrV4 = v.parse().map_err(|_| {
                    EditError::BadRequest(format!(
                        "vip {v:?}: expected VIP:PORT like 10.0.0.100:80"
                    ))
                })?;
                let proto = match text("proto").unwrap_or("tcp") {
                    "tcp" => 6,
                    "udp" => 17,
                    p => {
                        return Err(EditError::BadRequest(format!(
                            "proto {p:?}: expected \"tcp\" or \"udp\""
                        )))
                    }
                };
                Some((addr, proto))
            }
        };
        let real = match text("real") {
            None => None,
            Some(r) => Some(match r.parse::<SocketAddrV4>() {
                Ok(a) => (*a.ip(), Some(a.port())),
                Err(_) => (
                    r.parse::<Ipv4Addr>().map_err(|_| {
                        EditError::BadRequest(format!(
                            "real {r:?}: expected RIP or RIP:PORT like 10.1.0.11:80"
                        ))
                    })?,
                    None,
                ),
            }),
        };
        Ok(Filter { service, real })
    }

    /// Whether `r` passes every filter.
    pub fn keeps(&self, r: &ConnRecord) -> bool {
        let svc = self.service.is_none_or(|(a, p)| {
            u32::from(*a.ip()) == r.vip && a.port() == r.vport && p == r.proto
        });
        let real = self
            .real
            .is_none_or(|(ip, port)| u32::from(ip) == r.rip && port.is_none_or(|p| p == r.rport));
        svc && real
    }
}

/// Lists every worker's connections that pass the request's filters:
/// the `conns` command's answer, `{"conns":[...]}`.
///
/// # Errors
/// [`EditError::BadRequest`] for a bad filter; [`EditError::Refused`]
/// naming the worker that did not answer in time.
pub fn list(channels: &[Arc<DumpChannel>], req: &Value) -> Result<Value, EditError> {
    let filter = Filter::from_request(req)?;
    let mut out = Vec::new();
    for (w, ch) in channels.iter().enumerate() {
        let records = ch
            .collect(SLICE_LEN, SLICE_DEADLINE)
            .map_err(|e| EditError::Refused(format!("connection listing: worker {w} {e}")))?;
        out.extend(
            records
                .iter()
                .filter(|r| filter.keeps(r))
                .map(|r| ConnEntry::of(r, w as u32)),
        );
    }
    serde_json::to_value(serde_json::json!({ "conns": out }))
        .map_err(|e| EditError::Refused(format!("connection listing: {e}")))
}

/// The `conns` admin command over the workers' `channels` (read-only).
pub fn command(channels: Vec<Arc<DumpChannel>>) -> Command {
    Command {
        name: "conns",
        mutates: false,
        run: Arc::new(move |req: &Value| list(&channels, req)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dataplane::conn::TcpState;
    use serde_json::json;

    fn rec(vport: u16, rip: u32, rport: u16, proto: u8) -> ConnRecord {
        ConnRecord {
            proto,
            state: TcpState::TimeWait,
            expire_ms: 61_500,
            cip: 0x0a00_0002,
            cport: 40000,
            vip: 0x0a00_0064,
            vport,
            rip,
            rport,
        }
    }

    #[test]
    fn test_entry_of_record() {
        let e = ConnEntry::of(&rec(80, 0x0a01_000b, 8080, 6), 1);
        assert_eq!(
            serde_json::to_value(&e).unwrap(),
            json!({"proto":"TCP","expire_ms":61500,"state":"TIME_WAIT","cip":"10.0.0.2",
                   "cport":40000,"vip":"10.0.0.100","vport":80,"rip":"10.1.0.11",
                   "rport":8080,"worker":1})
        );
        assert_eq!(ConnEntry::of(&rec(53, 1, 53, 17), 0).proto, "UDP");
    }

    #[test]
    fn test_filters() {
        let all = Filter::from_request(&json!({"cmd":"conns"})).unwrap();
        assert!(all.keeps(&rec(80, 1, 80, 6)));
        let f = Filter::from_request(&json!({"vip":"10.0.0.100:80","proto":"tcp"})).unwrap();
        assert!(f.keeps(&rec(80, 1, 80, 6)));
        assert!(!f.keeps(&rec(81, 1, 80, 6)), "other port");
        assert!(!f.keeps(&rec(80, 1, 80, 17)), "other protocol");
        let f = Filter::from_request(&json!({"real":"10.1.0.11"})).unwrap();
        assert!(f.keeps(&rec(80, 0x0a01_000b, 8080, 6)));
        assert!(!f.keeps(&rec(80, 0x0a01_000c, 8080, 6)));
        let f = Filter::from_request(&json!({"real":"10.1.0.11:80"})).unwrap();
        assert!(!f.keeps(&rec(80, 0x0a01_000b, 8080, 6)), "other real port");
        assert_eq!(
            Filter::from_request(&json!({"vip":"10.0.0.100"}))
                .unwrap_err()
                .to_string(),
            "bad request: vip \"10.0.0.100\": expected VIP:PORT like 10.0.0.100:80"
        );
        assert_eq!(
            Filter::from_request(&json!({"real":"x"}))
                .unwrap_err()
                .to_string(),
            "bad request: real \"x\": expected RIP or RIP:PORT like 10.1.0.11:80"
        );
    }

    #[test]
    fn test_list_fails_on_a_silent_worker() {
        // No worker serves the channel: the listing gives up at its
        // deadline (it returns at all), naming the worker.
        let err = list(&[DumpChannel::new()], &json!({"cmd":"conns"})).unwrap_err();
        assert_eq!(
            err.to_string(),
            "connection listing: worker 0 did not answer within 1s"
        );
    }
}
