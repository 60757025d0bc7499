//! SVG charts for the commands' `--plot` option, drawn with plotters' SVG backend (text is
//! written as SVG `<text>`, so the files need no font on the machine that draws them).

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;
use pocketrec_export::atomic::write_atomic;

use crate::error::{CliError, Result};

/// One bar chart: a title, a label per bar, a value per bar, and the axis's name.
pub struct Bars {
    /// The chart's title.
    pub title: String,
    /// One label per bar (shown under it when there are few bars).
    pub labels: Vec<String>,
    /// One value per bar (non-negative).
    pub values: Vec<f64>,
    /// What the values are.
    pub y_label: String,
}

/// One line chart: named series of `(x, y)` points.
pub struct Lines {
    /// The chart's title.
    pub title: String,
    /// `(name, points)` per series.
    pub series: Vec<(String, Vec<(f64, f64)>)>,
    /// What x is.
    pub x_label: String,
    /// What y is.
    pub y_label: String,
}

/// A panel of a figure.
pub enum Panel {
    /// Bars.
    Bars(Bars),
    /// Lines.
    Lines(Lines),
}

const WIDTH: u32 = 900;
const PANEL_HEIGHT: u32 = 320;

fn plot_error(e: impl std::fmt::Display) -> CliError {
    CliError::Usage(format!("cannot draw the plot: {e}"))
}

/// Draws `panels` one above the other and writes the SVG to `path` atomically.
pub fn write_svg(path: &Path, panels: &[Panel]) -> Result<()> {
    let svg = render(panels)?;
    write_atomic(path, svg.as_bytes())?;
    Ok(())
}

/// The SVG text of `panels` stacked vertically.
pub fn render(panels: &[Panel]) -> Result<String> {
    let mut svg = String::new();
    {
        let height = PANEL_HEIGHT * panels.len().max(1) as u32;
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_error)?;
        let areas = root.split_evenly((panels.len().max(1), 1));
        for (panel, area) in panels.iter().zip(&areas) {
            match panel {
                Panel::Bars(bars) => draw_bars(area, bars)?,
                Panel::Lines(lines) => draw_lines(area, lines)?,
            }
        }
        root.present().map_err(plot_error)?;
    }
    Ok(svg)
}

/// An axis value: thousands separators when the axis reaches 100, else up to three decimals.
fn axis_value(v: f64, axis_top: f64) -> String {
    if axis_top >= 100.0 {
        pocketrec_export::inspect::thousands(v.round().max(0.0) as u64)
    } else {
        let s = format!("{v:.3}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

fn draw_bars(area: &DrawingArea<SVGBackend<'_>, Shift>, bars: &Bars) -> Result<()> {
    let n = bars.values.len().max(1) as u32;
    let top = bars
        .values
        .iter()
        .copied()
        .fold(0.0f64, f64::max)
        .max(1e-12)
        * 1.1;
    let mut chart = ChartBuilder::on(area)
        .caption(&bars.title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d((0u32..n).into_segmented(), 0.0f64..top)
        .map_err(plot_error)?;
    let labels = &bars.labels;
    let few = labels.len() <= 16;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .y_desc(&bars.y_label)
        .y_label_formatter(&|v| axis_value(*v, top))
        .x_labels(labels.len().min(16))
        .x_label_formatter(&|x| match x {
            SegmentValue::CenterOf(i) | SegmentValue::Exact(i) if few => {
                labels.get(*i as usize).cloned().unwrap_or_default()
            }
            SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => i.to_string(),
            SegmentValue::Last => String::new(),
        })
        .draw()
        .map_err(plot_error)?;
    chart
        .draw_series(
            Histogram::vertical(&chart)
                .style(RGBColor(46, 110, 180).filled())
                .margin(2)
                .data(bars.values.iter().enumerate().map(|(i, &v)| (i as u32, v))),
        )
        .map_err(plot_error)?;
    Ok(())
}

fn draw_lines(area: &DrawingArea<SVGBackend<'_>, Shift>, lines: &Lines) -> Result<()> {
    let points = lines.series.iter().flat_map(|(_, p)| p.iter());
    let (mut x0, mut x1, mut y1) = (f64::INFINITY, f64::NEG_INFINITY, 0.0f64);
    for &(x, y) in points {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y1 = y1.max(y);
    }
    if !x0.is_finite() || !x1.is_finite() {
        (x0, x1) = (0.0, 1.0);
    }
    if x1 <= x0 {
        x1 = x0 + 1.0;
    }
    let mut chart = ChartBuilder::on(area)
        .caption(&lines.title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(x0..x1, 0.0f64..(y1.max(1e-12) * 1.05))
        .map_err(plot_error)?;
    chart
        .configure_mesh()
        .x_desc(&lines.x_label)
        .y_desc(&lines.y_label)
        .x_label_formatter(&|v| axis_value(*v, x1))
        .draw()
        .map_err(plot_error)?;
    let palette = [
        RGBColor(46, 110, 180),
        RGBColor(214, 96, 40),
        RGBColor(60, 150, 70),
        RGBColor(150, 60, 160),
        RGBColor(120, 120, 120),
        RGBColor(200, 160, 20),
        RGBColor(20, 160, 170),
        RGBColor(190, 40, 90),
    ];
    for (k, (name, points)) in lines.series.iter().enumerate() {
        let color = palette[k % palette.len()];
        chart
            .draw_series(LineSeries::new(
                points.iter().copied(),
                color.stroke_width(2),
            ))
            .map_err(plot_error)?
            .label(name.as_str())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], color.stroke_width(2)));
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(plot_error)?;
    Ok(())
}
