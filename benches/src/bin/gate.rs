//! `fulcrum-gate`: the CI regression gate over criterion's per-stage results,
//! driven by `benches/gate.sh`.
//!
//! Layer: benchmark tooling, never linked into the daemon. The CI machine is
//! not the machine the baseline was measured on, and it is shared, so the
//! gate never compares absolute times. Every repetition of the benches (one
//! criterion output directory, `CRITERION_HOME`) also measures the
//! calibration bench `calibration/chase_hash`; a stage's *ratio* is its median
//! time divided by that repetition's calibration median. A stage fails when
//! the best (lowest) ratio over all repetitions given is more than
//! `--max-factor` (default 2) times its baseline ratio.
//!
//! Subcommands:
//!
//! - `check --baseline FILE DIR...`: prints a table (stage, baseline ratio,
//!   measured ratio, measured/baseline, verdict) and exits 1 when a stage
//!   fails or a baseline stage was not measured. Stages measured but absent
//!   from the baseline are listed as `new` and do not fail.
//! - `update --out FILE DIR...`: writes the baseline (JSON, see
//!   [`Baseline`]) from the best ratio of every stage over the directories.
//! - `table DIR...`: prints a markdown table of every bench's best median
//!   time (ns) and ratio, for BENCHMARKS.md.
//!
//! Input: criterion 0.5's files `<DIR>/**/new/benchmark.json` (field
//! `full_id`) and `<DIR>/**/new/estimates.json` (field `median.point_estimate`,
//! nanoseconds per iteration). Errors (unreadable files, no calibration in a
//! directory, bad baseline) are one line on stderr and exit status 2.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The calibration bench every stage is divided by (`benches/benches/stages.rs`).
const CALIBRATION_ID: &str = "calibration/chase_hash";

#[derive(Parser)]
#[command(
    name = "fulcrum-gate",
    about = "Per-stage bench regression gate: stage/calibration ratios vs a baseline"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Compare the best ratios of DIRS against a baseline; exit 1 on a regression.
    Check {
        /// Baseline JSON written by `update`.
        #[arg(long)]
        baseline: PathBuf,
        /// A stage fails when measured ratio > max_factor x baseline ratio.
        #[arg(long, default_value_t = 2.0)]
        max_factor: f64,
        /// Criterion output directories, one per repetition.
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
    },
    /// Write a baseline from the best ratios of DIRS.
    Update {
        /// Where to write the baseline JSON.
        #[arg(long)]
        out: PathBuf,
        /// Criterion output directories, one per repetition.
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
    },
    /// Print a markdown table of best medians and ratios.
    Table {
        /// Criterion output directories, one per repetition.
        #[arg(required = true)]
        dirs: Vec<PathBuf>,
    },
}

/// One stage in the baseline file.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct StageBase {
    /// Best median time of the stage / calibration median of the same run.
    ratio: f64,
    /// The stage's median time on the machine that wrote the baseline, ns
    /// (informative only: never compared).
    median_ns: f64,
}

/// `benches/baseline.json`: the checked-in reference ratios.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
struct Baseline {
    /// Bench id of the calibration the ratios are relative to.
    calibration: String,
    /// The calibration's best median on the machine that wrote it, ns.
    calibration_ns: f64,
    /// What wrote it and how (informative).
    note: String,
    /// Ratio per bench id (`group/function`).
    stages: BTreeMap<String, StageBase>,
}

/// Median times of one repetition, ns per iteration, by bench id.
type Run = BTreeMap<String, f64>;

/// Reads every `new/benchmark.json` + `new/estimates.json` pair under `dir`.
fn read_run(dir: &Path) -> Result<Run> {
    let mut run = Run::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d).with_context(|| format!("reading {}", d.display()))?;
        for e in entries {
            let p = e?.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.file_name().is_some_and(|n| n == "benchmark.json")
                && p.parent()
                    .and_then(Path::file_name)
                    .is_some_and(|n| n == "new")
            {
                let (id, median) = read_bench(&p)?;
                run.insert(id, median);
            }
        }
    }
    if !run.contains_key(CALIBRATION_ID) {
        bail!(
            "{}: no {CALIBRATION_ID} result: run the stages bench into this directory",
            dir.display()
        );
    }
    Ok(run)
}

