//! Google's attestation status list (<https://android.googleapis.com/attestation/status>),
//! parsed from the JSON the operator downloads, with the time it was fetched.
//!
//! Format: `{"entries": {"<serial hex>": {"status": "REVOKED"|"SUSPENDED", "reason": "..."}}}`.
//! Serials are compared as Google's verifier does: lowercase hex without leading zeros.

use std::collections::HashMap;

use serde::Serialize;

use crate::chain::normalize_serial;
use crate::error::Error;

/// One listed certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RevocationEntry {
    /// `REVOKED` or `SUSPENDED` (any listed status refuses the certificate).
    pub status: String,
    /// `KEY_COMPROMISE`, `CA_COMPROMISE`, `SUPERSEDED`, `SOFTWARE_FLAW`, …
    pub reason: Option<String>,
}

/// A parsed status list.
#[derive(Debug, Clone)]
pub struct RevocationList {
    entries: HashMap<String, RevocationEntry>,
    fetched_at: i64,
}

impl RevocationList {
    /// Parses the JSON list; `fetched_at` is when it was downloaded (Unix seconds).
    ///
    /// # Errors
    /// [`Error::BadRevocationList`].
    pub fn parse(json: &[u8], fetched_at: i64) -> Result<Self, Error> {
        let value: serde_json::Value = serde_json::from_slice(json)
            .map_err(|e| Error::BadRevocationList(format!("not JSON: line {}", e.line())))?;
        let entries = value
            .get("entries")
            .and_then(serde_json::Value::as_object)
            .ok_or_else(|| Error::BadRevocationList("no `entries` object".to_owned()))?;
        let mut out = HashMap::with_capacity(entries.len());
        for (serial, entry) in entries {
            if serial.is_empty() || !serial.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(Error::BadRevocationList(format!(
                    "entry key is not a hex serial ({} characters)",
                    serial.len()
                )));
            }
            let status = entry
                .get("status")
                .and_then(serde_json::Value::as_str)
                .ok_or_else(|| Error::BadRevocationList("an entry has no `status`".to_owned()))?;
            let reason = entry
                .get("reason")
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned);
            out.insert(
                normalize_serial(serial),
                RevocationEntry {
                    status: status.to_owned(),
                    reason,
                },
            );
        }
        Ok(Self {
            entries: out,
            fetched_at,
        })
    }

    /// The entry for a serial (any hex spelling).
    #[must_use]
    pub fn lookup(&self, serial_hex: &str) -> Option<&RevocationEntry> {
        self.entries.get(&normalize_serial(serial_hex))
    }

    /// When the list was fetched, Unix seconds.
    #[must_use]
    pub fn fetched_at(&self) -> i64 {
        self.fetched_at
    }

    /// Number of entries.
    #[must_use]
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the list is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_normalizes_keys() {
        let list = RevocationList::parse(
            br#"{"entries":{"00C8966FCB2fbb0d7a":{"status":"REVOKED","reason":"KEY_COMPROMISE"},
                "1":{"status":"SUSPENDED"}}}"#,
            5,
        )
        .unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list.lookup("c8966fcb2fbb0d7a").unwrap().status, "REVOKED");
        assert_eq!(list.lookup("0001").unwrap().status, "SUSPENDED");
        assert!(list.lookup("2").is_none());
        assert_eq!(list.fetched_at(), 5);
    }

    #[test]
    fn refuses_malformed_lists() {
        for bad in [
            &b"nope"[..],
            br#"{"entry":{}}"#,
            br#"{"entries":[]}"#,
            br#"{"entries":{"zz":{"status":"REVOKED"}}}"#,
            br#"{"entries":{"ab":{"reason":"x"}}}"#,
        ] {
            let err = RevocationList::parse(bad, 0).unwrap_err();
            assert_eq!(err.code(), "attestation_bad_revocation_list");
        }
    }
}
