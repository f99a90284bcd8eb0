//! `fulcrumctl`: the operator's tool for a running fulcrum, in ipvsadm's
//! command syntax.
//!
//! Layer: control CLI. Talks to the daemon's admin socket once per run:
//! either a status query it prints, or one runtime edit. Output layouts live
//! in `control::admin` (`format_list`, `format_counters`, `format_save`) and
//! edit semantics in `control::edit`, so both are unit-tested; this file only
//! parses flags, builds the request and prints.
//!
//! Commands (ipvsadm's letters, one per run):
//! - `-A|-E -t|-u VIP:PORT [-s SCHED] [-p [TIMEOUT]] [-M NETMASK] [-b FLAGS]`:
//!   add or edit a virtual service. The scheduler defaults to `wlc`, as in
//!   ipvsadm (so `-E` without `-s` sets `wlc`). `-p` without a value is 300 s
//!   (ipvsadm's default persistence timeout). `-p`, `-M` and `-b` (a comma
//!   list such as `sh-port,sh-fallback`) are sent as the service's
//!   `persistence_timeout`, `persistence_netmask` and `sched_flags`; the
//!   daemon refuses them if its config has no such fields. `-E` replaces the
//!   service's settings and keeps its real servers.
//! - `-D -t|-u VIP:PORT`: delete a virtual service.
//! - `-a|-e -t|-u VIP:PORT -r RIP[:PORT] [-g|-m|-i|--fullnat] [-w WEIGHT]
//!   [--tun-type ipip|gue] [--tun-port PORT]`: add or edit a real server.
//!   As in ipvsadm: `-g` (direct routing) is the default, `-m` is
//!   masquerading (NAT), `-i` is IP tunnelling (VS/TUN, IPIP unless
//!   `--tun-type gue` with its `--tun-port`), `--fullnat` is FullNAT (as
//!   DPVS's ipvsadm; the service needs `local_addresses` in the config),
//!   the weight defaults to 1, a RIP without a port takes the virtual port,
//!   and with `-g` or `-i` the port is always the virtual port.
//! - `-d -t|-u VIP:PORT -r RIP[:PORT]`: delete a real server.
//! - `-C`: clear every virtual service.
//! - `-L`/`-l`/`--list` (`-n`/`--numeric` accepted, always numeric):
//!   list services and real servers (`ipvsadm -L -n` layout); `--stats`:
//!   counters instead of weights (K/M/G/T in base 1000); `--exact`: no units.
//! - `-S`/`--save`: print the current rules as `fulcrumctl` commands
//!   (`ipvsadm -S -n`).
//! - `--counters`: per-worker counters and drop reasons (zeros hidden unless
//!   `--exact`); `--json`: the raw status JSON, pretty-printed.
//! - `--health`: the checkers' view per real server and service; with
//!   `--json`, the health report alone.
//! - `--vrrp`: each VRRP instance's state (`MASTER (split-brain)` while
//!   split brain is reported), priorities, master, counters and last
//!   transition; with `--json`, the report as JSON.
//! - `--ports`: each DPDK port's device counters (imissed, rx_nombuf,
//!   ierrors, oerrors) and its PMD's xstats (zeros hidden unless
//!   `--exact`); with `--json`, the ports alone.
//! - `--reload`: the daemon reads its config file again and applies the
//!   difference (as SIGHUP does); prints one summary line; a file that fails
//!   validation changes nothing and exits 1 printing `file:line:col: ...`.
//!   Runtime edits are dropped by a reload (the file wins).
//! - `--socket PATH`: admin socket; default `$FULCRUM_SOCKET`, else
//!   `/run/fulcrum/fulcrum.sock`.
//!
//! Edits are runtime only: the daemon's config file is not changed. An edit
//! prints nothing and exits 0 once the daemon published it. Without a command
//! it prints usage and exits 0. Errors (daemon not running, an edit the
//! daemon refused, bad flags) are one line on stderr and exit status 1; a
//! refused edit prints the daemon's reason as is.
#![forbid(unsafe_code)]

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{ArgGroup, CommandFactory, Parser};
use control::admin::{edit, query, request, AdminError};
use control::config::DEFAULT_ADMIN_SOCKET;
use dataplane::snapshot::{Method, Proto};
use serde_json::{json, Value};

mod format;
mod ipvs;
use format::{format_counters, format_health, format_list, format_ports, format_rate, format_save};
use ipvs::{reload_summary, run_ipvs_command};

