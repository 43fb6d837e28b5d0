//! The DUKPT originator of a terminal, over `payment-crypto`: AES DUKPT (ANSI X9.24-3, the
//! default) or TDES DUKPT (X9.24-1) as the server's key profile says.
//!
//! This module is pure: it turns a persisted originator state into the keys of the next
//! transaction and the state that follows. The rule that makes it crash safe lives in
//! [`crate::store::SecureStore::next_transaction_keys`]: the advanced state is written to disk
//! *before* any key is handed out, so a crash between key use and submission burns a KSN but
//! never reuses one.
//!
//! Keys per transaction: the PIN encryption key (AES: usage "PIN encryption", AES-128; TDES: the
//! PIN variant) and the data encryption key (AES: "data encryption, encrypt", AES-128; TDES: the
//! data request variant), as the server derives them.
//!
//! # Security
//! Working keys are [`SecretKey`]s (zeroized on drop, redacted in `Debug`); states are
//! [`Zeroizing`] buffers.

use payment_crypto::dukpt::{aes, tdes};
use payment_crypto::pinblock::PinBlockFormat;
use payment_crypto::{ErrorCode, KeyAlgorithm, SecretKey};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// Which DUKPT variant a key set uses (the server's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DukptScheme {
    /// ANSI X9.24-3 AES DUKPT with AES-128 working keys.
    Aes128,
    /// ANSI X9.24-1 TDES DUKPT.
    Tdes,
}

impl DukptScheme {
    /// Stable name.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Aes128 => "aes128",
            Self::Tdes => "tdes",
        }
    }

    /// The PIN block format the server expects with this scheme (ISO 9564-1 format 4 with AES,
    /// format 0 with TDES).
    #[must_use]
    pub fn pin_block_format(self) -> PinBlockFormat {
        match self {
            Self::Aes128 => PinBlockFormat::Iso4,
            Self::Tdes => PinBlockFormat::Iso0,
        }
    }

    /// The last transaction counter this scheme can reach (AES: `FFFF0000`, the largest 32-bit
    /// counter with 16 one-bits; TDES: `1FF800`, the largest 21-bit one with 10).
    #[must_use]
    pub fn last_counter(self) -> u32 {
        match self {
            Self::Aes128 => 0xFFFF_0000,
            Self::Tdes => 0x1F_F800,
        }
    }

    /// Counter from which a rotation is advised when the server gave no `rotate_after`: 90 % of
    /// the counter space.
    #[must_use]
    pub fn default_rotate_after(self) -> u32 {
        self.last_counter() / 10 * 9
    }
}

/// A DUKPT failure. Codes are stable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DukptError {
    /// Every counter of the key set has been used: the device needs a new key set.
    #[error("the DUKPT transaction counter is exhausted; a new key set is needed")]
    Exhausted,
    /// The initial key does not fit the scheme.
    #[error("the initial key does not fit the DUKPT scheme ({0})")]
    InitialKey(&'static str),
    /// The initial key id or KSN has the wrong length.
    #[error("the initial key id does not fit the DUKPT scheme")]
    InitialKeyId,
    /// A stored originator state does not parse (damaged store).
    #[error("the stored DUKPT state is damaged ({0})")]
    State(&'static str),
}

impl DukptError {
    /// Stable machine-readable code.
    #[must_use]
    pub fn code(&self) -> &'static str {
        match self {
            Self::Exhausted => "dukpt_exhausted",
            Self::InitialKey(_) => "dukpt_initial_key",
            Self::InitialKeyId => "dukpt_initial_key_id",
            Self::State(_) => "dukpt_state_damaged",
        }
    }
}

/// Loads an initial key and returns the originator state to persist (counter 1 next).
///
/// `initial_key_id`: AES, the 8-byte initial key id; TDES, the 10-byte initial KSN.
///
/// # Errors
/// [`DukptError::InitialKey`], [`DukptError::InitialKeyId`].
pub fn load_initial_key(
    scheme: DukptScheme,
    initial_key: &SecretKey,
    initial_key_id: &[u8],
) -> Result<Zeroizing<Vec<u8>>, DukptError> {
    match scheme {
        DukptScheme::Aes128 => {
            let id = aes::InitialKeyId::from_slice(initial_key_id)
                .map_err(|_| DukptError::InitialKeyId)?;
            let originator = aes::Originator::load_initial_key(initial_key, id)
                .map_err(|e| DukptError::InitialKey(e.code()))?;
            Ok(Zeroizing::new(
                originator.export_state().as_bytes().to_vec(),
            ))
        }
        DukptScheme::Tdes => {
            let ksn =
                tdes::Ksn::from_bytes(initial_key_id).map_err(|_| DukptError::InitialKeyId)?;
            let originator = tdes::Originator::initialize(initial_key, &ksn)
                .map_err(|e| DukptError::InitialKey(e.code()))?;
            Ok(Zeroizing::new(originator.export_state().to_vec()))
        }
    }
}

