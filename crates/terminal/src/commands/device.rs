//! The device lifecycle commands: `register` (and waiting for the operator's approval),
//! `status`, `keys` (inject, show, rotate) and `health` (collect, submit, activate).

use std::path::Path;
use std::time::Duration;

use clap::{Args, Subcommand};
use serde::Serialize;
use uuid::Uuid;

use crate::CliError;
use crate::client::ClientError;
use crate::client::wire::{DeviceFacts, DeviceState, HealthVerdict};
use crate::commands::common::{block_on, client_error, open_client, open_store, store_error};
use crate::commands::init::server_url;
use crate::commands::output::{Progress, Reply, render};
use crate::error::EXIT_DEVICE_BLOCKED;
use crate::health::desktop::DesktopChecks;
use crate::health::{AppFacts, Compromise, HealthCollector};
use crate::store::{KeySetInfo, SecureStore};

/// Options of `register`.
#[derive(Debug, Args)]
pub struct RegisterArgs {
    /// The back end (kept in the store; default: the one given to `init`).
    #[arg(long)]
    pub server: Option<String>,
    /// The merchant this terminal belongs to (UUID).
    #[arg(long)]
    pub merchant: Option<String>,
    /// `softpos` (PIN on glass) or `pinpad`.
    #[arg(long, default_value = "softpos")]
    pub mode: String,
    /// Model name reported to the server.
    #[arg(long)]
    pub model: Option<String>,
    /// Return right after registering instead of waiting for the operator's approval.
    #[arg(long)]
    pub no_wait: bool,
    /// How long to wait for the approval, seconds.
    #[arg(long, default_value_t = 600)]
    pub wait_timeout: u64,
    /// How often to ask the server, seconds.
    #[arg(long, default_value_t = 2.0)]
    pub poll_interval: f64,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Serialize)]
struct RegisterView {
    device_id: Uuid,
    merchant_id: Option<Uuid>,
    server_url: String,
    state: &'static str,
    /// `false` when the store already held a registration and only the wait ran.
    newly_registered: bool,
    key_fingerprint: String,
}

/// Runs `register`.
///
/// # Errors
/// Bad options (2), store (7), server unreachable (3) or refusing (4), rejected (5), timeout
/// (10).
pub fn run_register(store_path: &Path, args: RegisterArgs) -> Result<Reply, CliError> {
    let server = args.server.as_deref().map(server_url).transpose()?;
    let merchant: Option<Uuid> = args
        .merchant
        .as_deref()
        .map(|text| {
            text.trim().parse().map_err(|_| {
                CliError::bad_input("invalid_merchant_id", format!("{text:?} is not a UUID"))
            })
        })
        .transpose()?;
    if !matches!(args.mode.as_str(), "softpos" | "pinpad") {
        return Err(CliError::bad_input(
            "invalid_mode",
            "--mode is softpos or pinpad",
        ));
    }
    if !(args.poll_interval.is_finite() && (0.1..=60.0).contains(&args.poll_interval)) {
        return Err(CliError::bad_input(
            "invalid_poll_interval",
            "--poll-interval must be 0.1 to 60 seconds",
        ));
    }
    let store = open_store(store_path)?;
    let config = store.config();
    if config.device_id.is_none() {
        if merchant.is_none() {
            return Err(CliError::bad_input(
                "missing_merchant",
                "give --merchant ID (the merchant's UUID from the admin console)",
            ));
        }
        if server.is_none() && config.server_url.is_none() {
            return Err(CliError::bad_input(
                "server_url",
                "give --server URL (or set it at `init`)",
            ));
        }
    } else if let Some(server) = &server
        && config.server_url.as_deref() != Some(server.as_str())
    {
        return Err(CliError::bad_input(
            "already_registered",
            "this store is registered with another server; create a new store to register again",
        ));
    }
    if let Some(server) = &server {
        store
            .update_config(|config| config.server_url = Some(server.clone()))
            .map_err(|e| store_error(&e))?;
    }
    let store = std::sync::Arc::new(store);
    let client = crate::client::Client::new(store.clone()).map_err(|e| client_error(&e))?;
    let mut progress = Progress::new(args.json);
    block_on(async {
        let newly_registered = if let Some(merchant) = merchant
            && store.config().device_id.is_none()
        {
            progress.step("registering (attestation over the server's challenge)…");
            let mut facts = DeviceFacts::desktop(&AppFacts::development());
            if let Some(model) = &args.model {
                facts.model.clone_from(model);
            }
            client
                .register(merchant, &facts, &args.mode)
                .await
                .map_err(|e| client_error(&e))?;
            true
        } else {
            false
        };
        let mut state = client
            .device_self()
            .await
            .map_err(|e| client_error(&e))?
            .state;
        if !args.no_wait && state == DeviceState::Registered {
            progress.step("registered; waiting for an operator to approve this terminal…");
            state = client
                .wait_for_approval(
                    Duration::from_secs_f64(args.poll_interval),
                    Duration::from_secs(args.wait_timeout),
                )
                .await
                .map_err(|e| match e {
                    ClientError::Timeout(_) => CliError::new(
                        "approval_timeout",
                        format!(
                            "no approval within {} s; run `register` again to keep waiting",
                            args.wait_timeout
                        ),
                        crate::error::EXIT_TIMEOUT,
                    ),
                    other => client_error(&other),
                })?;
        }
        progress.finish();
        let config = store.config();
        let view = RegisterView {
            device_id: config.device_id.ok_or_else(|| {
                CliError::internal("not_registered", "the store holds no device id")
            })?,
            merchant_id: config.merchant_id,
            server_url: client.base_url().to_owned(),
            state: state.as_str(),
            newly_registered,
            key_fingerprint: store.key_fingerprint(),
        };
        if state == DeviceState::Revoked {
            return Err(CliError::new(
                "device_revoked",
                "the registration was rejected (REVOKED)",
                EXIT_DEVICE_BLOCKED,
            ));
        }
        render(&view, args.json, |view| {
            let next = match view.state {
                "REGISTERED" => "waiting for approval; run `register` again to wait",
                "APPROVED" => "next: softpos-terminal keys inject, then health",
                _ => "",
            };
            format!(
                "device {} ({})\nstate: {}\n{next}",
                view.device_id, view.server_url, view.state
            )
        })
        .map(Reply::ok)
    })?
}

