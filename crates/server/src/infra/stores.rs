//! Shared state that several instances must agree on: one-time claims (device-request
//! nonces, single-use tokens), rate-limit counters, and live events.
//!
//! Each trait has an in-process implementation (default, one instance) and a Redis one
//! (selected by `REDIS_URL`). Both are atomic: a claim is one `SET NX`, a counter one Lua
//! script, never check-then-set.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures_util::StreamExt;
use redis::aio::ConnectionManager;
use serde::{Deserialize, Serialize};
use tokio::sync::{Mutex, broadcast};

use crate::error::AppResult;

/// Atomically claims a key once within a time-to-live (nonces, one-time tokens).
#[async_trait]
pub trait OnceStore: Send + Sync + std::fmt::Debug {
    /// Returns `true` the first time `key` is claimed within `ttl`, `false` afterwards.
    async fn claim(&self, key: &str, ttl: Duration) -> AppResult<bool>;
}

/// State of one rate-limit counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hits {
    /// Events counted in the current window.
    pub count: u64,
    /// Time until the window ends (zero when no window is open).
    pub resets_in: Duration,
}

/// Fixed-window counters.
#[async_trait]
pub trait RateLimiter: Send + Sync + std::fmt::Debug {
    /// Counts one event for `key`; the window starts at the first event.
    async fn hit(&self, key: &str, window: Duration) -> AppResult<Hits>;
    /// Reads a counter without changing it.
    async fn peek(&self, key: &str) -> AppResult<Hits>;
    /// Takes back one counted event (an attempt that turned out not to count), without
    /// going below zero or reopening an expired window.
    async fn forgive(&self, key: &str) -> AppResult<()>;
    /// Clears a counter.
    async fn reset(&self, key: &str) -> AppResult<()>;
}

/// A live event for dashboards and other instances.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Event {
    /// Kind, e.g. `audit.appended`.
    pub kind: String,
    /// Event payload.
    pub payload: serde_json::Value,
}

/// Publish/subscribe across instances.
#[async_trait]
pub trait EventBus: Send + Sync + std::fmt::Debug {
    /// Publishes to every subscriber of every instance.
    async fn publish(&self, event: &Event) -> AppResult<()>;
    /// Subscribes to events from all instances.
    fn subscribe(&self) -> broadcast::Receiver<Event>;
}

/// Health probe for the store backend.
#[async_trait]
pub trait StoreHealth: Send + Sync + std::fmt::Debug {
    /// `Ok` when the backend answers.
    async fn ping(&self) -> AppResult<()>;
    /// `memory` or `redis`.
    fn kind(&self) -> &'static str;
}

/// The set of shared stores the services use.
#[derive(Debug, Clone)]
pub struct Stores {
    /// One-time claims.
    pub once: Arc<dyn OnceStore>,
    /// Rate limits.
    pub limiter: Arc<dyn RateLimiter>,
    /// Events.
    pub events: Arc<dyn EventBus>,
    /// Health.
    pub health: Arc<dyn StoreHealth>,
}

impl Stores {
    /// In-process stores (a single instance).
    pub fn memory() -> Self {
        let memory = Arc::new(MemoryStores::default());
        Self {
            once: memory.clone(),
            limiter: memory.clone(),
            events: memory.clone(),
            health: memory,
        }
    }

