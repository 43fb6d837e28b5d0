//! The connection pools over SQLite or PostgreSQL (`sqlx::Any`), and the migrations of both.
//!
//! Repositories read through [`Database::reader`] and write through [`Database::writer`], or
//! [`Database::writes`] on the payment path (group commit, see `infra::write_queue`). On
//! PostgreSQL both are one pool. On SQLite, which admits one writer at a time, the writer is a
//! pool of a single connection: writers queue on it in the process instead of colliding on
//! the database lock, where SQLite's busy handler sleeps whole milliseconds between retries
//! (measured: about 1,700 such sleeps a second under the payment benchmark). Readers keep
//! their own connections, which WAL lets read during a write. In debug builds the SQLite
//! readers are `query_only`, so a write sent to the wrong pool fails every test that runs it.
//!
//! Portable SQL rules for the repositories: `$N` placeholders (sqlx-sqlite binds `$N` by
//! number, checked by a unit test below), ids as TEXT UUIDs, times as BIGINT Unix
//! milliseconds, no booleans (nullable timestamps instead), no database-specific functions.

use std::borrow::Cow;
use std::time::Duration;

use anyhow::Context;
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::{AnyPool, Executor, SqlSafeStr};

pub use super::write_queue::WriteQueue;

/// Which database is behind the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite (default).
    Sqlite,
    /// PostgreSQL (scale-out).
    Postgres,
}

impl Backend {
    /// Detects the backend from a URL.
    pub fn from_url(url: &str) -> Option<Self> {
        if url.starts_with("sqlite:") {
            Some(Self::Sqlite)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Some(Self::Postgres)
        } else {
            None
        }
    }

    /// Name for logs and `/readyz`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }
}

/// The pools plus the backend they talk to.
#[derive(Debug, Clone)]
pub struct Database {
    /// For statements that only read.
    pub reader: AnyPool,
    /// For statements and transactions that write (on SQLite, one connection).
    pub writer: AnyPool,
    /// The hot write path (payments, tokens): group commit on SQLite, see
    /// [`WriteQueue`]; it shares `writer`'s connection.
    pub writes: WriteQueue,
    /// The backend.
    pub backend: Backend,
}

impl Database {
    /// Closes both pools.
    pub async fn close(&self) {
        self.writer.close().await;
        self.reader.close().await;
    }
}

/// `(version, description, sqlite, postgres)`; append only, never edit a released one.
const MIGRATIONS: &[(i64, &str, &str, &str)] = &[
    (
        1,
        "initial schema",
        include_str!("../../migrations/sqlite/0001_init.sql"),
        include_str!("../../migrations/postgres/0001_init.sql"),
    ),
    (
        2,
        "devices",
        include_str!("../../migrations/sqlite/0002_devices.sql"),
        include_str!("../../migrations/postgres/0002_devices.sql"),
    ),
    (
        3,
        "attestation",
        include_str!("../../migrations/sqlite/0003_attestation.sql"),
        include_str!("../../migrations/postgres/0003_attestation.sql"),
    ),
    (
        4,
        "health reports, security policies, threat events",
        include_str!("../../migrations/sqlite/0004_health_threats.sql"),
        include_str!("../../migrations/postgres/0004_health_threats.sql"),
    ),
    (
        5,
        "tokens and live events",
        include_str!("../../migrations/sqlite/0005_tokens_events.sql"),
        include_str!("../../migrations/postgres/0005_tokens_events.sql"),
    ),
    (
        6,
        "keys",
        include_str!("../../migrations/sqlite/0006_keys.sql"),
        include_str!("../../migrations/postgres/0006_keys.sql"),
    ),
    (
        7,
        "transactions",
        include_str!("../../migrations/sqlite/0007_transactions.sql"),
        include_str!("../../migrations/postgres/0007_transactions.sql"),
    ),
    (
        8,
        "releases",
        include_str!("../../migrations/sqlite/0008_releases.sql"),
        include_str!("../../migrations/postgres/0008_releases.sql"),
    ),
    (
        9,
        "payment follow-ups, refund reservations, idempotency leases",
        include_str!("../../migrations/sqlite/0009_payment_followups.sql"),
        include_str!("../../migrations/postgres/0009_payment_followups.sql"),
    ),
    (
        10,
        "one key store: token keys, webhook secrets, release keys",
        include_str!("../../migrations/sqlite/0010_keystore.sql"),
        include_str!("../../migrations/postgres/0010_keystore.sql"),
    ),
];

