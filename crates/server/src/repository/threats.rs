//! Threat events, their incident notes, and the transaction observations the behaviour
//! rules read.

use crate::infra::db::{Database, WriteQueue};
use async_trait::async_trait;
use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};
use uuid::Uuid;

use super::corrupt;
use crate::domain::{DeviceId, UnixMillis};
use crate::error::AppResult;
use crate::infra::db::is_unique_violation;
use crate::service::health::policy::ResponseAction;
use crate::service::ports::{GeoPoint, Severity, ThreatKind, TransactionObservation};
use crate::service::threats::ThreatState;

/// A stored threat event.
#[derive(Debug, Clone, PartialEq)]
pub struct ThreatEventRecord {
    /// Id.
    pub id: Uuid,
    /// Device.
    pub device_id: DeviceId,
    /// Kind.
    pub kind: ThreatKind,
    /// Severity.
    pub severity: Severity,
    /// Evidence (never PAN, PIN or key bytes).
    pub evidence: serde_json::Value,
    /// Incident state.
    pub state: ThreatState,
    /// Response action the policy chose.
    pub action: ResponseAction,
    /// What applying it did (`suspended`, `not_applicable: ...`).
    pub action_outcome: String,
    /// Policy version in force.
    pub policy_version: i64,
    /// When observed.
    pub observed_at: UnixMillis,
    /// When recorded.
    pub created_at: UnixMillis,
    /// Last change.
    pub updated_at: UnixMillis,
}

/// One incident workflow step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreatNote {
    /// From.
    pub from_state: ThreatState,
    /// To.
    pub to_state: ThreatState,
    /// Audit actor.
    pub actor: String,
    /// Note.
    pub note: String,
    /// When.
    pub at: UnixMillis,
}

/// Listing filters.
#[derive(Debug, Clone, Default)]
pub struct ThreatFilter {
    /// Device.
    pub device_id: Option<DeviceId>,
    /// State.
    pub state: Option<ThreatState>,
    /// Kind.
    pub kind: Option<ThreatKind>,
    /// Recorded at or after.
    pub since: Option<UnixMillis>,
    /// Keyset cursor `(created_at, id)`: strictly older.
    pub before: Option<(UnixMillis, Uuid)>,
    /// Page size.
    pub limit: i64,
}

/// Storage of threat events and observations.
#[async_trait]
pub trait ThreatRepository: Send + Sync + std::fmt::Debug {
    /// Inserts an event.
    async fn insert(&self, event: &ThreatEventRecord) -> AppResult<()>;
    /// Records what applying the action did.
    async fn set_outcome(&self, id: Uuid, outcome: &str, at: UnixMillis) -> AppResult<()>;
    /// By id.
    async fn find(&self, id: Uuid) -> AppResult<Option<ThreatEventRecord>>;
    /// Newest first.
    async fn list(&self, filter: &ThreatFilter) -> AppResult<Vec<ThreatEventRecord>>;
    /// Workflow steps, oldest first.
    async fn notes(&self, id: Uuid) -> AppResult<Vec<ThreatNote>>;
    /// Compare-and-set state change with its note; `false` when the state moved.
    async fn transition(
        &self,
        id: Uuid,
        note: &ThreatNote,
        request_id: Option<String>,
    ) -> AppResult<bool>;
    /// The most severe open or acknowledged event whose action blocks transactions.
    async fn blocking(&self, device: DeviceId) -> AppResult<Option<ThreatEventRecord>>;
    /// Events of `kind` for `device` recorded at or after `since`.
    async fn count_since(
        &self,
        device: DeviceId,
        kind: ThreatKind,
        since: UnixMillis,
    ) -> AppResult<i64>;
    /// `(kind, severity, state, count)` of events recorded at or after `since`.
    async fn stats(&self, since: UnixMillis) -> AppResult<Vec<(String, String, String, i64)>>;
    /// Stores an observation; `false` when its transaction was observed already.
    async fn insert_observation(&self, observation: &TransactionObservation) -> AppResult<bool>;
    /// Outcomes (`true` = approved) of the device's latest observations, newest first.
    async fn recent_outcomes(&self, device: DeviceId, limit: i64) -> AppResult<Vec<bool>>;
    /// Observations of the device in `[since, until]`.
    async fn count_observations(
        &self,
        device: DeviceId,
        since: UnixMillis,
        until: UnixMillis,
    ) -> AppResult<i64>;
    /// The device's latest located observation before `at`, other than `transaction`.
    async fn previous_location(
        &self,
        device: DeviceId,
        at: UnixMillis,
        transaction: Uuid,
    ) -> AppResult<Option<(GeoPoint, UnixMillis)>>;
}