/// (full id, median ns) of one criterion result, from its benchmark.json path.
fn read_bench(benchmark_json: &Path) -> Result<(String, f64)> {
    let read = |p: &Path| -> Result<Value> {
        let text =
            std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", p.display()))
    };
    let b = read(benchmark_json)?;
    let id = b
        .get("full_id")
        .and_then(Value::as_str)
        .with_context(|| format!("{}: no full_id", benchmark_json.display()))?
        .to_string();
    let est_path = benchmark_json.with_file_name("estimates.json");
    let est = read(&est_path)?;
    let median = est
        .pointer("/median/point_estimate")
        .and_then(Value::as_f64)
        .with_context(|| format!("{}: no median.point_estimate", est_path.display()))?;
    if !(median.is_finite() && median > 0.0) {
        bail!(
            "{}: median {median} is not a positive time",
            est_path.display()
        );
    }
    Ok((id, median))
}

/// Best (lowest) ratio and the median that gave it, per stage, over `runs`.
/// The calibration itself is not a stage.
fn best_ratios(runs: &[Run]) -> BTreeMap<String, StageBase> {
    let mut best: BTreeMap<String, StageBase> = BTreeMap::new();
    for run in runs {
        let Some(&cal) = run.get(CALIBRATION_ID) else {
            continue;
        };
        for (id, &ns) in run {
            if id == CALIBRATION_ID {
                continue;
            }
            let ratio = ns / cal;
            let e = best.entry(id.clone()).or_insert(StageBase {
                ratio,
                median_ns: ns,
            });
            if ratio < e.ratio {
                *e = StageBase {
                    ratio,
                    median_ns: ns,
                };
            }
        }
    }
    best
}

/// Lowest calibration median over `runs`, ns.
fn best_calibration(runs: &[Run]) -> f64 {
    runs.iter()
        .filter_map(|r| r.get(CALIBRATION_ID).copied())
        .fold(f64::INFINITY, f64::min)
}

/// The verdict of one stage.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Verdict {
    /// Within `max_factor` of the baseline.
    Ok,
    /// More than `max_factor` times the baseline ratio.
    Regressed,
    /// In the baseline but not measured: fails (a renamed or lost bench).
    Missing,
    /// Measured but not in the baseline: reported, does not fail.
    New,
}

/// One row of the check table.
#[derive(Clone, Debug, PartialEq)]
struct Row {
    stage: String,
    base: Option<f64>,
    measured: Option<f64>,
    verdict: Verdict,
}

/// Compares `best` against `base`: one row per stage of either, sorted by id.
fn compare(
    base: &BTreeMap<String, StageBase>,
    best: &BTreeMap<String, StageBase>,
    max_factor: f64,
) -> Vec<Row> {
    let mut ids: Vec<&String> = base.keys().chain(best.keys()).collect();
    ids.sort();
    ids.dedup();
    ids.into_iter()
        .map(|id| {
            let b = base.get(id).map(|s| s.ratio);
            let m = best.get(id).map(|s| s.ratio);
            let verdict = match (b, m) {
                (Some(b), Some(m)) if m > max_factor * b => Verdict::Regressed,
                (Some(_), Some(_)) => Verdict::Ok,
                (Some(_), None) => Verdict::Missing,
                (None, _) => Verdict::New,
            };
            Row {
                stage: id.clone(),
                base: b,
                measured: m,
                verdict,
            }
        })
        .collect()
}

fn fmt_ratio(r: Option<f64>) -> String {
    r.map_or_else(|| "-".into(), |r| format!("{r:.5}"))
}

fn read_runs(dirs: &[PathBuf]) -> Result<Vec<Run>> {
    dirs.iter().map(|d| read_run(d)).collect()
}