fn migrator(backend: Backend) -> Migrator {
    Migrator::with_migrations(
        MIGRATIONS
            .iter()
            .map(|(version, description, sqlite, postgres)| {
                let sql = match backend {
                    Backend::Sqlite => *sqlite,
                    Backend::Postgres => *postgres,
                };
                Migration::new(
                    *version,
                    Cow::Borrowed(*description),
                    MigrationType::Simple,
                    sql.into_sql_str(),
                    false,
                )
            })
            .collect(),
    )
}

/// Connects, applies per-connection settings and runs the migrations. `max_connections` is
/// the size of the reader pool (and, on PostgreSQL, of the one pool).
///
/// # Errors
/// When the URL is unsupported, the database is unreachable or a migration fails.
pub async fn connect(url: &str, max_connections: u32) -> anyhow::Result<Database> {
    install_default_drivers();
    let backend = Backend::from_url(url).context("unsupported DATABASE_URL scheme")?;
    let open = |connections: u32, query_only: bool| {
        let mut options = AnyPoolOptions::new()
            .max_connections(connections.max(1))
            .acquire_timeout(Duration::from_secs(10));
        if backend == Backend::Sqlite {
            options = options.after_connect(move |conn, _meta| {
                Box::pin(async move {
                    // WAL lets readers proceed during a write; busy_timeout covers the rare
                    // write from another process; foreign keys are off by default in SQLite.
                    conn.execute("PRAGMA journal_mode = WAL").await?;
                    conn.execute("PRAGMA busy_timeout = 5000").await?;
                    conn.execute("PRAGMA foreign_keys = ON").await?;
                    conn.execute("PRAGMA synchronous = NORMAL").await?;
                    if query_only {
                        conn.execute("PRAGMA query_only = ON").await?;
                    }
                    Ok(())
                })
            });
        }
        options
    };
    if backend == Backend::Sqlite {
        // Every connection to an in-memory SQLite database gets a database of its own.
        anyhow::ensure!(
            !url.contains(":memory:") && !url.contains("mode=memory"),
            "an in-memory SQLite database cannot be shared by the reader and writer pools; \
             give DATABASE_URL a file"
        );
        ensure_sqlite_parent_dir(url)?;
    }
    let connect_error = || format!("cannot connect to the {} database", backend.as_str());
    let writer_connections = match backend {
        Backend::Sqlite => 1,
        Backend::Postgres => max_connections,
    };
    let writer = open(writer_connections, false)
        .connect(url)
        .await
        .with_context(connect_error)?;
    migrator(backend)
        .run(&writer)
        .await
        .context("database migration failed")?;
    let reader = match backend {
        Backend::Sqlite => open(max_connections, cfg!(debug_assertions))
            .connect(url)
            .await
            .with_context(connect_error)?,
        Backend::Postgres => writer.clone(),
    };
    let writes = match backend {
        Backend::Sqlite => {
            WriteQueue::batched(writer.clone()).context("cannot start the SQLite writer")?
        }
        Backend::Postgres => WriteQueue::direct(writer.clone()),
    };
    Ok(Database {
        reader,
        writer,
        writes,
        backend,
    })
}

fn ensure_sqlite_parent_dir(url: &str) -> anyhow::Result<()> {
    let path = url
        .trim_start_matches("sqlite://")
        .trim_start_matches("sqlite:");
    let path = path.split('?').next().unwrap_or_default();
    if path.is_empty() || path == ":memory:" {
        return Ok(());
    }
    if let Some(parent) = std::path::Path::new(path).parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    Ok(())
}

/// True when the error is a unique-constraint violation (both backends).
pub fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// The name of the violated constraint, when the driver reports one.
pub fn violated_constraint(error: &sqlx::Error) -> Option<String> {
    match error {
        sqlx::Error::Database(db) => db
            .constraint()
            .map(str::to_owned)
            .or_else(|| Some(db.message().to_owned())),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use sqlx::Row;

    use super::*;

    /// The repositories rely on sqlx-sqlite binding `$N` by number, including reuse and
    /// out-of-order use; pin that down.
    #[tokio::test]
    async fn sqlite_binds_dollar_placeholders_by_number() {
        install_default_drivers();
        let pool = AnyPoolOptions::new()
            .max_connections(1)
            .connect("sqlite::memory:")
            .await
            .unwrap();
        let row = sqlx::query("SELECT $2 AS b, $1 AS a, $2 AS b2")
            .bind("first")
            .bind("second")
            .fetch_one(&pool)
            .await
            .unwrap();
        assert_eq!(row.get::<String, _>("a"), "first");
        assert_eq!(row.get::<String, _>("b"), "second");
        assert_eq!(row.get::<String, _>("b2"), "second");
    }
}