/// fulcrum's ipvsadm-style admin tool.
#[derive(Parser, Debug)]
#[command(
    name = "fulcrumctl",
    version,
    about = "Show and edit the virtual services of a running fulcrum director (ipvsadm syntax)",
    group(ArgGroup::new("command").multiple(false)),
    group(ArgGroup::new("method").multiple(false)),
)]
struct Cli {
    /// Add a virtual service (like ipvsadm -A).
    #[arg(short = 'A', long = "add-service", group = "command")]
    add_service: bool,
    /// Edit a virtual service: replaces its settings, keeps its real servers.
    #[arg(short = 'E', long = "edit-service", group = "command")]
    edit_service: bool,
    /// Delete a virtual service.
    #[arg(short = 'D', long = "delete-service", group = "command")]
    delete_service: bool,
    /// Clear: delete every virtual service.
    #[arg(short = 'C', long = "clear", group = "command")]
    clear: bool,
    /// Add a real server to a virtual service.
    #[arg(short = 'a', long = "add-server", group = "command")]
    add_server: bool,
    /// Edit a real server: replaces its weight and forwarding method.
    #[arg(short = 'e', long = "edit-server", group = "command")]
    edit_server: bool,
    /// Delete a real server from a virtual service.
    #[arg(short = 'd', long = "delete-server", group = "command")]
    delete_server: bool,
    /// List virtual services and real servers (like ipvsadm -L).
    #[arg(short = 'L', short_alias = 'l', long = "list", group = "command")]
    list: bool,
    /// Print the current rules as fulcrumctl commands (like ipvsadm -S).
    #[arg(short = 'S', long = "save", group = "command")]
    save: bool,
    /// Restore rules in -S format from standard input, all or nothing (like
    /// ipvsadm -R).
    #[arg(short = 'R', long = "restore", group = "command")]
    restore: bool,
    /// Zero the counters and rates of every service, or of the -t/-u one
    /// (like ipvsadm -Z).
    #[arg(short = 'Z', long = "zero", group = "command")]
    zero: bool,
    /// Set the TCP (ESTABLISHED), TCP FIN and UDP timeouts of new
    /// connections in seconds; 0 leaves one unchanged (like ipvsadm --set).
    #[arg(long = "set", num_args = 3, value_names = ["TCP", "TCPFIN", "UDP"], group = "command")]
    set: Option<Vec<u64>>,
    /// Reload: the daemon reads its config file again and applies only the
    /// difference (as SIGHUP); runtime edits are dropped.
    #[arg(long = "reload", group = "command")]
    reload: bool,
    /// TCP virtual service VIP:PORT.
    #[arg(
        short = 't',
        long = "tcp-service",
        value_name = "VIP:PORT",
        conflicts_with = "udp_service"
    )]
    tcp_service: Option<String>,
    /// UDP virtual service VIP:PORT.
    #[arg(short = 'u', long = "udp-service", value_name = "VIP:PORT")]
    udp_service: Option<String>,
    /// Scheduler (ipvsadm name: rr, wrr, lc, wlc, sh, mh, ...); default wlc.
    #[arg(short = 's', long = "scheduler", value_name = "SCHEDULER")]
    scheduler: Option<String>,
    /// Persistent service; timeout in seconds, 300 when omitted.
    #[arg(
        short = 'p',
        long = "persistent",
        value_name = "TIMEOUT",
        num_args = 0..=1,
        default_missing_value = "300"
    )]
    persistent: Option<u64>,
    /// Persistence granularity netmask, like 255.255.255.0.
    #[arg(short = 'M', long = "netmask", value_name = "NETMASK")]
    netmask: Option<String>,
    /// Scheduler flags, comma separated (sh-port, sh-fallback, mh-port, ...).
    #[arg(short = 'b', long = "sched-flags", value_name = "FLAGS")]
    sched_flags: Option<String>,
    /// Real server RIP or RIP:PORT; the port defaults to the virtual port.
    #[arg(short = 'r', long = "real-server", value_name = "RIP[:PORT]")]
    real_server: Option<String>,
    /// Direct routing (the default forwarding method).
    #[arg(short = 'g', long = "gatewaying", group = "method")]
    gatewaying: bool,
    /// Masquerading (NAT).
    #[arg(short = 'm', long = "masquerading", group = "method")]
    masquerading: bool,
    /// IP tunnelling (VS/TUN): IPIP, or GUE with --tun-type gue.
    #[arg(short = 'i', long = "ipip", group = "method")]
    ipip: bool,
    /// With -i: the encapsulation, ipip (default) or gue (ipvsadm --tun-type).
    #[arg(long = "tun-type", value_name = "TYPE")]
    tun_type: Option<String>,
    /// With -i --tun-type gue: the real server's GUE UDP port (ipvsadm --tun-port).
    #[arg(long = "tun-port", value_name = "PORT")]
    tun_port: Option<u16>,
    /// FullNAT (DPVS's ipvsadm `--fullnat`): the service needs
    /// `local_addresses` in the config.
    #[arg(long = "fullnat", group = "method")]
    fullnat: bool,
    /// Real server weight 0..=65535; default 1.
    #[arg(short = 'w', long = "weight", value_name = "WEIGHT")]
    weight: Option<u64>,
    /// Numeric output; accepted for ipvsadm compatibility and always on.
    #[arg(short = 'n', long = "numeric")]
    numeric: bool,
    /// Show connection, packet and byte counters (ipvsadm --stats).
    #[arg(long)]
    stats: bool,
    /// Show rates: CPS, InPPS, OutPPS, InBPS, OutBPS (ipvsadm --rate).
    #[arg(long)]
    rate: bool,
    /// With -L: list the connections (ipvsadm -Lc); -t/-u and -r filter them.
    #[arg(short = 'c', long = "connection")]
    connection: bool,
    /// With -L: show the TCP, TCP FIN and UDP timeouts (ipvsadm --timeout).
    #[arg(long)]
    timeout: bool,
    /// Print exact numbers without K/M/G/T units; with --counters, also show
    /// drop reasons that are zero.
    #[arg(long)]
    exact: bool,
    /// Show per-worker counters and drop reasons.
    #[arg(long)]
    counters: bool,
    /// Print the daemon's status as pretty JSON (with --health: only the
    /// health report).
    #[arg(long)]
    json: bool,
    /// Show the health checkers: per real server its state, weight and last
    /// transition, each checker's state, last result and latency; per
    /// service its quorum and sorry server.
    #[arg(long)]
    health: bool,
    /// Show each DPDK port's device counters (imissed, rx_nombuf, ierrors,
    /// oerrors) and the driver's xstats, as the daemon read them last
    /// (once a second).
    #[arg(long)]
    ports: bool,
    /// Show each VRRP instance: state (with split-brain), priority and
    /// effective priority, the master's address, adverts sent, received and
    /// refused, and the time and reason of the last transition; with
    /// --json, the report as JSON.
    #[arg(long)]
    vrrp: bool,
    /// Admin socket path [default: $FULCRUM_SOCKET, else /run/fulcrum/fulcrum.sock].
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
}

