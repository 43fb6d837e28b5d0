//! `pin ...`: ISO 9564-1 PIN blocks (formats 0, 1, 3, 4): build, parse, verify, translate.
//!
//! Clear PINs enter only through `--test-pin` and leave only through `pin parse
//! --reveal-test-pin`: both are for test cards and published vectors, never live cardholder PINs.

use payment_crypto::SecretKey;
use payment_crypto::pinblock::{self, ClearPin, EncryptedPinBlock, Pan, PinBlockFormat};
use serde::Serialize;

use crate::cli::{CipherArg, EncipheredPinArgs, PinCommand, PinFormatArg};
use crate::error::CliError;
use crate::input;
use crate::output::{Report, Verified};
use crate::random::{self, Randomness};

#[derive(Serialize)]
struct PinBlockOutput {
    pin_block: String,
}

#[derive(Serialize)]
struct ParseOutput {
    pin_length: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pin: Option<String>,
}

pub(super) fn run(command: &PinCommand) -> Result<Report, CliError> {
    match command {
        PinCommand::Build(args) => {
            let format = format(args.format);
            let key = key("--key", &args.key, format)?;
            let pin = test_pin(&args.test_pin)?;
            let pan = pan(args.pan.as_deref())?;
            let test_bytes = random::test_bytes(args.test_random.as_deref())?;
            let mut rng = Randomness::new(test_bytes.as_deref())?;
            let block = pinblock::encrypt_pin(&key, format, &pin, pan.as_ref(), &mut rng)?;
            Ok(Report::of(&PinBlockOutput {
                pin_block: hex::encode_upper(block.as_bytes()),
            }))
        }
        PinCommand::Parse(args) => {
            let (format, key, block, pan) = open(&args.enciphered)?;
            let pin = pinblock::decrypt_pin(&key, format, &block, pan.as_ref())?;
            Ok(Report::of(&ParseOutput {
                pin_length: pin.len(),
                pin: args.reveal_test_pin.then(|| digits(&pin)),
            }))
        }
        PinCommand::Verify(args) => {
            let (format, key, block, pan) = open(&args.enciphered)?;
            let expected = test_pin(&args.test_pin)?;
            if pinblock::verify_pin(&key, format, &block, pan.as_ref(), &expected)? {
                Ok(Report::of(&Verified { valid: true }))
            } else {
                Err(CliError::mismatch(
                    "pin_mismatch",
                    "the PIN block does not hold the given PIN",
                ))
            }
        }
        PinCommand::Translate(args) => {
            let (from_format, to_format) = (format(args.from_format), format(args.to_format));
            let from_key = key("--from-key", &args.from_key, from_format)?;
            let to_key = key("--to-key", &args.to_key, to_format)?;
            let block = block(&args.block)?;
            let pan = pan(args.pan.as_deref())?;
            let test_bytes = random::test_bytes(args.test_random.as_deref())?;
            let mut rng = Randomness::new(test_bytes.as_deref())?;
            let translated = pinblock::translate(
                &block,
                (&from_key, from_format),
                (&to_key, to_format),
                pan.as_ref(),
                &mut rng,
            )?;
            Ok(Report::of(&PinBlockOutput {
                pin_block: hex::encode_upper(translated.as_bytes()),
            }))
        }
    }
}

/// Parses the block, its format, its key and the PAN given to `pin parse` and `pin verify`.
fn open(
    args: &EncipheredPinArgs,
) -> Result<(PinBlockFormat, SecretKey, EncryptedPinBlock, Option<Pan>), CliError> {
    let format = format(args.format);
    let key = key("--key", &args.key, format)?;
    let block = block(&args.block)?;
    let pan = pan(args.pan.as_deref())?;
    Ok((format, key, block, pan))
}

fn format(arg: PinFormatArg) -> PinBlockFormat {
    match arg {
        PinFormatArg::Iso0 => PinBlockFormat::Iso0,
        PinFormatArg::Iso1 => PinBlockFormat::Iso1,
        PinFormatArg::Iso3 => PinBlockFormat::Iso3,
        PinFormatArg::Iso4 => PinBlockFormat::Iso4,
    }
}

/// Format 4 is enciphered with AES, formats 0, 1 and 3 with TDES (ISO 9564-1:2017 9.3, 9.4).
fn key(flag: &str, text: &str, format: PinBlockFormat) -> Result<SecretKey, CliError> {
    let cipher = if format == PinBlockFormat::Iso4 {
        CipherArg::Aes
    } else {
        CipherArg::Tdes
    };
    input::key(flag, text, cipher)
}

fn test_pin(text: &str) -> Result<ClearPin, CliError> {
    ClearPin::new(text).map_err(|err| CliError::from(err).for_flag("--test-pin"))
}

fn pan(text: Option<&str>) -> Result<Option<Pan>, CliError> {
    text.map(|digits| Pan::new(digits).map_err(|err| CliError::from(err).for_flag("--pan")))
        .transpose()
}

fn block(text: &str) -> Result<EncryptedPinBlock, CliError> {
    EncryptedPinBlock::from_bytes(&input::bytes("--block", text)?)
        .map_err(|err| CliError::from(err).for_flag("--block"))
}

fn digits(pin: &ClearPin) -> String {
    pin.expose_secret()
        .iter()
        .map(|digit| char::from(b'0' + digit))
        .collect()
}
