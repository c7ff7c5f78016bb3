//! Which tenant a request goes to: Zipf-distributed over N tenants (rank 1 the busiest), as
//! traffic across many sites is.

use rand::Rng;
use rand_distr::{Distribution, Zipf};

/// Picks tenant indexes `0..n`, index 0 the most often.
#[derive(Debug, Clone)]
pub struct ZipfPicker {
    distribution: Zipf<f64>,
}

impl ZipfPicker {
    /// A picker over `n` tenants with exponent `s` (1.0 is the classic web-traffic shape; 0 is
    /// uniform).
    ///
    /// # Panics
    ///
    /// When `n` is 0 or `s` is negative or not finite.
    pub fn new(n: usize, s: f64) -> ZipfPicker {
        assert!(n > 0, "Zipf over no tenants");
        let distribution = Zipf::new(n as f64, s).expect("a Zipf exponent of 0 or more");
        ZipfPicker { distribution }
    }

    /// The index of the next request's tenant.
    pub fn pick(&self, rng: &mut impl Rng) -> usize {
        // Zipf samples ranks 1..=n as floats.
        self.distribution.sample(rng) as usize - 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn picks_stay_in_range_and_rank_one_leads() {
        let picker = ZipfPicker::new(100, 1.0);
        let mut rng = StdRng::seed_from_u64(7);
        let mut counts = [0u32; 100];
        for _ in 0..100_000 {
            counts[picker.pick(&mut rng)] += 1;
        }
        assert!(counts[0] > counts[1] && counts[1] > counts[9] && counts[9] > counts[99]);
        // With s = 1, rank 1 gets 1 / H(100) ≈ 19.3 % of requests, rank 2 half of that.
        let share = f64::from(counts[0]) / 100_000.0;
        assert!((share - 0.193).abs() < 0.01, "{share}");
        let ratio = f64::from(counts[0]) / f64::from(counts[1]);
        assert!((ratio - 2.0).abs() < 0.15, "{ratio}");
    }

    #[test]
    fn exponent_zero_is_uniform() {
        let picker = ZipfPicker::new(4, 0.0);
        let mut rng = StdRng::seed_from_u64(1);
        let mut counts = [0u32; 4];
        for _ in 0..40_000 {
            counts[picker.pick(&mut rng)] += 1;
        }
        assert!(
            counts.iter().all(|&c| (9_500..10_500).contains(&c)),
            "{counts:?}"
        );
    }

    #[test]
    fn one_tenant_gets_everything() {
        let picker = ZipfPicker::new(1, 1.0);
        let mut rng = StdRng::seed_from_u64(3);
        assert!((0..1000).all(|_| picker.pick(&mut rng) == 0));
    }
}
