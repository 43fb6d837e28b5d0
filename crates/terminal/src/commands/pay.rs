//! `pay`: one sale from tap to result (token, kernel against the card, DUKPT keys, PIN block when
//! the card asks for online PIN, authorization), and `readers` (the PC/SC readers present).
//!
//! The kernel is the installed, verified `.wasm` when there is one, else the native kernel
//! (development fallback). The PIN is read without echo from the terminal, or as one line from
//! standard input with `--pin-stdin` (scripts, tests); either way it becomes an encrypted PIN block
//! at once.
//!
//! `SOFTPOS_TERMINAL_CRASH_AFTER=counter` (testing only) makes `pay` abort the process right after
//! the DUKPT counter of the sale is persisted, before anything is sent: the next `pay` must use a
//! fresh KSN and be accepted.

use std::io::BufRead;
use std::path::{Path, PathBuf};

use clap::{ArgGroup, Args};
use serde::Serialize;
use zeroize::Zeroizing;

use crate::CliError;
use crate::client::kernel::KernelStore;
use crate::commands::common::{block_on, client_error, open_client, store_error};
use crate::commands::output::{Progress, Reply, render};
use crate::error::{EXIT_BAD_INPUT, EXIT_CARD, EXIT_DECLINED, EXIT_INTERNAL, EXIT_TIMEOUT};
use crate::money;
use crate::payment::{
    self, CardSourceError, CardSpec, FixedPin, PaymentError, PaymentRequest, PaymentResult,
    PinSource, ReaderConfig, TerminalPin,
};

/// Options of `pay`.
#[derive(Debug, Args)]
#[command(group(ArgGroup::new("source").required(true).args(["card", "reader", "transcript"])))]
pub struct PayArgs {
    /// Amount in major units, e.g. 12.34.
    #[arg(long)]
    pub amount: String,
    /// Currency: ISO 4217 code (EUR, USD, GBP, …).
    #[arg(long, default_value = "EUR")]
    pub currency: String,
    /// A virtual test card: visa-fdda, mc-cda, visa-online-pin, expired, bad-signature,
    /// no-supported-aid, malformed, multi-app.
    #[arg(long)]
    pub card: Option<String>,
    /// A PC/SC contactless reader (its name or part of it); needs a build with `--features pcsc`.
    #[arg(long)]
    pub reader: Option<String>,
    /// With `--reader`: how long to wait for the card to be presented, in seconds [default: 30].
    #[arg(long, value_name = "SECS")]
    pub tap_timeout: Option<u64>,
    /// A recorded card session (`>> C-APDU` / `<< R-APDU` transcript).
    #[arg(long)]
    pub transcript: Option<PathBuf>,
    /// Read the PIN as one line from standard input instead of the terminal (scripts, tests).
    #[arg(long)]
    pub pin_stdin: bool,
    /// Idempotency key: a retry with the same key returns the first answer [default: fresh].
    #[arg(long)]
    pub idempotency_key: Option<String>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Serialize)]
struct PayView {
    /// `approved` or `declined`.
    result: &'static str,
    amount: String,
    currency: &'static str,
    /// The kernel that ran (`wasm <version> (wasmi)` or `native`).
    kernel: String,
    #[serde(flatten)]
    payment: PaymentResult,
}

/// A payment error as a CLI error: card, kernel and PIN problems exit with 8, a decline by the
/// card or kernel with 6, unknown cards, unreadable transcripts and unknown readers with 2, no
/// card presented in time with 10.
#[must_use]
pub fn payment_error(error: &PaymentError) -> CliError {
    let exit = match error {
        PaymentError::Client(inner) => return client_error(inner),
        PaymentError::Store(inner) => return store_error(inner),
        PaymentError::Card(
            CardSourceError::UnknownCard(..)
            | CardSourceError::Transcript(_)
            | CardSourceError::ReaderNotFound { .. },
        ) => EXIT_BAD_INPUT,
        PaymentError::Card(CardSourceError::CardNotPresented { .. }) => EXIT_TIMEOUT,
        PaymentError::Outcome { code, .. } if *code == "offline_declined" => EXIT_DECLINED,
        PaymentError::Encryption(_) => EXIT_INTERNAL,
        _ => EXIT_CARD,
    };
    CliError::new(error.code().to_owned(), error.to_string(), exit)
}

/// What `SOFTPOS_TERMINAL_CRASH_AFTER` asks for.
fn crash_point() -> Result<bool, CliError> {
    match std::env::var("SOFTPOS_TERMINAL_CRASH_AFTER").as_deref() {
        Err(_) | Ok("") => Ok(false),
        Ok("counter") => Ok(true),
        Ok(other) => Err(CliError::bad_input(
            "invalid_crash_point",
            format!("SOFTPOS_TERMINAL_CRASH_AFTER={other:?}: the only crash point is `counter`"),
        )),
    }
}

