//! `fulcrumctl`: the operator's view of a running fulcrum, ipvsadm-style.
//!
//! Layer: control CLI. Queries the daemon's admin socket once and prints;
//! it never changes anything. Output layouts live in `control::admin`
//! (`format_list`, `format_counters`) so they are unit-tested; this file
//! only parses flags, queries and prints.
//!
//! Flags (ipvsadm-compatible where ipvsadm has them):
//! - `-L`/`-l`/`--list`: list virtual services and real servers
//!   (`ipvsadm -L -n` layout). `-n`/`--numeric` is accepted and is the only
//!   mode: fulcrum never resolves names.
//! - `--stats`: connection, packet and byte counters instead of weights
//!   (ipvsadm `--stats`, K/M/G/T units in base 1000); `--exact`: no units.
//! - `--counters`: per-worker counters and drop reasons; drop reasons that
//!   are zero on every worker are hidden unless `--exact` is also given.
//! - `--json`: the raw `Status` JSON, pretty-printed.
//! - `--socket PATH`: admin socket; default `$FULCRUM_SOCKET`, else
//!   `/run/fulcrum/fulcrum.sock`.
//!
//! Without `-L`, `--counters` or `--json` it prints usage and exits 0.
//! Errors (daemon not running, bad reply, bad flags) are one line on stderr
//! and exit status 1.
#![forbid(unsafe_code)]

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use control::admin::{format_counters, format_list, query};
use control::config::DEFAULT_ADMIN_SOCKET;

/// fulcrum's ipvsadm-style status tool.
#[derive(Parser, Debug)]
#[command(
    name = "fulcrumctl",
    version,
    about = "Show the state of a running fulcrum director (ipvsadm -L style)"
)]
struct Cli {
    /// List virtual services and real servers (like ipvsadm -L).
    #[arg(short = 'L', short_alias = 'l', long = "list")]
    list: bool,
    /// Numeric output; accepted for ipvsadm compatibility and always on.
    #[arg(short = 'n', long = "numeric")]
    numeric: bool,
    /// Show connection, packet and byte counters (ipvsadm --stats).
    #[arg(long)]
    stats: bool,
    /// Print exact numbers without K/M/G/T units; with --counters, also show
    /// drop reasons that are zero.
    #[arg(long)]
    exact: bool,
    /// Show per-worker counters and drop reasons.
    #[arg(long)]
    counters: bool,
    /// Print the daemon's status as pretty JSON.
    #[arg(long)]
    json: bool,
    /// Admin socket path [default: $FULCRUM_SOCKET, else /run/fulcrum/fulcrum.sock].
    #[arg(long, value_name = "PATH")]
    socket: Option<PathBuf>,
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

    if !cli.list && !cli.counters && !cli.json {
        let _ = Cli::command().print_help();
        return ExitCode::SUCCESS;
    }

    let socket = cli
        .socket
        .or_else(|| {
            std::env::var_os("FULCRUM_SOCKET")
                .filter(|s| !s.is_empty())
                .map(PathBuf::from)
        })
        .unwrap_or_else(|| PathBuf::from(DEFAULT_ADMIN_SOCKET));

    let status = match query(&socket) {
        Ok(s) => s,
        Err(e) => return fail(&e.to_string()),
    };

    let text = if cli.json {
        match serde_json::to_string_pretty(&status) {
            Ok(mut s) => {
                s.push('\n');
                s
            }
            Err(e) => return fail(&format!("cannot encode status: {e}")),
        }
    } else if cli.counters {
        format_counters(&status, cli.exact)
    } else {
        format_list(&status, cli.stats, cli.exact)
    };
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            return fail(&format!("cannot write output: {e}"));
        }
    }
    ExitCode::SUCCESS
}
