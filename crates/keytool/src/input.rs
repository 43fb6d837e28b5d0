//! Parsing of hex arguments: either case, spaces allowed, never echoed back in errors.

use payment_crypto::SecretKey;

use crate::cli::CipherArg;
use crate::error::CliError;

/// Decodes a hex argument, ignoring spaces and case.
///
/// Errors name the flag and the position of a bad character, never the value: it may be a key.
pub(crate) fn bytes(flag: &str, text: &str) -> Result<Vec<u8>, CliError> {
    let compact: String = text.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    let decoded = hex::decode(&compact).map_err(|err| {
        let reason = match err {
            hex::FromHexError::OddLength => "odd number of hex digits".to_owned(),
            hex::FromHexError::InvalidHexCharacter { index, .. } => {
                format!("not a hex digit at position {}", index + 1)
            }
            hex::FromHexError::InvalidStringLength => "wrong number of hex digits".to_owned(),
        };
        CliError::bad_input("invalid_hex", format!("{flag}: {reason}"))
    });
    wipe(compact);
    decoded
}

/// A hex argument of exactly `N` bytes.
pub(crate) fn array<const N: usize>(flag: &str, text: &str) -> Result<[u8; N], CliError> {
    let decoded = bytes(flag, text)?;
    decoded.as_slice().try_into().map_err(|_| {
        CliError::bad_input(
            "invalid_length",
            format!("{flag}: expected {N} bytes, got {}", decoded.len()),
        )
    })
}

/// A key from a hex argument: TDES (16 or 24 bytes) or AES (16, 24 or 32 bytes).
pub(crate) fn key(flag: &str, text: &str, cipher: CipherArg) -> Result<SecretKey, CliError> {
    let raw = bytes(flag, text)?;
    let key = match cipher {
        CipherArg::Tdes => SecretKey::tdes(&raw),
        CipherArg::Aes => SecretKey::aes(&raw),
    };
    wipe(raw);
    key.map_err(|err| CliError::from(err).for_flag(flag))
}

/// Overwrites a buffer that held key material before freeing it. `SecretKey` owns the only
/// copy that lives on; `black_box` keeps the compiler from dropping the overwrite as dead.
fn wipe(buffer: impl Into<Vec<u8>>) {
    let mut buffer = buffer.into();
    buffer.fill(0);
    std::hint::black_box(&buffer);
}