fn check(baseline: &Path, max_factor: f64, dirs: &[PathBuf]) -> Result<bool> {
    let text = std::fs::read_to_string(baseline)
        .with_context(|| format!("reading baseline {}", baseline.display()))?;
    let base: Baseline = serde_json::from_str(&text)
        .with_context(|| format!("baseline {} does not parse", baseline.display()))?;
    if base.calibration != CALIBRATION_ID {
        bail!(
            "baseline {} is relative to {}, this gate measures {CALIBRATION_ID}: run benches/gate.sh --update",
            baseline.display(),
            base.calibration
        );
    }
    let runs = read_runs(dirs)?;
    let rows = compare(&base.stages, &best_ratios(&runs), max_factor);
    println!(
        "calibration {CALIBRATION_ID}: best {:.0} ns here, {:.0} ns when the baseline was written; best of {} repetition(s); fail above {max_factor}x",
        best_calibration(&runs),
        base.calibration_ns,
        runs.len()
    );
    println!(
        "{:<34} {:>14} {:>14} {:>9}  verdict",
        "stage", "baseline ratio", "measured ratio", "x base"
    );
    let mut pass = true;
    for r in &rows {
        let x = match (r.base, r.measured) {
            (Some(b), Some(m)) => format!("{:.2}", m / b),
            _ => "-".into(),
        };
        let v = match r.verdict {
            Verdict::Ok => "ok",
            Verdict::Regressed => "FAIL (slower)",
            Verdict::Missing => "FAIL (not measured)",
            Verdict::New => "new (not in baseline)",
        };
        if matches!(r.verdict, Verdict::Regressed | Verdict::Missing) {
            pass = false;
        }
        println!(
            "{:<34} {:>14} {:>14} {:>9}  {v}",
            r.stage,
            fmt_ratio(r.base),
            fmt_ratio(r.measured),
            x
        );
    }
    Ok(pass)
}

fn update(out: &Path, dirs: &[PathBuf]) -> Result<()> {
    let runs = read_runs(dirs)?;
    let b = Baseline {
        calibration: CALIBRATION_ID.into(),
        calibration_ns: best_calibration(&runs),
        note: format!(
            "written by benches/gate.sh --update: best of {} quick repetition(s); ratio = stage median / calibration median of the same repetition",
            runs.len()
        ),
        stages: best_ratios(&runs),
    };
    let text = serde_json::to_string_pretty(&b)? + "\n";
    std::fs::write(out, text).with_context(|| format!("writing {}", out.display()))?;
    println!("wrote {} ({} stages)", out.display(), b.stages.len());
    Ok(())
}

fn table(dirs: &[PathBuf]) -> Result<()> {
    let runs = read_runs(dirs)?;
    println!(
        "| bench | median (best of {}) | / calibration |",
        runs.len()
    );
    println!("|---|---:|---:|");
    println!(
        "| {CALIBRATION_ID} | {} | 1 |",
        fmt_ns(best_calibration(&runs))
    );
    for (id, s) in best_ratios(&runs) {
        println!("| {id} | {} | {:.4} |", fmt_ns(s.median_ns), s.ratio);
    }
    Ok(())
}

/// A time in ns with a readable unit.
fn fmt_ns(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.1} ns")
    }
}

