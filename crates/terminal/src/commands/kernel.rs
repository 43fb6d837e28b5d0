//! `softpos-terminal kernel ...`: the kernel the terminal runs (`show`, `update`, `rollback`, in
//! [`crate::commands::kernel_update`]) and the EMV kernel against recorded card sessions.
//!
//! `kernel replay FILE` parses a transcript (`emv-replay`), builds the transaction the recording
//! used from the options, runs the native kernel against the transcript and reports the outcome,
//! the offline data authentication result and the card data read. The report is a stable JSON
//! object with `--json`; field names only ever get added.

use clap::{Args, Subcommand};
use emv_kernel::cvm::Cvm;
use emv_kernel::entry_point::{AidConfig, Kernel};
use emv_kernel::outcome::{OdaMethod, OdaStatus, OutcomeKind, Reason};
use emv_kernel::{ErrorCode, Outcome, TerminalConfig, TransactionParams};
use emv_replay::{AnswerSource, CardData, ReplayError, ReplayRun, Transcript, command_name};
use serde::Serialize;

use crate::CliError;
use crate::commands::output::Reply;
use crate::money::{self, Currency};
use crate::params::{self, CaChoice};

/// `softpos-terminal kernel` subcommands.
// Parsed once per process: the size difference between variants costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum KernelCommand {
    /// Show the installed kernel (verified `.wasm` or the native fallback) and the one kept for
    /// rollback.
    Show(crate::commands::kernel_update::ShowArgs),
    /// Ask the server for the kernel this device should run; verify its signed manifest with
    /// the trusted release keys, download, check length and SHA-256, load it once, install it
    /// (the current one is kept for rollback). Any failure keeps the current kernel.
    Update(crate::commands::kernel_update::UpdateArgs),
    /// Put the previous kernel back (verified again).
    Rollback(crate::commands::kernel_update::ShowArgs),
    /// Replay a recorded card session (`>> C-APDU` / `<< R-APDU` transcript) against the kernel.
    Replay(ReplayArgs),
}

/// Options of `kernel replay`: the transaction parameters the recording used.
#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// The transcript file.
    pub file: String,
    /// Amount in major units, e.g. 12.34 (converted with the currency's exponent).
    #[arg(long)]
    pub amount: String,
    /// Currency: ISO 4217 alphabetic (EUR) or numeric (978) code.
    #[arg(long, default_value = "EUR")]
    pub currency: String,
    /// Transaction date, YYMMDD or YYYY-MM-DD [default: today, UTC].
    #[arg(long)]
    pub date: Option<String>,
    /// Transaction time, HHMMSS [default: now, UTC].
    #[arg(long)]
    pub time: Option<String>,
    /// Unpredictable number (9F37), 8 hex digits.
    #[arg(long, default_value = "00000000")]
    pub un: String,
    /// Terminal country code (9F1A), ISO 3166-1 numeric.
    #[arg(long, default_value = "250")]
    pub country: String,
    /// Terminal Transaction Qualifiers (9F66) for Kernel 3 before pre-processing, 8 hex digits.
    #[arg(long, default_value = "26004000")]
    pub ttq: String,
    /// CA public keys to trust: `test`, `production`, or a file of `RID index modulus exponent`
    /// lines.
    #[arg(long, default_value = "production")]
    pub ca: String,
    /// Reader contactless transaction limit, major units [default: none].
    #[arg(long)]
    pub contactless_limit: Option<String>,
    /// Reader contactless floor limit, major units [default: none].
    #[arg(long)]
    pub floor_limit: Option<String>,
    /// Reader CVM required limit, major units [default: none].
    #[arg(long)]
    pub cvm_limit: Option<String>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Runs a `kernel` subcommand.
