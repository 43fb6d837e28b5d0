//! Live counters every virtual terminal updates, and the once-a-second progress line built from
//! them (standard error, only when progress is enabled; see `commands::output`).

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Counters shared by the fleet's tasks.
#[derive(Debug, Default)]
pub struct Live {
    /// Devices through set-up (registered, approved, keyed, health reported).
    pub ready: AtomicU64,
    /// Devices whose set-up failed.
    pub setup_failed: AtomicU64,
    /// Payments finished (any result).
    pub done: AtomicU64,
    /// Approved by the issuer.
    pub approved: AtomicU64,
    /// Declined by the issuer or the kernel.
    pub declined: AtomicU64,
    /// Ended in an error (transport, refused, kernel failure).
    pub errors: AtomicU64,
    /// Results that differ from what the scenario expects.
    pub unexpected: AtomicU64,
}

impl Live {
    fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// One more on `counter`.
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// The progress line for `phase`, `elapsed` into it.
    #[must_use]
    pub fn line(&self, phase: &str, elapsed: Duration, devices: u64) -> String {
        let secs = elapsed.as_secs_f64();
        match phase {
            "setup" => format!(
                "[{secs:6.1}s] set-up: {}/{devices} devices ready, {} failed",
                Self::get(&self.ready),
                Self::get(&self.setup_failed)
            ),
            _ => {
                let done = Self::get(&self.done);
                let rate = if secs > 0.0 { done as f64 / secs } else { 0.0 };
                format!(
                    "[{secs:6.1}s] {phase}: {done} payments ({rate:.1}/s) approved {} declined {} errors {} unexpected {}",
                    Self::get(&self.approved),
                    Self::get(&self.declined),
                    Self::get(&self.errors),
                    Self::get(&self.unexpected),
                )
            }
        }
    }
}

/// Prints [`Live::line`] every second until dropped.
#[derive(Debug)]
pub struct Ticker {
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Ticker {
    /// Starts printing for `phase` (nothing when `enabled` is false).
    #[must_use]
    pub fn start(live: Arc<Live>, phase: &'static str, devices: u64, enabled: bool) -> Self {
        if !enabled {
            return Self { task: None };
        }
        let start = Instant::now();
        let task = tokio::spawn(async move {
            let mut every = tokio::time::interval(Duration::from_secs(1));
            every.tick().await;
            loop {
                every.tick().await;
                let line = live.line(phase, start.elapsed(), devices);
                let mut stderr = std::io::stderr().lock();
                let _ = writeln!(stderr, "{line}");
            }
        });
        Self { task: Some(task) }
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_show_counts_and_rate() {
        let live = Live::default();
        for _ in 0..30 {
            Live::bump(&live.done);
        }
        for _ in 0..25 {
            Live::bump(&live.approved);
        }
        Live::bump(&live.ready);
        assert_eq!(
            live.line("payments", Duration::from_secs(10), 5),
            "[  10.0s] payments: 30 payments (3.0/s) approved 25 declined 0 errors 0 unexpected 0"
        );
        assert_eq!(
            live.line("setup", Duration::from_millis(500), 5),
            "[   0.5s] set-up: 1/5 devices ready, 0 failed"
        );
    }
}