/// SQL implementation.
#[derive(Debug, Clone)]
pub struct SqlThreatRepository {
    reader: AnyPool,
    writer: AnyPool,
    writes: WriteQueue,
}

impl SqlThreatRepository {
    /// Reads through the database's reader pool, writes through its writer.
    pub fn new(db: &Database) -> Self {
        Self {
            reader: db.reader.clone(),
            writer: db.writer.clone(),
            writes: db.writes.clone(),
        }
    }
}

fn parse_json<T: serde::de::DeserializeOwned>(text: &str, what: &str) -> AppResult<T> {
    serde_json::from_value(serde_json::Value::String(text.to_owned())).map_err(|_| corrupt(what))
}

/// 1 (low) to 4 (critical).
pub(crate) fn severity_rank(severity: Severity) -> i64 {
    match severity {
        Severity::Low => 1,
        Severity::Medium => 2,
        Severity::High => 3,
        Severity::Critical => 4,
    }
}

/// The stored name of a kind or severity (their serde names).
pub(crate) fn enum_name<T: serde::Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(name)) => name,
        _ => String::new(),
    }
}

/// Degrees to millionths of a degree (callers validated the range).
#[allow(clippy::cast_possible_truncation)] // |degrees| <= 180, so the product fits easily
fn to_e6(degrees: f64) -> i64 {
    (degrees * 1e6).round() as i64
}

#[allow(clippy::cast_precision_loss)] // at most 1.8e8, exact in f64
fn from_e6(value: i64) -> f64 {
    value as f64 / 1e6
}