///
/// # Errors
/// [`CliError`] for bad options, an unreadable or malformed transcript or key file, or a
/// transcript without an answer to a command the kernel sent.
pub fn run(store: &std::path::Path, command: KernelCommand) -> Result<Reply, CliError> {
    use crate::commands::kernel_update;
    match command {
        KernelCommand::Show(args) => kernel_update::run_show(store, &args),
        KernelCommand::Update(args) => kernel_update::run_update(store, &args),
        KernelCommand::Rollback(args) => kernel_update::run_rollback(store, &args),
        KernelCommand::Replay(args) => replay(&args).map(Reply::ok),
    }
}

/// The parameters as resolved, for the report.
#[derive(Debug, Serialize)]
struct ParamsView {
    amount: String,
    amount_minor: u64,
    currency: &'static str,
    currency_numeric: String,
    date: String,
    time: String,
    unpredictable_number: String,
    country: String,
    ttq: String,
    ca: String,
    ca_keys: usize,
    contactless_limit_minor: Option<u64>,
    floor_limit_minor: Option<u64>,
    cvm_limit_minor: Option<u64>,
}

#[derive(Debug, Serialize)]
struct OutcomeView {
    kind: &'static str,
    reason: &'static str,
    detail: String,
    kernel: Option<u8>,
    cvm: Option<&'static str>,
    ui_message: &'static str,
    tvr: String,
    tsi: String,
    cvm_results: Option<String>,
}

#[derive(Debug, Serialize)]
struct OdaView {
    /// `not_performed`, `succeeded` or `failed`.
    result: &'static str,
    method: Option<&'static str>,
    error: Option<&'static str>,
    why: String,
}

#[derive(Debug, Serialize)]
struct AflView {
    sfi: u8,
    first_record: u8,
    last_record: u8,
    oda_records: u8,
}

#[derive(Debug, Serialize)]
struct CvmRuleJson {
    rule: String,
    method: String,
    condition: String,
    continue_if_unsuccessful: bool,
}

#[derive(Debug, Serialize)]
struct CvmListJson {
    value: String,
    amount_x: u32,
    amount_y: u32,
    rules: Vec<CvmRuleJson>,
}

#[derive(Debug, Serialize)]
struct CardView {
    aid: Option<String>,
    label: Option<String>,
    pan: Option<String>,
    expiry: Option<String>,
    aip: Option<String>,
    aip_flags: Vec<&'static str>,
    afl: Option<String>,
    afl_entries: Vec<AflView>,
    cvm_list: Option<CvmListJson>,
    ctq: Option<String>,
    ctq_flags: Vec<&'static str>,
    cid: Option<String>,
    cryptogram_type: Option<&'static str>,
    atc: Option<String>,
    ca_key_index: Option<String>,
}

#[derive(Debug, Serialize)]
struct CommandView {
    name: String,
    header: String,
    sw: String,
    /// `transcript line N` or `no PPSE in transcript (6A82)`.
    answered_by: String,
    matches_recording: bool,
}

/// The whole report (`--json` prints it as is).
#[derive(Debug, Serialize)]
struct Report {
    transcript: String,
    parameters: ParamsView,
    outcome: OutcomeView,
    oda: OdaView,
    card: CardView,
    commands: Vec<CommandView>,
    notes: Vec<String>,
}

fn limit(text: Option<&String>, currency: Currency, what: &str) -> Result<Option<u64>, CliError> {
    text.map(|text| money::parse_amount(text, currency.exponent, what))
        .transpose()
}