/// What one run does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cmd {
    AddService,
    EditService,
    DeleteService,
    Clear,
    AddReal,
    EditReal,
    DeleteReal,
    List,
    Save,
    Reload,
    Counters,
    Json,
    Health,
    Ports,
    Zero,
    Restore,
    SetTimeouts,
    Conns,
    Timeouts,
    Vrrp,
}

impl Cmd {
    /// The flag and ipvsadm's long name, for messages.
    fn flag(self) -> &'static str {
        match self {
            Cmd::AddService => "-A (add-service)",
            Cmd::EditService => "-E (edit-service)",
            Cmd::DeleteService => "-D (delete-service)",
            Cmd::Clear => "-C (clear)",
            Cmd::AddReal => "-a (add-server)",
            Cmd::EditReal => "-e (edit-server)",
            Cmd::DeleteReal => "-d (delete-server)",
            Cmd::List => "-L (list)",
            Cmd::Save => "-S (save)",
            Cmd::Reload => "--reload",
            Cmd::Counters => "--counters",
            Cmd::Json => "--json",
            Cmd::Health => "--health",
            Cmd::Ports => "--ports",
            Cmd::Zero => "-Z (zero)",
            Cmd::Restore => "-R (restore)",
            Cmd::SetTimeouts => "--set",
            Cmd::Conns => "-L -c (connection)",
            Cmd::Timeouts => "-L --timeout",
            Cmd::Vrrp => "--vrrp",
        }
    }

    /// Options the command accepts besides `-n` and `--socket` (ipvsadm's
    /// `commands_v_options` table, for the options fulcrumctl has).
    fn allowed(self) -> &'static [&'static str] {
        match self {
            Cmd::AddService | Cmd::EditService => &["-t", "-u", "-s", "-p", "-M", "-b"],
            Cmd::DeleteService => &["-t", "-u"],
            Cmd::AddReal | Cmd::EditReal => &[
                "-t",
                "-u",
                "-r",
                "-g",
                "-m",
                "-i",
                "--fullnat",
                "-w",
                "--tun-type",
                "--tun-port",
            ],
            Cmd::DeleteReal => &["-t", "-u", "-r"],
            // The read-only views ignore each other's flags, as before.
            Cmd::List | Cmd::Counters | Cmd::Json => &[
                "--stats",
                "--rate",
                "--exact",
                "--counters",
                "--json",
                "-t",
                "-u",
            ],
            Cmd::Health => &["--json", "--health"],
            Cmd::Vrrp => &["--json", "--vrrp"],
            Cmd::Ports => &["--json", "--ports", "--exact"],
            Cmd::Zero => &["-t", "-u"],
            Cmd::Conns => &["-c", "-t", "-u", "-r", "--json"],
            Cmd::Timeouts => &["--timeout"],
            Cmd::Clear | Cmd::Save | Cmd::Restore | Cmd::SetTimeouts | Cmd::Reload => &[],
        }
    }
}