/// Runs `pay`.
///
/// # Errors
/// Bad input (2: amount, currency, card, transcript), store (7), server (3, 4, 5), card or
/// kernel (8). A declined sale is printed and exits with 6.
pub fn run_pay(store_path: &Path, args: PayArgs) -> Result<Reply, CliError> {
    // Everything the user typed is checked before the store or the network is touched.
    let currency = money::currency(&args.currency)?;
    let amount_minor = money::parse_amount(&args.amount, currency.exponent, "amount")?;
    if amount_minor == 0 {
        return Err(CliError::bad_input(
            "invalid_amount",
            "the amount must be above zero",
        ));
    }
    if args.tap_timeout.is_some() && args.reader.is_none() {
        return Err(CliError::bad_input(
            "invalid_arguments",
            "--tap-timeout goes with --reader",
        ));
    }
    let spec = match (&args.card, &args.reader, &args.transcript) {
        (Some(card), _, _) => CardSpec::Virtual(card.trim().to_owned()),
        (_, Some(reader), _) => CardSpec::Reader {
            name: reader.clone(),
            wait: std::time::Duration::from_secs(args.tap_timeout.unwrap_or(30)),
        },
        (_, _, Some(path)) => CardSpec::Transcript(path.clone()),
        _ => unreachable!("clap requires one card source"),
    };
    let mut progress = Progress::new(args.json);
    if let CardSpec::Reader { name, wait } = &spec {
        progress.step(&format!(
            "present the card to reader {name:?} (waiting up to {} s)…",
            wait.as_secs()
        ));
    }
    let mut card = payment::card::open(&spec).map_err(|e| payment_error(&e.into()))?;
    let crash = crash_point()?;
    let mut pin_source: Box<dyn PinSource + Send> = if args.pin_stdin {
        let mut line = Zeroizing::new(String::new());
        std::io::stdin().lock().read_line(&mut line).map_err(|_| {
            CliError::new("pin_entry_failed", "cannot read standard input", EXIT_CARD)
        })?;
        let pin = line.trim();
        if pin.is_empty() {
            Box::new(FixedPin::none())
        } else {
            Box::new(FixedPin::new(pin))
        }
    } else {
        Box::new(TerminalPin)
    };
    let client = open_client(store_path)?;
    let keys = client
        .store()
        .config()
        .trusted_release_keys
        .and_then(|text| release_manifest::KeyRing::parse(&text).ok())
        .unwrap_or_default();
    let installed = client
        .store()
        .config()
        .kernel_dir
        .and_then(|dir| KernelStore::new(dir).load(&keys).ok());
    let (mut kernel, kernel_name) = payment::choose_kernel(installed);
    let request = PaymentRequest {
        amount_minor,
        currency,
        location: None,
        idempotency_key: args.idempotency_key.clone(),
    };
    let reader = ReaderConfig::default();
    progress.step(&format!(
        "{} {}: tap the card ({kernel_name} kernel)…",
        money::format_amount(amount_minor, currency.exponent),
        currency.alpha
    ));
    if crash {
        // Everything `pay` does up to the persisted counter, then the process dies.
        let crashed: Result<std::convert::Infallible, CliError> = block_on(async {
            client.take_token().await.map_err(|e| client_error(&e))?;
            let _tap = payment::tap(kernel.as_mut(), &reader, card.as_mut(), &request)
                .map_err(|e| payment_error(&e))?;
            let keys = client
                .store()
                .next_transaction_keys()
                .map_err(|e| store_error(&e))?;
            eprintln!(
                "SOFTPOS_TERMINAL_CRASH_AFTER=counter: aborting after persisting KSN {}",
                keys.ksn_hex()
            );
            std::process::abort()
        })?;
        let Err(error) = crashed;
        return Err(error);
    }
    let result = block_on(payment::pay(
        &client,
        kernel.as_mut(),
        &reader,
        card.as_mut(),
        pin_source.as_mut(),
        &request,
    ))?
    .map_err(|e| payment_error(&e))?;
    progress.finish();
    let approved = result.transaction.approved;
    let view = PayView {
        result: if approved { "approved" } else { "declined" },
        amount: money::format_amount(amount_minor, currency.exponent),
        currency: currency.alpha,
        kernel: kernel_name,
        payment: result,
    };
    let text = render(&view, args.json, pay_text)?;
    Ok(Reply {
        text,
        exit_code: if approved { 0 } else { EXIT_DECLINED },
    })
}

fn pay_text(view: &PayView) -> String {
    let tx = &view.payment.transaction;
    let t = &view.payment.timings;
    let mut out = format!(
        "{} {} {}: {}",
        view.amount,
        view.currency,
        tx.pan_masked,
        view.result.to_uppercase()
    );
    if let Some(code) = &tx.response_code {
        out.push_str(&format!(" (response {code}"));
        if let Some(auth) = &tx.authorisation_code {
            out.push_str(&format!(", authorisation {auth}"));
        }
        out.push(')');
    }
    out.push_str(&format!(
        "\ntransaction: {}\nKSN: {}{}\nkernel: {}\ntap to result: {:.1} ms (token {:.1}, card {:.1}, PIN {:.1}, authorization {:.1})\n",
        tx.id,
        view.payment.ksn,
        if view.payment.online_pin { ", online PIN" } else { "" },
        view.kernel,
        ms(t.total),
        ms(t.token),
        ms(t.kernel),
        ms(t.pin),
        ms(t.authorization)
    ));
    if let Some(rotation) = &view.payment.key_rotation {
        out.push_str(&format!("key rotation: {rotation}\n"));
    }
    out
}

fn ms(duration: std::time::Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// Options of `readers`.
#[derive(Debug, Args)]
pub struct ReadersArgs {
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Serialize)]
struct ReadersView {
    readers: Vec<String>,
}

/// Runs `readers`: the PC/SC readers present.
///
/// # Errors
/// `pcsc_not_built` (8) in a build without the `pcsc` feature, `pcsc_unavailable` (8) when no
/// PC/SC service answers, `pcsc_failed` (8).
pub fn run_readers(args: &ReadersArgs) -> Result<Reply, CliError> {
    let readers = payment::card::list_readers()
        .map_err(|e| CliError::new(e.code(), e.to_string(), EXIT_CARD))?;
    render(&ReadersView { readers }, args.json, |view| {
        if view.readers.is_empty() {
            "no PC/SC reader found".to_owned()
        } else {
            view.readers.join("\n")
        }
    })
    .map(Reply::ok)
}
