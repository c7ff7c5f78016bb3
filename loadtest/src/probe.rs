//! What the load tester reads off the gateway besides its answers: the resident set from
//! `/proc`, and instantiation quantiles from the Prometheus histogram on `/metrics`.

use std::collections::BTreeMap;

/// The resident set of process `pid`, in bytes (`VmRSS` in `/proc/<pid>/status`).
pub fn rss_bytes(pid: u32) -> std::io::Result<u64> {
    Ok(resident(pid)?.total)
}

/// A process's resident set and what it is made of, in bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Resident {
    /// `VmRSS`: all of it.
    pub total: u64,
    /// `RssAnon`: the heap, stacks, and instance memory written to.
    pub anonymous: u64,
    /// `RssFile`: mapped files: the binary and precompiled artifacts.
    pub file: u64,
    /// `RssShmem`: shared memory mapped in (memfd memory images).
    pub shmem: u64,
}

impl Resident {
    /// `self - earlier`, field by field (never below zero).
    pub fn growth_since(&self, earlier: &Resident) -> Resident {
        Resident {
            total: self.total.saturating_sub(earlier.total),
            anonymous: self.anonymous.saturating_sub(earlier.anonymous),
            file: self.file.saturating_sub(earlier.file),
            shmem: self.shmem.saturating_sub(earlier.shmem),
        }
    }
}

/// Process `pid`'s resident set, from `/proc/<pid>/status`.
pub fn resident(pid: u32) -> std::io::Result<Resident> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    parse_resident(&status).ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("no VmRSS line in /proc/{pid}/status"),
        )
    })
}

fn parse_resident(status: &str) -> Option<Resident> {
    let field = |name: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kib * 1024)
    };
    Some(Resident {
        total: field("VmRSS:")?,
        anonymous: field("RssAnon:").unwrap_or(0),
        file: field("RssFile:").unwrap_or(0),
        shmem: field("RssShmem:").unwrap_or(0),
    })
}

/// The `quantile` (0 to 1) of histogram `name` in a Prometheus text exposition, over all its
/// series (every tenant), interpolated linearly within the bucket as Prometheus's
/// `histogram_quantile` does. `None` when the histogram has no observations.
pub fn histogram_quantile(exposition: &str, name: &str, quantile: f64) -> Option<f64> {
    let prefix = format!("{name}_bucket{{");
    // Cumulative counts by upper bound, summed over series.
    let mut buckets: BTreeMap<u64, (f64, f64)> = BTreeMap::new();
    for line in exposition.lines() {
        let Some(rest) = line.strip_prefix(&prefix) else {
            continue;
        };
        let (labels, value) = rest.rsplit_once("} ")?;
        let le = labels
            .split(',')
            .find_map(|l| l.strip_prefix("le=\""))?
            .trim_end_matches('"');
        let bound: f64 = if le == "+Inf" {
            f64::INFINITY
        } else {
            le.parse().ok()?
        };
        let count: f64 = value.trim().parse().ok()?;
        let entry = buckets.entry(bound.to_bits()).or_insert((bound, 0.0));
        entry.1 += count;
    }
    let mut ordered: Vec<(f64, f64)> = buckets.into_values().collect();
    ordered.sort_by(|a, b| a.0.total_cmp(&b.0));
    let total = ordered.last()?.1;
    if total <= 0.0 {
        return None;
    }
    let rank = quantile.clamp(0.0, 1.0) * total;
    let mut lower = (0.0, 0.0);
    for &(bound, cumulative) in &ordered {
        if cumulative >= rank {
            if bound.is_infinite() {
                return Some(lower.0);
            }
            let in_bucket = cumulative - lower.1;
            let fraction = if in_bucket > 0.0 {
                (rank - lower.1) / in_bucket
            } else {
                1.0
            };
            return Some(lower.0 + (bound - lower.0) * fraction);
        }
        lower = (bound, cumulative);
    }
    Some(lower.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_resident_set_and_its_parts() {
        let status = "Name:\tatoll\nVmPeak:\t  9000 kB\nVmRSS:\t   51200 kB\nRssAnon:\t   40000 kB\n\
                      RssFile:\t   11000 kB\nRssShmem:\t     200 kB\nThreads:\t4\n";
        let resident = parse_resident(status).unwrap();
        assert_eq!(
            resident,
            Resident {
                total: 51200 * 1024,
                anonymous: 40000 * 1024,
                file: 11000 * 1024,
                shmem: 200 * 1024,
            }
        );
        let earlier = Resident {
            total: 1200 * 1024,
            file: 12000 * 1024,
            ..Resident::default()
        };
        assert_eq!(resident.growth_since(&earlier).total, 50000 * 1024);
        assert_eq!(resident.growth_since(&earlier).file, 0, "never below zero");
        assert_eq!(parse_resident("Name:\tx\n"), None);
    }

    #[test]
    fn reads_this_process_rss() {
        assert!(rss_bytes(std::process::id()).unwrap() > 0);
    }

    const EXPOSITION: &str = "\
# TYPE atoll_instantiation_duration_seconds histogram
atoll_instantiation_duration_seconds_bucket{tenant=\"a\",le=\"0.000005\"} 50
atoll_instantiation_duration_seconds_bucket{tenant=\"a\",le=\"0.00001\"} 90
atoll_instantiation_duration_seconds_bucket{tenant=\"a\",le=\"+Inf\"} 100
atoll_instantiation_duration_seconds_sum{tenant=\"a\"} 0.0006
atoll_instantiation_duration_seconds_count{tenant=\"a\"} 100
atoll_instantiation_duration_seconds_bucket{tenant=\"b\",le=\"0.000005\"} 50
atoll_instantiation_duration_seconds_bucket{tenant=\"b\",le=\"0.00001\"} 100
atoll_instantiation_duration_seconds_bucket{tenant=\"b\",le=\"+Inf\"} 100
";

    #[test]
    fn quantiles_sum_series_and_interpolate() {
        let name = "atoll_instantiation_duration_seconds";
        // 200 observations: 100 at or below 5 µs, 190 at or below 10 µs.
        let p50 = histogram_quantile(EXPOSITION, name, 0.5).unwrap();
        assert!((p50 - 0.000005).abs() < 1e-12, "{p50}");
        let p75 = histogram_quantile(EXPOSITION, name, 0.75).unwrap();
        assert!((p75 - 0.0000077777).abs() < 1e-9, "{p75}");
        // Past the last finite bucket: its bound, as Prometheus says.
        let p99 = histogram_quantile(EXPOSITION, name, 0.99).unwrap();
        assert!((p99 - 0.00001).abs() < 1e-12, "{p99}");
        assert_eq!(histogram_quantile(EXPOSITION, "atoll_missing", 0.5), None);
    }
}
