//! Trusted release (Ed25519) public keys in the key store: seeded from configuration,
//! added, listed and retired through the API, every step audited.
//!
//! A public key is not secret, but whoever can add one can publish a kernel, so its integrity
//! matters: each key is sealed under the master keyring (label `release-key:<id>`), and the
//! ring the release service verifies with is rebuilt from the sealed values only. A row
//! inserted or edited by anyone without the master key does not authenticate and is never
//! trusted. Rotation = add the new key, then retire the old one.
//!
//! Configuration (`RELEASE_PUBLIC_KEYS`, `RELEASE_PUBLIC_KEYS_FILE`) only seeds: at start each
//! configured key id that the store does not know yet is added (origin `config`); a stored key
//! is never replaced or reactivated by configuration (a mismatch is logged).

use async_trait::async_trait;
use release_manifest::KeyRing;
use sha2::{Digest, Sha256};

use super::KeyService;
use super::model::{ReleaseKeyRecord, ReleaseKeyState};
use super::store::release_key_label;
use crate::domain::{Principal, now_millis};
use crate::error::{AppError, AppResult};
use crate::service::RequestContext;
use crate::service::releases::TrustedReleaseKeys;

/// The audit actor of configuration seeding.
const SEED_ACTOR: &str = "system:config";

fn fingerprint(public: &[u8]) -> String {
    hex::encode(Sha256::digest(public))
}

/// Parses one `id` and key (hex or base64, 32 bytes) with the manifest crate's own rules.
fn parse_one(key_id: &str, public_key: &str) -> AppResult<[u8; 32]> {
    // One entry only: no separators that would let a second key ride along.
    let separators = |text: &str| text.contains([',', '\n', '\r']);
    let ring = (!separators(key_id) && !key_id.contains('=') && !separators(public_key))
        .then(|| KeyRing::parse(&format!("{}={}", key_id.trim(), public_key.trim())).ok())
        .flatten()
        .filter(|ring| ring.len() == 1)
        .ok_or_else(|| {
            AppError::field(
                "public_key",
                "key_id [A-Za-z0-9._-], public_key 32 bytes hex or base64 (Ed25519)",
            )
        })?;
    let key = ring
        .get(key_id.trim())
        .ok_or_else(|| AppError::field("key_id", "letters, digits, '.', '_' or '-'"))?;
    Ok(key.to_bytes())
}

impl KeyService {
    fn seal_release_key(
        &self,
        key_id: &str,
        public: &[u8; 32],
        origin: &str,
        actor: String,
    ) -> AppResult<ReleaseKeyRecord> {
        Ok(ReleaseKeyRecord {
            key_id: key_id.to_owned(),
            sealed: self.store.wrap(&release_key_label(key_id), public)?,
            fingerprint: fingerprint(public),
            state: ReleaseKeyState::Active,
            origin: origin.to_owned(),
            created_by: actor,
            created_at: now_millis(),
            retired_at: None,
        })
    }

