//! Request latencies in an HDR histogram (1 µs to 1 h, 3 significant digits), and their
//! summary.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// The longest latency recorded as itself; longer ones are recorded as this.
const HIGHEST: Duration = Duration::from_secs(3600);

/// Latencies of one run, or of one worker to be merged into a run's.
#[derive(Debug, Clone)]
pub struct Latencies {
    histogram: Histogram<u64>,
}

/// What a run's latencies were, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LatencySummary {
    /// Latencies recorded.
    pub count: u64,
    /// Mean.
    pub mean_us: f64,
    /// Median.
    pub p50_us: u64,
    /// 90th percentile.
    pub p90_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// 99.9th percentile.
    pub p999_us: u64,
    /// The largest.
    pub max_us: u64,
}

impl Default for Latencies {
    fn default() -> Self {
        Latencies::new()
    }
}

impl Latencies {
    /// An empty histogram.
    pub fn new() -> Latencies {
        let highest = u64::try_from(HIGHEST.as_micros()).unwrap_or(u64::MAX);
        Latencies {
            histogram: Histogram::new_with_bounds(1, highest, 3)
                .expect("1 µs to 1 h at 3 digits is a valid histogram"),
        }
    }

    /// Records one latency; below 1 µs counts as 1 µs, above 1 h as 1 h.
    pub fn record(&mut self, latency: Duration) {
        let micros = u64::try_from(latency.as_micros())
            .unwrap_or(u64::MAX)
            .clamp(1, self.histogram.high());
        self.histogram.saturating_record(micros);
    }

    /// Adds every latency of `other`.
    pub fn merge(&mut self, other: &Latencies) {
        self.histogram
            .add(&other.histogram)
            .expect("histograms with the same bounds merge");
    }

    /// How many latencies were recorded.
    pub fn count(&self) -> u64 {
        self.histogram.len()
    }

    /// The latency at `quantile` (0 to 1), in microseconds.
    pub fn quantile_us(&self, quantile: f64) -> u64 {
        self.histogram.value_at_quantile(quantile)
    }

    /// The summary; all zeros when nothing was recorded.
    pub fn summary(&self) -> LatencySummary {
        if self.histogram.is_empty() {
            return LatencySummary {
                count: 0,
                mean_us: 0.0,
                p50_us: 0,
                p90_us: 0,
                p99_us: 0,
                p999_us: 0,
                max_us: 0,
            };
        }
        LatencySummary {
            count: self.histogram.len(),
            mean_us: self.histogram.mean(),
            p50_us: self.quantile_us(0.5),
            p90_us: self.quantile_us(0.9),
            p99_us: self.quantile_us(0.99),
            p999_us: self.quantile_us(0.999),
            max_us: self.histogram.max(),
        }
    }

    /// `(latency µs, fraction of requests at or below it)` at each of `points` evenly spread
    /// quantiles, for plotting a distribution.
    pub fn distribution(&self, points: usize) -> Vec<(u64, f64)> {
        if self.histogram.is_empty() || points == 0 {
            return Vec::new();
        }
        (1..=points)
            .map(|i| {
                let q = i as f64 / points as f64;
                (self.quantile_us(q), q)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_a_known_spread() {
        let mut latencies = Latencies::new();
        for us in 1..=10_000u64 {
            latencies.record(Duration::from_micros(us));
        }
        let s = latencies.summary();
        assert_eq!(s.count, 10_000);
        // Three significant digits: within 0.1 %.
        let near = |got: u64, want: u64| got.abs_diff(want) * 1000 <= want;
        assert!(near(s.p50_us, 5_000), "{s:?}");
        assert!(near(s.p90_us, 9_000), "{s:?}");
        assert!(near(s.p99_us, 9_900), "{s:?}");
        assert!(near(s.p999_us, 9_990), "{s:?}");
        assert!(near(s.max_us, 10_000), "{s:?}");
        assert!((s.mean_us - 5_000.5).abs() < 10.0, "{s:?}");
    }

    #[test]
    fn merging_adds_counts_and_keeps_the_max() {
        let mut a = Latencies::new();
        let mut b = Latencies::new();
        a.record(Duration::from_micros(100));
        b.record(Duration::from_millis(50));
        b.record(Duration::from_millis(50));
        a.merge(&b);
        assert_eq!(a.count(), 3);
        assert!(a.summary().max_us >= 49_950);
        assert!(a.summary().p50_us >= 49_950, "two of three are 50 ms");
    }

    #[test]
    fn extremes_are_clamped_not_lost() {
        let mut latencies = Latencies::new();
        latencies.record(Duration::from_nanos(10));
        latencies.record(Duration::from_secs(7200));
        assert_eq!(latencies.count(), 2);
        assert_eq!(latencies.quantile_us(0.0), 1);
        assert!(latencies.summary().max_us >= 3_599_000_000);
    }

    #[test]
    fn an_empty_run_summarises_to_zeros() {
        let s = Latencies::new().summary();
        assert_eq!(s.count, 0);
        assert_eq!(s.max_us, 0);
        assert!(Latencies::new().distribution(10).is_empty());
    }

    #[test]
    fn the_distribution_rises_to_the_max() {
        let mut latencies = Latencies::new();
        for us in [10u64, 20, 30, 40] {
            latencies.record(Duration::from_micros(us));
        }
        let points = latencies.distribution(4);
        assert_eq!(points.len(), 4);
        assert!(points.windows(2).all(|w| w[0].0 <= w[1].0));
        assert_eq!(points.last().unwrap().1, 1.0);
        assert_eq!(points.last().unwrap().0, 40);
    }
}
