//! SVG charts of load-test results (`plotters`, SVG backend only): requests/s and p99 against
//! tenant count, and latency distributions (latency against the share of requests at or
//! below it).

use plotters::prelude::*;

/// One density run, for the tenant-count chart.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DensityPoint {
    /// Tenants deployed and loaded.
    pub tenants: u64,
    /// Answers per second.
    pub requests_per_second: f64,
    /// p99 latency, in milliseconds.
    pub p99_ms: f64,
}

const SIZE: (u32, u32) = (800, 480);

fn failed(e: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("drawing the chart: {e}")
}

/// Requests/s (left) and p99 (right) against tenant count on a log axis, as an SVG document.
pub fn density_chart(points: &[DensityPoint]) -> anyhow::Result<String> {
    anyhow::ensure!(!points.is_empty(), "no density runs to chart");
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(failed)?;
        let max_tenants = points.iter().map(|p| p.tenants).max().unwrap_or(1).max(10) as f64;
        let max_rps = points
            .iter()
            .map(|p| p.requests_per_second)
            .fold(1.0, f64::max);
        let max_p99 = points.iter().map(|p| p.p99_ms).fold(0.1, f64::max);
        let mut chart = ChartBuilder::on(&root)
            .caption("Requests/s and p99 by tenant count", ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .right_y_label_area_size(70)
            .build_cartesian_2d((1.0..max_tenants * 1.5).log_scale(), 0.0..max_rps * 1.1)
            .map_err(failed)?
            .set_secondary_coord((1.0..max_tenants * 1.5).log_scale(), 0.0..max_p99 * 1.2);
        chart
            .configure_mesh()
            .x_desc("tenants")
            .y_desc("requests/s")
            .draw()
            .map_err(failed)?;
        chart
            .configure_secondary_axes()
            .y_desc("p99 (ms)")
            .draw()
            .map_err(failed)?;
        let rps: Vec<(f64, f64)> = points
            .iter()
            .map(|p| (p.tenants as f64, p.requests_per_second))
            .collect();
        chart
            .draw_series(LineSeries::new(rps.clone(), BLUE.stroke_width(2)))
            .map_err(failed)?
            .label("requests/s")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], BLUE));
        chart
            .draw_series(rps.iter().map(|&p| Circle::new(p, 3, BLUE.filled())))
            .map_err(failed)?;
        let p99: Vec<(f64, f64)> = points
            .iter()
            .map(|p| (p.tenants as f64, p.p99_ms))
            .collect();
        chart
            .draw_secondary_series(LineSeries::new(p99, RED.stroke_width(2)))
            .map_err(failed)?
            .label("p99 (ms)")
            .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], RED));
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(failed)?;
        root.present().map_err(failed)?;
    }
    Ok(svg)
}

/// Latency distributions, one line per named run: `(latency µs, share at or below)` points as
/// [`crate::latency::Latencies::distribution`] gives them. Latency on a log axis.
pub fn latency_chart(runs: &[(String, Vec<(u64, f64)>)]) -> anyhow::Result<String> {
    let max_us = runs
        .iter()
        .flat_map(|(_, points)| points.iter().map(|p| p.0))
        .max()
        .ok_or_else(|| anyhow::anyhow!("no latencies to chart"))?
        .max(10) as f64;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(failed)?;
        let mut chart = ChartBuilder::on(&root)
            .caption("Latency distribution", ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d((1.0..max_us * 1.5).log_scale(), 0.0..1.0)
            .map_err(failed)?;
        chart
            .configure_mesh()
            .x_desc("latency (µs)")
            .y_desc("share of requests at or below")
            .draw()
            .map_err(failed)?;
        for (i, (name, points)) in runs.iter().enumerate() {
            let color = Palette99::pick(i).to_rgba();
            let line: Vec<(f64, f64)> = points.iter().map(|&(us, q)| (us as f64, q)).collect();
            chart
                .draw_series(LineSeries::new(line, color.stroke_width(2)))
                .map_err(failed)?
                .label(name.as_str())
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], color));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(failed)?;
        root.present().map_err(failed)?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::latency::Latencies;
    use std::time::Duration;

    #[test]
    fn the_density_chart_is_svg_with_both_series() {
        let points = [10, 100, 1000, 10_000].map(|n| DensityPoint {
            tenants: n,
            requests_per_second: 30_000.0 - n as f64,
            p99_ms: 1.0 + n as f64 / 10_000.0,
        });
        let svg = density_chart(&points).unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..40]);
        assert!(svg.contains("requests/s") && svg.contains("p99 (ms)"));
        assert!(svg.trim_end().ends_with("</svg>"));
    }

    #[test]
    fn the_latency_chart_names_each_run() {
        let mut latencies = Latencies::new();
        for us in 1..=1000u64 {
            latencies.record(Duration::from_micros(us));
        }
        let runs = vec![
            ("atoll".to_owned(), latencies.distribution(50)),
            ("nginx".to_owned(), latencies.distribution(50)),
        ];
        let svg = latency_chart(&runs).unwrap();
        assert!(svg.contains("atoll") && svg.contains("nginx"));
        assert!(svg.trim_end().ends_with("</svg>"));
    }

    #[test]
    fn nothing_to_chart_is_an_error() {
        assert!(density_chart(&[]).is_err());
        assert!(latency_chart(&[]).is_err());
    }
}
