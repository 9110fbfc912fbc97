//! The suite's SVG plots (plotters, SVG backend only: text is left to the viewer's fonts, so
//! no font files or system libraries are needed to draw them).
//!
//! * `tensority.svg`: hash rate per backend and thread count, one bar per configuration,
//!   red when the checksum failed;
//! * `pswv.svg`: PSWV throughput per window size, in memory and on RocksDB, with the
//!   per-block path of each as a dashed line;
//! * `relay.svg` and `get-work.svg`: latency distributions (histograms with the median).

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::report::{human, Benchmark, Report};

const WIDTH: u32 = 1000;
const HEIGHT: u32 = 560;
const FAIL_RED: RGBColor = RGBColor(0xd6, 0x27, 0x28);
const PALETTE: [RGBColor; 5] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0x8c, 0x56, 0x4b),
];

type DrawResult<T> = Result<T, Box<dyn std::error::Error>>;

/// Writes every plot the report has data for into `dir`; returns the files written.
///
/// # Errors
/// A file that cannot be written.
pub fn write_all(report: &Report, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    let mut attempt = |name: &str, draw: &dyn Fn(&Path) -> DrawResult<bool>| {
        let path = dir.join(name);
        match draw(&path) {
            Ok(true) => {
                written.push(path);
                Ok(())
            }
            Ok(false) => Ok(()),
            Err(e) => Err(anyhow::anyhow!("plot {}: {e}", path.display())),
        }
    };
    attempt("tensority.svg", &|p| tensority(report, p))?;
    attempt("pswv.svg", &|p| pswv(report, p))?;
    attempt("relay.svg", &|p| {
        latency(
            report,
            "relay",
            p,
            "Block relay latency: submit on node 0 until connected on each other node",
        )
    })?;
    attempt("get-work.svg", &|p| {
        latency(
            report,
            "get-work",
            p,
            "get-work round trip over loopback HTTP",
        )
    })?;
    Ok(written)
}

fn group<'a>(report: &'a Report, name: &str) -> Vec<&'a Benchmark> {
    report
        .benchmarks
        .iter()
        .filter(|b| b.group == name)
        .collect()
}

fn param(b: &Benchmark, key: &str) -> String {
    match b.params.get(key) {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(v) => v.to_string(),
        None => String::new(),
    }
}

/// The legend box every plot uses.
fn legend<'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, SVGBackend<'a>, CT>,
    position: SeriesLabelPosition,
) -> DrawResult<()> {
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .position(position)
        .label_font(("sans-serif", 15))
        .draw()?;
    Ok(())
}

fn canvas(path: &Path) -> DrawingArea<SVGBackend<'_>, Shift> {
    let root = SVGBackend::new(path, (WIDTH, HEIGHT)).into_drawing_area();
    root
}

/// Grouped bars: one group per backend, one bar per thread count (or batch size) in it,
/// coloured by thread count; red when the checksum failed.
fn tensority(report: &Report, path: &Path) -> DrawResult<bool> {
    let bars = group(report, "tensority");
    if bars.is_empty() {
        return Ok(false);
    }
    let mut backends: Vec<String> = Vec::new();
    let mut settings: Vec<String> = Vec::new();
    let setting = |b: &Benchmark| {
        let batch = param(b, "batch");
        if !batch.is_empty() && batch != "0" {
            format!("batch {batch}")
        } else {
            let t = param(b, "threads");
            format!("{t} thread{}", if t == "1" { "" } else { "s" })
        }
    };
    for b in &bars {
        let name = param(b, "backend");
        if !backends.contains(&name) {
            backends.push(name);
        }
        let s = setting(b);
        if !settings.contains(&s) {
            settings.push(s);
        }
    }
    let top = bars.iter().map(|b| b.max).fold(0.0, f64::max) * 1.15;
    let root = canvas(path);
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Tensority hash rate per backend and threads (median; whiskers min–max)",
            ("sans-serif", 22),
        )
        .margin(16)
        .x_label_area_size(56)
        .y_label_area_size(80)
        .build_cartesian_2d(0.0..backends.len() as f64, 0.0..top.max(1e-9))?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .light_line_style(WHITE)
        .label_style(("sans-serif", 14))
        .x_labels(0)
        .y_desc("hashes per second (H/s)")
        .y_label_formatter(&|y| human(*y))
        .draw()?;
    // Backend names under their groups, every other one a line lower so long names fit.
    for (i, name) in backends.iter().enumerate() {
        let (x, y) = chart.backend_coord(&(i as f64 + 0.5, 0.0));
        let style = TextStyle::from(("sans-serif", 14).into_font())
            .color(&BLACK)
            .pos(Pos::new(HPos::Center, VPos::Top));
        root.draw(&Text::new(
            name.clone(),
            (x, y + 8 + 18 * (i as i32 % 2)),
            style,
        ))?;
    }
    let slot = 0.8 / settings.len() as f64;
    let mut labelled: Vec<String> = Vec::new();
    for b in &bars {
        let g = backends
            .iter()
            .position(|n| *n == param(b, "backend"))
            .unwrap_or(0);
        let key = setting(b);
        let k = settings.iter().position(|s| *s == key).unwrap_or(0);
        let x0 = g as f64 + 0.1 + slot * k as f64;
        let x1 = x0 + slot * 0.92;
        let centre = (x0 + x1) / 2.0;
        let color = if b.ok {
            PALETTE[k % PALETTE.len()]
        } else {
            FAIL_RED
        };
        let drawn = chart.draw_series(std::iter::once(Rectangle::new(
            [(x0, 0.0), (x1, b.median)],
            color.mix(if b.ok { 0.8 } else { 1.0 }).filled(),
        )))?;
        // One legend entry per setting, and one for wrong results.
        let legend = if b.ok {
            key
        } else {
            "WRONG result (checksum failed)".to_string()
        };
        if !labelled.contains(&legend) {
            drawn.label(legend.clone()).legend(move |(x, y)| {
                Rectangle::new([(x, y - 6), (x + 16, y + 6)], color.filled())
            });
            labelled.push(legend);
        }
        chart.draw_series(std::iter::once(PathElement::new(
            vec![(centre, b.min), (centre, b.max)],
            BLACK.stroke_width(2),
        )))?;
        let label = if b.ok {
            human(b.median)
        } else {
            format!("{} WRONG", human(b.median))
        };
        let style = TextStyle::from(("sans-serif", 13).into_font())
            .color(if b.ok { &BLACK } else { &FAIL_RED })
            .pos(Pos::new(HPos::Center, VPos::Bottom));
        chart.draw_series(std::iter::once(Text::new(
            label,
            (centre, b.max.max(b.median) + top * 0.01),
            style,
        )))?;
    }
    legend(&mut chart, SeriesLabelPosition::UpperRight)?;
    root.present()?;
    Ok(true)
}