/// Builds the transaction from the options. Both schemes' AIDs are configured (Visa `A000000003`
/// with Kernel 3, Mastercard `A000000004` with Kernel 2, partial matching), with the same limits.
fn transaction_params(
    args: &ReplayArgs,
    currency: Currency,
) -> Result<(TransactionParams, ParamsView), CliError> {
    let amount = money::parse_amount(&args.amount, currency.exponent, "amount")?;
    let now = params::now_utc();
    let date = match &args.date {
        Some(text) => params::parse_date(text)?,
        None => now
            .map(|(date, _)| date)
            .ok_or_else(|| CliError::internal("clock", "cannot read today's date; pass --date"))?,
    };
    let time = match &args.time {
        Some(text) => params::parse_time(text)?,
        None => now
            .map(|(_, time)| time)
            .ok_or_else(|| CliError::internal("clock", "cannot read the time; pass --time"))?,
    };
    let un = params::parse_hex_bytes::<4>(&args.un, "unpredictable number")?;
    let ttq = params::parse_hex_bytes::<4>(&args.ttq, "TTQ")?;
    let country = params::parse_country(&args.country)?;
    let contactless_limit = limit(
        args.contactless_limit.as_ref(),
        currency,
        "contactless limit",
    )?;
    let floor_limit = limit(args.floor_limit.as_ref(), currency, "floor limit")?;
    let cvm_limit = limit(args.cvm_limit.as_ref(), currency, "CVM limit")?;
    let ca = CaChoice::parse(&args.ca);
    let ca_keys = ca.load()?;
    let aids = [
        (&[0xA0, 0x00, 0x00, 0x00, 0x03][..], Kernel::C3),
        (&[0xA0, 0x00, 0x00, 0x00, 0x04][..], Kernel::C2),
    ]
    .into_iter()
    .map(|(rid, kernel)| {
        let mut config = AidConfig::new(rid, kernel);
        config.ttq = ttq;
        config.transaction_limit = contactless_limit;
        config.floor_limit = floor_limit;
        config.cvm_required_limit = cvm_limit;
        config
    })
    .collect();
    let view = ParamsView {
        amount: money::format_amount(amount, currency.exponent),
        amount_minor: amount,
        currency: currency.alpha,
        currency_numeric: format!("{:03}", currency.numeric),
        date: format!("{:04}-{:02}-{:02}", date.year, date.month, date.day),
        time: hex::encode(time),
        unpredictable_number: hex::encode_upper(un),
        country: hex::encode(country),
        ttq: hex::encode_upper(ttq),
        ca: ca.describe(),
        ca_keys: ca_keys.len(),
        contactless_limit_minor: contactless_limit,
        floor_limit_minor: floor_limit,
        cvm_limit_minor: cvm_limit,
    };
    let params = TransactionParams {
        amount,
        amount_other: 0,
        currency_code: currency.bcd(),
        currency_exponent: currency.exponent,
        transaction_type: 0x00,
        date,
        time,
        unpredictable_number: un,
        config: TerminalConfig {
            country_code: country,
            // Attended, online with offline capability, merchant; the capabilities of a
            // contactless reader with online PIN, signature and no CVM, SDA/DDA/CDA.
            terminal_type: 0x22,
            terminal_capabilities: [0x00, 0x68, 0xC8],
            additional_terminal_capabilities: [0x60, 0x00, 0xF0, 0xA0, 0x01],
            ifd_serial_number: None,
            merchant_category_code: None,
            merchant_identifier: None,
            terminal_identification: None,
            merchant_name_and_location: None,
            online_capable: true,
            aids,
            ca_keys,
        },
    };
    Ok((params, view))
}

fn kind_name(kind: OutcomeKind) -> &'static str {
    match kind {
        OutcomeKind::Approved => "approved",
        OutcomeKind::Declined => "declined",
        OutcomeKind::OnlineRequest => "online_request",
        OutcomeKind::TryAnotherInterface => "try_another_interface",
        OutcomeKind::EndApplication => "end_application",
        OutcomeKind::TryAgain => "try_again",
    }
}

fn cvm_name(cvm: Cvm) -> &'static str {
    match cvm {
        Cvm::NoCvm => "no_cvm",
        Cvm::Signature => "signature",
        Cvm::OnlinePin => "online_pin",
        Cvm::ConfirmationCodeVerified => "confirmation_code_verified",
    }
}

