//! `fulcrum-healthbench`: the health-checking benchmarks of issue 9
//! (BENCHMARKS.md, section "health", written by benches/health.sh).
//!
//! - `detect`: the detection time of each checker type (control::health's
//!   driver against local targets it flips), see [`detect`];
//! - `apply`: from a checker transition to the first frame a worker
//!   schedules differently, see [`apply`].
//!
//! Each prints a markdown table (and its conditions) on stdout; the exit
//! status is 1 when a transition was missed or a check failed. Needs root
//! (`detect` makes a network namespace and opens raw ICMP sockets).

use std::time::Duration;

use anyhow::Result;
use clap::{Parser, Subcommand};
use control::health::Timing;

mod apply;
mod detect;

#[derive(Parser, Clone, Debug)]
#[command(about = "fulcrum health-checking benchmarks (issue 9)")]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
    #[command(flatten)]
    args: Args,
}

#[derive(Subcommand, Clone, Debug)]
enum Cmd {
    /// Detection time per checker type.
    Detect,
    /// Transition to the first frame scheduled differently.
    Apply,
}

/// The knobs shared by both benches (seconds as decimals).
#[derive(clap::Args, Clone, Debug)]
pub struct Args {
    /// Transitions measured each way (down and up).
    #[arg(long, default_value_t = 20, global = true)]
    transitions: usize,
    /// keepalived `delay_loop`, seconds.
    #[arg(long, default_value = "0.5", value_parser = secs, global = true)]
    delay_loop: Duration,
    /// keepalived `retry`.
    #[arg(long, default_value_t = 1, global = true)]
    retry: u32,
    /// keepalived `delay_before_retry`, seconds.
    #[arg(long, default_value = "0.25", value_parser = secs, global = true)]
    delay_before_retry: Duration,
    /// keepalived `connect_timeout`, seconds (also MISC_CHECK's timeout).
    #[arg(long, default_value = "0.5", value_parser = secs, global = true)]
    connect_timeout: Duration,
    /// `detect`: only these rows (e.g. --only TCP_CHECK --only PING_CHECK).
    #[arg(long, global = true)]
    only: Vec<String>,
    /// `apply`: nanoseconds between two SYNs fed to the worker.
    #[arg(long, default_value_t = 2000, global = true)]
    syn_gap_ns: u64,
}

impl Args {
    fn timing(&self) -> Timing {
        Timing {
            delay_loop: self.delay_loop,
            retry: self.retry,
            delay_before_retry: self.delay_before_retry,
            warmup: Duration::ZERO,
            alpha: false,
        }
    }
}

fn secs(s: &str) -> Result<Duration, String> {
    let v: f64 = s.parse().map_err(|e| format!("{s}: {e}"))?;
    if !(0.0..=3600.0).contains(&v) {
        return Err(format!("{s}: not within 0..=3600 s"));
    }
    Ok(Duration::from_secs_f64(v))
}

/// Median and maximum of `v` (0, 0 when empty).
fn stats_ms(v: &[f64]) -> (f64, f64) {
    if v.is_empty() {
        return (0.0, 0.0);
    }
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    let med = if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    };
    (med, s[n - 1])
}

/// The 1, 5 and 15 minute load averages, as `/proc/loadavg` has them.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    match cli.cmd {
        Cmd::Detect => detect::run(&cli.args),
        Cmd::Apply => apply::run(&cli.args),
    }
}
