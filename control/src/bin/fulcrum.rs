//! `fulcrum`: the director daemon.
//!
//! `fulcrum --config FILE` runs it in the foreground until SIGINT/SIGTERM;
//! SIGHUP reads FILE again and applies its difference (a failed reload
//! changes nothing and is logged). Under systemd (`Type=notify`) it reports
//! readiness on `$NOTIFY_SOCKET` (deploy/systemd/fulcrum.service).
//! `fulcrum --check-config FILE` validates FILE and exits 0, or prints
//! `FILE:LINE:COL: what was expected` and exits 2. A startup failure prints
//! one line `fulcrum: error: ...` naming the remedy and exits 1.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

/// fulcrum, a DPDK L4 load balancer (LVS-style director).
#[derive(Parser, Debug)]
#[command(
    version,
    about = "fulcrum: an LVS-style L4 load balancer (director) on DPDK poll-mode drivers"
)]
struct Args {
    /// Run the daemon with this RON config file.
    #[arg(
        long,
        value_name = "FILE",
        conflicts_with = "check_config",
        required_unless_present = "check_config"
    )]
    config: Option<PathBuf>,
    /// Validate this config file and exit: 0 if valid, 2 with file:line:col if not.
    #[arg(long, value_name = "FILE")]
    check_config: Option<PathBuf>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(path) = args.check_config {
        return match control::config::load(&path) {
            Ok(_) => {
                println!("{}: OK", path.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("fulcrum: error: {e}");
                ExitCode::from(2)
            }
        };
    }
    let Some(path) = args.config else {
        eprintln!("fulcrum: error: --config FILE is required");
        return ExitCode::from(2);
    };
    let cfg = match control::config::load(&path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("fulcrum: error: {e}");
            return ExitCode::from(2);
        }
    };
    // Colours only on a terminal: a log file or journald gets plain text.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("FULCRUM_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .init();
    match control::daemon::run(cfg, &path) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fulcrum: error: {e}");
            ExitCode::from(1)
        }
    }
}
