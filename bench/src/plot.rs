//! The CDF figure: for each run, the share of peers complete (y) against
//! completion time in units of T_min (x). The bound is the vertical line at
//! x = 1; a curve that rises close to it and steeply is a good schedule.
//! Peers that never completed keep their curve below 1.

use std::path::Path;

use anyhow::{anyhow, Context, Result};
use plotters::prelude::*;
use plotters::style::{register_font, FontStyle};

use crate::report::RunRecord;

/// Debian's fonts-dejavu-core; loaded at run time so nothing is vendored.
const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";

const COLORS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

fn load_font() -> Result<()> {
    let bytes = std::fs::read(FONT)
        .with_context(|| format!("{FONT}: install fonts-dejavu-core to label the plot"))?;
    // plotters keeps registered fonts for the life of the process.
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    register_font("sans-serif", FontStyle::Normal, bytes)
        .map_err(|_| anyhow!("{FONT}: not a font plotters can read"))
}

pub fn cdf_png(records: &[RunRecord], path: &Path) -> Result<()> {
    load_font()?;
    let x_max = records
        .iter()
        .flat_map(|r| {
            r.peers_detail
                .iter()
                .filter_map(|p| p.seconds.map(|s| s / r.t_min_s))
        })
        .fold(1.5f64, f64::max)
        * 1.05;
    let title = match records.first() {
        Some(r) => format!(
            "Completion time CDF, N = {}, T_min = {:.1} s",
            r.scenario.peers, r.t_min_s
        ),
        None => "Completion time CDF".into(),
    };
    let root = BitMapBackend::new(path, (1000, 640)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| anyhow!("{e}"))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 26))
        .margin(16)
        .x_label_area_size(48)
        .y_label_area_size(64)
        .build_cartesian_2d(0f64..x_max, 0f64..1.02f64)
        .map_err(|e| anyhow!("{e}"))?;
    chart
        .configure_mesh()
        .x_desc("completion time / T_min (Kumar-Ross bound)")
        .y_desc("share of peers complete")
        .label_style(("sans-serif", 16))
        .axis_desc_style(("sans-serif", 18))
        .draw()
        .map_err(|e| anyhow!("{e}"))?;
    chart
        .draw_series(LineSeries::new(
            [(1.0, 0.0), (1.0, 1.02)],
            BLACK.stroke_width(2),
        ))
        .map_err(|e| anyhow!("{e}"))?
        .label("T_min")
        .legend(|(x, y)| PathElement::new([(x, y), (x + 20, y)], BLACK.stroke_width(2)));
    for (i, r) in records.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        let n = r.peers_detail.len().max(1) as f64;
        let mut times: Vec<f64> = r
            .peers_detail
            .iter()
            .filter_map(|p| p.seconds.map(|s| s / r.t_min_s))
            .collect();
        times.sort_by(f64::total_cmp);
        // A step function: flat until each completion, then up by 1/N.
        let mut points = vec![(0.0, 0.0)];
        for (k, t) in times.iter().enumerate() {
            points.push((*t, k as f64 / n));
            points.push((*t, (k + 1) as f64 / n));
        }
        points.push((x_max, times.len() as f64 / n));
        let label = format!(
            "{} / {} origin ({}/{} complete)",
            r.implementation,
            r.origin.name(),
            r.completed,
            r.peers_detail.len()
        );
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(3)))
            .map_err(|e| anyhow!("{e}"))?
            .label(label)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color.stroke_width(3)));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerRight)
        .label_font(("sans-serif", 16))
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()
        .map_err(|e| anyhow!("{e}"))?;
    root.present().map_err(|e| anyhow!("{e}"))?;
    Ok(())
}