/// Options of `status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Show only what the store holds, without asking the server.
    #[arg(long)]
    pub offline: bool,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Serialize)]
struct StatusView {
    store: String,
    key_fingerprint: String,
    server_url: Option<String>,
    device_id: Option<Uuid>,
    merchant_id: Option<Uuid>,
    mode: Option<String>,
    key_sets: Vec<KeySetInfo>,
    kernel: Option<String>,
    /// The server's view; `None` offline or when unregistered.
    server_state: Option<&'static str>,
    /// Why the server was not asked or did not answer (`offline`, `not_registered`, or an
    /// error code).
    server_error: Option<String>,
}

fn installed_kernel(store: &SecureStore) -> Option<String> {
    let dir = store.config().kernel_dir?;
    let manifest = crate::client::kernel::KernelStore::new(dir)
        .current_manifest()
        .ok()??;
    Some(format!(
        "{} {}",
        manifest.manifest.name, manifest.manifest.version
    ))
}

/// Runs `status`.
///
/// # Errors
/// Store errors (7). Server problems do not fail `status`; they show in `server_error`.
pub fn run_status(store_path: &Path, args: &StatusArgs) -> Result<Reply, CliError> {
    let store = std::sync::Arc::new(open_store(store_path)?);
    let config = store.config();
    let (server_state, server_error) = if args.offline {
        (None, Some("offline".to_owned()))
    } else if config.device_id.is_none() {
        (None, Some("not_registered".to_owned()))
    } else {
        match crate::client::Client::new(store.clone()) {
            Ok(client) => match block_on(client.device_self())? {
                Ok(me) => (Some(me.state.as_str()), None),
                Err(error) => (None, Some(error.code().to_owned())),
            },
            Err(error) => (None, Some(error.code().to_owned())),
        }
    };
    let view = StatusView {
        store: store_path.display().to_string(),
        key_fingerprint: store.key_fingerprint(),
        server_url: config.server_url,
        device_id: config.device_id,
        merchant_id: config.merchant_id,
        mode: config.mode,
        key_sets: store.key_sets(),
        kernel: installed_kernel(&store),
        server_state,
        server_error,
    };
    render(&view, args.json, |view| {
        let mut out = format!(
            "store: {}\ndevice key fingerprint: {}\nserver: {}\ndevice: {}\nstate: {}\n",
            view.store,
            view.key_fingerprint,
            view.server_url.as_deref().unwrap_or("(not set)"),
            view.device_id
                .map_or_else(|| "(not registered)".to_owned(), |id| id.to_string()),
            view.server_state
                .unwrap_or_else(|| view.server_error.as_deref().unwrap_or("?")),
        );
        out.push_str(&key_sets_text(&view.key_sets));
        out.push_str(&format!(
            "kernel: {}\n",
            view.kernel
                .as_deref()
                .unwrap_or("native (no verified .wasm installed)")
        ));
        out
    })
    .map(Reply::ok)
}

