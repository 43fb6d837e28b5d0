//! A short-lived, bounded in-memory cache of unwrapped keys for the payment hot path.
//!
//! Without it every sale opens the BDK's AES-256-GCM envelope (after reading it), and every
//! authorisation does the same for the zone PIN key. Entries are keyed by stored key id; the
//! key set and which zone PIN key is active are still read on every sale, so a destroyed set
//! (device revoked) never decrypts and a retired zone PIN key is not used, on any instance.
//! Entries hold the clear key only inside [`SecretKey`] (zeroized when evicted or dropped),
//! live at most [`HOT_KEY_TTL`], and the cache never holds more than [`HOT_KEY_CAPACITY`]
//! entries (the oldest are evicted first). Any custody change on this instance (key
//! activation or retirement, master-key rotation, key-set rotation or destruction) clears
//! it; other instances see the change within the TTL, and a revoked device is refused
//! earlier anyway (request signature check, token issuance, device state in the sale).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use payment_crypto::SecretKey;
use uuid::Uuid;

/// How long an unwrapped key stays cached.
pub(crate) const HOT_KEY_TTL: Duration = Duration::from_secs(5);
/// Most cached keys (one per BDK or zone PIN key in use).
pub(crate) const HOT_KEY_CAPACITY: usize = 4096;

struct Timed<T> {
    at: Instant,
    value: T,
}

struct Maps {
    bdks: HashMap<Uuid, Timed<SecretKey>>,
}

/// The cache; see the module doc.
pub(crate) struct HotKeys {
    ttl: Duration,
    maps: Mutex<Maps>,
}

impl Default for HotKeys {
    fn default() -> Self {
        Self::new(HOT_KEY_TTL)
    }
}

fn get<T: Clone>(map: &mut HashMap<Uuid, Timed<T>>, key: &Uuid, ttl: Duration) -> Option<T> {
    match map.get(key) {
        Some(entry) if entry.at.elapsed() < ttl => Some(entry.value.clone()),
        Some(_) => {
            map.remove(key);
            None
        }
        None => None,
    }
}

fn put<K: std::hash::Hash + Eq + Clone, T>(map: &mut HashMap<K, Timed<T>>, key: K, value: T) {
    if map.len() >= HOT_KEY_CAPACITY && !map.contains_key(&key) {
        // Evict the oldest entry; capacity is small enough for a linear scan.
        if let Some(oldest) = map
            .iter()
            .min_by_key(|(_, entry)| entry.at)
            .map(|(k, _)| k.clone())
        {
            map.remove(&oldest);
        }
    }
    map.insert(
        key,
        Timed {
            at: Instant::now(),
            value,
        },
    );
}

impl HotKeys {
    /// A cache whose entries live `ttl`.
    pub(crate) fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            maps: Mutex::new(Maps {
                bdks: HashMap::new(),
            }),
        }
    }

    fn maps(&self) -> std::sync::MutexGuard<'_, Maps> {
        // A panic while holding the lock cannot leave the maps inconsistent.
        self.maps
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub(crate) fn bdk(&self, bdk_id: Uuid) -> Option<SecretKey> {
        let ttl = self.ttl;
        get(&mut self.maps().bdks, &bdk_id, ttl)
    }

    pub(crate) fn put_bdk(&self, bdk_id: Uuid, bdk: SecretKey) {
        put(&mut self.maps().bdks, bdk_id, bdk);
    }

    /// Drops every entry (their keys are zeroized on drop).
    pub(crate) fn clear(&self) {
        let mut maps = self.maps();
        maps.bdks.clear();
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        let maps = self.maps();
        maps.bdks.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(byte: u8) -> SecretKey {
        SecretKey::aes(&[byte; 16]).unwrap()
    }

    #[test]
    fn entries_expire_are_bounded_and_clear() {
        let cache = HotKeys::new(Duration::from_millis(50));
        let id = Uuid::new_v4();
        cache.put_bdk(id, entry(1));
        assert_eq!(cache.bdk(id).unwrap().expose_secret(), &[1; 16]);
        std::thread::sleep(Duration::from_millis(60));
        assert!(cache.bdk(id).is_none(), "expired");
        assert_eq!(cache.len(), 0, "expired entries are removed on access");

        let cache = HotKeys::new(Duration::from_secs(60));
        let first = Uuid::new_v4();
        cache.put_bdk(first, entry(2));
        for _ in 0..HOT_KEY_CAPACITY {
            cache.put_bdk(Uuid::new_v4(), entry(3));
        }
        assert_eq!(cache.len(), HOT_KEY_CAPACITY);
        assert!(cache.bdk(first).is_none(), "the oldest entry went first");
        cache.clear();
        assert_eq!(cache.len(), 0);
    }
}
