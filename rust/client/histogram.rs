//! A small log-linear latency histogram (the HdrHistogram idea without the crate): values in microseconds,
//! 64 linear sub-buckets per power of two, so any recorded value is reported within 1/64 (1.6%) of itself.
//! Fixed size (a few KiB), no allocation per record, and mergeable across processes by bucket.

/// Linear sub-buckets per power of two; 64 gives 1.6% resolution, plenty for p50/p99 of round trips.
const SUB_BITS: u32 = 6;
const SUB: u64 = 1 << SUB_BITS;
/// Powers of two covered above the first linear range: up to 2^(6+34) µs, far beyond any phase's length.
const EXPONENTS: usize = 35;

#[derive(Debug, Clone)]
pub struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max: u64,
    sum: u128,
}

impl Default for Histogram {
    fn default() -> Self {
        Self::new()
    }
}

/// Bucket index of `v`: values below 64 have their own bucket; above, the top 6 significant bits pick one.
fn index_of(v: u64) -> usize {
    if v < SUB {
        return v as usize;
    }
    let exp = 63 - v.leading_zeros() - SUB_BITS + 1; // 1 for 64..127
    let sub = (v >> (exp - 1)) - SUB; // 0..63: the 6 bits after the leading one... in the upper half
    (SUB as usize) * exp as usize + sub as usize
}

/// The largest value that falls in bucket `i` (reported value: never under-states a latency).
fn upper_of(i: usize) -> u64 {
    let (exp, sub) = (i as u64 / SUB, i as u64 % SUB);
    if exp == 0 {
        return sub;
    }
    let width = 1u64 << (exp - 1);
    (SUB + sub) * width + width - 1
}

impl Histogram {
    pub fn new() -> Self {
        Self {
            counts: vec![0; SUB as usize * (EXPONENTS + 1)],
            total: 0,
            max: 0,
            sum: 0,
        }
    }

    pub fn record(&mut self, micros: u64) {
        let i = index_of(micros).min(self.counts.len() - 1);
        self.counts[i] += 1;
        self.total += 1;
        self.max = self.max.max(micros);
        self.sum += u128::from(micros);
    }

    pub fn count(&self) -> u64 {
        self.total
    }

    pub fn max(&self) -> u64 {
        self.max
    }

    pub fn mean(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.sum as f64 / self.total as f64
        }
    }

    /// The value at quantile `q` (0..=1): the upper bound of the bucket holding that rank, capped at the
    /// largest value seen. 0 when empty.
    pub fn quantile(&self, q: f64) -> u64 {
        if self.total == 0 {
            return 0;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return upper_of(i).min(self.max);
            }
        }
        self.max
    }

    /// Non-empty buckets as `(upper bound µs, count)`, ascending: what another process needs to merge.
    pub fn buckets(&self) -> Vec<(u64, u64)> {
        self.counts
            .iter()
            .enumerate()
            .filter(|(_, &c)| c > 0)
            .map(|(i, &c)| (upper_of(i), c))
            .collect()
    }

    pub fn clear(&mut self) {
        self.counts.iter_mut().for_each(|c| *c = 0);
        self.total = 0;
        self.max = 0;
        self.sum = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_tight() {
        let mut prev_upper = None;
        for i in 0..SUB as usize * 20 {
            let up = upper_of(i);
            if let Some(p) = prev_upper {
                assert_eq!(
                    index_of(p + 1),
                    i,
                    "bucket {i} starts right after the previous"
                );
            }
            assert_eq!(index_of(up), i);
            prev_upper = Some(up);
        }
        for v in [
            0u64,
            1,
            63,
            64,
            65,
            127,
            128,
            1000,
            12_345,
            1 << 30,
            u32::MAX as u64,
        ] {
            let up = upper_of(index_of(v));
            assert!(
                up >= v && (up - v) as f64 <= v as f64 / 64.0 + 1.0,
                "{v} -> {up}"
            );
        }
    }

    #[test]
    fn quantiles() {
        let mut h = Histogram::new();
        assert_eq!(h.quantile(0.5), 0);
        for v in 1..=1000u64 {
            h.record(v * 10);
        }
        assert_eq!(h.count(), 1000);
        let p50 = h.quantile(0.5);
        assert!((5000..=5000 + 5000 / 64).contains(&p50), "{p50}");
        let p99 = h.quantile(0.99);
        assert!((9900..=9900 + 9900 / 64).contains(&p99), "{p99}");
        assert_eq!(h.quantile(1.0), 10_000);
        assert_eq!(h.max(), 10_000);
        assert!((h.mean() - 5005.0).abs() < 1e-9);
        assert_eq!(h.buckets().iter().map(|b| b.1).sum::<u64>(), 1000);
        h.clear();
        assert_eq!((h.count(), h.buckets().len()), (0, 0));
    }
}