/// PSWV transactions/s per window size: one solid line per store, its per-block path dashed.
fn pswv(report: &Report, path: &Path) -> DrawResult<bool> {
    let all = group(report, "pswv");
    let mut windows: Vec<u64> = all
        .iter()
        .filter_map(|b| b.params.get("window").and_then(|w| w.as_u64()))
        .collect();
    windows.sort_unstable();
    windows.dedup();
    if windows.is_empty() {
        return Ok(false);
    }
    let top = all.iter().map(|b| b.max).fold(0.0, f64::max) * 1.15;
    let root = canvas(path);
    root.fill(&WHITE)?;
    let n = windows.len() as u32;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "PSWV throughput per window size (median transactions/s)",
            ("sans-serif", 22),
        )
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(80)
        .build_cartesian_2d(
            (0..n.saturating_sub(1)).into_segmented(),
            0.0..top.max(1e-9),
        )?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .light_line_style(WHITE)
        .label_style(("sans-serif", 14))
        .x_labels(windows.len())
        .x_label_formatter(&|x| match x {
            SegmentValue::CenterOf(i) => windows
                .get(*i as usize)
                .map(|w| format!("window {w}"))
                .unwrap_or_default(),
            _ => String::new(),
        })
        .x_desc("blocks per window")
        .y_desc("transactions per second")
        .y_label_formatter(&|y| human(*y))
        .draw()?;
    let index = |w: u64| windows.iter().position(|x| *x == w).unwrap_or(0) as u32;
    for (k, store) in ["memory", "rocksdb"].into_iter().enumerate() {
        let color = PALETTE[k % PALETTE.len()];
        let pswv: Vec<(SegmentValue<u32>, f64)> = all
            .iter()
            .filter(|b| param(b, "store") == store && param(b, "path") == "pswv")
            .filter_map(|b| {
                let w = b.params.get("window")?.as_u64()?;
                Some((SegmentValue::CenterOf(index(w)), b.median))
            })
            .collect();
        if pswv.is_empty() {
            continue;
        }
        chart
            .draw_series(LineSeries::new(pswv.clone(), color.stroke_width(3)))?
            .label(format!("PSWV, {store}"))
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(3))
            });
        chart.draw_series(
            pswv.iter()
                .map(|(x, y)| Circle::new((x.clone(), *y), 5, color.filled())),
        )?;
        let Some(per_block) = all
            .iter()
            .find(|b| param(b, "store") == store && param(b, "path") == "per-block")
        else {
            continue;
        };
        let flat = vec![
            (SegmentValue::Exact(0), per_block.median),
            (SegmentValue::Last, per_block.median),
        ];
        chart
            .draw_series(DashedLineSeries::new(flat, 8, 6, color.stroke_width(2)))?
            .label(format!("per-block path, {store}"))
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(1))
            });
    }
    legend(&mut chart, SeriesLabelPosition::LowerRight)?;
    root.present()?;
    Ok(true)
}

