//! The report: rows of measurements with their references and targets, written as a markdown
//! table, JSON, and a PNG chart.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context as _;
use plotters::coord::ranged1d::{IntoSegmentedCoord as _, SegmentValue};
use plotters::prelude::*;

use crate::Plan;
use crate::measure::Samples;
use crate::usage::{Group, Usage};
use crate::write_lock::LockCounts;

/// What a row measures, and which way is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub(crate) enum Unit {
    /// Megabytes (10^6) per second; higher is better.
    MBps,
    /// Mebibytes of resident memory; lower is better.
    MiB,
    /// Operations per second; higher is better.
    PerSecond,
    /// Milliseconds; lower is better.
    Millis,
    /// A count that should be zero.
    Count,
}

impl Unit {
    fn label(self) -> &'static str {
        match self {
            Self::MBps => "MB/s",
            Self::MiB => "MiB",
            Self::PerSecond => "/s",
            Self::Millis => "ms",
            Self::Count => "",
        }
    }

    fn higher_is_better(self) -> bool {
        matches!(self, Self::MBps | Self::PerSecond)
    }
}

/// What a row must reach.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub(crate) enum Target {
    /// At least this fraction of the reference row's median (both in a higher-is-better unit).
    RatioAtLeast(f64),
    /// The median at most this.
    AtMost(f64),
    /// The median at least this.
    AtLeast(f64),
}

/// One measured quantity.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Row {
    /// Id used to name it as a reference (`ingest.nginx`).
    pub(crate) id: String,
    pub(crate) section: String,
    pub(crate) name: String,
    pub(crate) unit: Unit,
    pub(crate) samples: Samples,
    /// The id of the row this one is compared to.
    pub(crate) reference: Option<String>,
    pub(crate) target: Option<Target>,
    /// Whether it measures a reference tool rather than sealpost.
    pub(crate) tool: bool,
}

impl Row {
    pub(crate) fn new(id: &str, section: &str, name: &str, unit: Unit, samples: Samples) -> Self {
        Self {
            id: id.to_owned(),
            section: section.to_owned(),
            name: name.to_owned(),
            unit,
            samples,
            reference: None,
            target: None,
            tool: false,
        }
    }

    /// Marks a row that measures a reference tool (nginx, age, curl, cp).
    pub(crate) fn tool(mut self) -> Self {
        self.tool = true;
        self
    }

    pub(crate) fn versus(mut self, reference: &str) -> Self {
        self.reference = Some(reference.to_owned());
        self
    }

    pub(crate) fn target(mut self, target: Target) -> Self {
        self.target = Some(target);
        self
    }
}

/// One line of the backends table: a configuration and the ids of the rows it quotes.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct SideBySide {
    pub(crate) configuration: String,
    /// The small transfers' rows are `{small}.rate`, `{small}.p50` and `{small}.p99`.
    pub(crate) small: Option<String>,
    pub(crate) ingest: Option<String>,
    pub(crate) egress: Option<String>,
}

/// Where the machine's time went during one measurement of one configuration.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct UsageRow {
    pub(crate) configuration: String,
    pub(crate) measurement: String,
    pub(crate) usage: Usage,
}

/// What PostgreSQL's write lock was held for during one configuration's small transfers.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct LockRow {
    pub(crate) configuration: String,
    pub(crate) counts: LockCounts,
}

/// How a row fared against its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Met,
    Missed,
    NoTarget,
}

