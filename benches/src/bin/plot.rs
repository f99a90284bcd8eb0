//! `fulcrum-plot --csv SWEEP.csv --out-dir DIR`: one PNG per sweep of
//! `benches/pipeline.sh`, for BENCHMARKS.md (`make bench` writes them to
//! `docs/bench/`).
//!
//! Layer: benchmark tooling, never linked into the daemon. Input: the
//! `sweep.csv` that pipeline.sh writes in its run directory, with the header
//! `sweep,scenario,flows,workers,memory,program,mpps,ratio_vs_testpmd,busy`
//! (`mpps` is `-` when a run gave no number; such points are left out).
//! Output, each only when the CSV has rows for it:
//!
//! - `flows.png`: forwarded Mpps against concurrent flows (log scale), one
//!   line per program (testpmd macswap, fulcrum NAT, fulcrum DR), rows
//!   `sweep == "flows"`;
//! - `workers.png`: Mpps against workers (testpmd: forwarding cores), rows
//!   `sweep == "workers"`.
//!
//! Text is drawn with plotters' ab_glyph backend from a TTF file, by default
//! DejaVu Sans of Debian's `fonts-dejavu-core` (scripts/deps.sh installs it).
//! Errors (unreadable or malformed CSV, missing font, drawing failures) are
//! one line on stderr and exit status 1.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Parser;
use plotters::prelude::*;

/// DejaVu Sans as Debian's fonts-dejavu-core installs it.
const DEFAULT_FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";
/// Width and height of every PNG, pixels.
const SIZE_PX: (u32, u32) = (900, 560);

#[derive(Parser)]
#[command(
    name = "fulcrum-plot",
    about = "PNG plots of benches/pipeline.sh's sweep.csv"
)]
struct Cli {
    /// sweep.csv from a pipeline.sh run directory.
    #[arg(long)]
    csv: PathBuf,
    /// Directory for flows.png and workers.png (created if missing).
    #[arg(long)]
    out_dir: PathBuf,
    /// TrueType font for the text.
    #[arg(long, default_value = DEFAULT_FONT)]
    font: PathBuf,
}

/// One row of sweep.csv (the fields the plots use).
#[derive(Clone, Debug, PartialEq)]
struct Row {
    sweep: String,
    scenario: String,
    flows: u64,
    workers: u32,
    memory: String,
    program: String,
    /// Forwarded frames per second / 1e6; `None` for `-`.
    mpps: Option<f64>,
}

/// Parses sweep.csv text (header line first).
///
/// # Errors
/// A wrong header, a line with another number of fields, or a field that
/// does not parse, with its line number.
fn parse_csv(text: &str) -> Result<Vec<Row>> {
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default();
    let want = "sweep,scenario,flows,workers,memory,program,mpps,ratio_vs_testpmd,busy";
    if header != want {
        bail!("line 1: header {header:?}, expected {want:?}");
    }
    let mut rows = Vec::new();
    for (i, line) in lines.enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let n = i + 2;
        let f: Vec<&str> = line.split(',').collect();
        let [sweep, scenario, flows, workers, memory, program, mpps, _ratio, _busy] = f[..] else {
            bail!("line {n}: {} fields, expected 9", f.len());
        };
        rows.push(Row {
            sweep: sweep.into(),
            scenario: scenario.into(),
            flows: flows
                .parse()
                .with_context(|| format!("line {n}: flows {flows:?}"))?,
            workers: workers
                .parse()
                .with_context(|| format!("line {n}: workers {workers:?}"))?,
            memory: memory.into(),
            program: program.into(),
            mpps: match mpps {
                "-" | "" => None,
                v => Some(v.parse().with_context(|| format!("line {n}: mpps {v:?}"))?),
            },
        });
    }
    Ok(rows)
}