fn command(cli: &Cli) -> Option<Cmd> {
    let commands = [
        (cli.add_service, Cmd::AddService),
        (cli.edit_service, Cmd::EditService),
        (cli.delete_service, Cmd::DeleteService),
        (cli.clear, Cmd::Clear),
        (cli.add_server, Cmd::AddReal),
        (cli.edit_server, Cmd::EditReal),
        (cli.delete_server, Cmd::DeleteReal),
        (cli.save, Cmd::Save),
        (cli.restore, Cmd::Restore),
        (cli.zero, Cmd::Zero),
        (cli.set.is_some(), Cmd::SetTimeouts),
        (cli.reload, Cmd::Reload),
    ];
    if let Some(&(_, c)) = commands.iter().find(|(on, _)| *on) {
        return Some(c);
    }
    // The read-only views keep their old precedence: --json, --counters, -L;
    // --health comes first (its --json is the health report alone), and
    // -L -c / -L --timeout are listings of their own (-c takes --json).
    if cli.list && cli.connection {
        Some(Cmd::Conns)
    } else if cli.list && cli.timeout {
        Some(Cmd::Timeouts)
    } else if cli.vrrp {
        Some(Cmd::Vrrp)
    } else if cli.health {
        Some(Cmd::Health)
    } else if cli.ports {
        Some(Cmd::Ports)
    } else if cli.json {
        Some(Cmd::Json)
    } else if cli.counters {
        Some(Cmd::Counters)
    } else if cli.list {
        Some(Cmd::List)
    } else {
        None
    }
}

/// Refuses an option the command does not take, and a missing `-t|-u` or
/// `-r`, as ipvsadm's `generic_opt_check()` does.
fn check_options(cli: &Cli, cmd: Cmd) -> Result<(), String> {
    let used = [
        ("-t", cli.tcp_service.is_some()),
        ("-u", cli.udp_service.is_some()),
        ("-s", cli.scheduler.is_some()),
        ("-p", cli.persistent.is_some()),
        ("-M", cli.netmask.is_some()),
        ("-b", cli.sched_flags.is_some()),
        ("-r", cli.real_server.is_some()),
        ("-g", cli.gatewaying),
        ("-m", cli.masquerading),
        ("-i", cli.ipip),
        ("--fullnat", cli.fullnat),
        ("-w", cli.weight.is_some()),
        ("--tun-type", cli.tun_type.is_some()),
        ("--tun-port", cli.tun_port.is_some()),
        ("--stats", cli.stats),
        ("--rate", cli.rate),
        ("-c", cli.connection),
        ("--timeout", cli.timeout),
        ("--exact", cli.exact),
        ("--counters", cli.counters),
        ("--json", cli.json),
        ("--health", cli.health),
        ("--ports", cli.ports),
        ("--vrrp", cli.vrrp),
    ];
    for (name, on) in used {
        if on && !cmd.allowed().contains(&name) {
            return Err(format!("option {name} is not allowed with {}", cmd.flag()));
        }
    }
    let service = cli.tcp_service.is_some() || cli.udp_service.is_some();
    // -L, -L -c and -Z take -t/-u (and -r) as optional filters.
    let filter = matches!(
        cmd,
        Cmd::List | Cmd::Counters | Cmd::Json | Cmd::Conns | Cmd::Zero
    );
    if cmd.allowed().contains(&"-t") && !service && !filter {
        return Err(format!("{} needs -t or -u VIP:PORT", cmd.flag()));
    }
    if cmd.allowed().contains(&"-r") && cli.real_server.is_none() && !filter {
        return Err(format!("{} needs -r RIP[:PORT]", cmd.flag()));
    }
    Ok(())
}