fn main() {
    let cli = Cli::parse();
    let r = match cli.cmd {
        Cmd::Check {
            baseline,
            max_factor,
            dirs,
        } => check(&baseline, max_factor, &dirs).map(|pass| {
            if !pass {
                std::process::exit(1)
            }
        }),
        Cmd::Update { out, dirs } => update(&out, &dirs),
        Cmd::Table { dirs } => table(&dirs),
    };
    if let Err(e) = r {
        eprintln!("fulcrum-gate: {e:#}");
        std::process::exit(2);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(pairs: &[(&str, f64)]) -> Run {
        pairs.iter().map(|&(k, v)| (k.to_string(), v)).collect()
    }

    fn base(pairs: &[(&str, f64)]) -> BTreeMap<String, StageBase> {
        pairs
            .iter()
            .map(|&(k, r)| {
                (
                    k.to_string(),
                    StageBase {
                        ratio: r,
                        median_ns: 0.0,
                    },
                )
            })
            .collect()
    }

    #[test]
    fn test_best_ratios_per_repetition_calibration() {
        // Repetition 2 ran on a machine twice as slow: same ratios. The best
        // ratio of "a" is from repetition 1, of "b" from repetition 2.
        let runs = [
            run(&[(CALIBRATION_ID, 100.0), ("a", 10.0), ("b", 50.0)]),
            run(&[(CALIBRATION_ID, 200.0), ("a", 30.0), ("b", 80.0)]),
        ];
        let best = best_ratios(&runs);
        assert_eq!(best.len(), 2, "calibration is not a stage");
        assert_eq!(best["a"].ratio, 0.1);
        assert_eq!(best["a"].median_ns, 10.0);
        assert_eq!(best["b"].ratio, 0.4);
        assert_eq!(best["b"].median_ns, 80.0);
        assert_eq!(best_calibration(&runs), 100.0);
    }

    #[test]
    fn test_compare_verdicts() {
        let b = base(&[("fast", 0.1), ("slow", 0.1), ("edge", 0.1), ("gone", 0.1)]);
        let m = base(&[
            ("fast", 0.05),
            ("slow", 0.21),
            ("edge", 0.2),
            ("added", 1.0),
        ]);
        let rows = compare(&b, &m, 2.0);
        let v: Vec<(&str, Verdict)> = rows.iter().map(|r| (r.stage.as_str(), r.verdict)).collect();
        assert_eq!(
            v,
            [
                ("added", Verdict::New),
                ("edge", Verdict::Ok),
                ("fast", Verdict::Ok),
                ("gone", Verdict::Missing),
                ("slow", Verdict::Regressed),
            ]
        );
    }

    #[test]
    fn test_read_run_and_baseline_roundtrip() {
        let dir = std::env::temp_dir().join(format!("fulcrum-gate-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        for (id, path, median) in [
            (CALIBRATION_ID, "calibration/chase_hash", 1000.0),
            ("lookup/hit/1k_in_1k", "lookup/hit_1k_in_1k", 25.0),
        ] {
            let d = dir.join(path).join("new");
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(
                d.join("benchmark.json"),
                format!(r#"{{"group_id":"x","full_id":"{id}","directory_name":"{path}"}}"#),
            )
            .unwrap();
            std::fs::write(
                d.join("estimates.json"),
                format!(
                    r#"{{"mean":{{"point_estimate":1.0}},"median":{{"point_estimate":{median}}}}}"#
                ),
            )
            .unwrap();
            // criterion's `base` copy must not be read as another result.
            let old = dir.join(path).join("base");
            std::fs::create_dir_all(&old).unwrap();
            std::fs::write(old.join("benchmark.json"), "not json").unwrap();
        }
        let r = read_run(&dir).unwrap();
        assert_eq!(
            r,
            run(&[(CALIBRATION_ID, 1000.0), ("lookup/hit/1k_in_1k", 25.0)])
        );

        let out = dir.join("baseline.json");
        update(&out, std::slice::from_ref(&dir)).unwrap();
        let b: Baseline = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
        assert_eq!(b.stages["lookup/hit/1k_in_1k"].ratio, 0.025);
        assert!(
            check(&out, 2.0, std::slice::from_ref(&dir)).unwrap(),
            "a run passes its own baseline"
        );

        // A doctored baseline that says the stage used to be 3x faster fails.
        let mut doctored = b.clone();
        doctored
            .stages
            .get_mut("lookup/hit/1k_in_1k")
            .unwrap()
            .ratio /= 3.0;
        std::fs::write(&out, serde_json::to_string(&doctored).unwrap()).unwrap();
        assert!(!check(&out, 2.0, std::slice::from_ref(&dir)).unwrap());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn test_read_run_needs_calibration() {
        let dir = std::env::temp_dir().join(format!("fulcrum-gate-empty-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let e = read_run(&dir).unwrap_err().to_string();
        assert!(e.contains(CALIBRATION_ID), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
