//! People: passwords (Argon2id), login with throttling, access tokens (JWT, HS256),
//! rotating refresh tokens with family revocation on reuse, sessions, API-key
//! authentication, and the first-run admin.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::RequestContext;
use super::audit::AuditService;
use crate::domain::{
    NewAuditRecord, Principal, Role, Session, SessionId, User, UserId, now_millis,
};
use crate::error::{AppError, AppResult};
use crate::infra::keys::{SecretBytes, random_token};
use crate::infra::stores::RateLimiter;
use crate::repository::api_keys::ApiKeyRepository;
use crate::repository::sessions::{Rotation, SessionRepository};
use crate::repository::users::UserRepository;

const ISSUER: &str = "softpos-server";
const AUDIENCE: &str = "softpos-api";
const ACCESS_TYPE: &str = "access";

/// Tunables of the authentication service.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// Access-token lifetime.
    pub access_ttl: Duration,
    /// Session (refresh-token family) lifetime.
    pub refresh_ttl: Duration,
    /// Failed logins per account per window.
    pub max_failures_per_account: u64,
    /// Failed logins per client address per window.
    pub max_failures_per_addr: u64,
    /// Throttling window.
    pub throttle_window: Duration,
}

/// Access-token claims.
#[derive(Debug, Serialize, Deserialize)]
struct Claims {
    iss: String,
    aud: String,
    sub: String,
    sid: String,
    typ: String,
    iat: i64,
    exp: i64,
    jti: String,
}

/// What a successful login or refresh hands out.
#[derive(Debug)]
pub struct IssuedTokens {
    /// JWT access token.
    pub access_token: String,
    /// Seconds until it expires.
    pub expires_in: u64,
    /// Opaque refresh token (shown once; only its hash is stored).
    pub refresh_token: String,
    /// Seconds until the refresh token (session) expires.
    pub refresh_expires_in: u64,
    /// The session.
    pub session_id: SessionId,
    /// The user.
    pub user: User,
}

/// Password rules, shared with user creation.
///
/// # Errors
/// `validation_failed` naming the field.
pub fn validate_password(field: &str, password: &str, username: &str) -> AppResult<()> {
    let chars = password.chars().count();
    if chars < 12 {
        return Err(AppError::field(field, "must be at least 12 characters"));
    }
    if password.len() > 256 {
        return Err(AppError::field(field, "must be at most 256 bytes"));
    }
    if password.eq_ignore_ascii_case(username) {
        return Err(AppError::field(field, "must differ from the username"));
    }
    Ok(())
}

/// Hashes a password with Argon2id (default parameters) on the blocking pool.
///
/// # Errors
/// Internal errors only.
pub async fn hash_password(password: String) -> AppResult<String> {
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .hash_password(password.as_bytes())
            .map(|hash| hash.to_string())
            .map_err(|error| AppError::Other(anyhow::anyhow!("argon2: {error}")))
    })
    .await
    .map_err(|error| AppError::Other(error.into()))?
}

async fn verify_password(password: String, hash: String) -> AppResult<bool> {
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .verify_password(password.as_bytes(), hash.as_str())
            .is_ok()
    })
    .await
    .map_err(|error| AppError::Other(error.into()))
}

/// A hash to verify against when the username is unknown, so both paths cost the same.
async fn dummy_hash() -> AppResult<String> {
    static DUMMY: OnceLock<String> = OnceLock::new();
    if let Some(hash) = DUMMY.get() {
        return Ok(hash.clone());
    }
    let hash = hash_password(random_token::<16>()).await?;
    Ok(DUMMY.get_or_init(|| hash).clone())
}