/// The service named by `-t`/`-u`: JSON `vip` and `proto`, and the virtual
/// port.
fn service(cli: &Cli) -> Result<(String, &'static str, u16), String> {
    let (text, proto) = match (&cli.tcp_service, &cli.udp_service) {
        (Some(t), _) => (t, Proto::Tcp.config_name()),
        (None, Some(u)) => (u, Proto::Udp.config_name()),
        (None, None) => return Err("needs -t or -u VIP:PORT".into()),
    };
    let addr: SocketAddrV4 = text.parse().map_err(|_| {
        format!("illegal virtual service address {text:?}: expected VIP:PORT like 10.0.0.100:80")
    })?;
    Ok((addr.to_string(), proto, addr.port()))
}

/// The `-r` address with ipvsadm's port rules: no port → the virtual port;
/// direct routing or tunnelling (`fixed`) → always the virtual port.
fn real_addr(text: &str, vport: u16, fixed: bool) -> Result<String, String> {
    let bad = || {
        format!("illegal real server address {text:?}: expected RIP or RIP:PORT like 10.1.0.11:80")
    };
    let (ip, port) = match text.parse::<SocketAddrV4>() {
        Ok(a) => (*a.ip(), a.port()),
        Err(_) => (text.parse::<Ipv4Addr>().map_err(|_| bad())?, vport),
    };
    Ok(SocketAddrV4::new(ip, if fixed { vport } else { port }).to_string())
}

/// The admin request for an edit command.
fn edit_request(cli: &Cli, cmd: Cmd) -> Result<Value, String> {
    if cmd == Cmd::Clear {
        return Ok(json!({ "cmd": "clear" }));
    }
    let (vip, proto, vport) = service(cli)?;
    let req = match cmd {
        Cmd::AddService | Cmd::EditService => {
            let mut svc = json!({
                "vip": vip,
                "proto": proto,
                "scheduler": cli.scheduler.as_deref().unwrap_or("wlc"),
            });
            if cmd == Cmd::AddService {
                // ipvsadm's default forwarding method; real servers added
                // with -a always name theirs.
                svc["forwarding"] = json!(Method::Dr.config_name());
            }
            if let Some(t) = cli.persistent {
                svc["persistence_timeout"] = json!(t);
            }
            if let Some(m) = &cli.netmask {
                svc["persistence_netmask"] = json!(m);
            }
            if let Some(b) = &cli.sched_flags {
                let flags: Vec<&str> = b
                    .split(',')
                    .map(str::trim)
                    .filter(|f| !f.is_empty())
                    .collect();
                svc["sched_flags"] = json!(flags);
            }
            let name = if cmd == Cmd::AddService {
                "add_service"
            } else {
                "edit_service"
            };
            json!({ "cmd": name, "service": svc })
        }
        Cmd::DeleteService => json!({ "cmd": "delete_service", "vip": vip, "proto": proto }),
        Cmd::AddReal | Cmd::EditReal | Cmd::DeleteReal => {
            if !cli.ipip && (cli.tun_type.is_some() || cli.tun_port.is_some()) {
                return Err("--tun-type and --tun-port need -i (IP tunnelling)".into());
            }
            let method = if cli.masquerading {
                Method::Nat
            } else if cli.ipip {
                Method::Tun
            } else if cli.fullnat {
                Method::FullNat
            } else {
                Method::Dr
            };
            // DR and TUN carry the packet to the virtual port unchanged.
            let fixed_port = cmd != Cmd::DeleteReal && matches!(method, Method::Dr | Method::Tun);
            let addr = real_addr(cli.real_server.as_deref().unwrap_or(""), vport, fixed_port)?;
            let (name, real) = match cmd {
                Cmd::DeleteReal => ("delete_real", json!({ "addr": addr })),
                _ => (
                    if cmd == Cmd::AddReal {
                        "add_real"
                    } else {
                        "edit_real"
                    },
                    {
                        let mut real = json!({
                            "addr": addr,
                            "weight": cli.weight.unwrap_or(1),
                            "forwarding": method.config_name(),
                        });
                        if let Some(t) = &cli.tun_type {
                            real["tun_type"] = json!(t);
                        }
                        if let Some(p) = cli.tun_port {
                            real["tun_port"] = json!(p);
                        }
                        real
                    },
                ),
            };
            json!({ "cmd": name, "vip": vip, "proto": proto, "real": real })
        }
        _ => return Err(format!("{} is not an edit", cmd.flag())),
    };
    Ok(req)
}

