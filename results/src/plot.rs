//! Charts drawn with plotters' SVG backend: latency, throughput and clock offsets over time,
//! each with the fault bands behind it. Labels are our own words or names reduced to
//! `[A-Za-z0-9_.-]`, so the SVG needs no escaping.
use std::collections::BTreeMap;

use checkers::history::{History, OpType};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::prelude::*;

use crate::faults::{Band, ClockPoint};
use crate::report::{Call, Scale, DETAIL_LIMIT};

const WIDTH: u32 = 1100;
const HEIGHT: u32 = 320;
const BUCKETS: usize = 100;

const OK: RGBColor = RGBColor(0x3a, 0x8f, 0x3a);
const FAIL: RGBColor = RGBColor(0xd6, 0x27, 0x28);
const INFO: RGBColor = RGBColor(0xf0, 0x8c, 0x00);
const LINE_COLORS: [RGBColor; 8] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0x8c, 0x56, 0x4b),
    RGBColor(0xe3, 0x77, 0xc2),
    RGBColor(0x7f, 0x7f, 0x7f),
    RGBColor(0x17, 0xbe, 0xcf),
];

/// Colour of a fault kind's band; the CSS uses the same colours.
pub fn band_color(kind: &str) -> RGBColor {
    match kind {
        "partition" => RGBColor(0xb2, 0x79, 0xa2),
        "kill" => RGBColor(0x9d, 0x75, 0x5d),
        "pause" => RGBColor(0x4c, 0x78, 0xa8),
        "clock" => RGBColor(0xe8, 0xc0, 0x20),
        "packet" => RGBColor(0x40, 0xa8, 0xa0),
        _ => RGBColor(0xa0, 0xa0, 0xa0),
    }
}

fn outcome_color(k: OpType) -> RGBColor {
    match k {
        OpType::Ok => OK,
        OpType::Fail => FAIL,
        _ => INFO,
    }
}

/// Reduces a name from the history to characters that are safe in SVG text.
fn safe_label(s: &str) -> String {
    let mut out: String = s
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .take(24)
        .collect();
    if out.is_empty() {
        out.push('?');
    }
    out
}

fn failed(what: &str, e: impl std::fmt::Display) -> String {
    // Our own words only; `e` comes from plotters, not from the history, but escape anyway.
    let msg = e.to_string().replace('&', "&amp;").replace('<', "&lt;");
    format!("<p class=\"note\">Could not draw the {what} chart: {msg}</p>")
}

fn draw_bands<DB: DrawingBackend, Y: Ranged<ValueType = f64>>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<RangedCoordf64, Y>>,
    bands: &[Band],
    scale: &Scale,
    y: (f64, f64),
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    chart.draw_series(bands.iter().map(|b| {
        let (x0, x1) = (scale.secs(b.start), scale.secs(b.end));
        let x1 = x1.max(x0 + scale.span_secs() / 500.0);
        Rectangle::new([(x0, y.0), (x1, y.1)], band_color(&b.kind).mix(0.18).filled())
    }))?;
    Ok(())
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i]
}

/// Latency of each completed operation against its invocation time, by outcome (colour) and
/// function (marker), with p50/p95/p99 lines of `ok` latencies per time bucket.
pub fn latency(
    h: &History,
    calls: &[Call],
    scale: &Scale,
    bands: &[Band],
    notes: &mut Vec<String>,
) -> String {
    let done: Vec<&Call> = calls.iter().filter(|c| c.complete.is_some()).collect();
    let lat = |c: &Call| ((c.end - c.start) as f64 / 1e6).max(1e-3);
    let y_max = done.iter().map(|c| lat(c)).fold(1.0, f64::max) * 1.5;
    let y_min = done.iter().map(|c| lat(c)).fold(y_max, f64::min).max(1e-3) / 1.5;
    let stride = done.len().div_ceil(DETAIL_LIMIT).max(1);
    if stride > 1 {
        notes.push(format!(
            "The latency plot shows every {stride}th of {} completed operations; the quantile \
             lines use all of them.",
            done.len()
        ));
    }
    let mut fs: Vec<&str> = Vec::new();
    for c in &done {
        let f = h.ops[c.invoke].f.as_str();
        if !fs.contains(&f) && fs.len() < 3 {
            fs.push(f);
        }
    }
    let mut svg = String::new();
    let result = (|| {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .margin(10)
            .x_label_area_size(32)
            .y_label_area_size(64)
            .build_cartesian_2d(0f64..scale.span_secs(), (y_min..y_max).log_scale())?;
        chart
            .configure_mesh()
            .x_desc("time (s)")
            .y_desc("latency (ms)")
            .light_line_style(WHITE)
            .draw()?;
        draw_bands(&mut chart, bands, scale, (y_min, y_max))?;
        for kind in [OpType::Ok, OpType::Fail, OpType::Info] {
            for (fi, f) in fs.iter().enumerate() {
                let color = outcome_color(kind);
                let pts = done
                    .iter()
                    .enumerate()
                    .filter(|(i, c)| {
                        i % stride == 0 && c.outcome == kind && h.ops[c.invoke].f == *f
                    })
                    .map(|(_, c)| (scale.secs(c.start), lat(c)));
                let style = color.mix(0.7).filled();
                let label = format!("{} {}", safe_label(f), kind.as_str());
                match fi {
                    0 => chart
                        .draw_series(pts.map(|p| Circle::new(p, 2, style)))?
                        .label(label)
                        .legend(move |(x, y)| Circle::new((x, y), 3, style)),
                    1 => chart
                        .draw_series(pts.map(|p| TriangleMarker::new(p, 3, style)))?
                        .label(label)
                        .legend(move |(x, y)| TriangleMarker::new((x, y), 4, style)),
                    _ => chart
                        .draw_series(pts.map(|p| Cross::new(p, 3, color.stroke_width(1))))?
                        .label(label)
                        .legend(move |(x, y)| Cross::new((x, y), 4, color.stroke_width(1))),
                };
            }
        }
        // Quantiles of ok latencies per bucket of invocation time.
        let mut buckets: Vec<Vec<f64>> = vec![Vec::new(); BUCKETS];
        let span = scale.span_secs();
        for c in done.iter().filter(|c| c.outcome == OpType::Ok) {
            let b = ((scale.secs(c.start) / span) * BUCKETS as f64) as usize;
            buckets[b.min(BUCKETS - 1)].push(lat(c));
        }
        for b in &mut buckets {
            b.sort_by(f64::total_cmp);
        }
        for (q, name, color) in [
            (0.5, "p50 ok", BLACK),
            (0.95, "p95 ok", RGBColor(0x55, 0x55, 0xcc)),
            (0.99, "p99 ok", RGBColor(0xaa, 0x22, 0xaa)),
        ] {
            let line: Vec<(f64, f64)> = buckets
                .iter()
                .enumerate()
                .filter(|(_, b)| !b.is_empty())
                .map(|(i, b)| ((i as f64 + 0.5) * span / BUCKETS as f64, quantile(b, q)))
                .collect();
            chart
                .draw_series(LineSeries::new(line, color.stroke_width(2)))?
                .label(name)
                .legend(move |(x, y)| PathElement::new(vec![(x - 6, y), (x + 6, y)], color));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.3))
            .draw()?;
        root.present()?;
        Ok::<(), DrawingAreaErrorKind<std::io::Error>>(())
    })();
    match result {
        Ok(()) => svg,
        Err(e) => failed("latency", e),
    }
}