/// Everything one run measured.
#[derive(Debug, serde::Serialize)]
pub(crate) struct Report {
    pub(crate) mode: &'static str,
    pub(crate) date: String,
    pub(crate) machine: String,
    pub(crate) versions: Vec<String>,
    pub(crate) plan: String,
    /// The options the run was given (after `cargo bench --bench gateway --`).
    pub(crate) options: Vec<String>,
    pub(crate) missing: Vec<String>,
    pub(crate) rows: Vec<Row>,
    /// The backends comparison, one line per configuration.
    pub(crate) side_by_side: Vec<SideBySide>,
    /// CPU and writes per group of processes, per configuration and measurement.
    pub(crate) usage: Vec<UsageRow>,
    /// PostgreSQL's write lock during the small transfers, per configuration.
    pub(crate) write_lock: Vec<LockRow>,
    /// Steps that failed their own checks (the run exits non-zero).
    pub(crate) failed: Vec<String>,
    /// Steps skipped because a reference tool is missing.
    pub(crate) skipped: Vec<String>,
}

impl Report {
    pub(crate) fn new(plan: &Plan, machine: String, versions: Vec<String>, missing: Vec<String>) -> Self {
        Self {
            mode: plan.mode,
            date: chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
            machine,
            versions,
            plan: format!("{plan:?}"),
            // What the benchmark was asked to do, without what cargo adds (`--bench`).
            options: std::env::args().skip(1).filter(|a| a != "--bench").collect(),
            missing,
            rows: Vec::new(),
            side_by_side: Vec::new(),
            usage: Vec::new(),
            write_lock: Vec::new(),
            failed: Vec::new(),
            skipped: Vec::new(),
        }
    }

    pub(crate) fn push(&mut self, row: Row) {
        self.rows.push(row);
    }

    pub(crate) fn failures(&self) -> &[String] {
        &self.failed
    }

    fn row(&self, id: &str) -> Option<&Row> {
        self.rows.iter().find(|r| r.id == id)
    }

    /// The row's median relative to its reference's, oriented so that above 1 means better.
    fn ratio(&self, row: &Row) -> Option<f64> {
        let reference = self.row(row.reference.as_deref()?)?;
        let (a, b) = (row.samples.median(), reference.samples.median());
        if row.unit.higher_is_better() { Some(a / b) } else { Some(b / a) }
    }

    fn verdict(&self, row: &Row) -> Verdict {
        let median = row.samples.median();
        let met = match row.target {
            None => return Verdict::NoTarget,
            Some(Target::RatioAtLeast(r)) => match self.ratio(row) {
                Some(ratio) => ratio >= r,
                None => return Verdict::NoTarget,
            },
            Some(Target::AtMost(v)) => median <= v,
            Some(Target::AtLeast(v)) => median >= v,
        };
        if met { Verdict::Met } else { Verdict::Missed }
    }

    fn target_text(row: &Row) -> String {
        match row.target {
            None => String::new(),
            Some(Target::RatioAtLeast(r)) => format!("≥ {r}×"),
            Some(Target::AtMost(v)) => format!("≤ {} {}", fmt(v), row.unit.label()),
            Some(Target::AtLeast(v)) => format!("≥ {} {}", fmt(v), row.unit.label()),
        }
    }