    /// Redis-backed stores shared by every instance using the same Redis and prefix.
    ///
    /// # Errors
    /// When Redis cannot be reached.
    pub async fn redis(url: &str, prefix: &str) -> anyhow::Result<Self> {
        let redis = Arc::new(RedisStores::connect(url, prefix).await?);
        Ok(Self {
            once: redis.clone(),
            limiter: redis.clone(),
            events: redis.clone(),
            health: redis,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// In-process implementation.

/// In-process stores: a mutex-protected map per concern and a broadcast channel.
#[derive(Debug)]
pub struct MemoryStores {
    claims: Mutex<Expiring<Instant>>,
    counters: Mutex<Expiring<(u64, Instant)>>,
    events: broadcast::Sender<Event>,
}

impl Default for MemoryStores {
    fn default() -> Self {
        Self {
            claims: Mutex::new(Expiring::default()),
            counters: Mutex::new(Expiring::default()),
            events: broadcast::channel(1024).0,
        }
    }
}

const PURGE_THRESHOLD: usize = 10_000;

/// Entries that expire, swept when the map has doubled since the last sweep: each call pays
/// amortised O(1). (Sweeping on every call above a fixed size made every signed request
/// scan every live nonce once a run passed 10,000 of them.)
#[derive(Debug)]
struct Expiring<V> {
    map: HashMap<String, V>,
    sweep_above: usize,
}

impl<V> Default for Expiring<V> {
    fn default() -> Self {
        Self {
            map: HashMap::new(),
            sweep_above: PURGE_THRESHOLD,
        }
    }
}

impl<V> Expiring<V> {
    fn sweep(&mut self, live: impl Fn(&V) -> bool) {
        if self.map.len() > self.sweep_above {
            self.map.retain(|_, value| live(value));
            self.sweep_above = (self.map.len() * 2).max(PURGE_THRESHOLD);
        }
    }
}

impl<V> std::ops::Deref for Expiring<V> {
    type Target = HashMap<String, V>;
    fn deref(&self) -> &Self::Target {
        &self.map
    }
}

impl<V> std::ops::DerefMut for Expiring<V> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.map
    }
}

#[async_trait]
impl OnceStore for MemoryStores {
    async fn claim(&self, key: &str, ttl: Duration) -> AppResult<bool> {
        let now = Instant::now();
        let mut claims = self.claims.lock().await;
        claims.sweep(|expires| *expires > now);
        match claims.get(key) {
            Some(expires) if *expires > now => Ok(false),
            _ => {
                claims.insert(key.to_owned(), now + ttl);
                Ok(true)
            }
        }
    }
}

#[async_trait]
impl RateLimiter for MemoryStores {
    async fn hit(&self, key: &str, window: Duration) -> AppResult<Hits> {
        let now = Instant::now();
        let mut counters = self.counters.lock().await;
        counters.sweep(|(_, ends)| *ends > now);
        let entry = counters.entry(key.to_owned()).or_insert((0, now + window));
        if entry.1 <= now {
            *entry = (0, now + window);
        }
        entry.0 += 1;
        Ok(Hits {
            count: entry.0,
            resets_in: entry.1.saturating_duration_since(now),
        })
    }

    async fn peek(&self, key: &str) -> AppResult<Hits> {
        let now = Instant::now();
        let counters = self.counters.lock().await;
        Ok(match counters.get(key) {
            Some((count, ends)) if *ends > now => Hits {
                count: *count,
                resets_in: ends.saturating_duration_since(now),
            },
            _ => Hits {
                count: 0,
                resets_in: Duration::ZERO,
            },
        })
    }

    async fn forgive(&self, key: &str) -> AppResult<()> {
        if let Some(entry) = self.counters.lock().await.get_mut(key) {
            entry.0 = entry.0.saturating_sub(1);
        }
        Ok(())
    }

    async fn reset(&self, key: &str) -> AppResult<()> {
        self.counters.lock().await.remove(key);
        Ok(())
    }
}

#[async_trait]
impl EventBus for MemoryStores {
    async fn publish(&self, event: &Event) -> AppResult<()> {
        // No subscriber is not an error.
        let _ = self.events.send(event.clone());
        Ok(())
    }

    fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }
}

#[async_trait]
impl StoreHealth for MemoryStores {
    async fn ping(&self) -> AppResult<()> {
        Ok(())
    }
    fn kind(&self) -> &'static str {
        "memory"
    }
}

// ---------------------------------------------------------------------------------------------
// Redis implementation.

