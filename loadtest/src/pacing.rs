//! When requests start, and when a run stops.
//!
//! - **Closed loop**: each of N connections sends its next request as soon as the previous
//!   answer arrives; latency runs from send to answer.
//! - **Open loop**: requests are due at a fixed rate whatever the server does. Workers claim the
//!   next request number from a shared [`OpenLoop`], wait for its due time and send it; latency
//!   runs from the *due* time, so a request that waited for a free connection because the server
//!   stalled is charged for the wait (no coordinated omission).
//!
//! Every run is bounded by [`Bounds`]: a duration and a request count, whichever comes first.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How requests are paced.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pacing {
    /// Each connection sends as soon as its previous answer arrives.
    Closed,
    /// Requests are due at this many per second, spread over the connections.
    Open {
        /// Requests per second, above zero.
        rate: f64,
    },
}

/// Where a run stops: after `duration` or `max_requests`, whichever comes first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bounds {
    /// The longest the run sends for.
    pub duration: Duration,
    /// The most requests the run sends.
    pub max_requests: u64,
}

impl Bounds {
    /// Whether request number `n` (from 0), due at `elapsed` after the start, is past the bounds.
    pub fn excludes(&self, n: u64, elapsed: Duration) -> bool {
        n >= self.max_requests || elapsed >= self.duration
    }
}

/// The open-loop schedule of a run, shared by its workers.
#[derive(Debug)]
pub struct OpenLoop {
    start: Instant,
    rate: f64,
    bounds: Bounds,
    next: AtomicU64,
}

/// A request a worker claimed from an [`OpenLoop`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    /// Its number, from 0.
    pub n: u64,
    /// When it is due: wait until then to send, and measure latency from it.
    pub due: Instant,
}

impl OpenLoop {
    /// A schedule of `rate` requests per second from `start`, within `bounds`.
    ///
    /// # Panics
    ///
    /// When `rate` is not a positive, finite number.
    pub fn new(start: Instant, rate: f64, bounds: Bounds) -> OpenLoop {
        assert!(
            rate.is_finite() && rate > 0.0,
            "an open-loop rate must be positive, not {rate}"
        );
        OpenLoop {
            start,
            rate,
            bounds,
            next: AtomicU64::new(0),
        }
    }

    /// When request `n` is due.
    pub fn due(&self, n: u64) -> Instant {
        self.start + self.offset(n)
    }

    fn offset(&self, n: u64) -> Duration {
        Duration::from_secs_f64(n as f64 / self.rate)
    }

    /// Claims the next request, or `None` once the run's bounds are reached.
    pub fn claim(&self) -> Option<Slot> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        if self.bounds.excludes(n, self.offset(n)) {
            return None;
        }
        Some(Slot {
            n,
            due: self.due(n),
        })
    }
}

/// A request's latency: from when it was due (open loop) or sent (closed loop) to its answer.
pub fn latency(due_or_sent: Instant, answered: Instant) -> Duration {
    answered.saturating_duration_since(due_or_sent)
}

/// `500ms`, `10s` or `2m`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let (number, unit) = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .map_or((text, ""), |at| text.split_at(at));
    let number: f64 = number
        .parse()
        .map_err(|_| format!("{text:?}: expected a number with ms, s or m"))?;
    let seconds = match unit {
        "ms" => number / 1000.0,
        "s" => number,
        "m" => number * 60.0,
        _ => return Err(format!("{text:?}: the unit must be ms, s or m")),
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("{text:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const FOREVER: Bounds = Bounds {
        duration: Duration::from_secs(3600),
        max_requests: u64::MAX,
    };

    #[test]
    fn requests_are_due_at_the_rate() {
        let start = Instant::now();
        let schedule = OpenLoop::new(start, 1000.0, FOREVER);
        assert_eq!(schedule.due(0), start);
        assert_eq!(schedule.due(1) - start, Duration::from_millis(1));
        assert_eq!(schedule.due(2500) - start, Duration::from_millis(2500));
    }

    #[test]
    fn claims_are_numbered_once_across_threads() {
        let schedule = std::sync::Arc::new(OpenLoop::new(
            Instant::now(),
            1e6,
            Bounds {
                duration: Duration::from_secs(3600),
                max_requests: 10_000,
            },
        ));
        let workers: Vec<_> = (0..4)
            .map(|_| {
                let schedule = schedule.clone();
                std::thread::spawn(move || {
                    let mut mine = Vec::new();
                    while let Some(slot) = schedule.claim() {
                        mine.push(slot.n);
                    }
                    mine
                })
            })
            .collect();
        let mut all: Vec<u64> = workers
            .into_iter()
            .flat_map(|w| w.join().unwrap())
            .collect();
        all.sort_unstable();
        assert_eq!(all, (0..10_000).collect::<Vec<_>>());
    }

    #[test]
    fn the_duration_bounds_an_open_loop_run() {
        let schedule = OpenLoop::new(
            Instant::now(),
            100.0,
            Bounds {
                duration: Duration::from_secs(2),
                max_requests: u64::MAX,
            },
        );
        let mut claimed = 0;
        while schedule.claim().is_some() {
            claimed += 1;
        }
        assert_eq!(claimed, 200, "2 s at 100 per second");
    }

    #[test]
    fn a_late_answer_is_charged_from_its_due_time() {
        let start = Instant::now();
        let schedule = OpenLoop::new(start, 10.0, FOREVER);
        let slot = schedule.claim().unwrap();
        let slot = schedule.claim().map(|s| (slot, s)).unwrap().1;
        // Sent 300 ms late because every connection was busy, answered 1 ms after sending.
        let answered = slot.due + Duration::from_millis(301);
        assert_eq!(latency(slot.due, answered), Duration::from_millis(301));
        assert_eq!(latency(answered, slot.due), Duration::ZERO);
    }

    #[test]
    #[should_panic(expected = "positive")]
    fn a_zero_rate_is_refused() {
        let _ = OpenLoop::new(Instant::now(), 0.0, FOREVER);
    }

    #[test]
    fn durations_take_units() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("fast").is_err());
    }
}
