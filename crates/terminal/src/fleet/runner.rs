//! The paced payment phase: a pool of idle devices, the pacer's due times, one payment per due
//! time on an idle device, results checked against the scenario and recorded.
//!
//! A device pays one payment at a time (its DUKPT counter and token cache are sequential, as on
//! a phone); when every device is busy at a due time, the payment is dropped and counted
//! (`dropped_busy`): more devices are needed for that rate, and the summary says so rather than
//! queueing invisibly.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use super::live::Live;
use super::mix::{Expect, Mix, Scenario};
use super::pace::Pacer;
use super::stats::{Counts, StepLatencies};

/// How one payment ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PayResult {
    /// Approved by the issuer.
    Approved,
    /// Declined: the issuer's response code, or `kernel` for a decline by the card or kernel.
    Declined(String),
    /// An error with its stable code (transport, refused, kernel failure).
    Error(String),
}

/// One payment's result with the time of each step (`token`, `card`, `pin`, `authorization`,
/// `total`).
#[derive(Debug, Clone)]
pub struct PayReport {
    /// The result.
    pub result: PayResult,
    /// Step timings.
    pub steps: Vec<(&'static str, Duration)>,
}

/// A virtual terminal the runner can pay with.
pub trait FleetTerminal: Send + 'static {
    /// Pays `amount_minor` playing `scenario`.
    fn pay(
        &mut self,
        scenario: Scenario,
        amount_minor: u64,
    ) -> impl Future<Output = PayReport> + Send;
}

/// What the payment phase measured.
#[derive(Debug, Default, Clone)]
pub struct RunStats {
    /// Due times the pacer handed out.
    pub offered: u64,
    /// Of which dropped because every device was busy.
    pub dropped_busy: u64,
    /// Of which dropped because `max_in_flight` payments were already waiting for answers.
    pub dropped_in_flight: u64,
    /// Of which handed out late.
    pub late: u64,
    /// Payments finished.
    pub completed: u64,
    /// Approved.
    pub approved: u64,
    /// Declines by code.
    pub declined: Counts,
    /// Errors by code.
    pub errors: Counts,
    /// Unexpected results by scenario.
    pub unexpected: Counts,
    /// Completed by scenario.
    pub by_scenario: Counts,
    /// Latency per step.
    pub latencies: StepLatencies,
    /// From the first due time to the last answer.
    pub elapsed: Duration,
}

impl RunStats {
    fn record(&mut self, scenario: &Scenario, report: &PayReport) {
        self.completed += 1;
        self.by_scenario.add(scenario.name);
        for (step, elapsed) in &report.steps {
            self.latencies.record(step, *elapsed);
        }
        let expected = match (&report.result, scenario.expect) {
            (PayResult::Approved, Expect::Approved) => true,
            (PayResult::Declined(code), Expect::Declined(want)) => code == want,
            _ => false,
        };
        match &report.result {
            PayResult::Approved => self.approved += 1,
            PayResult::Declined(code) => self.declined.add(code),
            PayResult::Error(code) => self.errors.add(code),
        }
        if !expected {
            self.unexpected.add(scenario.name);
        }
    }
}

/// How long in-flight payments may take to finish after the paced phase ends.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs the paced phase with `devices` at `rate` per second for `duration`, with at most
/// `max_in_flight` payments waiting for answers at once (`None`: as many as there are devices).
///
/// The cap exists because an open-loop fleet offered more than the server can answer only
/// queues requests at the server and measures the queue; with a cap the fleet behaves like a
/// load generator with a bounded connection pool and measures the server's throughput.
pub async fn run<T: FleetTerminal>(
    devices: Vec<T>,
    mix: &Mix,
    rate: f64,
    duration: Duration,
    max_in_flight: Option<usize>,
    live: Arc<Live>,
) -> RunStats {
    let stats = Arc::new(Mutex::new(RunStats::default()));
    let (idle_tx, mut idle_rx) = mpsc::unbounded_channel();
    for device in devices {
        let _ = idle_tx.send(device);
    }
    let mut pacer = Pacer::new(rate, duration);
    let start = pacer.start();
    let mut in_flight = tokio::task::JoinSet::new();
    while let Some(index) = pacer.next().await {
        // Collect finished tasks as we go so the set stays small.
        while in_flight.try_join_next().is_some() {}
        if max_in_flight.is_some_and(|cap| in_flight.len() >= cap) {
            lock(&stats).dropped_in_flight += 1;
            continue;
        }
        let Ok(mut device) = idle_rx.try_recv() else {
            lock(&stats).dropped_busy += 1;
            continue;
        };
        let scenario = mix.pick(index);
        let amount = mix.amount_minor(index, &scenario);
        let stats = stats.clone();
        let idle_tx = idle_tx.clone();
        let live = live.clone();
        in_flight.spawn(async move {
            let report = device.pay(scenario, amount).await;
            Live::bump(&live.done);
            match &report.result {
                PayResult::Approved => Live::bump(&live.approved),
                PayResult::Declined(_) => Live::bump(&live.declined),
                PayResult::Error(_) => Live::bump(&live.errors),
            }
            let mut stats = lock(&stats);
            let unexpected_before = stats.unexpected.total();
            stats.record(&scenario, &report);
            if stats.unexpected.total() > unexpected_before {
                Live::bump(&live.unexpected);
            }
            drop(stats);
            let _ = idle_tx.send(device);
        });
    }
    let drain = async { while in_flight.join_next().await.is_some() {} };
    if tokio::time::timeout(DRAIN_TIMEOUT, drain).await.is_err() {
        let abandoned = in_flight.len();
        in_flight.abort_all();
        let mut stats = lock(&stats);
        for _ in 0..abandoned {
            stats.errors.add("drain_timeout");
        }
    }
    let mut stats = lock(&stats).clone();
    stats.offered = pacer.issued();
    stats.late = pacer.late();
    stats.elapsed = Instant::now() - start;
    stats
}