    /// The results as a markdown document: the machine, then one table.
    pub(crate) fn markdown(&self) -> String {
        let mut md = String::new();
        let _ = writeln!(md, "# sealpost benchmark ({} mode)\n", self.mode);
        let _ = writeln!(md, "- Date: {}", self.date);
        let _ = writeln!(md, "- Machine: {}", self.machine);
        let _ = writeln!(md, "- Software: {}", self.versions.join(", "));
        let options = if self.options.is_empty() { String::new() } else { format!(" -- {}", self.options.join(" ")) };
        let _ = writeln!(md, "- Command: `cargo bench --bench gateway{options}`");
        for m in &self.missing {
            let _ = writeln!(md, "- Missing: {m}; the comparisons needing it were skipped");
        }
        for s in &self.skipped {
            let _ = writeln!(md, "- Skipped: {s}");
        }
        for f in &self.failed {
            let _ = writeln!(md, "- **FAILED**: {f}");
        }
        let _ = writeln!(
            md,
            "\nMedian of the repetitions, with min and max. Ratio: against the reference row, above 1× means sealpost is better.\n"
        );
        let _ = writeln!(md, "| Step | Measurement | Median | Min | Max | Ratio | Target | |");
        let _ = writeln!(md, "|---|---|---:|---:|---:|---:|---|---|");
        for row in &self.rows {
            let ratio = self
                .ratio(row)
                .map(|r| {
                    let reference = self.row(row.reference.as_deref().unwrap_or_default());
                    format!("{r:.2}× {}", reference.map_or(String::new(), |r| format!("vs {}", r.name)))
                })
                .unwrap_or_default();
            let verdict = match self.verdict(row) {
                Verdict::Met => "met",
                Verdict::Missed => "**missed**",
                Verdict::NoTarget => "",
            };
            let unit = row.unit.label();
            let _ = writeln!(
                md,
                "| {} | {} | {} {unit} | {} | {} | {ratio} | {} | {verdict} |",
                row.section,
                row.name,
                fmt(row.samples.median()),
                fmt(row.samples.min()),
                fmt(row.samples.max()),
                Self::target_text(row),
            );
        }
        self.side_by_side_markdown(&mut md);
        self.usage_markdown(&mut md);
        self.write_lock_markdown(&mut md);
        md
    }

    /// The backends table: one line per configuration, the medians of its rows.
    fn side_by_side_markdown(&self, md: &mut String) {
        if self.side_by_side.is_empty() {
            return;
        }
        let _ = writeln!(md, "\n## Backends side by side\n");
        let _ = writeln!(
            md,
            "Medians of the rows above. Small: 4 KiB bundles from concurrent clients, split evenly between the \
             gateways. Ingest and egress: one bundle through `curl` (two gateways: uploaded through A, redeemed \
             through B); \"both at once\": two bundles of half the size, one uploaded through each gateway at \
             the same time, then each redeemed through the other, aggregate rate.\n"
        );
        let _ = writeln!(md, "| Configuration | Small transfers/s | p50 / p99 | Ingest MB/s | Egress MB/s |");
        let _ = writeln!(md, "|---|---:|---:|---:|---:|");
        let median = |id: &str| self.row(id).map(|r| r.samples.median());
        let cell = |id: &Option<String>| id.as_deref().and_then(median).map_or_else(|| "–".to_owned(), fmt);
        for line in &self.side_by_side {
            let (rate, latency) = match &line.small {
                Some(p) => (
                    cell(&Some(format!("{p}.rate"))),
                    format!("{} / {} ms", cell(&Some(format!("{p}.p50"))), cell(&Some(format!("{p}.p99")))),
                ),
                None => ("–".to_owned(), "–".to_owned()),
            };
            let _ = writeln!(
                md,
                "| {} | {rate} | {latency} | {} | {} |",
                line.configuration,
                cell(&line.ingest),
                cell(&line.egress)
            );
        }
    }