fn fail(msg: &str) -> ExitCode {
    // One line, whatever the message contains.
    let one_line = msg
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    eprintln!("fulcrumctl: {one_line}");
    ExitCode::from(1)
}

fn admin_fail(e: &AdminError) -> ExitCode {
    match e {
        // The daemon's own reason, as is.
        AdminError::Server { message, .. } => fail(message),
        other => fail(&other.to_string()),
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
                let _ = e.print();
                return ExitCode::SUCCESS;
            }
            // clap's first line is "error: ..."; keep just that.
            let text = e.render().to_string();
            let first = text.lines().next().unwrap_or("bad arguments");
            return fail(first.trim_start_matches("error: "));
        }
    };
    let _ = cli.numeric;

    let Some(cmd) = command(&cli) else {
        let _ = Cli::command().print_help();
        return ExitCode::SUCCESS;
    };
    if let Err(msg) = check_options(&cli, cmd) {
        return fail(&msg);
    }

    let socket = cli
        .socket
        .clone()
        .or_else(|| {
            std::env::var_os("FULCRUM_SOCKET")
                .filter(|s| !s.is_empty())
                .map(PathBuf::from)
        })
        .unwrap_or_else(|| PathBuf::from(DEFAULT_ADMIN_SOCKET));

    if let Some(code) = run_ipvs_command(&cli, cmd, &socket) {
        return code;
    }
    if cmd == Cmd::Vrrp {
        return match request(&socket, &json!({ "cmd": "vrrp" })) {
            Ok(r) => {
                let text = if cli.json {
                    serde_json::to_string_pretty(&r).unwrap_or_default()
                } else {
                    match serde_json::from_value::<control::vrrp::report::VrrpReport>(r) {
                        Ok(rep) => control::vrrp::report::format(&rep, now_ms()),
                        Err(e) => return fail(&format!("unexpected vrrp answer: {e}")),
                    }
                };
                print!("{}", text.trim_end_matches('\n'));
                println!();
                ExitCode::SUCCESS
            }
            Err(e) => admin_fail(&e),
        };
    }
    if cmd == Cmd::Reload {
        return match request(&socket, &json!({ "cmd": "reload" })) {
            Ok(r) => {
                println!("{}", reload_summary(&r));
                ExitCode::SUCCESS
            }
            Err(e) => admin_fail(&e),
        };
    }
    if !matches!(
        cmd,
        Cmd::List | Cmd::Save | Cmd::Counters | Cmd::Json | Cmd::Health | Cmd::Ports
    ) {
        let req = match edit_request(&cli, cmd) {
            Ok(r) => r,
            Err(msg) => return fail(&msg),
        };
        return match edit(&socket, &req) {
            Ok(_generation) => ExitCode::SUCCESS,
            Err(e) => admin_fail(&e),
        };
    }

    let mut status = match query(&socket) {
        Ok(s) => s,
        Err(e) => return admin_fail(&e),
    };
    // -L -t|-u VIP:PORT: that service alone, as ipvsadm lists it.
    if cmd == Cmd::List && (cli.tcp_service.is_some() || cli.udp_service.is_some()) {
        let (vip, proto, _) = match service(&cli) {
            Ok(s) => s,
            Err(msg) => return fail(&msg),
        };
        let name = proto.to_uppercase();
        status
            .services
            .retain(|s| s.proto == name && format!("{}:{}", s.vip, s.vport) == vip);
        if status.services.is_empty() {
            return fail(&format!("no such service: {name} {vip}"));
        }
    }
    let text = match cmd {
        Cmd::Json => match serde_json::to_string_pretty(&status) {
            Ok(mut s) => {
                s.push('\n');
                s
            }
            Err(e) => return fail(&format!("cannot encode status: {e}")),
        },
        Cmd::Health if cli.json => match serde_json::to_string_pretty(&status.health) {
            Ok(mut s) => {
                s.push('\n');
                s
            }
            Err(e) => return fail(&format!("cannot encode health: {e}")),
        },
        Cmd::Health => format_health(&status, now_ms()),
        Cmd::Ports if cli.json => match serde_json::to_string_pretty(&status.ports) {
            Ok(mut s) => {
                s.push('\n');
                s
            }
            Err(e) => return fail(&format!("cannot encode ports: {e}")),
        },
        Cmd::Ports => format_ports(&status, cli.exact),
        Cmd::Counters => format_counters(&status, cli.exact),
        Cmd::Save => format_save(&status),
        _ if cli.rate => format_rate(&status, cli.exact),
        _ => format_list(&status, cli.stats, cli.exact),
    };
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            return fail(&format!("cannot write output: {e}"));
        }
    }
    ExitCode::SUCCESS
}

