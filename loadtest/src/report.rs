//! A run's results: JSON for machines, a Markdown table for `docs/benchmarks.md`.

use std::fmt::Write as _;

use serde::Serialize;

use crate::driver::Outcome;
use crate::latency::LatencySummary;
use crate::pacing::Pacing;

/// What one run measured.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunReport {
    /// What was measured: the scenario and what varies in it (`hello`, `density n=1000`, ...).
    pub name: String,
    /// `closed` or `open`.
    pub pacing: String,
    /// Connections used.
    pub connections: usize,
    /// The open-loop rate asked for, in requests per second; `None` for closed loop.
    pub target_rate: Option<f64>,
    /// Seconds from the first send to the last answer.
    pub seconds: f64,
    /// Answers with a 2xx status.
    pub ok: u64,
    /// Answers with another status, and requests that failed without an answer.
    pub errors: u64,
    /// Answers per second (`ok + errors` over `seconds`).
    pub requests_per_second: f64,
    /// Latencies of every answer.
    pub latency: LatencySummary,
    /// The gateway's resident set at the end, in bytes, when it was read.
    pub rss_bytes: Option<u64>,
}

impl RunReport {
    /// The report of the run `name`, from what it saw; no RSS yet.
    pub fn new(
        name: impl Into<String>,
        pacing: Pacing,
        connections: usize,
        outcome: &Outcome,
    ) -> RunReport {
        let seconds = outcome.elapsed.as_secs_f64();
        RunReport {
            name: name.into(),
            pacing: match pacing {
                Pacing::Open { .. } => "open",
                Pacing::Closed => "closed",
            }
            .to_owned(),
            connections,
            target_rate: match pacing {
                Pacing::Open { rate } => Some(rate),
                Pacing::Closed => None,
            },
            seconds,
            ok: outcome.ok,
            errors: outcome.errors,
            requests_per_second: (outcome.ok + outcome.errors) as f64 / seconds.max(1e-9),
            latency: outcome.latencies.summary(),
            rss_bytes: None,
        }
    }

    /// The report as pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a report serialises")
    }
}

/// The reports as one Markdown table, a row each, latencies in milliseconds.
pub fn markdown_table(reports: &[RunReport]) -> String {
    let mut out = String::from(
        "| run | pacing | conns | requests/s | errors | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | RSS MiB |\n\
         |---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    let ms = |us: u64| us as f64 / 1000.0;
    for r in reports {
        let pacing = match r.target_rate {
            Some(rate) => format!("{} at {rate:.0}/s", r.pacing),
            None => r.pacing.clone(),
        };
        let rss = r.rss_bytes.map_or_else(
            || "n/a".to_owned(),
            |b| format!("{:.1}", b as f64 / 1048576.0),
        );
        let l = &r.latency;
        writeln!(
            out,
            "| {} | {pacing} | {} | {:.0} | {} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {rss} |",
            r.name,
            r.connections,
            r.requests_per_second,
            r.errors,
            ms(l.p50_us),
            ms(l.p90_us),
            ms(l.p99_us),
            ms(l.p999_us),
            ms(l.max_us),
        )
        .expect("writing to a String never fails");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::latency::Latencies;
    use std::time::Duration;

    fn report(name: &str, target_rate: Option<f64>) -> RunReport {
        let mut latencies = Latencies::new();
        latencies.record(Duration::from_micros(1500));
        RunReport {
            name: name.to_owned(),
            pacing: if target_rate.is_some() {
                "open"
            } else {
                "closed"
            }
            .to_owned(),
            connections: 32,
            target_rate,
            seconds: 2.0,
            ok: 1000,
            errors: 2,
            requests_per_second: 501.0,
            latency: latencies.summary(),
            rss_bytes: Some(64 << 20),
        }
    }

    #[test]
    fn json_has_every_field() {
        let json: serde_json::Value =
            serde_json::from_str(&report("hello", Some(500.0)).to_json()).unwrap();
        assert_eq!(json["name"], "hello");
        assert_eq!(json["target_rate"], 500.0);
        assert_eq!(json["ok"], 1000);
        assert_eq!(json["latency"]["count"], 1);
        assert!(json["latency"]["p999_us"].as_u64().unwrap() >= 1499);
        assert_eq!(json["rss_bytes"], 64 << 20);
    }

    #[test]
    fn the_table_has_a_row_per_run() {
        let table = markdown_table(&[report("hello", None), report("density n=10", Some(2000.0))]);
        let lines: Vec<&str> = table.lines().collect();
        assert_eq!(lines.len(), 4);
        assert!(
            lines[2].starts_with("| hello | closed | 32 | 501 | 2 | 1.50"),
            "{}",
            lines[2]
        );
        assert!(lines[3].contains("| open at 2000/s |"), "{}", lines[3]);
        assert!(lines[3].ends_with("| 64.0 |"), "{}", lines[3]);
    }
}