fn lock(stats: &Mutex<RunStats>) -> std::sync::MutexGuard<'_, RunStats> {
    // A panicking payment task must not hide the others' results.
    stats
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A terminal that answers as the issuer simulator's scenario table would, after a fixed
    /// delay, and gets one scenario wrong on purpose.
    struct Scripted {
        delay: Duration,
    }

    impl FleetTerminal for Scripted {
        async fn pay(&mut self, scenario: Scenario, amount_minor: u64) -> PayReport {
            tokio::time::sleep(self.delay).await;
            let result = match (scenario.name, amount_minor % 100) {
                ("wrong-pin", _) => PayResult::Approved,
                (_, 51) => PayResult::Declined("51".to_owned()),
                _ => PayResult::Approved,
            };
            PayReport {
                result,
                steps: vec![("total", self.delay)],
            }
        }
    }

    /// Runs one second at 10 payments a second on `devices` scripted devices that take
    /// `delay_ms` each.
    async fn run_scripted(
        devices: usize,
        delay_ms: u64,
        max_in_flight: Option<usize>,
        live: Arc<Live>,
    ) -> RunStats {
        let mix = Mix::parse("visa-fdda=2,insufficient-funds=1,wrong-pin=1").unwrap();
        let devices = (0..devices)
            .map(|_| Scripted {
                delay: Duration::from_millis(delay_ms),
            })
            .collect();
        run(
            devices,
            &mix,
            10.0,
            Duration::from_secs(1),
            max_in_flight,
            live,
        )
        .await
    }

    #[tokio::test(start_paused = true)]
    async fn paces_checks_expectations_and_counts_busy_drops() {
        let live = Arc::new(Live::default());
        // Two devices, 100 ms per payment, 10 due per second: ~20 can be served in 1 s.
        let stats = run_scripted(2, 100, None, live.clone()).await;
        assert_eq!(stats.offered, 10);
        assert_eq!(stats.dropped_busy, 0);
        assert_eq!(stats.completed, 10);
        assert_eq!(stats.approved + stats.declined.total(), 10);
        assert_eq!(
            stats.declined.get("51"),
            stats.by_scenario.get("insufficient-funds")
        );
        assert_eq!(
            stats.unexpected.get("wrong-pin"),
            stats.by_scenario.get("wrong-pin")
        );
        assert_eq!(stats.unexpected.total(), stats.by_scenario.get("wrong-pin"));
        assert_eq!(stats.latencies.get("total").unwrap().len(), 10);
        assert_eq!(live.done.load(std::sync::atomic::Ordering::Relaxed), 10);

        // One device, 250 ms per payment, 10 due per second: most due times find it busy.
        let stats = run_scripted(1, 250, None, live.clone()).await;
        assert_eq!(stats.offered, 10);
        assert_eq!(stats.completed + stats.dropped_busy, 10);
        assert!((3..=4).contains(&stats.completed), "{stats:?}");

        // Ten idle devices, 250 ms per payment, at most two in flight: the cap, not the
        // devices, limits what is sent, and the drops are counted as such.
        let stats = run_scripted(10, 250, Some(2), live).await;
        assert_eq!(stats.offered, 10);
        assert_eq!(stats.dropped_busy, 0);
        assert_eq!(stats.completed + stats.dropped_in_flight, 10);
        assert!((6..=8).contains(&stats.completed), "{stats:?}");
    }
}
