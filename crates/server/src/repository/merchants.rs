//! Merchants.

use crate::infra::db::Database;
use async_trait::async_trait;
use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};

use super::{corrupt, like_pattern};
use crate::domain::{Merchant, MerchantId, MerchantStatus, UnixMillis};
use crate::error::{AppError, AppResult};
use crate::infra::db::is_unique_violation;

/// Filters for listing merchants.
#[derive(Debug, Clone, Default)]
pub struct MerchantFilter {
    /// Exact status.
    pub status: Option<MerchantStatus>,
    /// Case-insensitive substring of the name (matched literally).
    pub search: Option<String>,
    /// Keyset cursor: `(created_at, id)` of the last item of the previous page.
    pub after: Option<(UnixMillis, MerchantId)>,
    /// Page size.
    pub limit: i64,
}

/// Storage of merchants.
#[async_trait]
pub trait MerchantRepository: Send + Sync + std::fmt::Debug {
    /// Inserts; `merchant_name_taken` on duplicates.
    async fn insert(&self, merchant: &Merchant) -> AppResult<()>;
    /// Replaces the mutable fields; false when unknown.
    async fn update(&self, merchant: &Merchant) -> AppResult<bool>;
    /// By id.
    async fn find_by_id(&self, id: MerchantId) -> AppResult<Option<Merchant>>;
    /// Oldest first, keyset-paginated.
    async fn list(&self, filter: &MerchantFilter) -> AppResult<Vec<Merchant>>;
}

/// SQL implementation.
#[derive(Debug, Clone)]
pub struct SqlMerchantRepository {
    reader: AnyPool,
    writer: AnyPool,
}

impl SqlMerchantRepository {
    /// Reads through the database's reader pool, writes through its writer.
    pub fn new(db: &Database) -> Self {
        Self {
            reader: db.reader.clone(),
            writer: db.writer.clone(),
        }
    }
}

fn to_merchant(row: &AnyRow) -> AppResult<Merchant> {
    let id: String = row.try_get("id")?;
    let status: String = row.try_get("status")?;
    Ok(Merchant {
        id: id.parse().map_err(|_| corrupt("merchants.id"))?,
        name: row.try_get("name")?,
        country: row.try_get("country")?,
        mcc: row.try_get("mcc")?,
        status: status.parse().map_err(|()| corrupt("merchants.status"))?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn name_taken(error: sqlx::Error) -> AppError {
    if is_unique_violation(&error) {
        AppError::Conflict {
            code: "merchant_name_taken",
            message: "a merchant with this name already exists",
        }
    } else {
        error.into()
    }
}

#[async_trait]
impl MerchantRepository for SqlMerchantRepository {
    async fn insert(&self, merchant: &Merchant) -> AppResult<()> {
        sqlx::query(
            "INSERT INTO merchants (id, name, country, mcc, status, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(merchant.id.to_string())
        .bind(&merchant.name)
        .bind(&merchant.country)
        .bind(&merchant.mcc)
        .bind(merchant.status.as_str())
        .bind(merchant.created_at)
        .bind(merchant.updated_at)
        .execute(&self.writer)
        .await
        .map_err(name_taken)?;
        Ok(())
    }

    async fn update(&self, merchant: &Merchant) -> AppResult<bool> {
        let n = sqlx::query(
            "UPDATE merchants SET name = $1, country = $2, mcc = $3, status = $4, updated_at = $5 \
             WHERE id = $6",
        )
        .bind(&merchant.name)
        .bind(&merchant.country)
        .bind(&merchant.mcc)
        .bind(merchant.status.as_str())
        .bind(merchant.updated_at)
        .bind(merchant.id.to_string())
        .execute(&self.writer)
        .await
        .map_err(name_taken)?
        .rows_affected();
        Ok(n == 1)
    }

    async fn find_by_id(&self, id: MerchantId) -> AppResult<Option<Merchant>> {
        sqlx::query(
            "SELECT id, name, country, mcc, status, created_at, updated_at FROM merchants \
             WHERE id = $1",
        )
        .bind(id.to_string())
        .fetch_optional(&self.reader)
        .await?
        .as_ref()
        .map(to_merchant)
        .transpose()
    }

    async fn list(&self, filter: &MerchantFilter) -> AppResult<Vec<Merchant>> {
        let (after_created, after_id) = match filter.after {
            Some((created_at, id)) => (Some(created_at), Some(id.to_string())),
            None => (None, None),
        };
        sqlx::query(
            "SELECT id, name, country, mcc, status, created_at, updated_at FROM merchants \
             WHERE ($1 IS NULL OR status = $1) \
               AND ($2 IS NULL OR LOWER(name) LIKE $2 ESCAPE '\\') \
               AND ($3 IS NULL OR created_at > $3 OR (created_at = $3 AND id > $4)) \
             ORDER BY created_at, id LIMIT $5",
        )
        .bind(filter.status.map(MerchantStatus::as_str))
        .bind(filter.search.as_deref().map(like_pattern))
        .bind(after_created)
        .bind(after_id)
        .bind(filter.limit)
        .fetch_all(&self.reader)
        .await?
        .iter()
        .map(to_merchant)
        .collect()
    }
}
