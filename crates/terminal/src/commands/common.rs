//! What the device commands share: opening the secure store with its key from the environment
//! or the terminal, and turning library errors into one-line errors with the documented exit
//! codes.

use std::path::Path;

use crate::CliError;
use crate::error::{EXIT_BAD_INPUT, EXIT_INTERNAL, EXIT_STORE};
use crate::store::{SecureStore, StoreError, StoreKey};

/// The store key: `SOFTPOS_STORE_KEY`, `SOFTPOS_STORE_KEY_FILE` or `SOFTPOS_STORE_PASSPHRASE`,
/// else a passphrase typed without echo (twice when `confirm`, for a new store).
///
/// # Errors
/// `store_key_malformed`, `store_io`, `passphrase_unavailable` (no terminal to ask on),
/// `passphrase_mismatch`, `passphrase_too_short`.
pub fn store_key(confirm: bool) -> Result<StoreKey, CliError> {
    if let Some(key) = StoreKey::from_env().map_err(|error| store_error(&error))? {
        return Ok(key);
    }
    let ask = |prompt: &str| {
        rpassword::prompt_password(prompt).map_err(|_| {
            CliError::new(
                "passphrase_unavailable",
                "no store key: set SOFTPOS_STORE_KEY, SOFTPOS_STORE_KEY_FILE or \
                 SOFTPOS_STORE_PASSPHRASE, or run on a terminal to type the passphrase",
                EXIT_STORE,
            )
        })
    };
    let passphrase = ask("Store passphrase: ")?;
    if confirm {
        if passphrase.chars().count() < 8 {
            return Err(CliError::bad_input(
                "passphrase_too_short",
                "the passphrase needs at least 8 characters",
            ));
        }
        if ask("Repeat the passphrase: ")? != passphrase {
            return Err(CliError::bad_input(
                "passphrase_mismatch",
                "the two passphrases differ",
            ));
        }
    }
    Ok(StoreKey::passphrase(passphrase))
}

/// Opens the store at `path`.
///
/// # Errors
/// The store's error (exit code 7): `store_not_found` (run `init`), `store_wrong_key`,
/// `store_tampered`, …
pub fn open_store(path: &Path) -> Result<SecureStore, CliError> {
    let key = store_key(false)?;
    SecureStore::open(path, &key).map_err(|error| match error {
        StoreError::NotFound => CliError::new(
            "store_not_found",
            format!(
                "no secure store at {}: run `softpos-terminal init` first",
                path.display()
            ),
            EXIT_STORE,
        ),
        other => store_error(&other),
    })
}

/// A store error as a CLI error: configuration and key problems exit with 7, a malformed key
/// given by the user with 2.
#[must_use]
pub fn store_error(error: &StoreError) -> CliError {
    let exit = match error {
        StoreError::KeyMalformed => EXIT_BAD_INPUT,
        StoreError::Io(_)
        | StoreError::Exists
        | StoreError::NotFound
        | StoreError::WrongKey
        | StoreError::WrongKeyKind
        | StoreError::Tampered
        | StoreError::Format(_)
        | StoreError::NoActiveKeySet => EXIT_STORE,
        _ => EXIT_INTERNAL,
    };
    CliError::new(error.code(), error.to_string(), exit)
}
