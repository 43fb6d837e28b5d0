//! Open-loop pacing: payment `i` is due at `start + i / rate`, whatever happened to earlier ones,
//! so a slow server shows up as latency and lateness instead of silently lowering the offered
//! load (closed-loop generators hide exactly the queueing a benchmark should show).

use std::time::Duration;

use tokio::time::Instant;

/// Hands out due times at a fixed rate until the duration is over.
#[derive(Debug)]
pub struct Pacer {
    start: Instant,
    interval: Duration,
    end: Instant,
    issued: u64,
    late: u64,
}

/// How far behind schedule a due time may be handed out before it counts as late.
const LATE_AFTER: Duration = Duration::from_millis(10);

impl Pacer {
    /// `rate` payments per second for `duration`, starting now.
    ///
    /// # Panics
    /// If `rate` is not a positive finite number (the CLI validates it first).
    #[must_use]
    pub fn new(rate: f64, duration: Duration) -> Self {
        assert!(rate.is_finite() && rate > 0.0, "rate must be positive");
        let start = Instant::now();
        Self {
            start,
            interval: Duration::from_secs_f64(1.0 / rate),
            end: start + duration,
            issued: 0,
            late: 0,
        }
    }

    /// Waits until the next payment is due and returns its sequence number, or `None` when the
    /// duration is over.
    pub async fn next(&mut self) -> Option<u64> {
        let due = self.due(self.issued)?;
        let now = Instant::now();
        if due > now {
            tokio::time::sleep_until(due).await;
        } else if now - due > LATE_AFTER {
            self.late += 1;
        }
        let index = self.issued;
        self.issued += 1;
        Some(index)
    }

    fn due(&self, index: u64) -> Option<Instant> {
        let offset = self.interval.checked_mul(u32::try_from(index).ok()?)?;
        let due = self.start + offset;
        (due < self.end).then_some(due)
    }

    /// Due times handed out so far.
    #[must_use]
    pub fn issued(&self) -> u64 {
        self.issued
    }

    /// Due times handed out more than 10 ms after they were due (the generator could not keep
    /// up: every device was busy or the machine was saturated).
    #[must_use]
    pub fn late(&self) -> u64 {
        self.late
    }

    /// When pacing started.
    #[must_use]
    pub fn start(&self) -> Instant {
        self.start
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn hands_out_rate_times_duration_on_schedule() {
        let mut pacer = Pacer::new(100.0, Duration::from_secs(2));
        let start = pacer.start();
        let mut due = Vec::new();
        while let Some(index) = pacer.next().await {
            due.push((index, Instant::now() - start));
        }
        assert_eq!(due.len(), 200);
        assert_eq!(due[0], (0, Duration::ZERO));
        assert_eq!(due[150], (150, Duration::from_millis(1500)));
        assert_eq!(pacer.issued(), 200);
        assert_eq!(pacer.late(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_consumer_is_counted_late_not_skipped() {
        let mut pacer = Pacer::new(10.0, Duration::from_secs(1));
        assert_eq!(pacer.next().await, Some(0));
        // The consumer stalls for half a second: the next four due times are already past.
        tokio::time::advance(Duration::from_millis(450)).await;
        for expected in 1..=4 {
            assert_eq!(pacer.next().await, Some(expected));
        }
        assert_eq!(
            pacer.late(),
            4,
            "due at 100 to 400 ms, handed out at 450 ms"
        );
        let mut rest = 0;
        while pacer.next().await.is_some() {
            rest += 1;
        }
        assert_eq!(pacer.issued(), 10);
        assert_eq!(rest, 5);
    }
}
