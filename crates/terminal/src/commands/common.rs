//! What the device commands share: opening the secure store with its key from the environment
//! or the terminal, and turning library errors into one-line errors with the documented exit
//! codes.

use std::path::Path;
use std::sync::Arc;

use crate::CliError;
use crate::client::kernel::KernelError;
use crate::client::{Client, ClientError};
use crate::error::{
    EXIT_BAD_INPUT, EXIT_DEVICE_BLOCKED, EXIT_INTERNAL, EXIT_REFUSED, EXIT_STORE, EXIT_TIMEOUT,
    EXIT_UNREACHABLE, EXIT_VERIFICATION,
};
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

/// Server codes that mean "this device may not do that now" (exit code 5).
const DEVICE_BLOCKED: &[&str] = &[
    "device_not_active",
    "device_not_approved",
    "device_revoked",
    "device_not_eligible",
    "no_health_check",
    "health_check_failed",
    "health_check_stale",
    "blocking_threat",
    "no_active_key_set",
    "no_confirmed_key_set",
    "key_set_not_active",
    "unknown_device",
];

/// A back-end client error as a CLI error (see the exit-code table).
#[must_use]
pub fn client_error(error: &ClientError) -> CliError {
    let exit = match error {
        ClientError::Transport(_) => EXIT_UNREACHABLE,
        ClientError::Timeout(_) => EXIT_TIMEOUT,
        ClientError::Server { code, .. } if DEVICE_BLOCKED.contains(&code.as_str()) => {
            EXIT_DEVICE_BLOCKED
        }
        ClientError::Server { .. } => EXIT_REFUSED,
        ClientError::NotRegistered => EXIT_DEVICE_BLOCKED,
        ClientError::ServerUrl(_) => EXIT_BAD_INPUT,
        ClientError::Store(inner) => return store_error(inner),
        ClientError::Kernel(inner) => return kernel_error(inner),
        _ => EXIT_INTERNAL,
    };
    let message = match error {
        ClientError::NotRegistered => {
            "this terminal is not registered: run `softpos-terminal register` first".to_owned()
        }
        other => other.to_string(),
    };
    CliError::new(error.code().to_owned(), message, exit)
}

/// A kernel update or load error as a CLI error: verification failures exit with 9.
#[must_use]
pub fn kernel_error(error: &KernelError) -> CliError {
    let exit = match error {
        KernelError::Io(_) => EXIT_INTERNAL,
        KernelError::NoPrevious | KernelError::NoneInstalled => EXIT_BAD_INPUT,
        _ => EXIT_VERIFICATION,
    };
    CliError::new(error.code(), error.to_string(), exit)
}

/// Runs `future` to completion on a fresh single-threaded runtime.
///
/// # Errors
/// `runtime` (internal) when the runtime cannot start.
pub fn block_on<F: std::future::Future>(future: F) -> Result<F::Output, CliError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| CliError::internal("runtime", error.to_string()))?;
    Ok(runtime.block_on(future))
}

/// Opens the store and a client for the server in its configuration.
///
/// # Errors
/// Store errors (7); `server_url` (2) when no server is configured.
pub fn open_client(store_path: &Path) -> Result<Client, CliError> {
    let store = Arc::new(open_store(store_path)?);
    Client::new(store).map_err(|error| match error {
        ClientError::ServerUrl(_) => CliError::bad_input(
            "server_url",
            "no server configured: give --server to `init` or `register`",
        ),
        other => client_error(&other),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(status: u16, code: &str) -> ClientError {
        ClientError::Server {
            status,
            code: code.to_owned(),
            message: "refused".to_owned(),
        }
    }

    fn check(error: &ClientError, code: &str, exit: u8) {
        let cli = client_error(error);
        assert_eq!((cli.code.as_ref(), cli.exit_code), (code, exit), "{error}");
        assert_eq!(cli.to_string().lines().count(), 1);
    }

    #[test]
    fn client_errors_get_the_documented_exit_codes() {
        check(
            &ClientError::Transport("connect".to_owned()),
            "transport",
            3,
        );
        check(&server(401, "replayed_nonce"), "replayed_nonce", 4);
        check(
            &server(422, "refund_exceeds_captured"),
            "refund_exceeds_captured",
            4,
        );
        check(&server(409, "device_not_active"), "device_not_active", 5);
        check(
            &server(409, "health_check_failed"),
            "health_check_failed",
            5,
        );
        check(&ClientError::NotRegistered, "not_registered", 5);
        check(&ClientError::Timeout("approval"), "timeout", 10);
        check(&ClientError::ServerUrl("x".to_owned()), "server_url", 2);
        check(
            &ClientError::Store(StoreError::Tampered),
            "store_tampered",
            7,
        );
        check(
            &ClientError::Kernel(KernelError::BadSignature("signature")),
            "kernel_bad_signature",
            9,
        );
        check(
            &ClientError::Kernel(KernelError::NoPrevious),
            "kernel_no_previous",
            2,
        );
    }
}