/// Redis-backed stores over a reconnecting connection manager.
pub struct RedisStores {
    conn: ConnectionManager,
    prefix: String,
    events: broadcast::Sender<Event>,
    hit_script: redis::Script,
    forgive_script: redis::Script,
}

impl std::fmt::Debug for RedisStores {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStores")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// INCR and start the window on the first hit, in one atomic step; returns count and PTTL.
const HIT_SCRIPT: &str = r"
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
local ttl = redis.call('PTTL', KEYS[1])
if ttl < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[1]); ttl = tonumber(ARGV[1]) end
return {count, ttl}
";

/// DECR only an existing, positive counter (never creates one).
const FORGIVE_SCRIPT: &str = r"
local count = tonumber(redis.call('GET', KEYS[1]) or '0')
if count > 0 then return redis.call('DECR', KEYS[1]) end
return 0
";

impl RedisStores {
    /// Connects and starts the event subscriber task.
    ///
    /// # Errors
    /// When Redis cannot be reached.
    pub async fn connect(url: &str, prefix: &str) -> anyhow::Result<Self> {
        let client = redis::Client::open(url)?;
        let conn = client.get_connection_manager().await?;
        let (events, _) = broadcast::channel(1024);
        let stores = Self {
            conn,
            prefix: prefix.to_owned(),
            events,
            hit_script: redis::Script::new(HIT_SCRIPT),
            forgive_script: redis::Script::new(FORGIVE_SCRIPT),
        };
        stores.spawn_subscriber(client).await?;
        Ok(stores)
    }

    fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    fn channel(&self) -> String {
        self.key("events")
    }

    async fn spawn_subscriber(&self, client: redis::Client) -> anyhow::Result<()> {
        let mut pubsub = client.get_async_pubsub().await?;
        pubsub.subscribe(self.channel()).await?;
        let sender = self.events.clone();
        tokio::spawn(async move {
            let mut messages = pubsub.into_on_message();
            while let Some(message) = messages.next().await {
                let Ok(payload) = message.get_payload::<String>() else {
                    continue;
                };
                match serde_json::from_str::<Event>(&payload) {
                    Ok(event) => {
                        let _ = sender.send(event);
                    }
                    Err(error) => tracing::warn!(%error, "ignoring malformed event from Redis"),
                }
            }
            tracing::warn!("Redis event subscription ended");
        });
        Ok(())
    }
}

#[async_trait]
impl OnceStore for RedisStores {
    async fn claim(&self, key: &str, ttl: Duration) -> AppResult<bool> {
        let mut conn = self.conn.clone();
        let millis = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1);
        let reply: Option<String> = redis::cmd("SET")
            .arg(self.key(&format!("once:{key}")))
            .arg(1)
            .arg("NX")
            .arg("PX")
            .arg(millis)
            .query_async(&mut conn)
            .await?;
        Ok(reply.is_some())
    }
}

#[async_trait]
impl RateLimiter for RedisStores {
    async fn hit(&self, key: &str, window: Duration) -> AppResult<Hits> {
        let mut conn = self.conn.clone();
        let millis = u64::try_from(window.as_millis()).unwrap_or(u64::MAX).max(1);
        let (count, ttl): (u64, i64) = self
            .hit_script
            .key(self.key(&format!("rate:{key}")))
            .arg(millis)
            .invoke_async(&mut conn)
            .await?;
        Ok(Hits {
            count,
            resets_in: Duration::from_millis(u64::try_from(ttl).unwrap_or(0)),
        })
    }

    async fn peek(&self, key: &str) -> AppResult<Hits> {
        let mut conn = self.conn.clone();
        let full = self.key(&format!("rate:{key}"));
        let (count, ttl): (Option<u64>, i64) = redis::pipe()
            .cmd("GET")
            .arg(&full)
            .cmd("PTTL")
            .arg(&full)
            .query_async(&mut conn)
            .await?;
        Ok(match count {
            Some(count) if ttl > 0 => Hits {
                count,
                resets_in: Duration::from_millis(u64::try_from(ttl).unwrap_or(0)),
            },
            _ => Hits {
                count: 0,
                resets_in: Duration::ZERO,
            },
        })
    }