    /// Adds every configured key the store does not know yet; returns how many.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn seed_release_keys(&self, configured: &KeyRing) -> AppResult<u64> {
        let stored = self.repo.release_keys().await?;
        let mut added = 0;
        for key_id in configured.ids() {
            let Some(public) = configured.get(key_id).map(|key| key.to_bytes()) else {
                continue;
            };
            if let Some(existing) = stored.iter().find(|k| k.key_id == key_id) {
                if existing.fingerprint != fingerprint(&public) {
                    tracing::warn!(
                        key_id,
                        "configured release key differs from the stored one: the stored key stays (retire it and add the new one through the API)"
                    );
                } else if existing.state == ReleaseKeyState::Retired {
                    tracing::warn!(
                        key_id,
                        "configured release key was retired: configuration does not reactivate it"
                    );
                }
                continue;
            }
            let record = self.seal_release_key(key_id, &public, "config", SEED_ACTOR.to_owned())?;
            if self.repo.insert_release_key(&record).await? {
                self.audit(
                    SEED_ACTOR.to_owned(),
                    "keys.release_key_added",
                    format!("release_key:{key_id}"),
                    format!("seeded from configuration, sha256 {}", record.fingerprint),
                    &RequestContext::default(),
                )
                .await?;
                added += 1;
            }
        }
        Ok(added)
    }

    /// Every release key (active and retired), oldest first.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn list_release_keys(&self) -> AppResult<Vec<ReleaseKeyRecord>> {
        self.repo.release_keys().await
    }

    /// Trusts a new release key. Audited.
    ///
    /// # Errors
    /// `validation_failed`, `release_key_exists`.
    pub async fn add_release_key(
        &self,
        principal: &Principal,
        key_id: &str,
        public_key: &str,
        ctx: &RequestContext,
    ) -> AppResult<ReleaseKeyRecord> {
        let public = parse_one(key_id, public_key)?;
        let key_id = key_id.trim();
        let record = self.seal_release_key(key_id, &public, "api", principal.actor())?;
        if !self.repo.insert_release_key(&record).await? {
            return Err(AppError::Conflict {
                code: "release_key_exists",
                message: "a release key with this id exists (ids are never reused)",
            });
        }
        self.audit(
            principal.actor(),
            "keys.release_key_added",
            format!("release_key:{key_id}"),
            format!("sha256 {}", record.fingerprint),
            ctx,
        )
        .await?;
        Ok(record)
    }

    /// Stops trusting a release key. Audited.
    ///
    /// # Errors
    /// `not_found`, `release_key_not_active`.
    pub async fn retire_release_key(
        &self,
        principal: &Principal,
        key_id: &str,
        ctx: &RequestContext,
    ) -> AppResult<ReleaseKeyRecord> {
        let find = |keys: Vec<ReleaseKeyRecord>| keys.into_iter().find(|k| k.key_id == key_id);
        if find(self.repo.release_keys().await?).is_none() {
            return Err(AppError::NotFound("release key"));
        }
        if !self.repo.retire_release_key(key_id, now_millis()).await? {
            return Err(AppError::Conflict {
                code: "release_key_not_active",
                message: "the release key is already retired",
            });
        }
        self.audit(
            principal.actor(),
            "keys.release_key_retired",
            format!("release_key:{key_id}"),
            "no longer trusted for uploads".to_owned(),
            ctx,
        )
        .await?;
        find(self.repo.release_keys().await?).ok_or(AppError::NotFound("release key"))
    }
}

#[async_trait]
impl TrustedReleaseKeys for KeyService {
    async fn trusted_release_keys(&self) -> AppResult<KeyRing> {
        let mut ring = KeyRing::default();
        for key in self.repo.release_keys().await? {
            if key.state != ReleaseKeyState::Active {
                continue;
            }
            let opened = self
                .store
                .unwrap_bytes(&release_key_label(&key.key_id), &key.sealed)
                .ok()
                .and_then(|bytes| {
                    release_manifest::parse_public_key(&hex::encode(&bytes[..])).ok()
                });
            match opened {
                Some(public) => ring.insert(&key.key_id, public),
                // Written without the master key, or damaged: never trusted.
                None => tracing::error!(key_id = %key.key_id,
                    "stored release key does not authenticate under the master key: ignored"),
            }
        }
        Ok(ring)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_key_per_call_with_the_manifest_rules() {
        let hex_key = "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a";
        assert!(parse_one("rel-1", hex_key).is_ok());
        assert!(parse_one("rel 1", hex_key).is_err(), "bad id");
        assert!(parse_one("rel-1", "abcd").is_err(), "short key");
        assert!(
            parse_one("rel-1", &format!("{hex_key},rel-2={hex_key}")).is_err(),
            "a second entry smuggled in"
        );
        assert!(parse_one("a=b", hex_key).is_err());
    }
}
