//! User administration.

use std::sync::Arc;

use super::RequestContext;
use super::audit::AuditService;
use super::auth::{hash_password, validate_password};
use crate::domain::{NewAuditRecord, Principal, Role, User, UserId, now_millis};
use crate::error::{AppError, AppResult};
use crate::repository::users::UserRepository;

/// A user to create.
#[derive(Debug)]
pub struct NewUser {
    /// Login name: 3–64 of `a-z 0-9 . _ -`.
    pub username: String,
    /// Role.
    pub role: Role,
    /// Initial password.
    pub password: String,
}

/// User administration.
#[derive(Debug)]
pub struct UserService {
    users: Arc<dyn UserRepository>,
    audit: Arc<AuditService>,
}

/// Username rule.
///
/// # Errors
/// `validation_failed`.
pub fn validate_username(username: &str) -> AppResult<()> {
    let ok_len = (3..=64).contains(&username.len());
    let ok_chars = username
        .chars()
        .all(|ch| ch.is_ascii_lowercase() || ch.is_ascii_digit() || matches!(ch, '.' | '_' | '-'));
    if ok_len && ok_chars {
        Ok(())
    } else {
        Err(AppError::field(
            "username",
            "3 to 64 characters from a-z, 0-9, '.', '_' and '-'",
        ))
    }
}

impl UserService {
    /// Builds the service.
    pub fn new(users: Arc<dyn UserRepository>, audit: Arc<AuditService>) -> Self {
        Self { users, audit }
    }

    /// Creates a user.
    ///
    /// # Errors
    /// `validation_failed`, `username_taken`, storage errors.
    pub async fn create(
        &self,
        actor: &Principal,
        new: NewUser,
        ctx: &RequestContext,
    ) -> AppResult<User> {
        validate_username(&new.username)?;
        validate_password("password", &new.password, &new.username)?;
        let user = User {
            id: UserId::new(),
            username: new.username,
            password_hash: hash_password(new.password).await?,
            role: new.role,
            disabled_at: None,
            created_at: now_millis(),
        };
        self.users.insert(&user).await?;
        self.audit
            .append(NewAuditRecord {
                actor: actor.actor(),
                action: "user.created".to_owned(),
                target: Some(format!("user:{}", user.id)),
                reason: Some(format!("role {}", user.role)),
                request_id: ctx.request_id.clone(),
            })
            .await?;
        Ok(user)
    }

    /// Lists users.
    ///
    /// # Errors
    /// Storage errors.
    pub async fn list(
        &self,
        after: Option<(crate::domain::UnixMillis, UserId)>,
        limit: i64,
    ) -> AppResult<Vec<User>> {
        self.users.list(after, limit).await
    }

    /// Finds a user.
    ///
    /// # Errors
    /// `not_found`, storage errors.
    pub async fn get(&self, id: UserId) -> AppResult<User> {
        self.users
            .find_by_id(id)
            .await?
            .ok_or(AppError::NotFound("user"))
    }
}

#[cfg(test)]
mod tests {
    use super::validate_username;

    fn check(name: &str, ok: bool) {
        assert_eq!(validate_username(name).is_ok(), ok, "{name:?}");
    }

    #[test]
    fn usernames() {
        check("alice", true);
        check("ops.team-1_a", true);
        check("ab", false);
        check("Alice", false);
        check("a'; DROP TABLE users; --", false);
        check(&"a".repeat(65), false);
    }
}