    async fn forgive(&self, key: &str) -> AppResult<()> {
        let mut conn = self.conn.clone();
        let _: i64 = self
            .forgive_script
            .key(self.key(&format!("rate:{key}")))
            .invoke_async(&mut conn)
            .await?;
        Ok(())
    }

    async fn reset(&self, key: &str) -> AppResult<()> {
        let mut conn = self.conn.clone();
        let _: i64 = redis::cmd("DEL")
            .arg(self.key(&format!("rate:{key}")))
            .query_async(&mut conn)
            .await?;
        Ok(())
    }
}

#[async_trait]
impl EventBus for RedisStores {
    async fn publish(&self, event: &Event) -> AppResult<()> {
        let mut conn = self.conn.clone();
        let payload = serde_json::to_string(event).map_err(anyhow::Error::from)?;
        let _: i64 = redis::cmd("PUBLISH")
            .arg(self.channel())
            .arg(payload)
            .query_async(&mut conn)
            .await?;
        Ok(())
    }

    fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.events.subscribe()
    }
}

#[async_trait]
impl StoreHealth for RedisStores {
    async fn ping(&self) -> AppResult<()> {
        let mut conn = self.conn.clone();
        let _: String = redis::cmd("PING").query_async(&mut conn).await?;
        Ok(())
    }
    fn kind(&self) -> &'static str {
        "redis"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn memory_claim_is_single_use_until_expiry() {
        let stores = MemoryStores::default();
        assert!(stores.claim("n1", Duration::from_secs(60)).await.unwrap());
        assert!(!stores.claim("n1", Duration::from_secs(60)).await.unwrap());
        assert!(stores.claim("n2", Duration::from_millis(1)).await.unwrap());
        tokio::time::sleep(Duration::from_millis(5)).await;
        assert!(stores.claim("n2", Duration::from_secs(60)).await.unwrap());
    }

    #[tokio::test]
    async fn memory_counter_counts_within_window_and_resets() {
        let stores = MemoryStores::default();
        let window = Duration::from_secs(60);
        assert_eq!(stores.hit("k", window).await.unwrap().count, 1);
        assert_eq!(stores.hit("k", window).await.unwrap().count, 2);
        assert_eq!(stores.peek("k").await.unwrap().count, 2);
        stores.forgive("k").await.unwrap();
        assert_eq!(stores.peek("k").await.unwrap().count, 1);
        stores.reset("k").await.unwrap();
        assert_eq!(stores.peek("k").await.unwrap().count, 0);
    }

    #[test]
    fn expired_entries_are_swept_once_the_map_doubles() {
        let mut map = Expiring::<u32>::default();
        // Live entries above the threshold: one sweep, then none until the map doubles.
        for i in 0..=PURGE_THRESHOLD {
            map.insert(format!("live-{i}"), 1);
        }
        map.sweep(|value| *value == 1);
        assert_eq!(map.len(), PURGE_THRESHOLD + 1);
        assert_eq!(map.sweep_above, 2 * (PURGE_THRESHOLD + 1));
        for i in 0..PURGE_THRESHOLD {
            map.insert(format!("dead-{i}"), 0);
        }
        map.sweep(|value| *value == 1);
        assert_eq!(map.len(), 2 * PURGE_THRESHOLD + 1, "not doubled yet");
        map.insert("dead-last".to_owned(), 0);
        map.insert("dead-last-2".to_owned(), 0);
        map.sweep(|value| *value == 1);
        assert_eq!(map.len(), PURGE_THRESHOLD + 1, "expired entries are gone");
        assert!(!map.contains_key("dead-last"));
    }
}