/// The counter of the next transaction a state holds, `None` once exhausted.
///
/// # Errors
/// [`DukptError::State`].
pub fn next_counter(scheme: DukptScheme, state: &[u8]) -> Result<Option<u32>, DukptError> {
    match scheme {
        DukptScheme::Aes128 => Ok(aes::Originator::import_state(state)
            .map_err(|e| DukptError::State(e.code()))?
            .transaction_counter()),
        DukptScheme::Tdes => Ok(tdes::Originator::import_state(state)
            .map_err(|e| DukptError::State(e.code()))?
            .next_ksn()
            .map(|ksn| ksn.counter())),
    }
}

/// Whether the device should ask the server for a new key set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RotationAdvice {
    /// Plenty of counters left.
    NotNeeded,
    /// The counter passed the rotation threshold (the server's `rotate_after`, or 90 % of the
    /// counter space): request a new key set soon.
    Advised,
    /// This was the last transaction of the key set: request a new key set before the next one.
    Required,
}

/// The keys of one transaction.
pub struct TransactionKeys {
    /// The key set.
    pub key_set_id: uuid::Uuid,
    /// The scheme.
    pub scheme: DukptScheme,
    /// The KSN to send (12 bytes AES, 10 bytes TDES).
    pub ksn: Vec<u8>,
    /// The transaction counter of this KSN.
    pub counter: u32,
    /// Whether to rotate now.
    pub rotation: RotationAdvice,
    pin_key: SecretKey,
    data_key: SecretKey,
}

impl std::fmt::Debug for TransactionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransactionKeys")
            .field("key_set_id", &self.key_set_id)
            .field("scheme", &self.scheme)
            .field("ksn", &hex::encode_upper(&self.ksn))
            .field("counter", &self.counter)
            .field("rotation", &self.rotation)
            .finish_non_exhaustive()
    }
}

impl TransactionKeys {
    /// The PIN encryption key.
    #[must_use]
    pub fn pin_key(&self) -> &SecretKey {
        &self.pin_key
    }

    /// The card data encryption key.
    #[must_use]
    pub fn data_key(&self) -> &SecretKey {
        &self.data_key
    }

    /// The KSN in upper-case hex, as the server wants it.
    #[must_use]
    pub fn ksn_hex(&self) -> String {
        hex::encode_upper(&self.ksn)
    }
}

fn advice(
    scheme: DukptScheme,
    counter: u32,
    exhausted: bool,
    rotate_after: Option<u32>,
) -> RotationAdvice {
    if exhausted {
        RotationAdvice::Required
    } else if counter >= rotate_after.unwrap_or_else(|| scheme.default_rotate_after()) {
        RotationAdvice::Advised
    } else {
        RotationAdvice::NotNeeded
    }
}

