//! API keys for integrations: created with scopes, shown once, stored hashed, revocable.

use std::sync::Arc;

use super::RequestContext;
use super::audit::AuditService;
use super::auth::token_hash;
use crate::domain::{ApiKey, ApiKeyId, NewAuditRecord, Principal, Scope, now_millis};
use crate::error::{AppError, AppResult};
use crate::infra::keys::{random_bytes, random_token};
use crate::repository::api_keys::ApiKeyRepository;

/// API-key administration.
#[derive(Debug)]
pub struct ApiKeyService {
    keys: Arc<dyn ApiKeyRepository>,
    audit: Arc<AuditService>,
}

impl ApiKeyService {
    /// Builds the service.
    pub fn new(keys: Arc<dyn ApiKeyRepository>, audit: Arc<AuditService>) -> Self {
        Self { keys, audit }
    }

    /// Creates a key; returns it with the only copy of its secret.
    ///
    /// # Errors
    /// `validation_failed`, `forbidden` for non-user creators, storage errors.
    pub async fn create(
        &self,
        actor: &Principal,
        name: &str,
        scopes: Vec<Scope>,
        ctx: &RequestContext,
    ) -> AppResult<(ApiKey, String)> {
        let Principal::User { id: creator, .. } = actor else {
            return Err(AppError::Forbidden);
        };
        let name = name.trim();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(AppError::field("name", "1 to 100 characters"));
        }
        if scopes.is_empty() {
            return Err(AppError::field("scopes", "at least one scope"));
        }
        let mut scopes = scopes;
        scopes.sort_by_key(|scope| scope.as_str());
        scopes.dedup();
        let prefix = hex::encode(random_bytes::<6>());
        let secret = format!("sbk_{prefix}_{}", random_token::<32>());
        let key = ApiKey {
            id: ApiKeyId::new(),
            name: name.to_owned(),
            prefix,
            key_hash: token_hash(&secret),
            scopes,
            created_by: *creator,
            created_at: now_millis(),
            last_used_at: None,
            revoked_at: None,
        };
        self.keys.insert(&key).await?;
        self.audit
            .append(NewAuditRecord {
                actor: actor.actor(),
                action: "api_key.created".to_owned(),
                target: Some(format!("api_key:{}", key.id)),
                reason: Some(format!(
                    "scopes {}",
                    key.scopes
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(" ")
                )),
                request_id: ctx.request_id.clone(),
            })
            .await?;
        Ok((key, secret))
    }

    /// Lists keys (never their secrets).
    ///
    /// # Errors
    /// Storage errors.
    pub async fn list(&self) -> AppResult<Vec<ApiKey>> {
        self.keys.list().await
    }

    /// Revokes a key.
    ///
    /// # Errors
    /// `not_found`, `api_key_already_revoked`, storage errors.
    pub async fn revoke(
        &self,
        actor: &Principal,
        id: ApiKeyId,
        reason: Option<String>,
        ctx: &RequestContext,
    ) -> AppResult<ApiKey> {
        if self.keys.find_by_id(id).await?.is_none() {
            return Err(AppError::NotFound("api key"));
        }
        if !self.keys.revoke(id, now_millis()).await? {
            return Err(AppError::Conflict {
                code: "api_key_already_revoked",
                message: "the API key is already revoked",
            });
        }
        self.audit
            .append(NewAuditRecord {
                actor: actor.actor(),
                action: "api_key.revoked".to_owned(),
                target: Some(format!("api_key:{id}")),
                reason,
                request_id: ctx.request_id.clone(),
            })
            .await?;
        self.keys
            .find_by_id(id)
            .await?
            .ok_or(AppError::NotFound("api key"))
    }
}