    /// What the writers' lock was held for, over PostgreSQL.
    fn write_lock_markdown(&self, md: &mut String) {
        if self.write_lock.is_empty() {
            return;
        }
        let _ = writeln!(md, "\n## PostgreSQL's write lock during the small transfers\n");
        let _ = writeln!(
            md,
            "Every write transaction of every gateway holds one advisory lock, so writes take turns across \
             the deployment. Sampled every 20 ms from `pg_locks` and `pg_stat_activity` while the clock ran: \
             how often the lock was held, and what its holder was doing: flushing the WAL in `COMMIT`, \
             running another statement, or idle in its transaction until its gateway sent the next statement \
             (a loopback round trip and the gateway's turn on a CPU). Queued: sessions waiting for the lock, \
             on average.\n"
        );
        let _ = writeln!(
            md,
            "| Configuration | Samples | Held | of which: in COMMIT | running SQL | waiting for the gateway | Queued |"
        );
        let _ = writeln!(md, "|---|---:|---:|---:|---:|---:|---:|");
        for row in &self.write_lock {
            let c = &row.counts;
            let pct = |part, of| format!("{}%", fmt(LockCounts::percent(part, of)));
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} | {} |",
                row.configuration,
                c.samples,
                pct(c.held, c.samples),
                pct(c.commit, c.held),
                pct(c.running, c.held),
                pct(c.waiting_for_gateway, c.held),
                fmt(c.queued as f64 / c.samples.max(1) as f64),
            );
        }
    }

    /// Where the time went: cores each group kept busy while the clock ran, and what it wrote.
    fn usage_markdown(&self, md: &mut String) {
        if self.usage.is_empty() {
            return;
        }
        let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
        let _ = writeln!(md, "\n## Where the time went\n");
        let _ = writeln!(
            md,
            "Cores kept busy on average while the clock ran (CPU seconds over wall seconds, all repetitions; the \
             machine has {cores}); the machine's busy and I/O-wait time over the same windows; and MB written \
             per repetition (counted when pages are dirtied, whether or not they are synced). `clients`: the \
             benchmark's own HTTP clients and the `curl` it ran; `others`: the rest of the machine's busy time \
             (the kernel's write-back threads, and anything else running on the machine).\n"
        );
        let groups = Group::ALL.map(Group::label).join(" | ");
        let _ = writeln!(
            md,
            "| Configuration | Measurement | {groups} | others | machine busy | I/O wait | MB written: gateways / PostgreSQL / Garage |"
        );
        let _ = writeln!(md, "|---|---|{}---:|---:|---:|---|", "---:|".repeat(Group::ALL.len()));
        for row in &self.usage {
            let u = &row.usage;
            let cores: Vec<String> =
                Group::ALL.iter().map(|g| u.cores(*g).map_or_else(|| "–".to_owned(), fmt)).collect();
            let per = f64::from(u.windows.max(1));
            let written: Vec<String> = [Group::Gateways, Group::Postgres, Group::Garage]
                .iter()
                .map(|g| u.written_mb.get(g).map_or_else(|| "–".to_owned(), |mb| fmt(mb / per)))
                .collect();
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} | {} |",
                row.configuration,
                row.measurement,
                cores.join(" | "),
                fmt(u.other_cores()),
                fmt(u.machine_busy / u.seconds),
                fmt(u.machine_iowait / u.seconds),
                written.join(" / "),
            );
        }
    }

    /// Writes results.md, results.json and chart.png into `dir`.
    pub(crate) fn write(&self, dir: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        std::fs::write(dir.join("results.md"), self.markdown())?;
        std::fs::write(dir.join("results.json"), serde_json::to_string_pretty(self)?)?;
        self.chart(&dir.join("chart.png"))
    }

    /// Two panels: throughput of sealpost beside its references, and peak memory beside the
    /// targets.
    fn chart(&self, path: &Path) -> anyhow::Result<()> {
        register_font()?;
        let root = BitMapBackend::new(path, (1400, 760)).into_drawing_area();
        root.fill(&WHITE)?;
        let title = format!("sealpost benchmark ({} mode): {}", self.mode, self.machine);
        let root = root.titled(&title, ("sans-serif", 20))?;
        let throughput: Vec<&Row> = self.rows.iter().filter(|r| r.unit == Unit::MBps).collect();
        let memory: Vec<&Row> = self.rows.iter().filter(|r| r.unit == Unit::MiB).collect();
        let caption = "Throughput, MB/s (median, min–max; grey: reference tools)";
        if memory.is_empty() {
            // A run of some steps only (the backends comparison): throughput takes the width.
            bars(&root, caption, &throughput)?;
        } else {
            let (left, right) = root.split_horizontally(820);
            bars(&left, caption, &throughput)?;
            bars(&right, "Peak resident memory, MiB (red: target)", &memory)?;
        }
        root.present()?;
        Ok(())
    }
}

