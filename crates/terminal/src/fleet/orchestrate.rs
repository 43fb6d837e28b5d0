//! One fleet run from start to summary: admin log-in and key provisioning, device set-up in
//! parallel (bounded), the paced payment phase, then the compromised devices' check through the
//! admin API.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use super::admin::{AdminClient, AdminCredentials, AdminError};
use super::cards::CardBook;
use super::device::{self, SetupTimings, VirtualDevice};
use super::live::{Live, Ticker};
use super::mix::Mix;
use super::runner;
use super::stats::{Counts, StepLatencies};
use super::summary::{CompromisedView, OptionsView, PaymentsView, SetupView, Summary};
use crate::CliError;
use crate::error::{EXIT_REFUSED, EXIT_UNREACHABLE};

/// A fleet run's configuration (validated by the command).
#[derive(Debug, Clone)]
pub struct FleetConfig {
    /// Base URL of a loopback server.
    pub server: String,
    /// Virtual devices.
    pub devices: u32,
    /// Of which compromised (the first ones set up).
    pub compromised: u32,
    /// Offered payments per second.
    pub rate: f64,
    /// Paced phase.
    pub duration: Duration,
    /// Scenario mix.
    pub mix: Mix,
    /// Admin credentials.
    pub credentials: AdminCredentials,
    /// Existing merchant, else one is created.
    pub merchant: Option<String>,
    /// Devices set up at the same time.
    pub setup_concurrency: usize,
    /// At most this many payments waiting for answers at once (`None`: one per device).
    pub max_in_flight: Option<usize>,
    /// Show progress on standard error.
    pub progress: bool,
    /// Register each device from its own `X-Forwarded-For` address (see `fleet::enrol`).
    pub forwarded_for: bool,
}

fn admin_error(error: &AdminError, doing: &str) -> CliError {
    let exit = if error.status == 0 {
        EXIT_UNREACHABLE
    } else {
        EXIT_REFUSED
    };
    CliError::new(
        error.code.clone(),
        format!("{doing}: {}", error.message),
        exit,
    )
}