fn to_event(row: &AnyRow) -> AppResult<ThreatEventRecord> {
    let id: String = row.try_get("id")?;
    let device_id: String = row.try_get("device_id")?;
    let kind: String = row.try_get("kind")?;
    let severity: String = row.try_get("severity")?;
    let evidence: String = row.try_get("evidence")?;
    let state: String = row.try_get("state")?;
    let action: String = row.try_get("action")?;
    Ok(ThreatEventRecord {
        id: id.parse().map_err(|_| corrupt("threat_events.id"))?,
        device_id: device_id
            .parse()
            .map_err(|_| corrupt("threat_events.device_id"))?,
        kind: parse_json(&kind, "threat_events.kind")?,
        severity: parse_json(&severity, "threat_events.severity")?,
        evidence: serde_json::from_str(&evidence).map_err(|_| corrupt("threat_events.evidence"))?,
        state: state.parse().map_err(|()| corrupt("threat_events.state"))?,
        action: action
            .parse()
            .map_err(|()| corrupt("threat_events.action"))?,
        action_outcome: row.try_get("action_outcome")?,
        policy_version: row.try_get("policy_version")?,
        observed_at: row.try_get("observed_at")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

macro_rules! select_events {
    ($tail:literal) => {
        concat!(
            "SELECT id, device_id, kind, severity, evidence, state, action, action_outcome, ",
            "policy_version, observed_at, created_at, updated_at FROM threat_events ",
            $tail
        )
    };
}

#[async_trait]
impl ThreatRepository for SqlThreatRepository {
    async fn insert(&self, event: &ThreatEventRecord) -> AppResult<()> {
        sqlx::query(
            "INSERT INTO threat_events (id, device_id, kind, severity, severity_rank, evidence, \
             state, action, action_outcome, policy_version, observed_at, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .bind(event.id.to_string())
        .bind(event.device_id.to_string())
        .bind(enum_name(&event.kind))
        .bind(enum_name(&event.severity))
        .bind(severity_rank(event.severity))
        .bind(event.evidence.to_string())
        .bind(event.state.as_str())
        .bind(event.action.as_str())
        .bind(&event.action_outcome)
        .bind(event.policy_version)
        .bind(event.observed_at)
        .bind(event.created_at)
        .bind(event.updated_at)
        .execute(&self.writer)
        .await?;
        Ok(())
    }

    async fn set_outcome(&self, id: Uuid, outcome: &str, at: UnixMillis) -> AppResult<()> {
        sqlx::query("UPDATE threat_events SET action_outcome = $1, updated_at = $2 WHERE id = $3")
            .bind(outcome)
            .bind(at)
            .bind(id.to_string())
            .execute(&self.writer)
            .await?;
        Ok(())
    }

    async fn find(&self, id: Uuid) -> AppResult<Option<ThreatEventRecord>> {
        sqlx::query(select_events!("WHERE id = $1"))
            .bind(id.to_string())
            .fetch_optional(&self.reader)
            .await?
            .as_ref()
            .map(to_event)
            .transpose()
    }

    async fn list(&self, filter: &ThreatFilter) -> AppResult<Vec<ThreatEventRecord>> {
        let (before_at, before_id) = match filter.before {
            Some((at, id)) => (Some(at), Some(id.to_string())),
            None => (None, None),
        };
        sqlx::query(select_events!(
            "WHERE ($1 IS NULL OR device_id = $1) AND ($2 IS NULL OR state = $2) \
             AND ($3 IS NULL OR kind = $3) AND ($4 IS NULL OR created_at >= $4) \
             AND ($5 IS NULL OR created_at < $5 OR (created_at = $5 AND id < $6)) \
             ORDER BY created_at DESC, id DESC LIMIT $7"
        ))
        .bind(filter.device_id.map(|id| id.to_string()))
        .bind(filter.state.map(ThreatState::as_str))
        .bind(filter.kind.as_ref().map(enum_name))
        .bind(filter.since)
        .bind(before_at)
        .bind(before_id)
        .bind(filter.limit)
        .fetch_all(&self.reader)
        .await?
        .iter()
        .map(to_event)
        .collect()
    }

    async fn notes(&self, id: Uuid) -> AppResult<Vec<ThreatNote>> {
        sqlx::query(
            "SELECT from_state, to_state, actor, note, created_at FROM threat_event_notes \
             WHERE threat_id = $1 ORDER BY created_at, id",
        )
        .bind(id.to_string())
        .fetch_all(&self.reader)
        .await?
        .iter()
        .map(|row| {
            let from: String = row.try_get("from_state")?;
            let to: String = row.try_get("to_state")?;
            Ok(ThreatNote {
                from_state: from.parse().map_err(|()| corrupt("notes.from_state"))?,
                to_state: to.parse().map_err(|()| corrupt("notes.to_state"))?,
                actor: row.try_get("actor")?,
                note: row.try_get("note")?,
                at: row.try_get("created_at")?,
            })
        })
        .collect()
    }

    async fn transition(
        &self,
        id: Uuid,
        note: &ThreatNote,
        request_id: Option<String>,
    ) -> AppResult<bool> {
        let mut tx = self.writer.begin().await?;
        let n = sqlx::query(
            "UPDATE threat_events SET state = $1, updated_at = $2 WHERE id = $3 AND state = $4",
        )
        .bind(note.to_state.as_str())
        .bind(note.at)
        .bind(id.to_string())
        .bind(note.from_state.as_str())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n != 1 {
            tx.rollback().await?;
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO threat_event_notes (id, threat_id, from_state, to_state, actor, note, \
             request_id, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
        )
        .bind(Uuid::now_v7().to_string())
        .bind(id.to_string())
        .bind(note.from_state.as_str())
        .bind(note.to_state.as_str())
        .bind(&note.actor)
        .bind(&note.note)
        .bind(request_id)
        .bind(note.at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn blocking(&self, device: DeviceId) -> AppResult<Option<ThreatEventRecord>> {
        sqlx::query(select_events!(
            "WHERE device_id = $1 AND state IN ('open', 'acknowledged') \
             AND action IN ('block_transactions', 'suspend', 'revoke') \
             ORDER BY severity_rank DESC, created_at LIMIT 1"
        ))
        .bind(device.to_string())
        .fetch_optional(&self.reader)
        .await?
        .as_ref()
        .map(to_event)
        .transpose()
    }

    async fn count_since(
        &self,
        device: DeviceId,
        kind: ThreatKind,
        since: UnixMillis,
    ) -> AppResult<i64> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM threat_events WHERE device_id = $1 AND kind = $2 \
             AND created_at >= $3",
        )
        .bind(device.to_string())
        .bind(enum_name(&kind))
        .bind(since)
        .fetch_one(&self.reader)
        .await?)
    }

    async fn stats(&self, since: UnixMillis) -> AppResult<Vec<(String, String, String, i64)>> {
        sqlx::query(
            "SELECT kind, severity, state, COUNT(*) AS n FROM threat_events \
             WHERE created_at >= $1 GROUP BY kind, severity, state ORDER BY kind, severity, state",
        )
        .bind(since)
        .fetch_all(&self.reader)
        .await?
        .iter()
        .map(|row| {
            Ok((
                row.try_get("kind")?,
                row.try_get("severity")?,
                row.try_get("state")?,
                row.try_get("n")?,
            ))
        })
        .collect()
    }

    async fn insert_observation(&self, observation: &TransactionObservation) -> AppResult<bool> {
        let amount = i64::try_from(observation.amount_minor).unwrap_or(i64::MAX);
        let observation = observation.clone();
        let inserted = self
            .writes
            .run(move |conn| {
                Box::pin(async move {
                    sqlx::query(
                        "INSERT INTO transaction_observations (id, device_id, transaction_id, \
                         outcome, amount_minor, currency, latitude_e6, longitude_e6, \
                         observed_at, created_at, updated_at) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)",
                    )
                    .bind(Uuid::now_v7().to_string())
                    .bind(observation.device_id.to_string())
                    .bind(observation.transaction_id.to_string())
                    .bind(if observation.approved {
                        "approved"
                    } else {
                        "declined"
                    })
                    .bind(amount)
                    .bind(&observation.currency)
                    .bind(observation.location.map(|point| to_e6(point.latitude)))
                    .bind(observation.location.map(|point| to_e6(point.longitude)))
                    .bind(observation.at)
                    .bind(crate::domain::now_millis())
                    .execute(&mut *conn)
                    .await
                })
            })
            .await;
        match inserted {
            Ok(_) => Ok(true),
            Err(error) if is_unique_violation(&error) => Ok(false),
            Err(error) => Err(error.into()),
        }
    }

    async fn recent_outcomes(&self, device: DeviceId, limit: i64) -> AppResult<Vec<bool>> {
        let outcomes: Vec<String> = sqlx::query_scalar(
            "SELECT outcome FROM transaction_observations WHERE device_id = $1 \
             ORDER BY observed_at DESC, id DESC LIMIT $2",
        )
        .bind(device.to_string())
        .bind(limit)
        .fetch_all(&self.reader)
        .await?;
        Ok(outcomes.iter().map(|o| o == "approved").collect())
    }

    async fn count_observations(
        &self,
        device: DeviceId,
        since: UnixMillis,
        until: UnixMillis,
    ) -> AppResult<i64> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM transaction_observations WHERE device_id = $1 \
             AND observed_at >= $2 AND observed_at <= $3",
        )
        .bind(device.to_string())
        .bind(since)
        .bind(until)
        .fetch_one(&self.reader)
        .await?)
    }

    async fn previous_location(
        &self,
        device: DeviceId,
        at: UnixMillis,
        transaction: Uuid,
    ) -> AppResult<Option<(GeoPoint, UnixMillis)>> {
        let row = sqlx::query(
            "SELECT latitude_e6, longitude_e6, observed_at FROM transaction_observations \
             WHERE device_id = $1 AND observed_at <= $2 AND transaction_id <> $3 \
             AND latitude_e6 IS NOT NULL AND longitude_e6 IS NOT NULL \
             ORDER BY observed_at DESC, id DESC LIMIT 1",
        )
        .bind(device.to_string())
        .bind(at)
        .bind(transaction.to_string())
        .fetch_optional(&self.reader)
        .await?;
        row.map(|row| {
            Ok((
                GeoPoint {
                    latitude: from_e6(row.try_get("latitude_e6")?),
                    longitude: from_e6(row.try_get("longitude_e6")?),
                    accuracy_m: None,
                },
                row.try_get("observed_at")?,
            ))
        })
        .transpose()
    }
}