/// SHA-256 hex of a high-entropy token (refresh tokens, API keys). Argon2 is not needed:
/// these are 256-bit random values, not guessable passwords.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// The authentication service.
pub struct AuthService {
    users: Arc<dyn UserRepository>,
    sessions: Arc<dyn SessionRepository>,
    api_keys: Arc<dyn ApiKeyRepository>,
    limiter: Arc<dyn RateLimiter>,
    audit: Arc<AuditService>,
    encoding: EncodingKey,
    decoding: DecodingKey,
    settings: AuthSettings,
}

impl std::fmt::Debug for AuthService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthService")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl AuthService {
    /// Builds the service.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        users: Arc<dyn UserRepository>,
        sessions: Arc<dyn SessionRepository>,
        api_keys: Arc<dyn ApiKeyRepository>,
        limiter: Arc<dyn RateLimiter>,
        audit: Arc<AuditService>,
        jwt_secret: &SecretBytes,
        settings: AuthSettings,
    ) -> Self {
        Self {
            users,
            sessions,
            api_keys,
            limiter,
            audit,
            encoding: EncodingKey::from_secret(jwt_secret.expose()),
            decoding: DecodingKey::from_secret(jwt_secret.expose()),
            settings,
        }
    }

    /// Settings in force.
    pub fn settings(&self) -> &AuthSettings {
        &self.settings
    }

    /// Creates the first `admin` when there is no user at all. Returns the generated
    /// password when none was supplied, so the caller can print it once.
    ///
    /// # Errors
    /// Storage errors or an invalid supplied password.
    pub async fn ensure_initial_admin(&self, supplied: Option<&str>) -> AppResult<Option<String>> {
        if self.users.count().await? > 0 {
            return Ok(None);
        }
        let (password, generated) = match supplied {
            Some(password) => {
                validate_password("SOFTPOS_ADMIN_PASSWORD", password, "admin")?;
                (password.to_owned(), false)
            }
            None => (random_token::<18>(), true),
        };
        let now = now_millis();
        let user = User {
            id: UserId::new(),
            username: "admin".to_owned(),
            password_hash: hash_password(password.clone()).await?,
            role: Role::Admin,
            disabled_at: None,
            created_at: now,
        };
        match self.users.insert(&user).await {
            Ok(()) => {}
            // Another instance created it first.
            Err(AppError::Conflict { .. }) => return Ok(None),
            Err(error) => return Err(error),
        }
        self.audit
            .append(NewAuditRecord {
                actor: "system".to_owned(),
                action: "user.created".to_owned(),
                target: Some(format!("user:{}", user.id)),
                reason: Some("first run: initial admin".to_owned()),
                request_id: None,
            })
            .await?;
        Ok(generated.then_some(password))
    }

    /// Counts one attempt on every key *before* the password is checked, so concurrent
    /// guesses cannot slip past the limit (no check-then-set). An attempt refused here is
    /// taken back again: only attempts that reached the password check count.
    async fn count_attempt(&self, keys: &[(String, u64)]) -> AppResult<()> {
        let mut refused = None;
        for (key, max) in keys {
            let hits = self.limiter.hit(key, self.settings.throttle_window).await?;
            if hits.count > *max {
                refused = Some(hits.resets_in.max(refused.unwrap_or_default()));
            }
        }
        if let Some(retry_after) = refused {
            for (key, _) in keys {
                self.limiter.forgive(key).await?;
            }
            metrics::counter!("auth_logins_total", "outcome" => "throttled").increment(1);
            return Err(AppError::TooManyRequests { retry_after });
        }
        Ok(())
    }

    /// Verifies a username and password and opens a session.
    ///
    /// # Errors
    /// `too_many_requests` when throttled, `invalid_credentials` on any mismatch (unknown
    /// user, wrong password, disabled account), storage errors.
    pub async fn login(
        &self,
        username: &str,
        password: &str,
        ctx: &RequestContext,
    ) -> AppResult<IssuedTokens> {
        let account_key = format!("login:account:{}", username.to_lowercase());
        let addr_key = format!(
            "login:addr:{}",
            ctx.client_addr.as_deref().unwrap_or("unknown")
        );
        let keys = [
            (account_key.clone(), self.settings.max_failures_per_account),
            (addr_key.clone(), self.settings.max_failures_per_addr),
        ];
        self.count_attempt(&keys).await?;

        let user = self.users.find_by_username(username).await?;
        let hash = match &user {
            Some(user) => user.password_hash.clone(),
            None => dummy_hash().await?,
        };
        let password_ok = verify_password(password.to_owned(), hash).await?;
        let user = match user {
            Some(user) if password_ok && user.disabled_at.is_none() => user,
            other => {
                // Both attempts stay counted.
                metrics::counter!("auth_logins_total", "outcome" => "failed").increment(1);
                self.audit
                    .append(NewAuditRecord {
                        actor: "anonymous".to_owned(),
                        action: "auth.login_failed".to_owned(),
                        target: other.map(|user| format!("user:{}", user.id)),
                        reason: Some("invalid credentials".to_owned()),
                        request_id: ctx.request_id.clone(),
                    })
                    .await?;
                return Err(AppError::InvalidCredentials);
            }
        };
        // A success clears the account's failures and does not count against the address.
        self.limiter.reset(&account_key).await?;
        self.limiter.forgive(&addr_key).await?;

        let now = now_millis();
        let session = Session {
            id: SessionId::new(),
            user_id: user.id,
            created_at: now,
            last_used_at: now,
            expires_at: now + millis(self.settings.refresh_ttl),
            revoked_at: None,
            revoked_reason: None,
            client_addr: ctx.client_addr.clone(),
            user_agent: ctx.user_agent.clone(),
        };
        let refresh_token = random_token::<32>();
        self.sessions
            .insert(&session, &token_hash(&refresh_token), session.expires_at)
            .await?;
        metrics::counter!("auth_logins_total", "outcome" => "success").increment(1);
        self.audit
            .append(NewAuditRecord {
                actor: format!("user:{}", user.id),
                action: "auth.login".to_owned(),
                target: Some(format!("session:{}", session.id)),
                reason: None,
                request_id: ctx.request_id.clone(),
            })
            .await?;
        self.issue(user, session.id, refresh_token, session.expires_at, now)
    }

    fn issue(
        &self,
        user: User,
        session_id: SessionId,
        refresh_token: String,
        refresh_expires_at: i64,
        now: i64,
    ) -> AppResult<IssuedTokens> {
        let iat = now / 1000;
        let ttl = self.settings.access_ttl.as_secs();
        let claims = Claims {
            iss: ISSUER.to_owned(),
            aud: AUDIENCE.to_owned(),
            sub: user.id.to_string(),
            sid: session_id.to_string(),
            typ: ACCESS_TYPE.to_owned(),
            iat,
            exp: iat + i64::try_from(ttl).unwrap_or(600),
            jti: uuid::Uuid::new_v4().to_string(),
        };
        let access_token =
            jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
                .map_err(|error| AppError::Other(error.into()))?;
        Ok(IssuedTokens {
            access_token,
            expires_in: ttl,
            refresh_token,
            refresh_expires_in: u64::try_from((refresh_expires_at - now) / 1000).unwrap_or(0),
            session_id,
            user,
        })
    }

    /// Exchanges a refresh token for a new access token and a new refresh token. A token
    /// that was already spent revokes its whole family (session).
    ///
    /// # Errors
    /// `invalid_refresh_token` for unknown, expired, spent or revoked tokens.
    pub async fn refresh(
        &self,
        refresh_token: &str,
        ctx: &RequestContext,
    ) -> AppResult<IssuedTokens> {
        let old_hash = token_hash(refresh_token);
        let Some(token) = self.sessions.find_token(&old_hash).await? else {
            return Err(AppError::InvalidRefreshToken);
        };
        let now = now_millis();
        if token.used_at.is_some() {
            self.revoke_family_for_reuse(token.session_id, ctx).await?;
            return Err(AppError::InvalidRefreshToken);
        }
        if token.expires_at <= now {
            return Err(AppError::InvalidRefreshToken);
        }
        let Some(owner) = self.sessions.find_with_owner(token.session_id).await? else {
            return Err(AppError::InvalidRefreshToken);
        };
        if owner.session.revoked_at.is_some()
            || owner.session.expires_at <= now
            || owner.user_disabled_at.is_some()
        {
            return Err(AppError::InvalidRefreshToken);
        }
        let new_token = random_token::<32>();
        let rotation = self
            .sessions
            .rotate(
                token.session_id,
                &old_hash,
                &token_hash(&new_token),
                owner.session.expires_at,
                now,
            )
            .await?;
        if rotation == Rotation::AlreadySpent {
            // Lost a race with another use of the same token: that is reuse too.
            self.revoke_family_for_reuse(token.session_id, ctx).await?;
            return Err(AppError::InvalidRefreshToken);
        }
        let Some(user) = self.users.find_by_id(owner.session.user_id).await? else {
            return Err(AppError::InvalidRefreshToken);
        };
        self.issue(
            user,
            token.session_id,
            new_token,
            owner.session.expires_at,
            now,
        )
    }

    async fn revoke_family_for_reuse(
        &self,
        session_id: SessionId,
        ctx: &RequestContext,
    ) -> AppResult<()> {
        let revoked = self
            .sessions
            .revoke(session_id, "refresh_token_reuse", now_millis())
            .await?;
        metrics::counter!("auth_refresh_reuse_total").increment(1);
        tracing::warn!(%session_id, "spent refresh token presented again: session revoked");
        if revoked {
            self.audit
                .append(NewAuditRecord {
                    actor: "system".to_owned(),
                    action: "auth.refresh_reuse_detected".to_owned(),
                    target: Some(format!("session:{session_id}")),
                    reason: Some("spent refresh token presented again; family revoked".to_owned()),
                    request_id: ctx.request_id.clone(),
                })
                .await?;
        }
        Ok(())
    }

    /// Validates an access token and the session behind it; returns the caller.
    ///
    /// # Errors
    /// `unauthorized` for anything but a valid access token of an active session.
    pub async fn authenticate_access(&self, token: &str) -> AppResult<Principal> {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 5;
        let claims = jsonwebtoken::decode::<Claims>(token, &self.decoding, &validation)
            .map_err(|_| AppError::Unauthorized)?
            .claims;
        if claims.typ != ACCESS_TYPE {
            return Err(AppError::Unauthorized);
        }
        let session_id: SessionId = claims.sid.parse().map_err(|_| AppError::Unauthorized)?;
        let user_id: UserId = claims.sub.parse().map_err(|_| AppError::Unauthorized)?;
        let Some(owner) = self.sessions.find_with_owner(session_id).await? else {
            return Err(AppError::Unauthorized);
        };
        let now = now_millis();
        if owner.session.user_id != user_id
            || owner.session.revoked_at.is_some()
            || owner.session.expires_at <= now
            || owner.user_disabled_at.is_some()
        {
            return Err(AppError::Unauthorized);
        }
        Ok(Principal::User {
            id: user_id,
            username: owner.username,
            role: owner.role,
            session_id,
        })
    }

    /// Validates an API key (`sbk_<prefix>_<secret>`); records its use.
    ///
    /// # Errors
    /// `unauthorized` for unknown, malformed or revoked keys.
    pub async fn authenticate_api_key(&self, presented: &str) -> AppResult<Principal> {
        let mut parts = presented.splitn(3, '_');
        let (Some("sbk"), Some(prefix), Some(secret)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(AppError::Unauthorized);
        };
        if prefix.len() != 12 || secret.is_empty() || presented.len() > 200 {
            return Err(AppError::Unauthorized);
        }
        let Some(key) = self.api_keys.find_by_prefix(prefix).await? else {
            return Err(AppError::Unauthorized);
        };
        let presented_hash = token_hash(presented);
        let matches: bool = presented_hash
            .as_bytes()
            .ct_eq(key.key_hash.as_bytes())
            .into();
        if !matches || key.revoked_at.is_some() {
            return Err(AppError::Unauthorized);
        }
        self.api_keys.touch(key.id, now_millis()).await?;
        Ok(Principal::ApiKey {
            id: key.id,
            scopes: key.scopes,
        })
    }

    /// Ends the caller's session.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn logout(
        &self,
        user_id: UserId,
        session_id: SessionId,
        ctx: &RequestContext,
    ) -> AppResult<()> {
        self.sessions
            .revoke(session_id, "logout", now_millis())
            .await?;
        self.audit
            .append(NewAuditRecord {
                actor: format!("user:{user_id}"),
                action: "auth.logout".to_owned(),
                target: Some(format!("session:{session_id}")),
                reason: None,
                request_id: ctx.request_id.clone(),
            })
            .await?;
        Ok(())
    }

    /// The caller's sessions.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn list_sessions(&self, user_id: UserId) -> AppResult<Vec<Session>> {
        self.sessions.list_for_user(user_id).await
    }

    /// Revokes one of the caller's own sessions.
    ///
    /// # Errors
    /// `not_found` when the session is not the caller's; storage errors.
    pub async fn revoke_own_session(
        &self,
        user_id: UserId,
        session_id: SessionId,
        ctx: &RequestContext,
    ) -> AppResult<()> {
        let owned = self
            .sessions
            .find_with_owner(session_id)
            .await?
            .is_some_and(|owner| owner.session.user_id == user_id);
        if !owned {
            return Err(AppError::NotFound("session"));
        }
        self.sessions
            .revoke(session_id, "revoked_by_user", now_millis())
            .await?;
        self.audit
            .append(NewAuditRecord {
                actor: format!("user:{user_id}"),
                action: "auth.session_revoked".to_owned(),
                target: Some(format!("session:{session_id}")),
                reason: None,
                request_id: ctx.request_id.clone(),
            })
            .await?;
        Ok(())
    }

    /// Changes the caller's password after checking the current one; every other session
    /// of the user is revoked.
    ///
    /// # Errors
    /// `invalid_credentials` when the current password is wrong, `validation_failed` for a
    /// weak new one, storage errors.
    pub async fn change_password(
        &self,
        user_id: UserId,
        current_session: SessionId,
        current: &str,
        new: &str,
        ctx: &RequestContext,
    ) -> AppResult<()> {
        let Some(user) = self.users.find_by_id(user_id).await? else {
            return Err(AppError::Unauthorized);
        };
        let throttle_key = format!("password:account:{user_id}");
        self.count_attempt(&[(throttle_key.clone(), self.settings.max_failures_per_account)])
            .await?;
        if !verify_password(current.to_owned(), user.password_hash.clone()).await? {
            return Err(AppError::InvalidCredentials);
        }
        self.limiter.reset(&throttle_key).await?;
        validate_password("new_password", new, &user.username)?;
        if current == new {
            return Err(AppError::field(
                "new_password",
                "must differ from the current password",
            ));
        }
        let now = now_millis();
        self.users
            .update_password(user_id, &hash_password(new.to_owned()).await?, now)
            .await?;
        let revoked = self
            .sessions
            .revoke_all_for_user(user_id, Some(current_session), "password_changed", now)
            .await?;
        self.audit
            .append(NewAuditRecord {
                actor: format!("user:{user_id}"),
                action: "auth.password_changed".to_owned(),
                target: Some(format!("user:{user_id}")),
                reason: Some(format!("{revoked} other session(s) revoked")),
                request_id: ctx.request_id.clone(),
            })
            .await?;
        Ok(())
    }
}
