//! Derivation data (X9.24-3:2017, 6.3.2 and 6.3.3) and the key derivation function (6.3.1 and
//! Annex A).

use zeroize::Zeroizing;

use super::cipher::EncryptBlock;
use super::{AesDukptError, InitialKeyId};
use crate::key::{KeyAlgorithm, SecretKey};

/// Version byte of the derivation data (X9.24-3:2017, 6.3.2, tables 2 and 3).
const DERIVATION_DATA_VERSION: u8 = 0x01;

/// AES block length: one derivation data block is one AES block.
const BLOCK_LEN: usize = 16;

/// Key usage indicators of the derivation data (X9.24-3:2017, 6.3.2, tables 2 and 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyUsage {
    /// Key encryption key (`0002`).
    KeyEncryptionKey,
    /// PIN encryption (`1000`).
    PinEncryption,
    /// Message authentication, generation (`2000`).
    MacGeneration,
    /// Message authentication, verification (`2001`).
    MacVerification,
    /// Message authentication, both ways (`2002`).
    MacBothWays,
    /// Data encryption, encrypt (`3000`).
    DataEncryptionEncrypt,
    /// Data encryption, decrypt (`3001`).
    DataEncryptionDecrypt,
    /// Data encryption, both ways (`3002`).
    DataEncryptionBothWays,
    /// Key derivation: intermediate derivation keys (`8000`).
    KeyDerivation,
    /// Key derivation of the initial key from the BDK (`8001`).
    InitialKey,
}

impl KeyUsage {
    /// The 16-bit key usage indicator.
    #[must_use]
    pub const fn indicator(self) -> u16 {
        match self {
            Self::KeyEncryptionKey => 0x0002,
            Self::PinEncryption => 0x1000,
            Self::MacGeneration => 0x2000,
            Self::MacVerification => 0x2001,
            Self::MacBothWays => 0x2002,
            Self::DataEncryptionEncrypt => 0x3000,
            Self::DataEncryptionDecrypt => 0x3001,
            Self::DataEncryptionBothWays => 0x3002,
            Self::KeyDerivation => 0x8000,
            Self::InitialKey => 0x8001,
        }
    }
}

/// The usages a working key can have: every [`KeyUsage`] except the two key-derivation ones,
/// which only the derivation process itself uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum WorkingKeyUsage {
    /// Key encryption key.
    KeyEncryptionKey,
    /// PIN encryption.
    PinEncryption,
    /// MAC generation.
    MacGeneration,
    /// MAC verification.
    MacVerification,
    /// MAC, both ways.
    MacBothWays,
    /// Data encryption, encrypt.
    DataEncryptionEncrypt,
    /// Data encryption, decrypt.
    DataEncryptionDecrypt,
    /// Data encryption, both ways.
    DataEncryptionBothWays,
}

impl WorkingKeyUsage {
    /// Every working key usage, in indicator order.
    pub const ALL: [Self; 8] = [
        Self::KeyEncryptionKey,
        Self::PinEncryption,
        Self::MacGeneration,
        Self::MacVerification,
        Self::MacBothWays,
        Self::DataEncryptionEncrypt,
        Self::DataEncryptionDecrypt,
        Self::DataEncryptionBothWays,
    ];
}

impl From<WorkingKeyUsage> for KeyUsage {
    fn from(usage: WorkingKeyUsage) -> Self {
        match usage {
            WorkingKeyUsage::KeyEncryptionKey => Self::KeyEncryptionKey,
            WorkingKeyUsage::PinEncryption => Self::PinEncryption,
            WorkingKeyUsage::MacGeneration => Self::MacGeneration,
            WorkingKeyUsage::MacVerification => Self::MacVerification,
            WorkingKeyUsage::MacBothWays => Self::MacBothWays,
            WorkingKeyUsage::DataEncryptionEncrypt => Self::DataEncryptionEncrypt,
            WorkingKeyUsage::DataEncryptionDecrypt => Self::DataEncryptionDecrypt,
            WorkingKeyUsage::DataEncryptionBothWays => Self::DataEncryptionBothWays,
        }
    }
}

/// The algorithm indicator of the derivation data (X9.24-3:2017, 6.3.2, tables 2 and 3; the key
/// type sets the algorithm and length, 6.2.2).
#[must_use]
pub const fn algorithm_indicator(key_type: KeyAlgorithm) -> u16 {
    match key_type {
        KeyAlgorithm::Tdes2 => 0x0000,
        KeyAlgorithm::Tdes3 => 0x0001,
        KeyAlgorithm::Aes128 => 0x0002,
        KeyAlgorithm::Aes192 => 0x0003,
        KeyAlgorithm::Aes256 => 0x0004,
    }
}

/// The key length in bits that the derivation data carries (X9.24-3:2017, 6.3.2, tables 2 and 3).
#[must_use]
pub const fn key_length_bits(key_type: KeyAlgorithm) -> u16 {
    match key_type {
        KeyAlgorithm::Tdes2 | KeyAlgorithm::Aes128 => 128,
        KeyAlgorithm::Tdes3 | KeyAlgorithm::Aes192 => 192,
        KeyAlgorithm::Aes256 => 256,
    }
}

/// The derivation key type that an algorithm indicator names, for AES only (derivation keys are
/// always AES).
pub(super) const fn aes_type_for_indicator(indicator: u8) -> Option<KeyAlgorithm> {
    match indicator {
        0x02 => Some(KeyAlgorithm::Aes128),
        0x03 => Some(KeyAlgorithm::Aes192),
        0x04 => Some(KeyAlgorithm::Aes256),
        _ => None,
    }
}