/// Derives the next transaction's keys from `state` and returns them with the state that
/// follows (the counter already advanced). The caller must persist the new state before using
/// the keys.
///
/// # Errors
/// [`DukptError::Exhausted`], [`DukptError::State`].
pub fn next_transaction(
    key_set_id: uuid::Uuid,
    scheme: DukptScheme,
    state: &[u8],
    rotate_after: Option<u32>,
) -> Result<(TransactionKeys, Zeroizing<Vec<u8>>), DukptError> {
    match scheme {
        DukptScheme::Aes128 => {
            let mut originator =
                aes::Originator::import_state(state).map_err(|e| DukptError::State(e.code()))?;
            let ksn = originator.ksn().map_err(|_| DukptError::Exhausted)?;
            let derive = |usage| {
                originator
                    .derive_working_key(usage, KeyAlgorithm::Aes128)
                    .map_err(|e| DukptError::State(e.code()))
            };
            let pin_key = derive(aes::WorkingKeyUsage::PinEncryption)?;
            let data_key = derive(aes::WorkingKeyUsage::DataEncryptionEncrypt)?;
            originator.advance().map_err(|_| DukptError::Exhausted)?;
            let next = Zeroizing::new(originator.export_state().as_bytes().to_vec());
            let exhausted = originator.transaction_counter().is_none();
            Ok((
                TransactionKeys {
                    key_set_id,
                    scheme,
                    ksn: ksn.to_bytes().to_vec(),
                    counter: ksn.counter(),
                    rotation: advice(scheme, ksn.counter(), exhausted, rotate_after),
                    pin_key,
                    data_key,
                },
                next,
            ))
        }
        DukptScheme::Tdes => {
            let mut originator =
                tdes::Originator::import_state(state).map_err(|e| DukptError::State(e.code()))?;
            let keys = originator
                .next_transaction()
                .map_err(|_| DukptError::Exhausted)?;
            let ksn = keys.ksn();
            let next = Zeroizing::new(originator.export_state().to_vec());
            Ok((
                TransactionKeys {
                    key_set_id,
                    scheme,
                    ksn: ksn.as_bytes().to_vec(),
                    counter: ksn.counter(),
                    rotation: advice(
                        scheme,
                        ksn.counter(),
                        originator.is_exhausted(),
                        rotate_after,
                    ),
                    pin_key: keys.pin_encryption_key(),
                    data_key: keys.data_request_key(),
                },
                next,
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use payment_crypto::dukpt::aes::{HostBdk, InitialKeyId, Ksn, WorkingKeyUsage};

    /// X9.24-3:2017 Annex B sample BDK and initial key id.
    const BDK: [u8; 16] = [
        0xFE, 0xDC, 0xBA, 0x98, 0x76, 0x54, 0x32, 0x10, 0xF1, 0xF1, 0xF1, 0xF1, 0xF1, 0xF1, 0xF1,
        0xF1,
    ];
    const IKID: [u8; 8] = [0x12, 0x34, 0x56, 0x78, 0x90, 0x12, 0x34, 0x56];

    #[test]
    fn aes_keys_match_the_host_and_the_counter_moves() {
        let host = HostBdk::new(&SecretKey::aes(&BDK).unwrap()).unwrap();
        let initial = host.derive_initial_key(&InitialKeyId::new(IKID));
        let mut state = load_initial_key(DukptScheme::Aes128, &initial, &IKID).unwrap();
        let id = uuid::Uuid::nil();
        for expected in 1..=3u32 {
            let (keys, next) = next_transaction(id, DukptScheme::Aes128, &state, None).unwrap();
            assert_eq!(keys.counter, expected);
            let ksn = Ksn::from_bytes(&keys.ksn).unwrap();
            let host_pin = host
                .derive_working_key(&ksn, WorkingKeyUsage::PinEncryption, KeyAlgorithm::Aes128)
                .unwrap();
            assert_eq!(keys.pin_key(), &host_pin);
            assert_eq!(keys.rotation, RotationAdvice::NotNeeded);
            state = next;
        }
        assert_eq!(next_counter(DukptScheme::Aes128, &state).unwrap(), Some(4));
    }

    #[test]
    fn rotation_is_advised_past_the_threshold() {
        let host = HostBdk::new(&SecretKey::aes(&BDK).unwrap()).unwrap();
        let initial = host.derive_initial_key(&InitialKeyId::new(IKID));
        let mut state = load_initial_key(DukptScheme::Aes128, &initial, &IKID).unwrap();
        let mut seen = Vec::new();
        for _ in 0..3 {
            let (keys, next) =
                next_transaction(uuid::Uuid::nil(), DukptScheme::Aes128, &state, Some(2)).unwrap();
            seen.push(keys.rotation);
            state = next;
        }
        assert_eq!(
            seen,
            [
                RotationAdvice::NotNeeded,
                RotationAdvice::Advised,
                RotationAdvice::Advised
            ]
        );
    }

    #[test]
    fn tdes_keys_match_the_host() {
        // X9.24-1:2009 Annex A test key: BDK 0123456789ABCDEFFEDCBA9876543210, KSN FFFF9876543210E00000.
        let bdk =
            SecretKey::tdes(&hex::decode("0123456789ABCDEFFEDCBA9876543210").unwrap()).unwrap();
        let ksn = tdes::Ksn::from_bytes(&hex::decode("FFFF9876543210E00000").unwrap()).unwrap();
        let host = tdes::BaseDerivationKey::new(&bdk).unwrap();
        let ipek = host.derive_ipek(&ksn);
        let state = load_initial_key(DukptScheme::Tdes, &ipek, ksn.as_bytes()).unwrap();
        let (keys, _) =
            next_transaction(uuid::Uuid::nil(), DukptScheme::Tdes, &state, None).unwrap();
        assert_eq!(keys.ksn_hex(), "FFFF9876543210E00001");
        let host_keys = host
            .derive_transaction_keys(&tdes::Ksn::from_bytes(&keys.ksn).unwrap())
            .unwrap();
        assert_eq!(keys.pin_key(), &host_keys.pin_encryption_key());
        assert_eq!(keys.data_key(), &host_keys.data_request_key());
        // The published current key of counter 1 (X9.24-1:2009 A.4.2,
        // 042666B49184CFA368DE9628D0397BC9) XOR the PIN variant 00000000000000FF00000000000000FF.
        assert_eq!(
            hex::encode_upper(keys.pin_key().expose_secret()),
            "042666B49184CF5C68DE9628D0397B36"
        );
    }

    #[test]
    fn a_damaged_state_is_a_typed_error() {
        let err =
            next_transaction(uuid::Uuid::nil(), DukptScheme::Aes128, &[1, 2, 3], None).unwrap_err();
        assert_eq!(err.code(), "dukpt_state_damaged");
    }
}
