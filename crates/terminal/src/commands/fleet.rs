//! `softpos-terminal fleet`: the fleet simulator (see [`crate::fleet`]) as a command.

use std::time::Duration;

use clap::Args;

use crate::CliError;
use crate::commands::output::{Reply, progress_enabled, render};
use crate::error::{EXIT_BAD_INPUT, EXIT_FLEET_CHECK_FAILED};
use crate::fleet::admin::AdminCredentials;
use crate::fleet::mix::{DEFAULT_MIX, Mix};
use crate::fleet::{FleetConfig, limits};

/// Options of `fleet`.
#[derive(Debug, Args)]
#[command(after_help = "\
Admin credentials: --admin-password (or SOFTPOS_ADMIN_PASSWORD) logs in as --admin-user; \
--api-key (or SOFTPOS_API_KEY) authenticates as an integration, which the server lets create \
merchants but not approve devices or create keys, so with an API key pass --merchant and make \
sure devices are approved by an operator or the keys exist.

Exit code 0 when every check held (no unexpected result, every compromised device SUSPENDED \
and refused), 11 when the run finished but a check failed (the summary says which).")]
pub struct FleetArgs {
    /// The server, on this machine only (http://127.0.0.1:PORT).
    #[arg(long)]
    pub server: String,
    /// Virtual devices (1 to 10000).
    #[arg(long, default_value_t = 10)]
    pub devices: u32,
    /// Offered payments per second, all devices together.
    #[arg(long, default_value_t = 10.0)]
    pub rate: f64,
    /// Seconds of paced payments.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Share of devices that report compromised health signals (hooked, rooted) and must end
    /// SUSPENDED.
    #[arg(long, default_value_t = 0.05)]
    pub compromised_share: f64,
    /// Scenario mix: `mix`, or `name=weight,…` over visa-fdda, mc-cda, visa-online-pin,
    /// wrong-pin, insufficient-funds, do-not-honour.
    #[arg(long, default_value = "mix")]
    pub cards: String,
    /// Admin user to log in as.
    #[arg(long, default_value = "admin")]
    pub admin_user: String,
    /// Admin password.
    #[arg(long, env = "SOFTPOS_ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<String>,
    /// API key instead of a password (see below).
    #[arg(
        long,
        env = "SOFTPOS_API_KEY",
        hide_env_values = true,
        conflicts_with = "admin_password"
    )]
    pub api_key: Option<String>,
    /// Use this merchant instead of creating one.
    #[arg(long)]
    pub merchant: Option<String>,
    /// Register each device from its own address (198.18.0.0/15) in `X-Forwarded-For`: the
    /// server caps registrations per client address (120 an hour), so fleets above that need
    /// a server started with TRUST_FORWARDED_FOR=true and this flag.
    #[arg(long)]
    pub forwarded_for: bool,
    /// Devices set up at the same time.
    #[arg(long, default_value_t = 32)]
    pub setup_concurrency: usize,
    /// At most this many payments waiting for answers at once (unset: one per device). A due
    /// payment that finds the cap reached is dropped and counted, like a load generator's
    /// bounded connection pool; use it to measure the server's throughput rather than its queue.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub max_in_flight: Option<u32>,
    /// Print the summary as one JSON object.
    #[arg(long)]
    pub json: bool,
}

/// Runs the fleet.
///
/// # Errors
/// Bad options (exit 2), unreachable server (3), refused admin credentials (4).
pub fn run(args: FleetArgs) -> Result<Reply, CliError> {
    let url = limits::loopback_url(&args.server)
        .map_err(|why| CliError::new("fleet_not_loopback", why, EXIT_BAD_INPUT))?;
    limits::check_bounds(
        args.devices,
        args.rate,
        args.duration,
        args.compromised_share,
    )
    .map_err(|why| CliError::bad_input("invalid_fleet_options", why))?;
    let mix = Mix::parse(&args.cards).map_err(|why| {
        CliError::bad_input("unknown_scenario", format!("{why}; default: {DEFAULT_MIX}"))
    })?;
    if !(1..=1024).contains(&args.setup_concurrency) {
        return Err(CliError::bad_input(
            "invalid_fleet_options",
            "--setup-concurrency must be 1 to 1024",
        ));
    }
    let credentials = match (args.api_key, args.admin_password) {
        (Some(key), _) => AdminCredentials::ApiKey(key),
        (None, Some(password)) => AdminCredentials::Password {
            username: args.admin_user,
            password,
        },
        (None, None) => {
            return Err(CliError::bad_input(
                "missing_admin_credentials",
                "give --admin-password (or SOFTPOS_ADMIN_PASSWORD) or --api-key (or SOFTPOS_API_KEY)",
            ));
        }
    };
    // The share is rounded, but a positive share always plays at least one compromised device.
    let compromised = if args.compromised_share > 0.0 {
        ((f64::from(args.devices) * args.compromised_share).round() as u32).clamp(1, args.devices)
    } else {
        0
    };
    let config = FleetConfig {
        server: url.as_str().trim_end_matches('/').to_owned(),
        devices: args.devices,
        compromised,
        rate: args.rate,
        duration: Duration::from_secs_f64(args.duration),
        mix,
        credentials,
        merchant: args.merchant,
        setup_concurrency: args.setup_concurrency,
        max_in_flight: args.max_in_flight.map(|cap| cap as usize),
        progress: progress_enabled(args.json),
        forwarded_for: args.forwarded_for,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|error| CliError::internal("runtime", error.to_string()))?;
    let summary = runtime.block_on(crate::fleet::run(config))?;
    let text = render(&summary, args.json, crate::fleet::summary::Summary::human)?;
    Ok(Reply {
        text,
        exit_code: if summary.ok {
            0
        } else {
            EXIT_FLEET_CHECK_FAILED
        },
    })
}
