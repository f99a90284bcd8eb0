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
//! `--max-factor` (default [`DEFAULT_MAX_FACTOR`], 1.35) times its baseline
//! ratio.
//!
//! Subcommands:
//!
//! - `check --baseline FILE DIR...`: prints a table (stage, baseline ratio,
//!   measured ratio, measured/baseline, verdict) and exits 1 when a stage
//!   fails or a baseline stage was not measured, after one `FAIL:` line per
//!   failing stage with its numbers. Stages measured but absent from the
//!   baseline are listed as `new` and do not fail.
//! - `update --out FILE DIR...`: writes the baseline (JSON, see
//!   [`Baseline`]) from the best ratio of every stage over the directories.
//! - `table DIR...`: prints a markdown table of every bench's best median
//!   time (ns) and ratio, for BENCHMARKS.md.
//! - `synth --baseline FILE --out DIR [--machine-factor F] [--slow ID=F]...
//!   [--drop ID]...`: writes a criterion-shaped result directory whose
//!   medians are exactly the baseline's (calibration × ratio), all scaled by
//!   F (a slower machine), with stage ID F times slower or absent. The
//!   gate's self-test (`benches/gate.sh --selftest`) checks it, so the
//!   verdicts are proven through the same file reader as real runs, with no
//!   criterion run.
//! - `grid --group G DIR`: a markdown table of the medians of the benches
//!   `G/COLUMN/ROW` (criterion's `BenchmarkId` inside a group named
//!   `G/COLUMN`), rows and columns sorted (numerically when they are
//!   numbers): the scheduler table of BENCHMARKS.md from `sched`'s `pick`
//!   bench (`pick/<dests>/<scheduler>`).
//! - `median DIR ID`: the median of one bench, with a unit (`1.61 ms`).
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

/// Default `--max-factor`: a stage fails above 1.35 times its baseline
/// ratio, so a 1.5x slower `process()` fails while the noise measured on a
/// shared 2-vCPU VM (best of 3 quick repetitions, BENCHMARKS.md) passes.
const DEFAULT_MAX_FACTOR: f64 = 1.35;

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
        #[arg(long, default_value_t = DEFAULT_MAX_FACTOR)]
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
    /// Write a synthetic criterion result directory from a baseline.
    Synth {
        /// Baseline JSON whose ratios the results reproduce.
        #[arg(long)]
        baseline: PathBuf,
        /// Directory to create (must not exist).
        #[arg(long)]
        out: PathBuf,
        /// Every median, the calibration's included, times this factor.
        #[arg(long, default_value_t = 1.0)]
        machine_factor: f64,
        /// `ID=FACTOR`: stage ID is FACTOR times slower (repeatable).
        #[arg(long, value_parser = parse_slow)]
        slow: Vec<(String, f64)>,
        /// Stage ID is left out of the results (repeatable).
        #[arg(long)]
        drop: Vec<String>,
    },
    /// Print a markdown table of the benches GROUP/COLUMN/ROW.
    Grid {
        /// First part of the bench ids (`pick` for sched's pick bench).
        #[arg(long)]
        group: String,
        /// One criterion output directory.
        dir: PathBuf,
    },
    /// Print one bench's median with a unit.
    Median {
        /// One criterion output directory.
        dir: PathBuf,
        /// Bench id (`group/function`).
        id: String,
    },
}

