//! What the fleet measures: latency samples per step, outcomes, and errors by code.
//!
//! Samples are kept whole (a run is bounded in count and time, so at most a few hundred thousand
//! per step) and sorted once at the end; percentiles are nearest-rank, so every reported figure is
//! a latency that was really observed.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;

/// Latency samples of one step.
#[derive(Debug, Default, Clone)]
pub struct Samples {
    micros: Vec<u64>,
}

impl Samples {
    /// Adds one observation.
    pub fn record(&mut self, elapsed: Duration) {
        self.micros
            .push(u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX));
    }

    /// Adds every observation of `other`.
    pub fn merge(&mut self, other: &Samples) {
        self.micros.extend_from_slice(&other.micros);
    }

    /// Number of observations.
    #[must_use]
    pub fn len(&self) -> usize {
        self.micros.len()
    }

    /// No observation yet.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.micros.is_empty()
    }

    /// The summary (percentiles in milliseconds), `None` without samples.
    #[must_use]
    pub fn summary(&self) -> Option<LatencySummary> {
        if self.micros.is_empty() {
            return None;
        }
        let mut sorted = self.micros.clone();
        sorted.sort_unstable();
        let ms = |micros: u64| micros as f64 / 1000.0;
        let total: u128 = sorted.iter().map(|&m| u128::from(m)).sum();
        Some(LatencySummary {
            count: sorted.len(),
            min_ms: ms(sorted[0]),
            mean_ms: total as f64 / sorted.len() as f64 / 1000.0,
            p50_ms: ms(nearest_rank(&sorted, 50.0)),
            p90_ms: ms(nearest_rank(&sorted, 90.0)),
            p99_ms: ms(nearest_rank(&sorted, 99.0)),
            max_ms: ms(sorted[sorted.len() - 1]),
        })
    }
}

/// The nearest-rank percentile of sorted, non-empty samples.
fn nearest_rank(sorted: &[u64], percentile: f64) -> u64 {
    let rank = (percentile / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Percentiles of one step, in milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LatencySummary {
    /// Observations.
    pub count: usize,
    /// Fastest.
    pub min_ms: f64,
    /// Arithmetic mean.
    pub mean_ms: f64,
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Slowest.
    pub max_ms: f64,
}

/// Latency samples per named step (`token`, `card`, `pin`, `authorization`, `total`, and the
/// set-up steps), in a stable order.
#[derive(Debug, Default, Clone)]
pub struct StepLatencies {
    steps: BTreeMap<&'static str, Samples>,
}

impl StepLatencies {
    /// Adds one observation of `step`.
    pub fn record(&mut self, step: &'static str, elapsed: Duration) {
        self.steps.entry(step).or_default().record(elapsed);
    }

    /// Adds every observation of `other`.
    pub fn merge(&mut self, other: &StepLatencies) {
        for (step, samples) in &other.steps {
            self.steps.entry(step).or_default().merge(samples);
        }
    }

    /// Samples of one step.
    #[must_use]
    pub fn get(&self, step: &str) -> Option<&Samples> {
        self.steps.get(step)
    }

    /// The summary of every step that has samples.
    #[must_use]
    pub fn summary(&self) -> BTreeMap<String, LatencySummary> {
        self.steps
            .iter()
            .filter_map(|(step, samples)| Some(((*step).to_owned(), samples.summary()?)))
            .collect()
    }
}

/// Counts by a stable code (outcomes, error codes).
#[derive(Debug, Default, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct Counts(BTreeMap<String, u64>);

impl Counts {
    /// Counts one more `code`.
    pub fn add(&mut self, code: &str) {
        *self.0.entry(code.to_owned()).or_default() += 1;
    }

    /// Adds every count of `other`.
    pub fn merge(&mut self, other: &Counts) {
        for (code, n) in &other.0 {
            *self.0.entry(code.clone()).or_default() += n;
        }
    }

    /// The count of `code` (0 when never seen).
    #[must_use]
    pub fn get(&self, code: &str) -> u64 {
        self.0.get(code).copied().unwrap_or(0)
    }

    /// Sum of all counts.
    #[must_use]
    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }

    /// `code=n` pairs, most frequent first, for one line of text.
    #[must_use]
    pub fn line(&self) -> String {
        if self.0.is_empty() {
            return "none".to_owned();
        }
        let mut pairs: Vec<_> = self.0.iter().collect();
        pairs.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
        pairs
            .iter()
            .map(|(code, n)| format!("{code}={n}"))
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// The codes and counts.
    #[must_use]
    pub fn as_map(&self) -> &BTreeMap<String, u64> {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples(millis: &[u64]) -> Samples {
        let mut samples = Samples::default();
        for &ms in millis {
            samples.record(Duration::from_millis(ms));
        }
        samples
    }

    #[test]
    fn percentiles_are_nearest_rank_observations() {
        let summary = samples(&(1..=100).rev().collect::<Vec<_>>())
            .summary()
            .unwrap();
        assert_eq!(summary.count, 100);
        assert_eq!(summary.p50_ms, 50.0);
        assert_eq!(summary.p90_ms, 90.0);
        assert_eq!(summary.p99_ms, 99.0);
        assert_eq!(summary.min_ms, 1.0);
        assert_eq!(summary.max_ms, 100.0);
        assert_eq!(summary.mean_ms, 50.5);
        // Few samples: p99 is the slowest one, never an interpolated value.
        let summary = samples(&[7, 3, 5]).summary().unwrap();
        assert_eq!((summary.p50_ms, summary.p99_ms), (5.0, 7.0));
        assert!(Samples::default().summary().is_none());
    }

    #[test]
    fn steps_and_counts_merge() {
        let mut a = StepLatencies::default();
        a.record("token", Duration::from_millis(2));
        let mut b = StepLatencies::default();
        b.record("token", Duration::from_millis(4));
        b.record("total", Duration::from_millis(9));
        a.merge(&b);
        assert_eq!(a.get("token").unwrap().len(), 2);
        assert_eq!(a.summary().keys().collect::<Vec<_>>(), ["token", "total"]);

        let mut counts = Counts::default();
        counts.add("approved");
        counts.add("declined_51");
        counts.add("approved");
        let mut more = Counts::default();
        more.add("declined_51");
        more.add("declined_51");
        counts.merge(&more);
        assert_eq!(counts.get("approved"), 2);
        assert_eq!(counts.total(), 5);
        assert_eq!(counts.line(), "declined_51=3 approved=2");
        assert_eq!(Counts::default().line(), "none");
    }
}