/// Now as Unix milliseconds, for "ago" in `--health`.
fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::ipvs::parse_rules;
    use super::*;

    #[test]
    fn test_parse_rules_from_save_output() {
        let text = "\
# saved by fulcrumctl -S
-A -t 10.0.0.100:80 -s rr -p 300 -M 255.255.255.0

-a -t 10.0.0.100:80 -r 10.1.0.11:80 -m -w 2
-A -u 10.0.0.100:53 -s sh -b sh-port
-a -u 10.0.0.100:53 -r 10.1.0.12:53 -g -w 1
-a -t 10.0.0.100:80 -r 10.2.0.5:8080 -i --tun-type gue --tun-port 6080
-a -t 10.0.0.100:80 -r 10.2.0.6:8080 --fullnat -w 3
";
        let (rules, lines) = parse_rules(text).expect("valid");
        assert_eq!(lines, vec![2, 4, 5, 6, 7, 8]);
        assert_eq!(
            rules[4]["real"],
            json!({"addr":"10.2.0.5:80","weight":1,"forwarding":"tun",
                   "tun_type":"gue","tun_port":6080})
        );
        // FullNAT rewrites the port, so the real server keeps its own.
        assert_eq!(
            rules[5]["real"],
            json!({"addr":"10.2.0.6:8080","weight":3,"forwarding":"fullnat"})
        );
        assert_eq!(
            rules[0],
            json!({"cmd":"add_service","service":{"vip":"10.0.0.100:80","proto":"tcp",
                   "scheduler":"rr","forwarding":"dr","persistence_timeout":300,
                   "persistence_netmask":"255.255.255.0"}})
        );
        assert_eq!(
            rules[1],
            json!({"cmd":"add_real","vip":"10.0.0.100:80","proto":"tcp",
                   "real":{"addr":"10.1.0.11:80","weight":2,"forwarding":"nat"}})
        );
        assert_eq!(rules[2]["service"]["sched_flags"], json!(["sh-port"]));
        assert_eq!(rules[3]["real"]["forwarding"], "dr");
    }

    #[test]
    fn test_parse_rules_bad_lines_name_their_line() {
        let bad = |text: &str| parse_rules(text).expect_err("refused");
        assert_eq!(
            bad("-A -t 10.0.0.100:80\n-a -t 10.0.0.100:80\n"),
            "line 2: -a (add-server) needs -r RIP[:PORT]"
        );
        assert_eq!(
            bad("\n\n-A -t 10.0.0.100\n"),
            "line 3: illegal virtual service address \"10.0.0.100\": expected VIP:PORT like 10.0.0.100:80"
        );
        assert_eq!(
            bad("-A -t 10.0.0.100:80\n-L -n\n"),
            "line 2: expected a rule (-A, -E, -D, -a, -e, -d or -C), got \"-L -n\""
        );
        assert!(bad("-A -t 1.2.3.4:80 --bogus\n").starts_with("line 1: unexpected argument"));
        assert_eq!(
            bad("-A -t 1.2.3.4:80 -r 10.1.0.1\n"),
            "line 1: option -r is not allowed with -A (add-service)"
        );
        assert_eq!(
            bad("-a -t 10.0.0.100:80 -r 10.1.0.11 -m --tun-port 6080\n"),
            "line 1: --tun-type and --tun-port need -i (IP tunnelling)"
        );
        assert_eq!(
            parse_rules("# nothing\n\n").expect("empty"),
            (vec![], vec![])
        );
    }
}