/// Security strength in bits (NIST SP 800-57 Part 1, table 2): 2TDEA 80, 3TDEA 112, AES its key
/// length. Only the order matters: every TDEA key is weaker than every AES key.
const fn strength_bits(key_type: KeyAlgorithm) -> u16 {
    match key_type {
        KeyAlgorithm::Tdes2 => 80,
        KeyAlgorithm::Tdes3 => 112,
        KeyAlgorithm::Aes128 => 128,
        KeyAlgorithm::Aes192 => 192,
        KeyAlgorithm::Aes256 => 256,
    }
}

/// Checks that `key` can serve as an AES DUKPT derivation key (BDK, initial key or intermediate
/// derivation key): only AES-128, AES-192 and AES-256 keys derive (X9.24-3:2017, 6.3.1).
pub(super) fn check_derivation_key(key: &SecretKey) -> Result<KeyAlgorithm, AesDukptError> {
    let algorithm = key.algorithm();
    if algorithm.is_tdes() {
        return Err(AesDukptError::NotAesDerivationKey(algorithm));
    }
    Ok(algorithm)
}

/// Checks the rule of X9.24-3:2017, 6.1.3: a working key is never stronger than the derivation key
/// it comes from (e.g. an AES-128 BDK derives 2TDEA, 3TDEA and AES-128 keys, not AES-192 or
/// AES-256).
pub(super) fn check_working_key_type(
    derivation: KeyAlgorithm,
    working: KeyAlgorithm,
) -> Result<(), AesDukptError> {
    if strength_bits(working) > strength_bits(derivation) {
        return Err(AesDukptError::WorkingKeyTooStrong {
            derivation,
            working,
        });
    }
    Ok(())
}

/// The 16-byte derivation data block of X9.24-3:2017, 6.3.2 (tables 2 and 3), built as 6.3.3 and
/// Annex A `Create_Derivation_Data` build it.
///
/// Layout: version `01`, key block counter `01`, key usage indicator (2 bytes), algorithm indicator
/// (2 bytes), key length in bits (2 bytes), then either the whole initial key ID (initial key
/// derivation) or the derivation ID followed by the transaction counter (everything else).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DerivationData([u8; BLOCK_LEN]);

impl DerivationData {
    /// Derivation data as Annex A `Create_Derivation_Data(usage, key_type, initial_key_id,
    /// counter)` builds it. For [`KeyUsage::InitialKey`] the last 8 bytes are the whole initial
    /// key ID and `counter` is not used (6.3.2); otherwise they are the derivation ID and the
    /// big-endian counter.
    #[must_use]
    pub fn new(
        usage: KeyUsage,
        key_type: KeyAlgorithm,
        initial_key_id: &InitialKeyId,
        counter: u32,
    ) -> Self {
        let mut block = [0u8; BLOCK_LEN];
        block[0] = DERIVATION_DATA_VERSION;
        block[1] = 1;
        block[2..4].copy_from_slice(&usage.indicator().to_be_bytes());
        block[4..6].copy_from_slice(&algorithm_indicator(key_type).to_be_bytes());
        block[6..8].copy_from_slice(&key_length_bits(key_type).to_be_bytes());
        if usage == KeyUsage::InitialKey {
            block[8..].copy_from_slice(initial_key_id.as_bytes());
        } else {
            block[8..12].copy_from_slice(&initial_key_id.derivation_id());
            block[12..].copy_from_slice(&counter.to_be_bytes());
        }
        Self(block)
    }

    /// Derivation data for the initial key (usage `8001`) of `key_type`.
    #[must_use]
    pub fn initial_key(key_type: KeyAlgorithm, initial_key_id: &InitialKeyId) -> Self {
        Self::new(KeyUsage::InitialKey, key_type, initial_key_id, 0)
    }

    /// The 16 bytes, with key block counter 1 (the first block of any derivation).
    #[must_use]
    pub const fn as_bytes(&self) -> &[u8; BLOCK_LEN] {
        &self.0
    }

    /// Annex A `Derive_Key`: ECB-encrypts the derivation data under `derivation_key` once per
    /// 128 bits of output, the key block counter (byte 1) counting 1, 2; the output is the
    /// leftmost `key_type.key_len()` bytes of `output`.
    pub(super) fn derive_into(
        &self,
        derivation_key: &impl EncryptBlock,
        key_type: KeyAlgorithm,
        output: &mut [u8; 2 * BLOCK_LEN],
    ) {
        let blocks = key_type.key_len().div_ceil(BLOCK_LEN);
        let (chunks, _) = output.as_chunks_mut::<BLOCK_LEN>();
        // Encrypt in place in the caller's (zeroizing) buffer, so no key bytes stay on the stack.
        for (block_counter, block) in (1u8..).zip(chunks.iter_mut().take(blocks)) {
            *block = self.0;
            block[1] = block_counter;
            derivation_key.encrypt(block);
        }
    }

    /// [`DerivationData::derive_into`], returning the derived key as a [`SecretKey`].
    pub(super) fn derive(
        &self,
        derivation_key: &impl EncryptBlock,
        key_type: KeyAlgorithm,
    ) -> SecretKey {
        let mut output = Zeroizing::new([0u8; 2 * BLOCK_LEN]);
        self.derive_into(derivation_key, key_type, &mut output);
        SecretKey::new(key_type, &output[..key_type.key_len()])
            .unwrap_or_else(|_| unreachable!("output is cut to the key type's length"))
    }
}