/// `ID=FACTOR` of `synth --slow`, FACTOR a finite number > 0.
fn parse_slow(s: &str) -> std::result::Result<(String, f64), String> {
    let (id, f) = s
        .rsplit_once('=')
        .ok_or_else(|| format!("{s}: expected ID=FACTOR"))?;
    let f: f64 = f
        .parse()
        .map_err(|_| format!("{s}: FACTOR is not a number"))?;
    if !(f.is_finite() && f > 0.0) || id.is_empty() {
        return Err(format!("{s}: expected ID=FACTOR with FACTOR > 0"));
    }
    Ok((id.to_string(), f))
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

/// Reads one repetition: every result under `dir` ([`read_medians`]), which
/// must include the calibration.
fn read_run(dir: &Path) -> Result<Run> {
    let run = read_medians(dir)?;
    if !run.contains_key(CALIBRATION_ID) {
        bail!(
            "{}: no {CALIBRATION_ID} result: run the stages bench into this directory",
            dir.display()
        );
    }
    Ok(run)
}

/// Reads every `new/benchmark.json` + `new/estimates.json` pair under `dir`.
fn read_medians(dir: &Path) -> Result<Run> {
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

/// Reads and parses a baseline file.
fn read_baseline(baseline: &Path) -> Result<Baseline> {
    let text = std::fs::read_to_string(baseline)
        .with_context(|| format!("reading baseline {}", baseline.display()))?;
    serde_json::from_str(&text)
        .with_context(|| format!("baseline {} does not parse", baseline.display()))
}

fn check(baseline: &Path, max_factor: f64, dirs: &[PathBuf]) -> Result<bool> {
    let base = read_baseline(baseline)?;
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
    let mut failures = Vec::new();
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
        match (r.verdict, r.base, r.measured) {
            (Verdict::Regressed, Some(b), Some(m)) => failures.push(format!(
                "FAIL: {} is {:.2}x its baseline ratio ({:.5} vs {:.5}), limit {max_factor}x",
                r.stage,
                m / b,
                m,
                b
            )),
            (Verdict::Missing, ..) => failures.push(format!(
                "FAIL: {} is in the baseline but was not measured",
                r.stage
            )),
            _ => {}
        }
        println!(
            "{:<34} {:>14} {:>14} {:>9}  {v}",
            r.stage,
            fmt_ratio(r.base),
            fmt_ratio(r.measured),
            x
        );
    }
    for f in &failures {
        println!("{f}");
        pass = false;
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

/// Writes one criterion 0.5 result (the two files [`read_bench`] reads) for
/// bench `id` with median `ns` under `dir`.
fn write_bench(dir: &Path, id: &str, ns: f64) -> Result<()> {
    let d = dir.join(id.replace('/', "_")).join("new");
    std::fs::create_dir_all(&d).with_context(|| format!("creating {}", d.display()))?;
    let bench = serde_json::json!({ "full_id": id, "directory_name": id });
    let est = serde_json::json!({
        "mean": { "point_estimate": ns },
        "median": { "point_estimate": ns },
    });
    for (name, v) in [("benchmark.json", bench), ("estimates.json", est)] {
        std::fs::write(d.join(name), v.to_string())
            .with_context(|| format!("writing {}", d.join(name).display()))?;
    }
    Ok(())
}

/// `synth`: a result directory that reproduces `baseline` exactly, every
/// median times `machine`, the stages in `slow` times their factor, the
/// stages in `drop` absent. Fails on an id that is not in the baseline.
fn synth(
    baseline: &Path,
    out: &Path,
    machine: f64,
    slow: &[(String, f64)],
    drop: &[String],
) -> Result<()> {
    let base = read_baseline(baseline)?;
    if !(machine.is_finite() && machine > 0.0) {
        bail!("--machine-factor {machine}: must be a number > 0");
    }
    for id in slow.iter().map(|(id, _)| id).chain(drop) {
        if !base.stages.contains_key(id) {
            bail!("{id} is not a stage of {}", baseline.display());
        }
    }
    if out.exists() {
        bail!("{} exists: synth writes a fresh directory", out.display());
    }
    let cal = base.calibration_ns * machine;
    write_bench(out, CALIBRATION_ID, cal)?;
    for (id, s) in &base.stages {
        if drop.contains(id) {
            continue;
        }
        let f: f64 = slow
            .iter()
            .filter(|(sid, _)| sid == id)
            .map(|(_, f)| f)
            .product();
        write_bench(out, id, s.ratio * cal * f)?;
    }
    Ok(())
}

/// Sort key of a grid label: numbers by value, before words.
fn label_key(s: &str) -> (u8, u64, String) {
    match s.parse::<u64>() {
        Ok(n) => (0, n, String::new()),
        Err(_) => (1, 0, s.to_string()),
    }
}

/// `grid`: markdown table of `group/COLUMN/ROW` medians, "-" where a cell
/// was not measured. Fails when no bench of `group` is in `dir`.
fn grid(group: &str, dir: &Path) -> Result<String> {
    let run = read_medians(dir)?;
    let prefix = format!("{group}/");
    let mut cells = BTreeMap::new();
    let (mut cols, mut rows) = (Vec::new(), Vec::new());
    for (id, &ns) in &run {
        let Some((col, row)) = id.strip_prefix(&prefix).and_then(|r| r.split_once('/')) else {
            continue;
        };
        cols.push(col.to_string());
        rows.push(row.to_string());
        cells.insert((row.to_string(), col.to_string()), ns);
    }
    if cells.is_empty() {
        bail!("{}: no bench {group}/COLUMN/ROW", dir.display());
    }
    for v in [&mut cols, &mut rows] {
        v.sort_by_key(|s| label_key(s));
        v.dedup();
    }
    let mut t = format!("| {group} | {} |\n", cols.join(" | "));
    t += &format!("|---|{}\n", "---:|".repeat(cols.len()));
    for r in &rows {
        let line: Vec<String> = cols
            .iter()
            .map(|c| {
                cells
                    .get(&(r.clone(), c.clone()))
                    .map_or_else(|| "-".into(), |&ns| fmt_ns(ns))
            })
            .collect();
        t += &format!("| {r} | {} |\n", line.join(" | "));
    }
    Ok(t)
}

/// `median`: one bench's median with a unit.
fn median(dir: &Path, id: &str) -> Result<String> {
    let run = read_medians(dir)?;
    run.get(id)
        .map(|&ns| fmt_ns(ns))
        .with_context(|| format!("{}: no result for {id}", dir.display()))
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
        Cmd::Synth {
            baseline,
            out,
            machine_factor,
            slow,
            drop,
        } => synth(&baseline, &out, machine_factor, &slow, &drop),
        Cmd::Grid { group, dir } => grid(&group, &dir).map(|t| print!("{t}")),
        Cmd::Median { dir, id } => median(&dir, &id).map(|m| println!("{m}")),
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

    /// A fresh scratch directory for one test.
    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("fulcrum-gate-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn test_synth_verdicts_at_the_default_threshold() {
        let dir = scratch("synth");
        let bl = dir.join("baseline.json");
        let b = Baseline {
            calibration: CALIBRATION_ID.into(),
            calibration_ns: 1000.0,
            note: String::new(),
            stages: base(&[("process/nat", 50.0), ("parse/x", 0.02)]),
        };
        std::fs::write(&bl, serde_json::to_string(&b).unwrap()).unwrap();
        let case = |name: &str, machine: f64, slow: &[(&str, f64)], drop: &[&str]| {
            let out = dir.join(name);
            let slow: Vec<(String, f64)> = slow.iter().map(|&(i, f)| (i.into(), f)).collect();
            let drop: Vec<String> = drop.iter().map(|&d| d.into()).collect();
            synth(&bl, &out, machine, &slow, &drop).unwrap();
            let r = read_run(&out).unwrap();
            (check(&bl, DEFAULT_MAX_FACTOR, &[out]).unwrap(), r)
        };
        let (pass, r) = case("same", 1.0, &[], &[]);
        assert!(pass);
        assert_eq!(r[CALIBRATION_ID], 1000.0);
        assert_eq!(r["process/nat"], 50_000.0);
        let (pass, r) = case("slower-machine", 2.0, &[], &[]);
        assert!(pass, "a uniformly 2x slower machine is not a regression");
        assert_eq!(r[CALIBRATION_ID], 2000.0);
        let (pass, r) = case("1.5x", 1.0, &[("process/nat", 1.5)], &[]);
        assert!(!pass, "1.5x slower process() must fail");
        assert_eq!(r["process/nat"], 75_000.0);
        assert!(case("1.2x", 1.0, &[("process/nat", 1.2)], &[]).0);
        assert!(!case("dropped", 1.0, &[], &["parse/x"]).0);
        let e = synth(&bl, &dir.join("x"), 1.0, &[("nope".into(), 2.0)], &[]).unwrap_err();
        assert!(e.to_string().contains("nope"), "{e}");
        assert!(parse_slow("a/b=1.5").unwrap() == ("a/b".into(), 1.5));
        assert!(parse_slow("a/b").is_err() && parse_slow("a=0").is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn test_grid_and_median() {
        let dir = scratch("grid");
        for (id, ns) in [
            ("pick/64/rr", 10.7),
            ("pick/4/rr", 7.9),
            ("pick/1024/wrr", 2250.0),
            ("pick/4/wrr", 24.0),
            ("mh_build/65537x1000", 1.61e6),
        ] {
            write_bench(&dir, id, ns).unwrap();
        }
        assert_eq!(
            grid("pick", &dir).unwrap(),
            "| pick | 4 | 64 | 1024 |\n|---|---:|---:|---:|\n\
             | rr | 7.9 ns | 10.7 ns | - |\n| wrr | 24.0 ns | - | 2.25 µs |\n"
        );
        assert_eq!(median(&dir, "mh_build/65537x1000").unwrap(), "1.61 ms");
        assert!(median(&dir, "pick/4/nq").is_err());
        assert!(grid("sched", &dir).is_err());
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
