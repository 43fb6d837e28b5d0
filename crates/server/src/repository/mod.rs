//! Repositories: SQL over `sqlx::Any` (SQLite and PostgreSQL from one body of code). Row
//! types live here and are converted to domain types at the boundary. Every statement is a
//! `&'static str` with `$N` placeholders: values are always bound, never formatted into SQL.

pub mod api_keys;
pub mod attestations;
pub mod audit;
pub mod devices;
pub mod health;
pub mod keys;
pub mod merchants;
pub mod releases;
pub mod sessions;
pub mod threats;
pub mod tokens;
pub mod transactions;
pub mod users;
pub mod webhooks;

use crate::error::AppError;

/// A stored value that does not parse back into a domain type: data corruption, reported as
/// an internal error.
pub(crate) fn corrupt(what: &str) -> AppError {
    AppError::Other(anyhow::anyhow!("corrupt row: {what}"))
}

/// Escapes `%`, `_` and `\` so user text is matched literally by `LIKE … ESCAPE '\'`.
pub(crate) fn like_pattern(text: &str) -> String {
    let mut pattern = String::with_capacity(text.len() + 2);
    pattern.push('%');
    for ch in text.to_lowercase().chars() {
        if matches!(ch, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(ch);
    }
    pattern.push('%');
    pattern
}

#[cfg(test)]
mod tests {
    use super::like_pattern;

    #[test]
    fn like_wildcards_are_escaped() {
        assert_eq!(like_pattern("a%b_c\\"), "%a\\%b\\_c\\\\%");
        assert_eq!(like_pattern("Café"), "%café%");
    }
}
