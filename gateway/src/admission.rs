//! Per-tenant admission, decided before a guest runs: the request rate and the concurrency
//! permit. (The body cap is enforced while the proxy reads the body.)
//!
//! Each tenant has its own [`TenantAdmission`]: a lock-free rate limiter (GCRA on one atomic)
//! and a semaphore of `concurrency` permits with a short, bounded queue. A tenant at its cap
//! only ever waits on its own semaphore, so it never slows another tenant's admission.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::Limits;

/// Why a request was refused admission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejection {
    /// Over the tenant's `rate`; retry after this long.
    Rate {
        /// When a request would next be admitted.
        retry_after: Duration,
    },
    /// The tenant's `concurrency` is full and its queue too, or the wait ran out.
    Concurrency,
}

/// Held while a request's instance runs; dropping it frees the tenant's concurrency slot.
#[derive(Debug)]
pub struct Admitted {
    _permit: OwnedSemaphorePermit,
}

/// A tenant's admission state. Lives as long as the tenant, across deploys.
#[derive(Debug)]
pub struct TenantAdmission {
    rate: Option<RateLimiter>,
    slots: Arc<Semaphore>,
    waiting: AtomicUsize,
    max_waiting: usize,
    queue_wait: Duration,
}

impl TenantAdmission {
    /// Admission for `limits`: `rate` requests per second (0: unlimited), `concurrency`
    /// instances at once, and a queue as deep as `concurrency` whose requests wait at most
    /// `queue_wait`.
    pub fn new(limits: &Limits) -> TenantAdmission {
        let concurrency = limits.concurrency.max(1) as usize;
        TenantAdmission {
            rate: (limits.rate > 0).then(|| RateLimiter::new(limits.rate)),
            slots: Arc::new(Semaphore::new(concurrency)),
            waiting: AtomicUsize::new(0),
            max_waiting: concurrency,
            queue_wait: limits.queue_wait,
        }
    }

    /// Admits a request, or says which limit refuses it: [`check_rate`](Self::check_rate),
    /// then [`acquire`](Self::acquire).
    pub async fn admit(&self) -> Result<Admitted, Rejection> {
        self.check_rate()?;
        self.acquire().await
    }

    /// Counts a request against the tenant's rate, or refuses it.
    pub fn check_rate(&self) -> Result<(), Rejection> {
        match &self.rate {
            Some(rate) => rate.check(),
            None => Ok(()),
        }
    }

    /// A concurrency slot, or [`Rejection::Concurrency`]. Waits at most `queue_wait`, and only
    /// when a slot is not free at once.
    pub async fn acquire(&self) -> Result<Admitted, Rejection> {
        if let Ok(permit) = self.slots.clone().try_acquire_owned() {
            return Ok(Admitted { _permit: permit });
        }
        if self.queue_wait.is_zero() {
            return Err(Rejection::Concurrency);
        }
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.max_waiting {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(Rejection::Concurrency);
        }
        let acquired =
            tokio::time::timeout(self.queue_wait, self.slots.clone().acquire_owned()).await;
        self.waiting.fetch_sub(1, Ordering::AcqRel);
        match acquired {
            Ok(Ok(permit)) => Ok(Admitted { _permit: permit }),
            _ => Err(Rejection::Concurrency),
        }
    }

    /// Instances of this tenant running now.
    pub fn active(&self) -> usize {
        self.max_waiting - self.slots.available_permits()
    }
}

/// A generic cell rate algorithm limiter: `rate` requests per second with a burst of one
/// second's worth, on a single atomic (the theoretical arrival time).
#[derive(Debug)]
struct RateLimiter {
    origin: Instant,
    /// Nanoseconds between two requests at the steady rate.
    interval: u64,
    /// How far ahead of now the theoretical arrival time may run: the burst.
    tolerance: u64,
    tat: AtomicU64,
}

impl RateLimiter {
    fn new(rate: u32) -> RateLimiter {
        let interval = 1_000_000_000 / u64::from(rate.max(1));
        RateLimiter {
            origin: Instant::now(),
            interval,
            tolerance: interval * u64::from(rate.max(1)),
            tat: AtomicU64::new(0),
        }
    }

    fn check(&self) -> Result<(), Rejection> {
        let now = u64::try_from(self.origin.elapsed().as_nanos()).unwrap_or(u64::MAX);
        let mut tat = self.tat.load(Ordering::Acquire);
        loop {
            let next = tat.max(now) + self.interval;
            if next - now > self.tolerance {
                let retry_after = Duration::from_nanos(next - now - self.tolerance);
                return Err(Rejection::Rate { retry_after });
            }
            match self
                .tat
                .compare_exchange_weak(tat, next, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return Ok(()),
                Err(actual) => tat = actual,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(concurrency: u32, rate: u32, queue_wait: Duration) -> Limits {
        Limits {
            concurrency,
            rate,
            queue_wait,
            ..Limits::default()
        }
    }

    #[test]
    fn the_rate_admits_one_seconds_burst_then_refuses() {
        let limiter = RateLimiter::new(10);
        for i in 0..10 {
            assert_eq!(limiter.check(), Ok(()), "request {i}");
        }
        match limiter.check() {
            Err(Rejection::Rate { retry_after }) => {
                assert!(retry_after <= Duration::from_millis(100), "{retry_after:?}");
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn concurrency_waits_briefly_then_refuses() {
        let admission = TenantAdmission::new(&limits(1, 0, Duration::from_millis(20)));
        let first = admission.admit().await.unwrap();
        assert_eq!(admission.active(), 1);
        let started = Instant::now();
        assert_eq!(admission.admit().await.unwrap_err(), Rejection::Concurrency);
        assert!(started.elapsed() >= Duration::from_millis(20));
        drop(first);
        assert_eq!(admission.active(), 0);
        admission.admit().await.unwrap();
    }

    #[tokio::test]
    async fn a_queued_request_gets_the_freed_slot() {
        let admission = Arc::new(TenantAdmission::new(&limits(1, 0, Duration::from_secs(10))));
        let first = admission.admit().await.unwrap();
        let waiter = tokio::spawn({
            let admission = admission.clone();
            async move { admission.admit().await.map(|_| ()) }
        });
        while admission.waiting.load(Ordering::Acquire) == 0 {
            tokio::task::yield_now().await;
        }
        drop(first);
        assert_eq!(waiter.await.unwrap(), Ok(()));
    }

    #[tokio::test]
    async fn the_queue_is_bounded() {
        let admission = Arc::new(TenantAdmission::new(&limits(1, 0, Duration::from_secs(10))));
        let _running = admission.admit().await.unwrap();
        let queued = tokio::spawn({
            let admission = admission.clone();
            async move { admission.admit().await.map(|_| ()) }
        });
        while admission.waiting.load(Ordering::Acquire) == 0 {
            tokio::task::yield_now().await;
        }
        // The queue (depth = concurrency = 1) is full: refused at once, not after 10 s.
        let started = Instant::now();
        assert_eq!(admission.admit().await.unwrap_err(), Rejection::Concurrency);
        assert!(started.elapsed() < Duration::from_secs(5));
        queued.abort();
    }
}