fn key_sets_text(sets: &[KeySetInfo]) -> String {
    if sets.is_empty() {
        return "key sets: none (run `softpos-terminal keys inject`)\n".to_owned();
    }
    let mut out = String::from("key sets:\n");
    for set in sets {
        out.push_str(&format!(
            "  {} v{} {} {:?} KCV {} next counter {}\n",
            set.id,
            set.version,
            set.scheme.as_str(),
            set.status,
            set.kcv,
            set.next_counter
                .map_or_else(|| "exhausted".to_owned(), |c| c.to_string())
        ));
    }
    out
}

/// `keys` subcommands.
#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Receive a DUKPT key set from the server (ECDH + TR-31 key block + KCV confirmation).
    Inject(KeysArgs),
    /// Show the key sets in the store (ids, KCVs, counters; never keys).
    Show(KeysArgs),
    /// Replace the key set with a new one (always, or with --if-due only when the server or
    /// the counter asks for it).
    Rotate(RotateArgs),
}

/// Options shared by `keys` subcommands.
#[derive(Debug, Args)]
pub struct KeysArgs {
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Options of `keys rotate`.
#[derive(Debug, Args)]
pub struct RotateArgs {
    /// Rotate only when the server says it is due or the counter passed its threshold.
    #[arg(long)]
    pub if_due: bool,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Serialize)]
struct KeysView {
    /// What happened: `injected`, `rotated`, `not_due`, `shown`.
    result: &'static str,
    device_state: Option<&'static str>,
    /// Why the device is not ACTIVE yet (`no_health_check`, …).
    pending: Option<String>,
    key_sets: Vec<KeySetInfo>,
}

/// Runs a `keys` subcommand.
///
/// # Errors
/// Store (7), server (3, 4, 5).
pub fn run_keys(store_path: &Path, command: KeysCommand) -> Result<Reply, CliError> {
    let (json, view) = match command {
        KeysCommand::Show(args) => {
            let store = open_store(store_path)?;
            let view = KeysView {
                result: "shown",
                device_state: None,
                pending: None,
                key_sets: store.key_sets(),
            };
            (args.json, view)
        }
        KeysCommand::Inject(args) => {
            let client = open_client(store_path)?;
            let mut progress = Progress::new(args.json);
            progress.step("key injection: ECDH with the server, TR-31 unwrap, KCV check…");
            let activation = block_on(client.inject_keys())?.map_err(|e| client_error(&e))?;
            let view = KeysView {
                result: "injected",
                device_state: Some(activation.device_state.as_str()),
                pending: activation.pending,
                key_sets: client.store().key_sets(),
            };
            (args.json, view)
        }
        KeysCommand::Rotate(args) => {
            let client = open_client(store_path)?;
            let (result, activation) = if args.if_due {
                match block_on(client.rotate_keys_if_due())?.map_err(|e| client_error(&e))? {
                    Some(activation) => ("rotated", Some(activation)),
                    None => ("not_due", None),
                }
            } else {
                let activation = block_on(client.inject_keys())?.map_err(|e| client_error(&e))?;
                ("rotated", Some(activation))
            };
            let view = KeysView {
                result,
                device_state: activation.as_ref().map(|a| a.device_state.as_str()),
                pending: activation.and_then(|a| a.pending),
                key_sets: client.store().key_sets(),
            };
            (args.json, view)
        }
    };
    render(&view, json, |view| {
        let mut out = format!("keys: {}\n", view.result);
        if let Some(state) = view.device_state {
            out.push_str(&format!("device state: {state}\n"));
        }
        if let Some(pending) = &view.pending {
            out.push_str(&format!(
                "not active yet: {pending} (next: softpos-terminal health)\n"
            ));
        }
        out.push_str(&key_sets_text(&view.key_sets));
        out
    })
    .map(Reply::ok)
}

