//! Registration of a virtual device from its own client address.
//!
//! The server caps registrations per client address (120 an hour), which a fleet of hundreds
//! of devices on one machine would hit at once. Behind a trusted proxy the server reads the
//! address from `X-Forwarded-For` (`TRUST_FORWARDED_FOR=true`), so the fleet can give each
//! virtual device its own address from the benchmarking range 198.18.0.0/15 (RFC 2544). The
//! library's `Client::register` sends no such header, hence this variant of it: the same
//! challenge, software attestation and body, plus the header, and the same store update.

use chrono::Utc;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::attestation;
use crate::client::wire::DeviceFacts;
use crate::store::SecureStore;

/// The benchmarking address of virtual device `index` (198.18.0.1 onwards).
#[must_use]
pub fn benchmark_address(index: u32) -> String {
    let n = index + 1;
    format!(
        "198.{}.{}.{}",
        18 + (n >> 16) % 2,
        (n >> 8) & 0xff,
        n & 0xff
    )
}

async fn post(
    http: &reqwest::Client,
    url: String,
    forwarded_for: &str,
    body: Option<&Value>,
) -> Result<Value, String> {
    let mut request = http.post(url).header("x-forwarded-for", forwarded_for);
    if let Some(body) = body {
        request = request.json(body);
    }
    let res = request.send().await.map_err(|_| "transport".to_owned())?;
    let status = res.status();
    let value: Value = res.json().await.map_err(|_| "bad_response".to_owned())?;
    if status.is_success() {
        Ok(value)
    } else {
        Err(value["code"]
            .as_str()
            .map_or_else(|| format!("http_{}", status.as_u16()), str::to_owned))
    }
}

/// Registers the device of `store` at `base` as if from `forwarded_for`, and records the
/// registration in the store as `Client::register` does.
///
/// # Errors
/// The server's code (`too_many_requests`, `attestation_invalid`, …), `transport`,
/// `bad_response`, or the store's code.
pub async fn register_from(
    http: &reqwest::Client,
    base: &str,
    store: &SecureStore,
    merchant_id: Uuid,
    facts: &DeviceFacts,
    forwarded_for: &str,
) -> Result<Uuid, String> {
    let challenge = post(
        http,
        format!("{base}/api/v1/devices/challenge"),
        forwarded_for,
        None,
    )
    .await?;
    let challenge = challenge["challenge"]
        .as_str()
        .ok_or_else(|| "bad_response".to_owned())?
        .to_owned();
    let evidence = attestation::software_evidence(store, &challenge);
    let body = json!({
        "challenge": challenge,
        "public_key": store.public_key_b64(),
        "facts": facts,
        "mode": "softpos",
        "merchant_id": merchant_id,
        "attestation": { "format": evidence.format, "signature": evidence.signature },
    });
    let device = post(
        http,
        format!("{base}/api/v1/devices/register"),
        forwarded_for,
        Some(&body),
    )
    .await?;
    let id: Uuid = device["id"]
        .as_str()
        .and_then(|id| id.parse().ok())
        .ok_or_else(|| "bad_response".to_owned())?;
    store
        .update_config(|config| {
            config.server_url = Some(base.to_owned());
            config.device_id = Some(id);
            config.merchant_id = Some(merchant_id);
            config.mode = Some("softpos".to_owned());
            config.attested_at = Some(Utc::now());
        })
        .map_err(|e| e.code().to_owned())?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_distinct_and_in_the_benchmarking_range() {
        assert_eq!(benchmark_address(0), "198.18.0.1");
        assert_eq!(benchmark_address(255), "198.18.1.0");
        assert_eq!(benchmark_address(65_535), "198.19.0.0");
        let all: std::collections::BTreeSet<_> = (0..10_000).map(benchmark_address).collect();
        assert_eq!(all.len(), 10_000);
    }
}
