//! `softpos-server attestation verify`: the registration verifier, offline, for operators
//! debugging a failed onboarding. Exit 0 when accepted, 1 when refused, 2 on bad input (one
//! line `error: <code>: <message>` on stderr).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::SystemTime;

use android_attestation::{
    Outcome, Policy, RevocationList, SecurityLevel, TrustAnchors, Verification, parse_hex,
};
use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand};

/// Offline tools.
#[derive(Parser, Debug)]
#[command(
    name = "softpos-server",
    about = "SUNBAY SoftPOS back end: offline tools"
)]
pub(crate) struct Tools {
    #[command(subcommand)]
    command: Tool,
}

#[derive(Subcommand, Debug)]
enum Tool {
    /// Device attestation.
    Attestation {
        #[command(subcommand)]
        command: AttestationCommand,
    },
}

#[derive(Subcommand, Debug)]
enum AttestationCommand {
    /// Verifies an Android Key Attestation certificate chain (PEM or DER, leaf first).
    Verify(VerifyArgs),
}

#[derive(clap::Args, Debug)]
struct VerifyArgs {
    /// The chain: PEM certificates or concatenated DER, leaf first.
    #[arg(long)]
    chain: PathBuf,
    /// Verification instant, RFC 3339 (default: now). Sample chains are old.
    #[arg(long)]
    at: Option<String>,
    /// Expected attestationChallenge, hex.
    #[arg(long)]
    challenge: Option<String>,
    /// Allowed package (repeatable).
    #[arg(long)]
    package: Vec<String>,
    /// Allowed signing certificate SHA-256, hex (repeatable).
    #[arg(long)]
    digest: Vec<String>,
    /// Google's revocation status list (JSON); its modification time is its fetch time.
    #[arg(long)]
    revocations: Option<PathBuf>,
    /// Oldest acceptable revocation list, seconds.
    #[arg(long, default_value_t = 86_400)]
    max_revocation_age: i64,
    /// Lowest accepted security level: software, tee or strongbox.
    #[arg(long, default_value = "tee")]
    security_level: String,
    /// Accept unlocked bootloaders and unverified boot.
    #[arg(long)]
    allow_unlocked: bool,
    /// Print the verdict as JSON.
    #[arg(long)]
    json: bool,
}

/// Whether the arguments select an offline tool rather than the server.
pub(crate) fn selected() -> bool {
    std::env::args().nth(1).as_deref() == Some("attestation")
}

struct BadInput {
    code: &'static str,
    message: String,
}

impl From<android_attestation::Error> for BadInput {
    fn from(error: android_attestation::Error) -> Self {
        Self {
            code: error.code(),
            message: error.to_string(),
        }
    }
}

/// Runs the selected tool.
pub(crate) fn run() -> ExitCode {
    let tools = Tools::parse();
    let Tool::Attestation {
        command: AttestationCommand::Verify(args),
    } = tools.command;
    match verify(&args) {
        Ok(verification) => {
            if args.json {
                match serde_json::to_string_pretty(&verification) {
                    Ok(text) => println!("{text}"),
                    Err(error) => {
                        eprintln!("error: output: {error}");
                        return ExitCode::from(2);
                    }
                }
            } else {
                print_text(&verification);
            }
            if verification.accepted {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(bad) => {
            eprintln!("error: {}: {}", bad.code, bad.message);
            ExitCode::from(2)
        }
    }
}

fn read(path: &PathBuf, code: &'static str) -> Result<Vec<u8>, BadInput> {
    std::fs::read(path).map_err(|e| BadInput {
        code,
        message: format!("{}: {}", path.display(), e.kind()),
    })
}

fn verify(args: &VerifyArgs) -> Result<Verification, BadInput> {
    let at = match &args.at {
        Some(text) => DateTime::parse_from_rfc3339(text)
            .map_err(|_| BadInput {
                code: "bad_time",
                message: format!("--at {text:?} is not RFC 3339"),
            })?
            .timestamp(),
        None => Utc::now().timestamp(),
    };
    let required_security_level =
        SecurityLevel::parse(&args.security_level).ok_or_else(|| BadInput {
            code: "bad_security_level",
            message: "--security-level must be software, tee or strongbox".to_owned(),
        })?;
    let expected_challenge = args.challenge.as_deref().map(parse_hex).transpose()?;
    let allowed_signing_digests = args
        .digest
        .iter()
        .map(|d| parse_hex(d))
        .collect::<Result<Vec<_>, _>>()?;
    let revocations = match &args.revocations {
        Some(path) => {
            let bytes = read(path, "revocation_list_unreadable")?;
            let fetched_at = std::fs::metadata(path)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
                .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
            Some(RevocationList::parse(&bytes, fetched_at)?)
        }
        None => None,
    };
    let chain = read(&args.chain, "chain_unreadable")?;
    let policy = Policy {
        expected_challenge,
        allowed_packages: args.package.clone(),
        allowed_signing_digests,
        required_security_level,
        require_verified_boot: !args.allow_unlocked,
        require_device_locked: !args.allow_unlocked,
        max_revocation_age_secs: args.max_revocation_age,
        require_revocation_list: false,
    };
    Ok(android_attestation::verify_bytes(
        &chain,
        &TrustAnchors::google(),
        &policy,
        revocations.as_ref(),
        at,
    )?)
}

fn print_text(v: &Verification) {
    let when = DateTime::<Utc>::from_timestamp(v.verified_at, 0)
        .map(|t| t.to_rfc3339())
        .unwrap_or_default();
    println!(
        "verdict: {}",
        if v.accepted { "ACCEPTED" } else { "REFUSED" }
    );
    println!("verified at: {when}");
    println!("chain (leaf first):");
    for (i, cert) in v.chain.iter().enumerate() {
        println!(
            "  [{i}] {} (serial {}){}",
            cert.subject,
            cert.serial,
            if cert.has_key_description {
                ", KeyDescription"
            } else {
                ""
            }
        );
    }
    println!("key description:");
    match serde_json::to_string_pretty(&v.key_description) {
        Ok(text) => {
            for line in text.lines() {
                println!("  {line}");
            }
        }
        Err(error) => println!("  (cannot print: {error})"),
    }
    println!("checks:");
    for check in &v.checks {
        let mark = match check.outcome {
            Outcome::Pass => "pass",
            Outcome::Fail => "FAIL",
            Outcome::Skipped => "skip",
        };
        println!("  {mark} {}: {}", check.name, check.reason);
    }
    let failed: Vec<_> = v.failed().collect();
    if !failed.is_empty() {
        println!("failed checks:");
        for check in failed {
            println!("  {}: {}", check.name, check.reason);
        }
    }
}