/// Options of `health`.
#[derive(Debug, Args)]
pub struct HealthArgs {
    /// Play a compromised device (testing): rooted, hooked, xposed, emulator, debugger,
    /// debuggable, adb, overlay, stale_patch, clock_skew, foreign_signature. Repeatable.
    #[arg(long = "inject", value_name = "SIGNAL")]
    pub inject: Vec<String>,
    /// Security patch age in days to report (testing).
    #[arg(long)]
    pub patch_age_days: Option<i64>,
    /// Skip the real "running as root" check (development machines and CI run as root).
    #[arg(long)]
    pub no_root_check: bool,
    /// Collect and show the report without sending it.
    #[arg(long)]
    pub no_submit: bool,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Serialize)]
struct HealthView {
    report: crate::health::HealthReport,
    verdict: Option<HealthVerdict>,
    /// The device's state after the report (a compromised one may now be SUSPENDED).
    device_state: Option<&'static str>,
    /// The report let an APPROVED device with confirmed keys become ACTIVE.
    activated: bool,
}

/// Runs `health`.
///
/// # Errors
/// Bad signal names (2), store (7), server (3, 4). A failing report is printed and exits with 5.
pub fn run_health(store_path: &Path, args: HealthArgs) -> Result<Reply, CliError> {
    let mut collector = HealthCollector::desktop(
        AppFacts::development(),
        DesktopChecks {
            debugger: true,
            root: !args.no_root_check,
            binary: None,
        },
    );
    for name in &args.inject {
        let kind = Compromise::parse(name.trim()).ok_or_else(|| {
            let known: Vec<_> = Compromise::ALL.iter().map(|k| k.as_str()).collect();
            CliError::bad_input(
                "unknown_signal",
                format!("unknown signal {name:?} (known: {})", known.join(", ")),
            )
        })?;
        kind.apply(&mut collector.injected);
    }
    if let Some(days) = args.patch_age_days {
        if !(0..=36_500).contains(&days) {
            return Err(CliError::bad_input(
                "invalid_patch_age",
                "--patch-age-days must be 0 to 36500",
            ));
        }
        collector.injected.patch_age_days = Some(days);
    }
    let client = open_client(store_path)?;
    if args.no_submit {
        let view = HealthView {
            report: collector.collect(),
            verdict: None,
            device_state: None,
            activated: false,
        };
        return render(&view, args.json, health_text).map(Reply::ok);
    }
    let mut progress = Progress::new(args.json);
    progress.step("health check: nonce, signed report…");
    let view = block_on(async {
        if collector.last_attestation_at.is_none() {
            collector.last_attestation_at = client.store().config().attested_at;
        }
        let nonce = client.health_nonce().await?;
        let report = collector.collect();
        let verdict = client.submit_health(&nonce, &report).await?;
        let mut state = client.device_self().await?.state;
        let mut activated = false;
        if verdict.passed
            && state == DeviceState::Approved
            && client.store().active_key_set().is_some()
        {
            let activation = client.activate().await?;
            state = activation.device_state;
            activated = state == DeviceState::Active;
        }
        Ok::<_, ClientError>(HealthView {
            report,
            verdict: Some(verdict),
            device_state: Some(state.as_str()),
            activated,
        })
    })?
    .map_err(|e| client_error(&e))?;
    progress.finish();
    let passed = view.verdict.as_ref().is_some_and(|v| v.passed);
    let text = render(&view, args.json, health_text)?;
    Ok(Reply {
        text,
        exit_code: if passed { 0 } else { EXIT_DEVICE_BLOCKED },
    })
}

fn health_text(view: &HealthView) -> String {
    let report = &view.report;
    let mut out = String::new();
    let signals: Vec<String> = report
        .root_indicators
        .iter()
        .map(|r| format!("root:{r}"))
        .chain(report.hook_frameworks.iter().map(|h| format!("hook:{h}")))
        .collect();
    out.push_str(&format!(
        "report: {}\n",
        if signals.is_empty() {
            "no root or hook indicators".to_owned()
        } else {
            signals.join(", ")
        }
    ));
    match &view.verdict {
        None => out.push_str("not submitted (--no-submit)\n"),
        Some(verdict) => {
            out.push_str(&format!(
                "score: {}/100 ({})\n",
                verdict.score,
                if verdict.passed { "passed" } else { "FAILED" }
            ));
            if !verdict.failed_checks.is_empty() {
                out.push_str(&format!(
                    "failed checks: {}\n",
                    verdict.failed_checks.join(", ")
                ));
            }
            out.push_str(&format!("clock skew: {} ms\n", verdict.clock_skew_ms));
        }
    }
    if let Some(state) = view.device_state {
        out.push_str(&format!(
            "device state: {state}{}\n",
            if view.activated { " (activated)" } else { "" }
        ));
    }
    out
}
