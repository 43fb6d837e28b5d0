//! Key custody tables: `stored_keys`, `key_ceremonies`, `key_ceremony_custodians`,
//! `key_profiles`, `device_key_sets`. Wrapped values are stored as given; this layer never
//! sees clear key material.

use crate::infra::db::Database;
use async_trait::async_trait;
use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};
use uuid::Uuid;

use super::corrupt;
use crate::domain::{DeviceId, DeviceMode, UnixMillis};
use crate::error::{AppError, AppResult};
use crate::infra::db::is_unique_violation;
use crate::service::keys::model::{
    Ceremony, Custodian, KeyProfile, KeySet, KeyState, KeyUsageKind, ReleaseKeyRecord, StoredKey,
    parse_scheme, scheme_name,
};
use crate::service::keys::store::{
    LegacyReseal, Rewrap, Sealed, SealedItem, SealedRepository, SealedTable, WrapLabel,
    algorithm_name, parse_algorithm, release_key_label, token_key_label, webhook_secret_label,
};

/// Storage of key custody records.
#[async_trait]
pub trait KeyRepository: SealedRepository {
    /// Inserts a key.
    async fn insert_key(&self, key: &StoredKey) -> AppResult<()>;
    /// By id.
    async fn find_key(&self, id: Uuid) -> AppResult<Option<StoredKey>>;
    /// Newest first, optionally of one usage.
    async fn list_keys(&self, usage: Option<KeyUsageKind>) -> AppResult<Vec<StoredKey>>;
    /// Moves a key `from` → `to`; false when it was not in `from`.
    async fn set_key_state(
        &self,
        id: Uuid,
        from: KeyState,
        to: KeyState,
        at: UnixMillis,
    ) -> AppResult<bool>;
    /// The newest active key of `usage` among `algorithms` (and `processor`, for ZPKs).
    async fn newest_active(
        &self,
        usage: KeyUsageKind,
        algorithms: &[&'static str],
        processor: Option<&str>,
    ) -> AppResult<Option<StoredKey>>;
    /// Whether a user account exists.
    async fn user_exists(&self, id: Uuid) -> AppResult<bool>;

    /// Inserts a ceremony, its custodians and its pending key in one transaction.
    async fn insert_ceremony(&self, key: &StoredKey, ceremony: &Ceremony) -> AppResult<()>;
    /// By id, with custodians.
    async fn find_ceremony(&self, id: Uuid) -> AppResult<Option<Ceremony>>;
    /// Records a component once; false when already submitted (or not a custodian).
    async fn submit_component(
        &self,
        ceremony: Uuid,
        user: Uuid,
        kcv: &str,
        sealed: &Sealed,
        at: UnixMillis,
    ) -> AppResult<bool>;
    /// Stores the combined key and marks the ceremony complete (OPEN → COMPLETE).
    async fn complete_ceremony(
        &self,
        ceremony: Uuid,
        key: Uuid,
        kcv: &str,
        sealed: &Sealed,
        at: UnixMillis,
    ) -> AppResult<bool>;
    /// Activates the key, erases the components and marks the ceremony confirmed.
    async fn confirm_ceremony(&self, ceremony: Uuid, key: Uuid, at: UnixMillis) -> AppResult<bool>;

    /// Both profiles.
    async fn list_profiles(&self) -> AppResult<Vec<KeyProfile>>;
    /// One profile.
    async fn find_profile(&self, mode: DeviceMode) -> AppResult<Option<KeyProfile>>;
    /// Replaces a profile.
    async fn update_profile(&self, profile: &KeyProfile) -> AppResult<bool>;

    /// The next key set version of a device.
    async fn next_key_set_version(&self, device: DeviceId) -> AppResult<i64>;
    /// Inserts; `Ok(false)` when the initial key id is already taken (draw again).
    async fn insert_key_set(&self, set: &KeySet) -> AppResult<bool>;
    /// By id.
    async fn find_key_set(&self, id: Uuid) -> AppResult<Option<KeySet>>;
    /// The device's active key set.
    async fn active_key_set(&self, device: DeviceId) -> AppResult<Option<KeySet>>;
    /// All key sets of a device, newest first.
    async fn list_key_sets(&self, device: DeviceId) -> AppResult<Vec<KeySet>>;
    /// ISSUED → ACTIVE, superseding (and erasing) the previous active set, in one transaction.
    async fn activate_key_set(&self, id: Uuid, device: DeviceId, at: UnixMillis)
    -> AppResult<bool>;
    /// Marks the active key set for rotation.
    async fn request_rotation(&self, device: DeviceId, at: UnixMillis) -> AppResult<bool>;

    /// Inserts a trusted release key; `Ok(false)` when the key id exists.
    async fn insert_release_key(&self, key: &ReleaseKeyRecord) -> AppResult<bool>;
    /// Every release key, oldest first.
    async fn release_keys(&self) -> AppResult<Vec<ReleaseKeyRecord>>;
    /// ACTIVE → RETIRED.
    async fn retire_release_key(&self, key_id: &str, at: UnixMillis) -> AppResult<bool>;
}

/// SQL implementation.
#[derive(Debug, Clone)]
pub struct SqlKeyRepository {
    reader: AnyPool,
    writer: AnyPool,
}

impl SqlKeyRepository {
    /// Reads through the database's reader pool, writes through its writer.
    pub fn new(db: &Database) -> Self {
        Self {
            reader: db.reader.clone(),
            writer: db.writer.clone(),
        }
    }
}

macro_rules! key_columns {
    () => {
        "id, name, usage, algorithm, state, origin, kcv, dukpt_key_id, processor, pin_format, \
         wrapped, master_version, created_by, created_at, activated_at, retired_at, updated_at"
    };
}

fn uuid_of(row: &AnyRow, column: &'static str) -> AppResult<Uuid> {
    let text: String = row.try_get(column)?;
    text.parse().map_err(|_| corrupt(column))
}

fn sealed_of(row: &AnyRow) -> AppResult<Option<Sealed>> {
    let wrapped: Option<String> = row.try_get("wrapped")?;
    let version: Option<i64> = row.try_get("master_version")?;
    Ok(match (wrapped, version) {
        (Some(wrapped), Some(version)) => Some(Sealed {
            wrapped,
            master_version: u32::try_from(version).map_err(|_| corrupt("master_version"))?,
        }),
        _ => None,
    })
}

fn to_key(row: &AnyRow) -> AppResult<StoredKey> {
    let usage: String = row.try_get("usage")?;
    let algorithm: String = row.try_get("algorithm")?;
    let state: String = row.try_get("state")?;
    let origin: String = row.try_get("origin")?;
    let pin_format: Option<i64> = row.try_get("pin_format")?;
    Ok(StoredKey {
        id: uuid_of(row, "id")?,
        name: row.try_get("name")?,
        usage: usage.parse().map_err(|()| corrupt("stored_keys.usage"))?,
        algorithm: parse_algorithm(&algorithm).ok_or_else(|| corrupt("stored_keys.algorithm"))?,
        state: state.parse().map_err(|()| corrupt("stored_keys.state"))?,
        origin: origin.parse().map_err(|()| corrupt("stored_keys.origin"))?,
        kcv: row.try_get("kcv")?,
        dukpt_key_id: row.try_get("dukpt_key_id")?,
        processor: row.try_get("processor")?,
        pin_format: pin_format
            .map(|f| u8::try_from(f).map_err(|_| corrupt("stored_keys.pin_format")))
            .transpose()?,
        sealed: sealed_of(row)?,
        created_by: row.try_get("created_by")?,
        created_at: row.try_get("created_at")?,
        activated_at: row.try_get("activated_at")?,
        retired_at: row.try_get("retired_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

macro_rules! set_columns {
    () => {
        "id, device_id, version, scheme, bdk_id, initial_key_id, kcv, state, wrapped, \
         master_version, rotation_requested_at, created_at, confirmed_at, destroyed_at, updated_at"
    };
}

fn to_key_set(row: &AnyRow) -> AppResult<KeySet> {
    let scheme: String = row.try_get("scheme")?;
    let state: String = row.try_get("state")?;
    let initial: String = row.try_get("initial_key_id")?;
    Ok(KeySet {
        id: uuid_of(row, "id")?,
        device_id: DeviceId(uuid_of(row, "device_id")?),
        version: row.try_get("version")?,
        scheme: parse_scheme(&scheme).ok_or_else(|| corrupt("device_key_sets.scheme"))?,
        bdk_id: uuid_of(row, "bdk_id")?,
        initial_key_id: hex::decode(initial)
            .map_err(|_| corrupt("device_key_sets.initial_key_id"))?,
        kcv: row.try_get("kcv")?,
        state: state
            .parse()
            .map_err(|()| corrupt("device_key_sets.state"))?,
        sealed: sealed_of(row)?,
        rotation_requested_at: row.try_get("rotation_requested_at")?,
        created_at: row.try_get("created_at")?,
        confirmed_at: row.try_get("confirmed_at")?,
        destroyed_at: row.try_get("destroyed_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn to_profile(row: &AnyRow) -> AppResult<KeyProfile> {
    let mode: String = row.try_get("mode")?;
    let scheme: String = row.try_get("scheme")?;
    let bdk: Option<String> = row.try_get("bdk_id")?;
    Ok(KeyProfile {
        mode: mode.parse().map_err(|()| corrupt("key_profiles.mode"))?,
        scheme: parse_scheme(&scheme).ok_or_else(|| corrupt("key_profiles.scheme"))?,
        bdk_id: bdk
            .map(|b| b.parse().map_err(|_| corrupt("key_profiles.bdk_id")))
            .transpose()?,
        rotate_after: row.try_get("rotate_after")?,
        updated_by: row.try_get("updated_by")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// The AAD label of a stored key.
pub fn key_label(id: Uuid, usage: KeyUsageKind, algorithm: &str) -> WrapLabel {
    WrapLabel {
        id: format!("key:{id}"),
        usage: usage.as_str().to_owned(),
        algorithm: algorithm.to_owned(),
    }
}

/// The AAD label of a ceremony component.
pub fn component_label(ceremony: Uuid, user: Uuid, algorithm: &str) -> WrapLabel {
    WrapLabel {
        id: format!("ceremony:{ceremony}:custodian:{user}"),
        usage: "component".to_owned(),
        algorithm: algorithm.to_owned(),
    }
}

/// The AAD label of a device initial key.
pub fn key_set_label(id: Uuid, algorithm: &str) -> WrapLabel {
    WrapLabel {
        id: format!("keyset:{id}"),
        usage: "initial_key".to_owned(),
        algorithm: algorithm.to_owned(),
    }
}

#[async_trait]
impl SealedRepository for SqlKeyRepository {
    async fn migrate_legacy(&self, reseal: &LegacyReseal<'_>) -> AppResult<u64> {
        let mut tx = self.writer.begin().await?;
        let mut changed = 0;
        for (table, select, update) in [
            (
                SealedTable::TokenKeys,
                "SELECT kid AS id, private_wrapped AS wrapped FROM token_signing_keys \
                 WHERE master_version IS NULL",
                "UPDATE token_signing_keys SET private_wrapped = $1, master_version = $2 \
                 WHERE kid = $3 AND master_version IS NULL",
            ),
            (
                SealedTable::WebhookSecrets,
                "SELECT id, secret_wrapped AS wrapped FROM webhook_endpoints \
                 WHERE master_version IS NULL",
                "UPDATE webhook_endpoints SET secret_wrapped = $1, master_version = $2 \
                 WHERE id = $3 AND master_version IS NULL",
            ),
        ] {
            for row in sqlx::query(select).fetch_all(&mut *tx).await? {
                let id: String = row.try_get("id")?;
                let wrapped: String = row.try_get("wrapped")?;
                let sealed = reseal(table, &id, &wrapped)?;
                changed += sqlx::query(update)
                    .bind(&sealed.wrapped)
                    .bind(i64::from(sealed.master_version))
                    .bind(&id)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
            }
        }
        tx.commit().await?;
        Ok(changed)
    }

    async fn rewrap_all(&self, rewrap: &Rewrap) -> AppResult<u64> {
        let mut tx = self.writer.begin().await?;
        let mut items = Vec::new();
        for row in sqlx::query(
            "SELECT id, usage, algorithm, wrapped, master_version FROM stored_keys \
             WHERE wrapped IS NOT NULL",
        )
        .fetch_all(&mut *tx)
        .await?
        {
            let id = uuid_of(&row, "id")?;
            let usage: String = row.try_get("usage")?;
            let algorithm: String = row.try_get("algorithm")?;
            let usage: KeyUsageKind = usage.parse().map_err(|()| corrupt("stored_keys.usage"))?;
            if let Some(sealed) = sealed_of(&row)? {
                items.push(SealedItem {
                    locator: (SealedTable::StoredKeys, id.to_string()),
                    label: key_label(id, usage, &algorithm),
                    sealed,
                });
            }
        }
        for row in sqlx::query(
            "SELECT c.ceremony_id, c.user_id, k.algorithm, c.wrapped, c.master_version \
             FROM key_ceremony_custodians c \
             JOIN key_ceremonies e ON e.id = c.ceremony_id \
             JOIN stored_keys k ON k.id = e.key_id \
             WHERE c.wrapped IS NOT NULL",
        )
        .fetch_all(&mut *tx)
        .await?
        {
            let ceremony = uuid_of(&row, "ceremony_id")?;
            let user = uuid_of(&row, "user_id")?;
            let algorithm: String = row.try_get("algorithm")?;
            if let Some(sealed) = sealed_of(&row)? {
                items.push(SealedItem {
                    locator: (SealedTable::Components, format!("{ceremony}/{user}")),
                    label: component_label(ceremony, user, &algorithm),
                    sealed,
                });
            }
        }
        for row in sqlx::query(
            "SELECT s.id, k.algorithm, s.wrapped, s.master_version FROM device_key_sets s \
             JOIN stored_keys k ON k.id = s.bdk_id WHERE s.wrapped IS NOT NULL",
        )
        .fetch_all(&mut *tx)
        .await?
        {
            let id = uuid_of(&row, "id")?;
            let algorithm: String = row.try_get("algorithm")?;
            if let Some(sealed) = sealed_of(&row)? {
                items.push(SealedItem {
                    locator: (SealedTable::KeySets, id.to_string()),
                    label: key_set_label(id, &algorithm),
                    sealed,
                });
            }
        }
        // Token signing keys, webhook secrets and release keys: same keyring, same sweep.
        for (table, sql) in [
            (
                SealedTable::TokenKeys,
                "SELECT kid AS id, private_wrapped AS wrapped, master_version \
                 FROM token_signing_keys WHERE master_version IS NOT NULL",
            ),
            (
                SealedTable::WebhookSecrets,
                "SELECT id, secret_wrapped AS wrapped, master_version \
                 FROM webhook_endpoints WHERE master_version IS NOT NULL",
            ),
            (
                SealedTable::ReleaseKeys,
                "SELECT key_id AS id, wrapped, master_version FROM release_keys",
            ),
        ] {
            for row in sqlx::query(sql).fetch_all(&mut *tx).await? {
                let id: String = row.try_get("id")?;
                let label = match table {
                    SealedTable::TokenKeys => token_key_label(&id),
                    SealedTable::WebhookSecrets => webhook_secret_label(
                        id.parse().map_err(|_| corrupt("webhook_endpoints.id"))?,
                    ),
                    _ => release_key_label(&id),
                };
                if let Some(sealed) = sealed_of(&row)? {
                    items.push(SealedItem {
                        locator: (table, id),
                        label,
                        sealed,
                    });
                }
            }
        }
        let mut changed = 0;
        for item in &items {
            let sealed = rewrap(item)?;
            if sealed == item.sealed {
                continue;
            }
            let version = i64::from(sealed.master_version);
            let (table, locator) = &item.locator;
            match table {
                SealedTable::StoredKeys => {
                    sqlx::query(
                        "UPDATE stored_keys SET wrapped = $1, master_version = $2 WHERE id = $3",
                    )
                    .bind(&sealed.wrapped)
                    .bind(version)
                    .bind(locator)
                    .execute(&mut *tx)
                    .await?;
                }
                SealedTable::Components => {
                    let (ceremony, user) = locator
                        .split_once('/')
                        .ok_or_else(|| corrupt("component locator"))?;
                    sqlx::query(
                        "UPDATE key_ceremony_custodians SET wrapped = $1, master_version = $2 \
                         WHERE ceremony_id = $3 AND user_id = $4",
                    )
                    .bind(&sealed.wrapped)
                    .bind(version)
                    .bind(ceremony)
                    .bind(user)
                    .execute(&mut *tx)
                    .await?;
                }
                SealedTable::KeySets => {
                    sqlx::query(
                        "UPDATE device_key_sets SET wrapped = $1, master_version = $2 WHERE id = $3",
                    )
                    .bind(&sealed.wrapped)
                    .bind(version)
                    .bind(locator)
                    .execute(&mut *tx)
                    .await?;
                }
                SealedTable::TokenKeys => {
                    sqlx::query(
                        "UPDATE token_signing_keys SET private_wrapped = $1, master_version = $2 \
                         WHERE kid = $3",
                    )
                    .bind(&sealed.wrapped)
                    .bind(version)
                    .bind(locator)
                    .execute(&mut *tx)
                    .await?;
                }
                SealedTable::WebhookSecrets => {
                    sqlx::query(
                        "UPDATE webhook_endpoints SET secret_wrapped = $1, master_version = $2 \
                         WHERE id = $3",
                    )
                    .bind(&sealed.wrapped)
                    .bind(version)
                    .bind(locator)
                    .execute(&mut *tx)
                    .await?;
                }
                SealedTable::ReleaseKeys => {
                    sqlx::query(
                        "UPDATE release_keys SET wrapped = $1, master_version = $2 WHERE key_id = $3",
                    )
                    .bind(&sealed.wrapped)
                    .bind(version)
                    .bind(locator)
                    .execute(&mut *tx)
                    .await?;
                }
            }
            changed += 1;
        }
        tx.commit().await?;
        Ok(changed)
    }
}

async fn insert_key_with<'e, E>(executor: E, key: &StoredKey) -> AppResult<()>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    sqlx::query(
        "INSERT INTO stored_keys (id, name, usage, algorithm, state, origin, kcv, dukpt_key_id, \
         processor, pin_format, wrapped, master_version, created_by, created_at, activated_at, \
         retired_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)",
    )
    .bind(key.id.to_string())
    .bind(&key.name)
    .bind(key.usage.as_str())
    .bind(algorithm_name(key.algorithm))
    .bind(key.state.as_str())
    .bind(key.origin.as_str())
    .bind(key.kcv.clone())
    .bind(key.dukpt_key_id.clone())
    .bind(key.processor.clone())
    .bind(key.pin_format.map(i64::from))
    .bind(key.sealed.as_ref().map(|s| s.wrapped.clone()))
    .bind(key.sealed.as_ref().map(|s| i64::from(s.master_version)))
    .bind(&key.created_by)
    .bind(key.created_at)
    .bind(key.activated_at)
    .bind(key.retired_at)
    .bind(key.updated_at)
    .execute(executor)
    .await?;
    Ok(())
}

#[async_trait]
impl KeyRepository for SqlKeyRepository {
    async fn insert_key(&self, key: &StoredKey) -> AppResult<()> {
        insert_key_with(&self.writer, key).await
    }

    async fn find_key(&self, id: Uuid) -> AppResult<Option<StoredKey>> {
        sqlx::query(concat!(
            "SELECT ",
            key_columns!(),
            " FROM stored_keys WHERE id = $1"
        ))
        .bind(id.to_string())
        .fetch_optional(&self.reader)
        .await?
        .as_ref()
        .map(to_key)
        .transpose()
    }

    async fn list_keys(&self, usage: Option<KeyUsageKind>) -> AppResult<Vec<StoredKey>> {
        sqlx::query(concat!(
            "SELECT ",
            key_columns!(),
            " FROM stored_keys WHERE ($1 IS NULL OR usage = $1) \
             ORDER BY created_at DESC, id LIMIT 500"
        ))
        .bind(usage.map(KeyUsageKind::as_str))
        .fetch_all(&self.reader)
        .await?
        .iter()
        .map(to_key)
        .collect()
    }

    async fn set_key_state(
        &self,
        id: Uuid,
        from: KeyState,
        to: KeyState,
        at: UnixMillis,
    ) -> AppResult<bool> {
        let activated = (to == KeyState::Active).then_some(at);
        let retired = (to == KeyState::Retired).then_some(at);
        let n = sqlx::query(
            "UPDATE stored_keys SET state = $1, updated_at = $2, \
             activated_at = COALESCE($3, activated_at), retired_at = COALESCE($4, retired_at) \
             WHERE id = $5 AND state = $6",
        )
        .bind(to.as_str())
        .bind(at)
        .bind(activated)
        .bind(retired)
        .bind(id.to_string())
        .bind(from.as_str())
        .execute(&self.writer)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    async fn newest_active(
        &self,
        usage: KeyUsageKind,
        algorithms: &[&'static str],
        processor: Option<&str>,
    ) -> AppResult<Option<StoredKey>> {
        // At most three algorithm names; unused slots bind NULL. No names: any algorithm.
        let slot = |i: usize| algorithms.get(i).copied();
        sqlx::query(concat!(
            "SELECT ",
            key_columns!(),
            " FROM stored_keys WHERE usage = $1 AND state = 'ACTIVE' \
             AND ($2 IS NULL OR algorithm IN ($2, $3, $4)) AND ($5 IS NULL OR processor = $5) \
             ORDER BY activated_at DESC, id LIMIT 1"
        ))
        .bind(usage.as_str())
        .bind(slot(0))
        .bind(slot(1))
        .bind(slot(2))
        .bind(processor)
        .fetch_optional(&self.reader)
        .await?
        .as_ref()
        .map(to_key)
        .transpose()
    }

    async fn user_exists(&self, id: Uuid) -> AppResult<bool> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE id = $1")
            .bind(id.to_string())
            .fetch_one(&self.reader)
            .await?;
        Ok(n > 0)
    }

    async fn insert_ceremony(&self, key: &StoredKey, ceremony: &Ceremony) -> AppResult<()> {
        let mut tx = self.writer.begin().await?;
        insert_key_with(&mut *tx, key).await?;
        sqlx::query(
            "INSERT INTO key_ceremonies (id, key_id, state, created_by, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(ceremony.id.to_string())
        .bind(ceremony.key_id.to_string())
        .bind(ceremony.state.as_str())
        .bind(&ceremony.created_by)
        .bind(ceremony.created_at)
        .bind(ceremony.updated_at)
        .execute(&mut *tx)
        .await?;
        for custodian in &ceremony.custodians {
            sqlx::query(
                "INSERT INTO key_ceremony_custodians (ceremony_id, user_id, position) \
                 VALUES ($1, $2, $3)",
            )
            .bind(ceremony.id.to_string())
            .bind(custodian.user_id.to_string())
            .bind(custodian.position)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn find_ceremony(&self, id: Uuid) -> AppResult<Option<Ceremony>> {
        let Some(row) = sqlx::query(
            "SELECT id, key_id, state, created_by, created_at, updated_at FROM key_ceremonies \
             WHERE id = $1",
        )
        .bind(id.to_string())
        .fetch_optional(&self.reader)
        .await?
        else {
            return Ok(None);
        };
        let state: String = row.try_get("state")?;
        let custodians = sqlx::query(
            "SELECT user_id, position, component_kcv, wrapped, master_version, submitted_at \
             FROM key_ceremony_custodians WHERE ceremony_id = $1 ORDER BY position",
        )
        .bind(id.to_string())
        .fetch_all(&self.reader)
        .await?
        .iter()
        .map(|row| {
            Ok(Custodian {
                user_id: uuid_of(row, "user_id")?,
                position: row.try_get("position")?,
                component_kcv: row.try_get("component_kcv")?,
                sealed: sealed_of(row)?,
                submitted_at: row.try_get("submitted_at")?,
            })
        })
        .collect::<AppResult<Vec<_>>>()?;
        Ok(Some(Ceremony {
            id: uuid_of(&row, "id")?,
            key_id: uuid_of(&row, "key_id")?,
            state: state
                .parse()
                .map_err(|()| corrupt("key_ceremonies.state"))?,
            created_by: row.try_get("created_by")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
            custodians,
        }))
    }

    async fn submit_component(
        &self,
        ceremony: Uuid,
        user: Uuid,
        kcv: &str,
        sealed: &Sealed,
        at: UnixMillis,
    ) -> AppResult<bool> {
        let n = sqlx::query(
            "UPDATE key_ceremony_custodians SET component_kcv = $1, wrapped = $2, \
             master_version = $3, submitted_at = $4 \
             WHERE ceremony_id = $5 AND user_id = $6 AND submitted_at IS NULL",
        )
        .bind(kcv)
        .bind(&sealed.wrapped)
        .bind(i64::from(sealed.master_version))
        .bind(at)
        .bind(ceremony.to_string())
        .bind(user.to_string())
        .execute(&self.writer)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    async fn complete_ceremony(
        &self,
        ceremony: Uuid,
        key: Uuid,
        kcv: &str,
        sealed: &Sealed,
        at: UnixMillis,
    ) -> AppResult<bool> {
        let mut tx = self.writer.begin().await?;
        let n = sqlx::query(
            "UPDATE key_ceremonies SET state = 'COMPLETE', updated_at = $1 \
             WHERE id = $2 AND state = 'OPEN'",
        )
        .bind(at)
        .bind(ceremony.to_string())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n != 1 {
            return Ok(false);
        }
        sqlx::query(
            "UPDATE stored_keys SET state = 'READY', kcv = $1, wrapped = $2, master_version = $3, \
             updated_at = $4 WHERE id = $5 AND state = 'PENDING'",
        )
        .bind(kcv)
        .bind(&sealed.wrapped)
        .bind(i64::from(sealed.master_version))
        .bind(at)
        .bind(key.to_string())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn confirm_ceremony(&self, ceremony: Uuid, key: Uuid, at: UnixMillis) -> AppResult<bool> {
        let mut tx = self.writer.begin().await?;
        let n = sqlx::query(
            "UPDATE key_ceremonies SET state = 'CONFIRMED', updated_at = $1 \
             WHERE id = $2 AND state = 'COMPLETE'",
        )
        .bind(at)
        .bind(ceremony.to_string())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n != 1 {
            return Ok(false);
        }
        sqlx::query(
            "UPDATE key_ceremony_custodians SET wrapped = NULL, master_version = NULL \
             WHERE ceremony_id = $1",
        )
        .bind(ceremony.to_string())
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE stored_keys SET state = 'ACTIVE', activated_at = $1, updated_at = $1 \
             WHERE id = $2 AND state = 'READY'",
        )
        .bind(at)
        .bind(key.to_string())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn list_profiles(&self) -> AppResult<Vec<KeyProfile>> {
        sqlx::query(
            "SELECT mode, scheme, bdk_id, rotate_after, updated_by, updated_at FROM key_profiles \
             ORDER BY mode",
        )
        .fetch_all(&self.reader)
        .await?
        .iter()
        .map(to_profile)
        .collect()
    }

    async fn find_profile(&self, mode: DeviceMode) -> AppResult<Option<KeyProfile>> {
        sqlx::query(
            "SELECT mode, scheme, bdk_id, rotate_after, updated_by, updated_at FROM key_profiles \
             WHERE mode = $1",
        )
        .bind(mode.as_str())
        .fetch_optional(&self.reader)
        .await?
        .as_ref()
        .map(to_profile)
        .transpose()
    }

    async fn update_profile(&self, profile: &KeyProfile) -> AppResult<bool> {
        let n = sqlx::query(
            "UPDATE key_profiles SET scheme = $1, bdk_id = $2, rotate_after = $3, updated_by = $4, \
             updated_at = $5 WHERE mode = $6",
        )
        .bind(scheme_name(profile.scheme))
        .bind(profile.bdk_id.map(|id| id.to_string()))
        .bind(profile.rotate_after)
        .bind(&profile.updated_by)
        .bind(profile.updated_at)
        .bind(profile.mode.as_str())
        .execute(&self.writer)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    async fn next_key_set_version(&self, device: DeviceId) -> AppResult<i64> {
        let max: Option<i64> =
            sqlx::query_scalar("SELECT MAX(version) FROM device_key_sets WHERE device_id = $1")
                .bind(device.to_string())
                .fetch_one(&self.reader)
                .await?;
        Ok(max.unwrap_or(0) + 1)
    }

    async fn insert_key_set(&self, set: &KeySet) -> AppResult<bool> {
        let result = sqlx::query(
            "INSERT INTO device_key_sets (id, device_id, version, scheme, bdk_id, initial_key_id, \
             kcv, state, wrapped, master_version, rotation_requested_at, created_at, confirmed_at, \
             destroyed_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
        )
        .bind(set.id.to_string())
        .bind(set.device_id.to_string())
        .bind(set.version)
        .bind(scheme_name(set.scheme))
        .bind(set.bdk_id.to_string())
        .bind(hex::encode_upper(&set.initial_key_id))
        .bind(&set.kcv)
        .bind(set.state.as_str())
        .bind(set.sealed.as_ref().map(|s| s.wrapped.clone()))
        .bind(set.sealed.as_ref().map(|s| i64::from(s.master_version)))
        .bind(set.rotation_requested_at)
        .bind(set.created_at)
        .bind(set.confirmed_at)
        .bind(set.destroyed_at)
        .bind(set.updated_at)
        .execute(&self.writer)
        .await;
        match result {
            Ok(_) => Ok(true),
            Err(error) if is_unique_violation(&error) => Ok(false),
            Err(error) => Err(AppError::from(error)),
        }
    }

    async fn find_key_set(&self, id: Uuid) -> AppResult<Option<KeySet>> {
        sqlx::query(concat!(
            "SELECT ",
            set_columns!(),
            " FROM device_key_sets WHERE id = $1"
        ))
        .bind(id.to_string())
        .fetch_optional(&self.reader)
        .await?
        .as_ref()
        .map(to_key_set)
        .transpose()
    }

    async fn active_key_set(&self, device: DeviceId) -> AppResult<Option<KeySet>> {
        sqlx::query(concat!(
            "SELECT ",
            set_columns!(),
            " FROM device_key_sets WHERE device_id = $1 AND state = 'ACTIVE' \
             ORDER BY version DESC LIMIT 1"
        ))
        .bind(device.to_string())
        .fetch_optional(&self.reader)
        .await?
        .as_ref()
        .map(to_key_set)
        .transpose()
    }

    async fn list_key_sets(&self, device: DeviceId) -> AppResult<Vec<KeySet>> {
        sqlx::query(concat!(
            "SELECT ",
            set_columns!(),
            " FROM device_key_sets WHERE device_id = $1 ORDER BY version DESC"
        ))
        .bind(device.to_string())
        .fetch_all(&self.reader)
        .await?
        .iter()
        .map(to_key_set)
        .collect()
    }

    async fn activate_key_set(
        &self,
        id: Uuid,
        device: DeviceId,
        at: UnixMillis,
    ) -> AppResult<bool> {
        let mut tx = self.writer.begin().await?;
        let n = sqlx::query(
            "UPDATE device_key_sets SET state = 'ACTIVE', confirmed_at = $1, updated_at = $1 \
             WHERE id = $2 AND device_id = $3 AND state = 'ISSUED'",
        )
        .bind(at)
        .bind(id.to_string())
        .bind(device.to_string())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n != 1 {
            return Ok(false);
        }
        // The host derives from the BDK, so the superseded set's wrapped initial key is no
        // longer needed: erase it.
        sqlx::query(
            "UPDATE device_key_sets SET state = 'SUPERSEDED', wrapped = NULL, \
             master_version = NULL, updated_at = $1 \
             WHERE device_id = $2 AND id <> $3 AND state IN ('ACTIVE', 'ISSUED')",
        )
        .bind(at)
        .bind(device.to_string())
        .bind(id.to_string())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn request_rotation(&self, device: DeviceId, at: UnixMillis) -> AppResult<bool> {
        let n = sqlx::query(
            "UPDATE device_key_sets SET rotation_requested_at = $1, updated_at = $1 \
             WHERE device_id = $2 AND state = 'ACTIVE'",
        )
        .bind(at)
        .bind(device.to_string())
        .execute(&self.writer)
        .await?
        .rows_affected();
        Ok(n >= 1)
    }

    async fn insert_release_key(&self, key: &ReleaseKeyRecord) -> AppResult<bool> {
        let done = sqlx::query(
            "INSERT INTO release_keys (key_id, wrapped, master_version, fingerprint, state, \
             origin, created_by, created_at, retired_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $8)",
        )
        .bind(&key.key_id)
        .bind(&key.sealed.wrapped)
        .bind(i64::from(key.sealed.master_version))
        .bind(&key.fingerprint)
        .bind(key.state.as_str())
        .bind(&key.origin)
        .bind(&key.created_by)
        .bind(key.created_at)
        .bind(key.retired_at)
        .execute(&self.writer)
        .await;
        match done {
            Ok(_) => Ok(true),
            Err(error) if crate::infra::db::is_unique_violation(&error) => Ok(false),
            Err(error) => Err(error.into()),
        }
    }

    async fn release_keys(&self) -> AppResult<Vec<ReleaseKeyRecord>> {
        sqlx::query(
            "SELECT key_id, wrapped, master_version, fingerprint, state, origin, created_by, \
             created_at, retired_at FROM release_keys ORDER BY created_at, key_id",
        )
        .fetch_all(&self.reader)
        .await?
        .iter()
        .map(|row| {
            let state: String = row.try_get("state")?;
            Ok(ReleaseKeyRecord {
                key_id: row.try_get("key_id")?,
                sealed: sealed_of(row)?.ok_or_else(|| corrupt("release_keys.wrapped"))?,
                fingerprint: row.try_get("fingerprint")?,
                state: state.parse().map_err(|()| corrupt("release_keys.state"))?,
                origin: row.try_get("origin")?,
                created_by: row.try_get("created_by")?,
                created_at: row.try_get("created_at")?,
                retired_at: row.try_get("retired_at")?,
            })
        })
        .collect()
    }

    async fn retire_release_key(&self, key_id: &str, at: UnixMillis) -> AppResult<bool> {
        let n = sqlx::query(
            "UPDATE release_keys SET state = 'RETIRED', retired_at = $1, updated_at = $1 \
             WHERE key_id = $2 AND state = 'ACTIVE'",
        )
        .bind(at)
        .bind(key_id)
        .execute(&self.writer)
        .await?
        .rows_affected();
        Ok(n == 1)
    }
}