/// Completed operations per second, by outcome, per time bucket.
pub fn throughput(calls: &[Call], scale: &Scale, bands: &[Band]) -> String {
    let span = scale.span_secs();
    let width = span / BUCKETS as f64;
    let mut counts = [[0usize; BUCKETS]; 3];
    for c in calls.iter().filter(|c| c.complete.is_some()) {
        let b = ((scale.secs(c.end) / span) * BUCKETS as f64) as usize;
        let slot = match c.outcome {
            OpType::Ok => 0,
            OpType::Fail => 1,
            _ => 2,
        };
        counts[slot][b.min(BUCKETS - 1)] += 1;
    }
    let y_max = counts
        .iter()
        .flat_map(|c| c.iter())
        .map(|&n| n as f64 / width)
        .fold(1.0, f64::max)
        * 1.1;
    let mut svg = String::new();
    let result = (|| {
        let root: DrawingArea<SVGBackend, Shift> =
            SVGBackend::with_string(&mut svg, (WIDTH, 240)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .margin(10)
            .x_label_area_size(32)
            .y_label_area_size(64)
            .build_cartesian_2d(0f64..span, 0f64..y_max)?;
        chart
            .configure_mesh()
            .x_desc("time (s)")
            .y_desc("ops/s")
            .light_line_style(WHITE)
            .draw()?;
        draw_bands(&mut chart, bands, scale, (0.0, y_max))?;
        for (slot, (name, color)) in [("ok", OK), ("fail", FAIL), ("info", INFO)]
            .into_iter()
            .enumerate()
        {
            let line = counts[slot]
                .iter()
                .enumerate()
                .map(|(i, &n)| ((i as f64 + 0.5) * width, n as f64 / width));
            chart
                .draw_series(LineSeries::new(line, color.stroke_width(2)))?
                .label(name)
                .legend(move |(x, y)| PathElement::new(vec![(x - 6, y), (x + 6, y)], color));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.3))
            .draw()?;
        root.present()?;
        Ok::<(), DrawingAreaErrorKind<std::io::Error>>(())
    })();
    match result {
        Ok(()) => svg,
        Err(e) => failed("throughput", e),
    }
}

/// Each node's clock offset as a step line over time.
pub fn clock(offsets: &BTreeMap<String, Vec<ClockPoint>>, scale: &Scale, bands: &[Band]) -> String {
    let all = offsets.values().flatten().map(|p| p.offset_ms);
    let lo = all.clone().fold(0.0, f64::min);
    let hi = all.fold(0.0, f64::max);
    let pad = ((hi - lo) * 0.1).max(1.0);
    let (lo, hi) = (lo - pad, hi + pad);
    let mut svg = String::new();
    let result = (|| {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, 240)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .margin(10)
            .x_label_area_size(32)
            .y_label_area_size(64)
            .build_cartesian_2d(0f64..scale.span_secs(), lo..hi)?;
        chart
            .configure_mesh()
            .x_desc("time (s)")
            .y_desc("clock offset (ms)")
            .light_line_style(WHITE)
            .draw()?;
        draw_bands(&mut chart, bands, scale, (lo, hi))?;
        for (i, (node, points)) in offsets.iter().enumerate() {
            let color = LINE_COLORS[i % LINE_COLORS.len()];
            let mut line = vec![(0.0, 0.0)];
            let mut last = 0.0;
            for p in points {
                let x = scale.secs(p.time);
                line.push((x, last));
                line.push((x, p.offset_ms));
                last = p.offset_ms;
            }
            line.push((scale.span_secs(), last));
            chart
                .draw_series(LineSeries::new(line, color.stroke_width(2)))?
                .label(safe_label(node))
                .legend(move |(x, y)| PathElement::new(vec![(x - 6, y), (x + 6, y)], color));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK.mix(0.3))
            .draw()?;
        root.present()?;
        Ok::<(), DrawingAreaErrorKind<std::io::Error>>(())
    })();
    match result {
        Ok(()) => svg,
        Err(e) => failed("clock offset", e),
    }
}