/// A histogram of every latency sample of `group`, with the median marked.
fn latency(report: &Report, group_name: &str, path: &Path, title: &str) -> DrawResult<bool> {
    let figures = group(report, group_name);
    let samples: Vec<f64> = figures
        .iter()
        .filter(|b| b.unit == "ms")
        .flat_map(|b| b.samples.iter().copied())
        .collect();
    if samples.is_empty() {
        return Ok(false);
    }
    let median = crate::median(&samples).unwrap_or(0.0);
    let lo = samples.iter().copied().fold(f64::INFINITY, f64::min);
    let max = samples.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    // A few far outliers would squeeze every other sample into one bar: with enough samples,
    // draw up to the 99th percentile and say how many lie beyond it.
    let p99 = crate::net::percentile(&samples, 0.99).unwrap_or(max);
    let hi = if samples.len() >= 100 && max > 3.0 * p99 {
        p99
    } else {
        max
    };
    let beyond = samples.iter().filter(|&&s| s > hi).count();
    let buckets = (samples.len() as f64).sqrt().ceil().clamp(5.0, 40.0) as usize;
    let span = (hi - lo).max(hi * 0.05).max(1e-6);
    let start = (lo - span * 0.05).max(0.0);
    let width = span * 1.1 / buckets as f64;
    let mut counts = vec![0u32; buckets];
    for s in samples.iter().filter(|&&s| s <= hi) {
        let i = (((s - start) / width) as usize).min(buckets - 1);
        counts[i] += 1;
    }
    let top = (f64::from(*counts.iter().max().unwrap_or(&1)) * 1.15).ceil() as u32;
    let root = canvas(path);
    root.fill(&WHITE)?;
    let end = start + width * buckets as f64;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(70)
        .build_cartesian_2d(start..end, 0..top.max(1))?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .light_line_style(WHITE)
        .label_style(("sans-serif", 14))
        .x_desc("milliseconds")
        .y_desc("samples")
        .x_label_formatter(&|x| human(*x))
        .y_labels(top.clamp(1, 10) as usize)
        .draw()?;
    chart.draw_series(counts.iter().enumerate().map(|(i, &c)| {
        let x0 = start + width * i as f64;
        Rectangle::new(
            [(x0, 0), (x0 + width * 0.92, c)],
            PALETTE[0].mix(0.75).filled(),
        )
    }))?;
    chart
        .draw_series(std::iter::once(PathElement::new(
            vec![(median, 0), (median, top)],
            FAIL_RED.stroke_width(2),
        )))?
        .label(if beyond == 0 {
            format!(
                "median {} ms ({} samples, max {} ms)",
                human(median),
                samples.len(),
                human(max)
            )
        } else {
            format!(
                "median {} ms ({} samples; {beyond} above {} ms not drawn, max {} ms)",
                human(median),
                samples.len(),
                human(hi),
                human(max)
            )
        })
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], FAIL_RED.stroke_width(2)));
    legend(&mut chart, SeriesLabelPosition::UpperRight)?;
    root.present()?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::json;

    use super::*;
    use crate::report::{Benchmark, Report};

    fn rate(backend: &str, threads: usize, hps: f64, ok: bool) -> Benchmark {
        let mut params = BTreeMap::new();
        params.insert("backend".to_string(), json!(backend));
        params.insert("threads".to_string(), json!(threads));
        let mut b = Benchmark::new(
            format!("tensority/{backend}/threads={threads}"),
            "tensority",
            "d",
            params,
            "H/s",
            true,
            vec![hps * 0.9, hps, hps * 1.1],
        )
        .unwrap();
        b.ok = ok;
        b
    }

    #[test]
    fn a_wrong_result_is_drawn_red_and_labelled() {
        let report = Report::for_test(vec![
            rate("good", 1, 100.0, true),
            rate("good", 2, 190.0, true),
            rate("liar", 2, 900.0, false),
        ]);
        let dir = tempfile::tempdir().unwrap();
        let written = write_all(&report, dir.path()).unwrap();
        // Only the Tensority plot has data here.
        assert_eq!(written, vec![dir.path().join("tensority.svg")]);
        let svg = std::fs::read_to_string(&written[0])
            .unwrap()
            .to_ascii_lowercase();
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
        assert!(svg.contains("#d62728"), "no red in the plot");
        assert!(svg.contains("900 wrong"));
        assert!(svg.contains("2 threads") && svg.contains("190"));

        let honest = Report {
            benchmarks: report.benchmarks[..2].to_vec(),
            ..report
        };
        write_all(&honest, dir.path()).unwrap();
        let svg = std::fs::read_to_string(dir.path().join("tensority.svg"))
            .unwrap()
            .to_ascii_lowercase();
        assert!(!svg.contains("#d62728"), "red without a wrong result");
    }
}
