//! `tr31 wrap` and `tr31 unwrap`: ANSI X9.143 / TR-31 key blocks, versions B and D.

use payment_crypto::tr31::{
    self, Algorithm, Exportability, KeyBlockHeader, KeyContext, KeyUsage, KeyVersion, ModeOfUse,
    Tr31Error, Version,
};
use serde::Serialize;

use crate::cli::{CipherArg, Tr31Command, Tr31VersionArg, Tr31WrapArgs};
use crate::error::CliError;
use crate::input;
use crate::output::Report;
use crate::random::{self, Randomness};

#[derive(Serialize)]
struct WrapOutput {
    key_block: String,
}

#[derive(Serialize)]
struct UnwrapOutput {
    key: String,
    version: String,
    key_usage: String,
    algorithm: String,
    mode_of_use: String,
    key_version: String,
    exportability: String,
    key_context: String,
    optional_blocks: Vec<String>,
}

pub(super) fn run(command: &Tr31Command) -> Result<Report, CliError> {
    match command {
        Tr31Command::Wrap(args) => wrap(args),
        Tr31Command::Unwrap(args) => {
            // The version ID, the block's first character, says which KBPK family to expect:
            // B is TDES; D (and anything unsupported, which unwrap then names) is AES.
            let block = args.key_block.trim();
            let cipher = if block.starts_with('B') {
                CipherArg::Tdes
            } else {
                CipherArg::Aes
            };
            let kbpk = input::key("--kbpk", &args.kbpk, cipher)?;
            let (header, key) = tr31::unwrap(&kbpk, block)?;
            Ok(Report::of(&UnwrapOutput {
                key: hex::encode_upper(key.expose_secret()),
                version: char::from(header.version.code()).to_string(),
                key_usage: text(&header.key_usage.code()),
                algorithm: char::from(header.algorithm.code()).to_string(),
                mode_of_use: char::from(header.mode_of_use.code()).to_string(),
                key_version: text(&header.key_version.code()),
                exportability: char::from(header.exportability.code()).to_string(),
                key_context: char::from(header.key_context.code()).to_string(),
                optional_blocks: header
                    .optional_blocks
                    .iter()
                    .map(|block| format!("{}{}", text(&block.id()), text(block.data())))
                    .collect(),
            }))
        }
    }
}

fn wrap(args: &Tr31WrapArgs) -> Result<Report, CliError> {
    let version = match args.version {
        Tr31VersionArg::B => Version::B,
        Tr31VersionArg::D => Version::D,
    };
    let kbpk_cipher = match version {
        Version::B => CipherArg::Tdes,
        _ => CipherArg::Aes,
    };
    let kbpk = input::key("--kbpk", &args.kbpk, kbpk_cipher)?;
    let header = header(args, version)?;
    // The wrapped key's own algorithm decides how its hex is read.
    let key_cipher = match header.algorithm {
        Algorithm::Tdes => CipherArg::Tdes,
        Algorithm::Aes => CipherArg::Aes,
        other => return Err(Tr31Error::UnsupportedKeyAlgorithm(other).into()),
    };
    let key = input::key("--key", &args.key, key_cipher)?;
    let test_bytes = random::test_bytes(args.test_random.as_deref())?;
    let mut rng = Randomness::new(test_bytes.as_deref())?;
    let block = match args.masked_length {
        Some(masked_len) => tr31::wrap_masked(&kbpk, &header, &key, masked_len, &mut rng)?,
        None => tr31::wrap(&kbpk, &header, &key, &mut rng)?,
    };
    Ok(Report::of(&WrapOutput { key_block: block }))
}

/// The header from the field flags, each looked up in its X9.143 table.
fn header(args: &Tr31WrapArgs, version: Version) -> Result<KeyBlockHeader, CliError> {
    let mut header = KeyBlockHeader::new(
        version,
        code(
            "--key-usage",
            &args.key_usage,
            KeyUsage::ALL,
            |u| u.code().to_vec(),
            Tr31Error::UnknownKeyUsage,
        )?,
        code(
            "--algorithm",
            &args.algorithm,
            Algorithm::ALL,
            |a| vec![a.code()],
            Tr31Error::UnknownAlgorithm,
        )?,
        code(
            "--mode-of-use",
            &args.mode_of_use,
            ModeOfUse::ALL,
            |m| vec![m.code()],
            Tr31Error::UnknownModeOfUse,
        )?,
        code(
            "--exportability",
            &args.exportability,
            Exportability::ALL,
            |e| vec![e.code()],
            Tr31Error::UnknownExportability,
        )?,
    );
    header.key_context = code(
        "--key-context",
        &args.key_context,
        KeyContext::ALL,
        |c| vec![c.code()],
        Tr31Error::UnknownKeyContext,
    )?;
    let version_chars: [u8; 2] = args
        .key_version
        .as_bytes()
        .try_into()
        .map_err(|_| CliError::from(Tr31Error::InvalidKeyVersion).for_flag("--key-version"))?;
    header.key_version = KeyVersion::new(version_chars)
        .map_err(|err| CliError::from(err).for_flag("--key-version"))?;
    Ok(header)
}

/// The table entry whose header characters are `text` (case-insensitive).
fn code<T: Copy>(
    flag: &str,
    text: &str,
    table: &[T],
    code_of: impl Fn(T) -> Vec<u8>,
    unknown: Tr31Error,
) -> Result<T, CliError> {
    let wanted = text.trim().to_ascii_uppercase();
    table
        .iter()
        .copied()
        .find(|entry| code_of(*entry) == wanted.as_bytes())
        .ok_or_else(|| CliError::from(unknown).for_flag(flag))
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}
