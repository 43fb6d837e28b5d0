//! Merchants: create, update, list.

use std::sync::Arc;

use super::RequestContext;
use super::audit::AuditService;
use crate::domain::{Merchant, MerchantId, MerchantStatus, NewAuditRecord, Principal, now_millis};
use crate::error::{AppError, AppResult, FieldError};
use crate::repository::merchants::{MerchantFilter, MerchantRepository};

/// Fields of a new merchant.
#[derive(Debug)]
pub struct NewMerchant {
    /// Trading name.
    pub name: String,
    /// ISO 3166-1 alpha-2.
    pub country: String,
    /// Merchant category code.
    pub mcc: String,
}

/// A partial update; `None` keeps the current value.
#[derive(Debug, Default)]
pub struct MerchantChanges {
    /// New name.
    pub name: Option<String>,
    /// New country.
    pub country: Option<String>,
    /// New MCC.
    pub mcc: Option<String>,
    /// New status.
    pub status: Option<MerchantStatus>,
}

/// Merchant rules.
#[derive(Debug)]
pub struct MerchantService {
    merchants: Arc<dyn MerchantRepository>,
    audit: Arc<AuditService>,
}

fn check_fields(name: &str, country: &str, mcc: &str) -> AppResult<()> {
    let mut problems = Vec::new();
    let name_len = name.chars().count();
    if name.trim() != name || !(1..=200).contains(&name_len) || name.chars().any(char::is_control) {
        problems.push(FieldError::new(
            "name",
            "1 to 200 characters, no control characters or surrounding spaces",
        ));
    }
    if country.len() != 2 || !country.chars().all(|ch| ch.is_ascii_uppercase()) {
        problems.push(FieldError::new(
            "country",
            "ISO 3166-1 alpha-2, e.g. \"DE\"",
        ));
    }
    if mcc.len() != 4 || !mcc.chars().all(|ch| ch.is_ascii_digit()) {
        problems.push(FieldError::new(
            "mcc",
            "four digits (ISO 18245), e.g. \"5411\"",
        ));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(AppError::Validation(problems))
    }
}

impl MerchantService {
    /// Builds the service.
    pub fn new(merchants: Arc<dyn MerchantRepository>, audit: Arc<AuditService>) -> Self {
        Self { merchants, audit }
    }

    /// Creates a merchant.
    ///
    /// # Errors
    /// `validation_failed`, `merchant_name_taken`, storage errors.
    pub async fn create(
        &self,
        actor: &Principal,
        new: NewMerchant,
        ctx: &RequestContext,
    ) -> AppResult<Merchant> {
        check_fields(&new.name, &new.country, &new.mcc)?;
        let now = now_millis();
        let merchant = Merchant {
            id: MerchantId::new(),
            name: new.name,
            country: new.country,
            mcc: new.mcc,
            status: MerchantStatus::Active,
            created_at: now,
            updated_at: now,
        };
        self.merchants.insert(&merchant).await?;
        self.audit
            .append(NewAuditRecord {
                actor: actor.actor(),
                action: "merchant.created".to_owned(),
                target: Some(format!("merchant:{}", merchant.id)),
                reason: None,
                request_id: ctx.request_id.clone(),
            })
            .await?;
        Ok(merchant)
    }

    /// Applies a partial update.
    ///
    /// # Errors
    /// `not_found`, `validation_failed`, `merchant_closed`, `merchant_name_taken`.
    pub async fn update(
        &self,
        actor: &Principal,
        id: MerchantId,
        changes: MerchantChanges,
        ctx: &RequestContext,
    ) -> AppResult<Merchant> {
        let mut merchant = self.get(id).await?;
        if merchant.status == MerchantStatus::Closed {
            return Err(AppError::Conflict {
                code: "merchant_closed",
                message: "a closed merchant cannot be changed",
            });
        }
        let status_change = changes.status.filter(|status| *status != merchant.status);
        if let Some(name) = changes.name {
            merchant.name = name;
        }
        if let Some(country) = changes.country {
            merchant.country = country;
        }
        if let Some(mcc) = changes.mcc {
            merchant.mcc = mcc;
        }
        if let Some(status) = changes.status {
            merchant.status = status;
        }
        check_fields(&merchant.name, &merchant.country, &merchant.mcc)?;
        merchant.updated_at = now_millis();
        if !self.merchants.update(&merchant).await? {
            return Err(AppError::NotFound("merchant"));
        }
        self.audit
            .append(NewAuditRecord {
                actor: actor.actor(),
                action: "merchant.updated".to_owned(),
                target: Some(format!("merchant:{id}")),
                reason: status_change.map(|status| format!("status -> {}", status.as_str())),
                request_id: ctx.request_id.clone(),
            })
            .await?;
        Ok(merchant)
    }

    /// One merchant.
    ///
    /// # Errors
    /// `not_found`, storage errors.
    pub async fn get(&self, id: MerchantId) -> AppResult<Merchant> {
        self.merchants
            .find_by_id(id)
            .await?
            .ok_or(AppError::NotFound("merchant"))
    }

    /// A page of merchants.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn list(&self, filter: &MerchantFilter) -> AppResult<Vec<Merchant>> {
        self.merchants.list(filter).await
    }
}