/// A horizontal bar per row, the reference tools grey and sealpost blue, targets as red ticks.
fn bars<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    caption: &str,
    rows: &[&Row],
) -> anyhow::Result<()>
where
    DB::ErrorType: 'static,
{
    if rows.is_empty() {
        return Ok(());
    }
    let top = rows
        .iter()
        .map(|r| match r.target {
            Some(Target::AtMost(v) | Target::AtLeast(v)) => r.samples.max().max(v),
            _ => r.samples.max(),
        })
        .fold(0.0, f64::max)
        * 1.15;
    let labels: Vec<String> = rows.iter().map(|r| format!("{}: {}", r.section, r.name)).collect();
    let n = rows.len();
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(30)
        .y_label_area_size(label_width(&labels, area.dim_in_pixel().0))
        .build_cartesian_2d(0.0..top.max(1.0), (0..n.saturating_sub(1)).into_segmented())?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_labels(n)
        .y_label_style(("sans-serif", 12))
        .y_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) => labels.get(*i).cloned().unwrap_or_default(),
            _ => String::new(),
        })
        .draw()?;
    let blue = RGBColor(40, 100, 200);
    let grey = RGBColor(160, 160, 160);
    chart.draw_series(rows.iter().enumerate().map(|(i, row)| {
        let color = if row.tool { grey } else { blue };
        let median = row.samples.median();
        let mut bar =
            Rectangle::new([(0.0, SegmentValue::Exact(i)), (median, SegmentValue::Exact(i + 1))], color.filled());
        bar.set_margin(5, 5, 0, 0);
        bar
    }))?;
    // Min–max whiskers.
    chart.draw_series(rows.iter().enumerate().map(|(i, row)| {
        PathElement::new(
            vec![(row.samples.min(), SegmentValue::CenterOf(i)), (row.samples.max(), SegmentValue::CenterOf(i))],
            BLACK.stroke_width(2),
        )
    }))?;
    chart.draw_series(rows.iter().enumerate().filter_map(|(i, row)| match row.target {
        Some(Target::AtMost(v) | Target::AtLeast(v)) => Some(PathElement::new(
            vec![(v, SegmentValue::Exact(i)), (v, SegmentValue::Exact(i + 1))],
            RED.stroke_width(3),
        )),
        _ => None,
    }))?;
    chart.draw_series(rows.iter().enumerate().map(|(i, row)| {
        Text::new(
            format!(" {}", fmt(row.samples.median())),
            (row.samples.max(), SegmentValue::CenterOf(i)),
            ("sans-serif", 12).into_font(),
        )
    }))?;
    Ok(())
}

/// Room for the longest bar label (12 px text, about 6.5 px a character), at least 330 px and
/// at most two thirds of the panel.
fn label_width(labels: &[String], panel: u32) -> u32 {
    let longest = labels.iter().map(|l| l.chars().count()).max().unwrap_or(0);
    let wanted = u32::try_from(longest * 13 / 2 + 10).unwrap_or(u32::MAX);
    wanted.clamp(330, (panel * 2 / 3).max(330))
}

/// plotters draws text with a font we hand it: DejaVu Sans from the system (Debian package
/// `fonts-dejavu-core`).
fn register_font() -> anyhow::Result<()> {
    const CANDIDATES: [&str; 3] = [
        "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
        "/usr/share/fonts/TTF/DejaVuSans.ttf",
        "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    ];
    let path = CANDIDATES.iter().find(|p| Path::new(p).is_file()).context(
        "no DejaVu Sans font for the chart: install the Debian package `fonts-dejavu-core` (results.md and results.json were written)",
    )?;
    let bytes: &'static [u8] = Box::leak(std::fs::read(path)?.into_boxed_slice());
    plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
        .map_err(|_| anyhow::anyhow!("{path} is not a usable font"))
}

/// Three significant figures, without exponent noise.
fn fmt(v: f64) -> String {
    if !v.is_finite() {
        return "–".to_owned();
    }
    let a = v.abs();
    if a >= 100.0 || a == 0.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}
