//! Which devices a partial rollout reaches.
//!
//! `bucket(device, release)` is the first 8 bytes, big-endian, of
//! `SHA-256("softpos-rollout-v1\n" ‖ device id ‖ "\n" ‖ release id)` (ids in their lowercase
//! hyphenated UUID text) modulo 100; a device is in a rollout of `pct` percent iff its bucket is
//! below `pct`. The hash is stable across instances and restarts, so raising the percentage only
//! ever adds devices, and salting with the release id spreads successive rollouts over different
//! devices.

use sha2::{Digest, Sha256};
use uuid::Uuid;

/// The device's bucket, 0–99, for this release.
pub fn bucket(device_id: Uuid, release_id: Uuid) -> u8 {
    let mut hasher = Sha256::new();
    hasher.update(b"softpos-rollout-v1\n");
    hasher.update(device_id.hyphenated().to_string().as_bytes());
    hasher.update(b"\n");
    hasher.update(release_id.hyphenated().to_string().as_bytes());
    let digest = hasher.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    // `% 100` is below 100, so the narrowing cannot fail.
    u8::try_from(u64::from_be_bytes(first) % 100).unwrap_or(99)
}

/// Whether the device is in a rollout of `percent` of this release.
pub fn in_rollout(device_id: Uuid, release_id: Uuid, percent: u8) -> bool {
    bucket(device_id, release_id) < percent
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentages_hold_over_many_devices_and_grow_monotonically() {
        let release = Uuid::parse_str("0192f000-0000-7000-8000-000000000001").unwrap();
        let devices: Vec<Uuid> = (0..10_000u128)
            .map(|n| Uuid::from_u128(n * 7919 + 1))
            .collect();
        for percent in [0u8, 1, 10, 25, 50, 99, 100] {
            let reached = devices
                .iter()
                .filter(|device| in_rollout(**device, release, percent))
                .count();
            let expected = usize::from(percent) * 100;
            assert!(
                reached.abs_diff(expected) <= 200,
                "{percent}%: {reached} of 10000"
            );
        }
        for device in &devices {
            if in_rollout(*device, release, 10) {
                assert!(in_rollout(*device, release, 11));
            }
        }
    }

    #[test]
    fn bucket_is_the_documented_hash() {
        let device = Uuid::nil();
        let release = Uuid::max();
        let digest = Sha256::digest(
            b"softpos-rollout-v1\n00000000-0000-0000-0000-000000000000\nffffffff-ffff-ffff-ffff-ffffffffffff",
        );
        let expected = u64::from_be_bytes(digest[..8].try_into().unwrap()) % 100;
        assert_eq!(u64::from(bucket(device, release)), expected);
    }
}
