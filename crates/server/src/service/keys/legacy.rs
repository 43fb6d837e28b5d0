//! One-time move of values older versions wrapped under a key derived from `JWT_SECRET`
//! (Transaction Token signing keys, webhook HMAC secrets) into the key store.
//!
//! Migration `0010` marks those rows (no master version). At start, before any service reads
//! them, [`migrate_legacy_wraps`] opens each with the old derivation and seals it under the
//! master keyring, all in one transaction; the clear value lives only in a zeroizing buffer
//! for that moment. A row that does not open under the configured `JWT_SECRET` stops the start
//! (nothing is changed), rather than leaving a key nobody can use.

use zeroize::Zeroizing;

use super::store::{
    KeyStore, SealedRepository, SealedTable, token_key_label, webhook_secret_label,
};
use crate::error::{AppError, AppResult};
use crate::service::tokens::wrap::Wrapper;

/// The labels older versions derived their wrapping keys with.
const LEGACY_TOKEN_LABEL: &str = "token-signing-key";
const LEGACY_WEBHOOK_LABEL: &str = "webhook-secret";

/// Re-seals every legacy-wrapped value under the key store; returns how many.
///
/// # Errors
/// A legacy value that does not open under `server_secret` (nothing changes), storage errors.
pub async fn migrate_legacy_wraps(
    repo: &dyn SealedRepository,
    store: &dyn KeyStore,
    server_secret: &[u8],
) -> AppResult<u64> {
    let tokens = Wrapper::derive(server_secret, LEGACY_TOKEN_LABEL);
    let webhooks = Wrapper::derive(server_secret, LEGACY_WEBHOOK_LABEL);
    let moved = repo
        .migrate_legacy(&|table, id, wrapped| {
            let (wrapper, label) = match table {
                SealedTable::TokenKeys => (&tokens, token_key_label(id)),
                SealedTable::WebhookSecrets => (
                    &webhooks,
                    webhook_secret_label(
                        id.parse()
                            .map_err(|_| crate::repository::corrupt("webhook_endpoints.id"))?,
                    ),
                ),
                _ => return Err(crate::repository::corrupt("legacy table")),
            };
            let clear = Zeroizing::new(wrapper.unwrap(wrapped, id).map_err(|_| {
                AppError::Other(anyhow::anyhow!(
                    "{} ({}) does not open under JWT_SECRET: set the JWT_SECRET it was stored with",
                    label.id,
                    label.usage
                ))
            })?);
            store.wrap(&label, &clear)
        })
        .await?;
    if moved > 0 {
        tracing::info!(
            moved,
            "moved token signing keys and webhook secrets under the master keyring"
        );
    }
    Ok(moved)
}