fn method_name(method: OdaMethod) -> &'static str {
    match method {
        OdaMethod::Sda => "SDA",
        OdaMethod::Dda => "DDA",
        OdaMethod::Fdda => "fDDA",
        OdaMethod::Cda => "CDA",
    }
}

/// A sentence for the reason. Reasons carry phases, status words and tags, never card data.
fn reason_detail(reason: &Reason) -> String {
    match reason {
        Reason::CardApproved => "the card approved offline (TC)".to_owned(),
        Reason::CardDeclined => "the card declined (AAC)".to_owned(),
        Reason::CardRequestedOnline => "the card asked for online authorisation (ARQC)".to_owned(),
        Reason::CardError { phase, sw } => {
            format!("the card answered {} with status {sw}", phase.name())
        }
        Reason::MalformedResponse { phase, error } => {
            format!("malformed card response in {}: {error}", phase.name())
        }
        Reason::MissingData { phase, tag } => {
            format!("the card did not give {tag} (needed in {})", phase.name())
        }
        Reason::RedundantData { tag } => format!("the card returned {tag} twice"),
        Reason::OdaFailed(error) => {
            format!(
                "offline data authentication failed: {error} ({})",
                error.code()
            )
        }
        other => other.code().replace('_', " "),
    }
}

fn outcome_view(outcome: &Outcome) -> OutcomeView {
    OutcomeView {
        kind: kind_name(outcome.kind),
        reason: outcome.reason.code(),
        detail: reason_detail(&outcome.reason),
        kernel: outcome.kernel,
        cvm: outcome.cvm.map(cvm_name),
        ui_message: outcome.ui_message().text(),
        tvr: hex::encode_upper(outcome.tvr.bytes()),
        tsi: hex::encode_upper(outcome.tsi.bytes()),
        cvm_results: outcome
            .cvm_results
            .map(|results| hex::encode_upper(results.0)),
    }
}

fn oda_view(outcome: &Outcome, card: &CardData) -> OdaView {
    match &outcome.oda {
        OdaStatus::Succeeded(method) => OdaView {
            result: "succeeded",
            method: Some(method_name(*method)),
            error: None,
            why: format!(
                "certificates and signature verified under CA key index {}",
                card.ca_key_index.as_deref().unwrap_or("?")
            ),
        },
        OdaStatus::Failed(method, error) => OdaView {
            result: "failed",
            method: Some(method_name(*method)),
            error: Some(error.code()),
            why: format!("{error}"),
        },
        OdaStatus::NotPerformed => OdaView {
            result: "not_performed",
            method: None,
            error: None,
            why: match outcome.kind {
                OutcomeKind::OnlineRequest if outcome.kernel == Some(3) => {
                    "Kernel 3 performs fDDA on an online authorisation only when the TTQ says \
                     \"offline data authentication for online authorisations supported\" and the \
                     card signed its answer (Book C-3); here one of them did not"
                        .to_owned()
                }
                _ if outcome.kernel.is_none() => "no application was selected".to_owned(),
                _ => "not supported by both card and reader, or not reached".to_owned(),
            },
        },
    }
}

fn card_view(card: CardData) -> CardView {
    CardView {
        aid: card.aid,
        label: card.label,
        pan: card.masked_pan,
        expiry: card.expiry,
        aip: card.aip,
        aip_flags: card.aip_flags,
        afl: card.afl,
        afl_entries: card
            .afl_entries
            .iter()
            .map(|entry| AflView {
                sfi: entry.sfi,
                first_record: entry.first_record,
                last_record: entry.last_record,
                oda_records: entry.oda_records,
            })
            .collect(),
        cvm_list: card.cvm_list.map(|list| CvmListJson {
            value: list.hex,
            amount_x: list.amount_x,
            amount_y: list.amount_y,
            rules: list
                .rules
                .into_iter()
                .map(|rule| CvmRuleJson {
                    rule: rule.hex,
                    method: rule.method,
                    condition: rule.condition,
                    continue_if_unsuccessful: rule.continue_if_unsuccessful,
                })
                .collect(),
        }),
        ctq: card.ctq,
        ctq_flags: card.ctq_flags,
        cid: card.cid,
        cryptogram_type: card.cryptogram_type,
        atc: card.atc,
        ca_key_index: card.ca_key_index,
    }
}

