//! The fleet run's summary: one serialisable value (`--json` prints it as is; field names only
//! ever get added) and its text rendering.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use super::stats::{Counts, LatencySummary};

/// The whole run.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// The server driven.
    pub server: String,
    /// Options as given.
    pub options: OptionsView,
    /// The set-up phase.
    pub setup: SetupView,
    /// The paced payment phase.
    pub payments: PaymentsView,
    /// Latency per payment step (`token`, `card`, `pin`, `authorization`, `total`), ms.
    pub latency_ms: BTreeMap<String, LatencySummary>,
    /// What became of the compromised devices.
    pub compromised: CompromisedView,
    /// Every check held: no unexpected result, every compromised device suspended and refused.
    pub ok: bool,
    /// Why `ok` is false (empty when it is true).
    pub problems: Vec<String>,
    /// Things to know when reading the figures (e.g. the server's velocity rule).
    pub notes: Vec<String>,
}

/// The options of the run.
#[derive(Debug, Clone, Serialize)]
pub struct OptionsView {
    /// Virtual devices.
    pub devices: u32,
    /// Of which compromised.
    pub compromised: u32,
    /// Offered payments per second.
    pub rate: f64,
    /// Paced phase, seconds.
    pub duration_s: f64,
    /// Scenario weights.
    pub mix: Vec<(String, u32)>,
}

/// The set-up phase.
#[derive(Debug, Clone, Serialize)]
pub struct SetupView {
    /// Wall time, seconds.
    pub elapsed_s: f64,
    /// Devices ready to pay (healthy ones) or ready to be checked (compromised ones).
    pub ready: u64,
    /// Failures by code.
    pub errors: Counts,
    /// Latency per set-up step (`register`, `approve`, `keys`, `health`), ms.
    pub latency_ms: BTreeMap<String, LatencySummary>,
}

/// The payment phase.
#[derive(Debug, Clone, Serialize)]
pub struct PaymentsView {
    /// Wall time from the first due payment to the last answer, seconds.
    pub elapsed_s: f64,
    /// Payments the pacer offered.
    pub offered: u64,
    /// Offered when every healthy device was still busy (not sent; the generator's limit).
    pub dropped_busy: u64,
    /// Offered when `--max-in-flight` payments were already waiting for answers (not sent).
    pub dropped_in_flight: u64,
    /// Handed out more than 10 ms late (the generator could not keep up).
    pub late: u64,
    /// Payments that got an answer or an error.
    pub completed: u64,
    /// Authorizations the issuer answered (approved + declined by the issuer) per second.
    pub authorizations_per_s: f64,
    /// Completed payments per second.
    pub throughput_per_s: f64,
    /// Approved.
    pub approved: u64,
    /// Declined, by response code (the issuer's ISO 8583 code, or `kernel_<outcome>` when the
    /// card or kernel ended the session without going online).
    pub declined: Counts,
    /// Errors, by stable code.
    pub errors: Counts,
    /// Results that differ from the scenario's expectation, by scenario.
    pub unexpected: Counts,
    /// Completed payments by scenario.
    pub by_scenario: Counts,
}

/// The compromised devices.
#[derive(Debug, Clone, Serialize)]
pub struct CompromisedView {
    /// How many devices reported hooked / rooted signals.
    pub devices: u64,
    /// Of which the admin API shows `SUSPENDED`.
    pub suspended: u64,
    /// Of which a payment attempt was refused (`device_not_active` or similar).
    pub payment_refused: u64,
    /// Their states as the admin API shows them.
    pub states: Counts,
    /// Threat kinds recorded for them.
    pub threats: Counts,
    /// Their device ids (to check them in the console).
    pub device_ids: Vec<String>,
}

impl Summary {
    /// The text rendering.
    #[must_use]
    pub fn human(&self) -> String {
        let mut out = String::new();
        let o = &self.options;
        let _ = writeln!(
            out,
            "fleet against {}: {} devices ({} compromised), {:.1}/s offered for {:.1} s",
            self.server, o.devices, o.compromised, o.rate, o.duration_s
        );
        let mix: Vec<_> = o.mix.iter().map(|(n, w)| format!("{n}={w}")).collect();
        let _ = writeln!(out, "mix: {}", mix.join(","));
        let s = &self.setup;
        let _ = writeln!(
            out,
            "set-up: {} ready in {:.1} s; errors: {}",
            s.ready,
            s.elapsed_s,
            s.errors.line()
        );
        write_latencies(&mut out, &s.latency_ms);
        let p = &self.payments;
        let _ = writeln!(
            out,
            "payments: {} completed of {} offered in {:.1} s ({} dropped: all devices busy, {} dropped: in-flight cap, {} late)",
            p.completed, p.offered, p.elapsed_s, p.dropped_busy, p.dropped_in_flight, p.late
        );
        let _ = writeln!(
            out,
            "throughput: {:.1} payments/s, {:.1} authorizations/s",
            p.throughput_per_s, p.authorizations_per_s
        );
        let _ = writeln!(
            out,
            "approved {}; declined: {}; errors: {}",
            p.approved,
            p.declined.line(),
            p.errors.line()
        );
        let _ = writeln!(out, "by scenario: {}", p.by_scenario.line());
        let _ = writeln!(out, "unexpected results: {}", p.unexpected.line());
        let _ = writeln!(out, "latency per payment step:");
        write_latencies(&mut out, &self.latency_ms);
        let c = &self.compromised;
        let _ = writeln!(
            out,
            "compromised: {} devices, {} suspended, {} refused a payment; states: {}; threats: {}",
            c.devices,
            c.suspended,
            c.payment_refused,
            c.states.line(),
            c.threats.line()
        );
        for note in &self.notes {
            let _ = writeln!(out, "note: {note}");
        }
        if self.ok {
            let _ = writeln!(out, "result: ok");
        } else {
            let _ = writeln!(out, "result: FAILED: {}", self.problems.join("; "));
        }
        out
    }
}

fn write_latencies(out: &mut String, latencies: &BTreeMap<String, LatencySummary>) {
    for (step, l) in latencies {
        let _ = writeln!(
            out,
            "  {step:<14} n={:<7} p50 {:8.2} ms  p90 {:8.2} ms  p99 {:8.2} ms  max {:8.2} ms",
            l.count, l.p50_ms, l.p90_ms, l.p99_ms, l.max_ms
        );
    }
}