/// Runs the fleet and returns its summary.
///
/// # Errors
/// Only what stops the run before it starts: the server unreachable or refusing the admin
/// credentials, the merchant or the payment keys impossible to create. Failures of single
/// devices or payments are counted in the summary instead.
pub async fn run(config: FleetConfig) -> Result<Summary, CliError> {
    let admin = Arc::new(
        AdminClient::new(&config.server, config.credentials.clone())
            .map_err(|error| admin_error(&error, "admin client"))?,
    );
    admin
        .authenticate()
        .await
        .map_err(|error| admin_error(&error, "admin log-in"))?;
    if matches!(config.credentials, AdminCredentials::Password { .. }) {
        admin
            .ensure_payment_keys()
            .await
            .map_err(|error| admin_error(&error, "provisioning the BDK and zone PIN key"))?;
    }
    let merchant = match &config.merchant {
        Some(id) => id.clone(),
        None => {
            let stamp = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis());
            admin
                .create_merchant(&format!("Fleet simulator {stamp}"))
                .await
                .map_err(|error| admin_error(&error, "creating the fleet's merchant"))?
        }
    };

    // Every scenario's card, personalised once for the whole run (see `fleet::cards`).
    let cards = Arc::new(CardBook::for_scenarios().map_err(|error| {
        CliError::new(error.code(), error.to_string(), crate::error::EXIT_CARD)
    })?);

    // Set-up: every device registers, is approved, gets keys and reports its health.
    let live = Arc::new(Live::default());
    let setup_start = Instant::now();
    let ticker = Ticker::start(
        live.clone(),
        "setup",
        u64::from(config.devices),
        config.progress,
    );
    let gate = Arc::new(Semaphore::new(config.setup_concurrency));
    let mut tasks = tokio::task::JoinSet::new();
    for index in 0..config.devices {
        let compromised = index < config.compromised;
        let admin = admin.clone();
        let gate = gate.clone();
        let live = live.clone();
        let server = config.server.clone();
        let merchant = merchant.clone();
        let forwarded_for = config.forwarded_for;
        let cards = cards.clone();
        tasks.spawn(async move {
            let _permit = gate.acquire_owned().await;
            let result = device::setup(
                &server,
                &merchant,
                &admin,
                index,
                compromised,
                forwarded_for,
                cards,
            )
            .await;
            match &result {
                Ok(_) => Live::bump(&live.ready),
                Err(_) => Live::bump(&live.setup_failed),
            }
            (compromised, result)
        });
    }
    let mut healthy = Vec::new();
    let mut compromised = Vec::new();
    let mut setup_errors = Counts::default();
    let mut setup_latencies = StepLatencies::default();
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok((is_compromised, Ok((device, timings)))) => {
                record_setup(&mut setup_latencies, &timings);
                if is_compromised {
                    compromised.push(device);
                } else {
                    healthy.push(device);
                }
            }
            Ok((_, Err(code))) => setup_errors.add(&code),
            Err(_) => setup_errors.add("setup_task_panicked"),
        }
    }
    drop(ticker);
    let setup_elapsed = setup_start.elapsed();

    // The paced payment phase, on the healthy devices.
    let ticker = Ticker::start(
        live.clone(),
        "payments",
        u64::from(config.devices),
        config.progress,
    );
    let stats = if healthy.is_empty() {
        runner::RunStats::default()
    } else {
        runner::run(
            healthy,
            &config.mix,
            config.rate,
            config.duration,
            config.max_in_flight,
            live,
        )
        .await
    };
    drop(ticker);

    // The compromised devices: a payment must be refused and the admin API must show them
    // SUSPENDED.
    let mut view = CompromisedView {
        devices: u64::from(config.compromised),
        suspended: 0,
        payment_refused: 0,
        states: Counts::default(),
        threats: Counts::default(),
        device_ids: compromised.iter().map(|d| d.id().to_owned()).collect(),
    };
    for device in &mut compromised {
        if device.payment_is_refused().await {
            view.payment_refused += 1;
        }
        match admin.device_state(device.id()).await {
            Ok(state) => {
                if state == "SUSPENDED" {
                    view.suspended += 1;
                }
                view.states.add(&state);
            }
            Err(error) => view.states.add(&format!("error:{}", error.code)),
        }
        if let Ok(kinds) = admin.threat_kinds(device.id()).await {
            for kind in kinds {
                view.threats.add(&kind);
            }
        }
    }

    let mut problems = Vec::new();
    if setup_errors.total() > 0 {
        problems.push(format!("set-up failed: {}", setup_errors.line()));
    }
    if stats.unexpected.total() > 0 {
        problems.push(format!(
            "unexpected payment results: {}",
            stats.unexpected.line()
        ));
    }
    if view.suspended < view.devices {
        problems.push(format!(
            "{} of {} compromised devices not SUSPENDED",
            view.devices - view.suspended,
            view.devices
        ));
    }
    if view.payment_refused < view.devices {
        problems.push(format!(
            "{} of {} compromised devices could still pay",
            view.devices - view.payment_refused,
            view.devices
        ));
    }
    let mut notes = Vec::new();
    let healthy_devices = u64::from(config.devices - config.compromised).max(1) as f64;
    let per_device_per_minute =
        config.rate * config.duration.as_secs_f64().min(60.0) / healthy_devices;
    if per_device_per_minute > VELOCITY_LIMIT_PER_MINUTE {
        notes.push(format!(
            "each device is offered about {per_device_per_minute:.0} payments a minute; the \
             server's default velocity rule blocks a device above {VELOCITY_LIMIT_PER_MINUTE} \
             (use more devices, a lower rate or a shorter run)"
        ));
    }
    let secs = stats.elapsed.as_secs_f64();
    let per_second = |n: u64| if secs > 0.0 { n as f64 / secs } else { 0.0 };
    let issuer_answers = stats.approved
        + stats
            .declined
            .as_map()
            .iter()
            .filter(|(code, _)| !code.starts_with("kernel"))
            .map(|(_, n)| n)
            .sum::<u64>();
    Ok(Summary {
        server: config.server.clone(),
        options: OptionsView {
            devices: config.devices,
            compromised: config.compromised,
            rate: config.rate,
            duration_s: config.duration.as_secs_f64(),
            mix: config
                .mix
                .weights()
                .iter()
                .map(|(name, weight)| ((*name).to_owned(), *weight))
                .collect(),
        },
        setup: SetupView {
            elapsed_s: setup_elapsed.as_secs_f64(),
            ready: u64::from(config.devices).saturating_sub(setup_errors.total()),
            errors: setup_errors,
            latency_ms: setup_latencies.summary(),
        },
        payments: PaymentsView {
            elapsed_s: secs,
            offered: stats.offered,
            dropped_busy: stats.dropped_busy,
            dropped_in_flight: stats.dropped_in_flight,
            late: stats.late,
            completed: stats.completed,
            authorizations_per_s: per_second(issuer_answers),
            throughput_per_s: per_second(stats.completed),
            approved: stats.approved,
            declined: stats.declined.clone(),
            errors: stats.errors.clone(),
            unexpected: stats.unexpected.clone(),
            by_scenario: stats.by_scenario.clone(),
        },
        latency_ms: stats.latencies.summary(),
        ok: problems.is_empty(),
        problems,
        notes,
        compromised: view,
    })
}

/// The default security policy's velocity rule: more sales a minute block the device.
const VELOCITY_LIMIT_PER_MINUTE: f64 = 30.0;

fn record_setup(latencies: &mut StepLatencies, timings: &SetupTimings) {
    latencies.record("register", timings.register);
    latencies.record("approve", timings.approve);
    latencies.record("keys", timings.keys);
    latencies.record("health", timings.health);
}

// Compile-time check that the device type is what the runner needs.
const _: fn() = || {
    fn needs<T: runner::FleetTerminal>() {}
    needs::<VirtualDevice>();
};