fn commands_view(run: &ReplayRun) -> Vec<CommandView> {
    run.steps
        .iter()
        .map(|step| {
            let (answered_by, matches_recording) = match step.source {
                AnswerSource::Recorded {
                    line,
                    command_matches,
                    ..
                } => (format!("transcript line {line}"), command_matches),
                AnswerSource::NoPpse => ("no PPSE in transcript (6A82)".to_owned(), false),
            };
            CommandView {
                name: command_name(&step.command),
                // The header only: command data can hold terminal data a reader should not log.
                header: hex::encode_upper(step.command.get(..4).unwrap_or_default()),
                sw: format!("{:04X}", step.status_word()),
                answered_by,
                matches_recording,
            }
        })
        .collect()
}

fn notes(run: &ReplayRun) -> Vec<String> {
    let mut notes = Vec::new();
    if run
        .steps
        .iter()
        .any(|step| step.source == AnswerSource::NoPpse)
    {
        notes.push(
            "the transcript has no PPSE: its SELECT got 6A82. A contactless reader builds its \
             candidate list from the PPSE only (EMV Contactless Book B 3.3.2: a SELECT PPSE \
             answered with a status other than 9000 leaves the candidate list empty); the \
             list-of-AIDs method is the contact interface's (EMV Book 1 12.3.3), so a recording \
             that starts at SELECT AID ends at the PPSE"
                .to_owned(),
        );
    }
    let differing = run
        .steps
        .iter()
        .filter(|step| {
            matches!(
                step.source,
                AnswerSource::Recorded {
                    command_matches: false,
                    ..
                }
            )
        })
        .count();
    if differing > 0 {
        notes.push(format!(
            "{differing} command(s) differ from the recording (other parameters?): recorded \
             signatures and cryptograms were made over the recorded data"
        ));
    }
    notes
}

fn replay(args: &ReplayArgs) -> Result<String, CliError> {
    let currency = money::currency(&args.currency)?;
    let text = std::fs::read_to_string(&args.file).map_err(|error| {
        CliError::bad_input("transcript_unreadable", format!("{}: {error}", args.file))
    })?;
    let transcript = Transcript::parse(&text)
        .map_err(|error| CliError::bad_input(error.code(), format!("{}: {error}", args.file)))?;
    let (params, parameters) = transaction_params(args, currency)?;
    let run = emv_replay::replay(&transcript, params).map_err(|error| match &error {
        ReplayError::MissingAnswer { .. } => {
            CliError::bad_input(error.code(), format!("{}: {error}", args.file))
        }
        _ => CliError::bad_input(error.code(), error.to_string()),
    })?;
    let card = CardData::from_steps(&run.steps, run.outcome.kernel);
    let report = Report {
        transcript: args.file.clone(),
        parameters,
        outcome: outcome_view(&run.outcome),
        oda: oda_view(&run.outcome, &card),
        card: card_view(card),
        commands: commands_view(&run),
        notes: notes(&run),
    };
    if args.json {
        let mut json = serde_json::to_string_pretty(&report)
            .map_err(|error| CliError::internal("json", error.to_string()))?;
        json.push('\n');
        Ok(json)
    } else {
        Ok(human(&report))
    }
}