/// Points (x, Mpps) per program of the rows of `sweep`, x from `x_of`,
/// sorted by x; rows without a number are skipped.
fn series(
    rows: &[Row],
    sweep: &str,
    x_of: impl Fn(&Row) -> f64,
) -> BTreeMap<String, Vec<(f64, f64)>> {
    let mut out: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    for r in rows.iter().filter(|r| r.sweep == sweep) {
        if let Some(m) = r.mpps {
            out.entry(r.program.clone()).or_default().push((x_of(r), m));
        }
    }
    for pts in out.values_mut() {
        pts.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    out
}

/// `1000` → `1k`, `1000000` → `1M`.
fn flows_label(x: f64) -> String {
    if x >= 1e6 {
        format!("{}M", x / 1e6)
    } else if x >= 1e3 {
        format!("{}k", x / 1e3)
    } else {
        format!("{x}")
    }
}

/// A program's legend name and colour.
fn style_of(program: &str, i: usize) -> (String, RGBColor) {
    match program {
        "testpmd" => ("dpdk-testpmd macswap".into(), RGBColor(90, 90, 90)),
        "fulcrum-nat" => ("fulcrum NAT".into(), RGBColor(31, 119, 180)),
        "fulcrum-dr" => ("fulcrum DR".into(), RGBColor(214, 39, 40)),
        other => {
            let (r, g, b) = Palette99::pick(i).to_rgba().rgb();
            (other.into(), RGBColor(r, g, b))
        }
    }
}

/// Draws one line chart of `data` into `path`.
fn draw(
    path: &Path,
    title: &str,
    x_desc: &str,
    data: &BTreeMap<String, Vec<(f64, f64)>>,
    log_x: bool,
) -> Result<()> {
    let xs = data.values().flatten().map(|p| p.0);
    let (x_min, x_max) = xs.fold((f64::INFINITY, 0f64), |(a, b), x| (a.min(x), b.max(x)));
    let y_max = data.values().flatten().map(|p| p.1).fold(0f64, f64::max) * 1.35;
    let y_max = if y_max > 0.0 { y_max } else { 1.0 };
    let root = BitMapBackend::new(path, SIZE_PX).into_drawing_area();
    root.fill(&WHITE)?;
    let mut b = ChartBuilder::on(&root);
    b.caption(title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(64);
    // The lines, their dots and the legend: the same for both x axes, whose
    // chart types differ (a macro instead of a function generic over them).
    macro_rules! lines_and_legend {
        ($chart:expr) => {
            for (i, (prog, pts)) in data.iter().enumerate() {
                let (name, c) = style_of(prog, i);
                $chart
                    .draw_series(LineSeries::new(pts.iter().copied(), c.stroke_width(2)))?
                    .label(name)
                    .legend(move |(x, y)| {
                        PathElement::new([(x, y), (x + 20, y)], c.stroke_width(2))
                    });
                $chart.draw_series(pts.iter().map(|&p| Circle::new(p, 4, c.filled())))?;
            }
            $chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperRight)
                .background_style(WHITE.mix(0.9))
                .border_style(BLACK)
                .label_font(("sans-serif", 15))
                .draw()?;
        };
    }
    if log_x {
        let mut chart =
            b.build_cartesian_2d((x_min * 0.7..x_max * 1.4).log_scale(), 0f64..y_max)?;
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .y_desc("Mpps (64-byte frames)")
            .x_label_formatter(&|x| flows_label(*x))
            .label_style(("sans-serif", 14))
            .draw()?;
        lines_and_legend!(chart);
    } else {
        let mut chart = b.build_cartesian_2d(x_min - 0.5..x_max + 0.5, 0f64..y_max)?;
        chart
            .configure_mesh()
            .x_desc(x_desc)
            .y_desc("Mpps (64-byte frames)")
            .x_labels((x_max - x_min) as usize + 3)
            .x_label_formatter(&|x| {
                if x.fract() == 0.0 {
                    format!("{x}")
                } else {
                    String::new()
                }
            })
            .label_style(("sans-serif", 14))
            .draw()?;
        lines_and_legend!(chart);
    }
    root.present()
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Writes every plot the rows allow into `out_dir`; returns the files written.
fn plot_all(rows: &[Row], out_dir: &Path) -> Result<Vec<PathBuf>> {
    std::fs::create_dir_all(out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    let mut written = Vec::new();
    let flows = series(rows, "flows", |r| r.flows as f64);
    if !flows.is_empty() {
        let nohuge: Vec<String> = rows
            .iter()
            .filter(|r| r.sweep == "flows" && r.memory == "nohuge" && r.program == "testpmd")
            .map(|r| flows_label(r.flows as f64))
            .collect();
        let mut title = "Forwarded Mpps vs concurrent flows (1 worker)".to_string();
        if !nohuge.is_empty() {
            title += &format!("; --no-huge at {}", nohuge.join(", "));
        }
        let p = out_dir.join("flows.png");
        draw(&p, &title, "concurrent flows (log scale)", &flows, true)?;
        written.push(p);
    }
    let workers = series(rows, "workers", |r| f64::from(r.workers));
    if !workers.is_empty() {
        let scen = rows
            .iter()
            .find(|r| r.sweep == "workers")
            .map_or("", |r| r.scenario.as_str());
        let p = out_dir.join("workers.png");
        draw(
            &p,
            &format!("Forwarded Mpps vs workers ({scen})"),
            "workers (testpmd: forwarding cores); 2 share a CPU with the main lcore",
            &workers,
            false,
        )?;
        written.push(p);
    }
    Ok(written)
}

/// Registers the TTF at `font` as plotters' "sans-serif".
fn load_font(font: &Path) -> Result<()> {
    let bytes = std::fs::read(font).with_context(|| {
        format!(
            "reading font {}: install fonts-dejavu-core (scripts/deps.sh) or pass --font",
            font.display()
        )
    })?;
    // plotters keeps fonts for the life of the process.
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
        .map_err(|_| anyhow::anyhow!("{} is not a TrueType font", font.display()))
}

fn main() {
    let cli = Cli::parse();
    let r = (|| -> Result<()> {
        load_font(&cli.font)?;
        let text = std::fs::read_to_string(&cli.csv)
            .with_context(|| format!("reading {}", cli.csv.display()))?;
        let rows = parse_csv(&text).with_context(|| format!("in {}", cli.csv.display()))?;
        let written = plot_all(&rows, &cli.out_dir)?;
        if written.is_empty() {
            println!(
                "no flows or workers sweep rows in {}: nothing plotted",
                cli.csv.display()
            );
        }
        for p in written {
            println!("wrote {}", p.display());
        }
        Ok(())
    })();
    if let Err(e) = r {
        eprintln!("fulcrum-plot: {e:#}");
        std::process::exit(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CSV: &str = "sweep,scenario,flows,workers,memory,program,mpps,ratio_vs_testpmd,busy
flows,nat-established-1k,1000,1,huge,testpmd,39.7,-,ok
flows,nat-established-1k,1000,1,huge,fulcrum-nat,5.3,0.133,ok
flows,nat-established-1m,1000000,1,nohuge,testpmd,20.1,-,ok
flows,nat-established-1m,1000000,1,nohuge,fulcrum-nat,-,-,ok
flows,nat-established-100k,100000,1,huge,fulcrum-nat,2.4,0.085,busy
workers,nat-established-100k,100000,2,huge,fulcrum-nat,4.1,0.2,ok
nohuge-compare,nat-established-1k,1000,1,nohuge,fulcrum-nat,4.8,0.24,ok
";

    #[test]
    fn test_parse_csv() {
        let rows = parse_csv(CSV).unwrap();
        assert_eq!(rows.len(), 7);
        assert_eq!(
            rows[3],
            Row {
                sweep: "flows".into(),
                scenario: "nat-established-1m".into(),
                flows: 1_000_000,
                workers: 1,
                memory: "nohuge".into(),
                program: "fulcrum-nat".into(),
                mpps: None,
            }
        );
        assert!(parse_csv("a,b\n").is_err(), "wrong header");
        let short = CSV.replace("huge,testpmd,39.7,-,ok", "huge,testpmd,39.7");
        assert!(parse_csv(&short)
            .unwrap_err()
            .to_string()
            .contains("line 2"));
        let bad = CSV.replace("1000,1,huge,testpmd", "1k,1,huge,testpmd");
        assert!(parse_csv(&bad).is_err());
    }

    #[test]
    fn test_series_sorted_and_filtered() {
        let rows = parse_csv(CSV).unwrap();
        let s = series(&rows, "flows", |r| r.flows as f64);
        // The 1M fulcrum row has no number; the nohuge-compare row is another sweep.
        assert_eq!(s["fulcrum-nat"], vec![(1e3, 5.3), (1e5, 2.4)]);
        assert_eq!(s["testpmd"], vec![(1e3, 39.7), (1e6, 20.1)]);
        assert_eq!(flows_label(1e5), "100k");
        assert_eq!(flows_label(1e6), "1M");
    }

    #[test]
    fn test_plot_all_writes_pngs() {
        load_font(Path::new(DEFAULT_FONT))
            .expect("fonts-dejavu-core is installed by scripts/deps.sh");
        let dir = std::env::temp_dir().join(format!("fulcrum-plot-test-{}", std::process::id()));
        let written = plot_all(&parse_csv(CSV).unwrap(), &dir).unwrap();
        assert_eq!(
            written,
            vec![dir.join("flows.png"), dir.join("workers.png")]
        );
        for p in &written {
            let b = std::fs::read(p).unwrap();
            assert_eq!(&b[..8], b"\x89PNG\r\n\x1a\n", "{} is a PNG", p.display());
            assert!(b.len() > 5_000, "{} has a drawing in it", p.display());
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