fn human(report: &Report) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let params = &report.parameters;
    let outcome = &report.outcome;
    let oda = &report.oda;
    let card = &report.card;
    let none = || "-".to_owned();
    // Writing to a String cannot fail.
    let _ = writeln!(out, "Transcript  {}", report.transcript);
    let _ = writeln!(
        out,
        "Parameters  {} {} ({}), date {}, UN {}, country {}, TTQ {}, CA keys {} ({})",
        params.amount,
        params.currency,
        params.currency_numeric,
        params.date,
        params.unpredictable_number,
        params.country,
        params.ttq,
        params.ca,
        params.ca_keys
    );
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "Outcome     {} ({}): {}",
        outcome.kind, outcome.reason, outcome.detail
    );
    let _ = writeln!(
        out,
        "            kernel {}, CVM {}, display \"{}\"",
        outcome.kernel.map_or_else(none, |id| id.to_string()),
        outcome.cvm.unwrap_or("-"),
        outcome.ui_message
    );
    let _ = writeln!(
        out,
        "            TVR {}  TSI {}  CVM results {}",
        outcome.tvr,
        outcome.tsi,
        outcome.cvm_results.clone().unwrap_or_else(none)
    );
    let _ = writeln!(
        out,
        "ODA         {}{}: {}",
        oda.result,
        oda.method
            .map(|method| format!(" ({method})"))
            .unwrap_or_default(),
        oda.why
    );
    let _ = writeln!(out);
    let field = |value: &Option<String>| value.clone().unwrap_or_else(none);
    let _ = writeln!(out, "Card");
    let _ = writeln!(out, "  AID         {}", field(&card.aid));
    let _ = writeln!(out, "  Label       {}", field(&card.label));
    let _ = writeln!(out, "  PAN         {}", field(&card.pan));
    let _ = writeln!(out, "  Expiry      {}", field(&card.expiry));
    let _ = writeln!(
        out,
        "  AIP         {}{}",
        field(&card.aip),
        if card.aip_flags.is_empty() {
            String::new()
        } else {
            format!(" ({})", card.aip_flags.join(", "))
        }
    );
    let _ = writeln!(out, "  AFL         {}", field(&card.afl));
    for entry in &card.afl_entries {
        let _ = writeln!(
            out,
            "              SFI {} records {}-{}, {} for ODA",
            entry.sfi, entry.first_record, entry.last_record, entry.oda_records
        );
    }
    match &card.cvm_list {
        Some(list) => {
            let _ = writeln!(
                out,
                "  CVM list    {} (X {}, Y {})",
                list.value, list.amount_x, list.amount_y
            );
            for rule in &list.rules {
                let _ = writeln!(
                    out,
                    "              {} {}, {}{}",
                    rule.rule,
                    rule.method,
                    rule.condition,
                    if rule.continue_if_unsuccessful {
                        ", next rule if it fails"
                    } else {
                        ""
                    }
                );
            }
        }
        None => {
            let _ = writeln!(out, "  CVM list    -");
        }
    }
    let _ = writeln!(
        out,
        "  CTQ         {}{}",
        field(&card.ctq),
        if card.ctq_flags.is_empty() {
            String::new()
        } else {
            format!(" ({})", card.ctq_flags.join(", "))
        }
    );
    let _ = writeln!(
        out,
        "  Cryptogram  {}{}",
        card.cryptogram_type.unwrap_or("-"),
        card.cid
            .as_ref()
            .map(|cid| format!(" (CID {cid})"))
            .unwrap_or_default()
    );
    let _ = writeln!(out, "  ATC         {}", field(&card.atc));
    let _ = writeln!(out, "  CA index    {}", field(&card.ca_key_index));
    let _ = writeln!(out);
    let _ = writeln!(out, "Commands");
    for (position, command) in report.commands.iter().enumerate() {
        let _ = writeln!(
            out,
            "  {:>2}. {:<34} {}  {}{}",
            position + 1,
            command.name,
            command.sw,
            command.answered_by,
            if command.matches_recording || command.answered_by.starts_with("no PPSE") {
                ""
            } else {
                ", differs from the recorded command"
            }
        );
    }
    for note in &report.notes {
        let _ = writeln!(out, "Note: {note}");
    }
    out
}
