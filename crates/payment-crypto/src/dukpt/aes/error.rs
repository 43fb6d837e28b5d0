//! The error type of AES DUKPT.

use crate::ErrorCode;
use crate::key::KeyAlgorithm;

/// Every way an AES DUKPT operation can fail. Never carries key bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AesDukptError {
    /// A KSN must be exactly 12 bytes (X9.24-3:2017, 6.1).
    #[error("an AES DUKPT KSN is 12 bytes, got {0}")]
    KsnLength(usize),
    /// A KSN in hex must be exactly 24 hex digits.
    #[error("an AES DUKPT KSN is 24 hex digits")]
    KsnHex,
    /// An initial key ID must be exactly 8 bytes (X9.24-3:2017, 6.1).
    #[error("an initial key ID is 8 bytes, got {0}")]
    InitialKeyIdLength(usize),
    /// Transaction counter 0 never names a transaction: the first transaction uses counter 1.
    #[error("transaction counter 0 is not a transaction")]
    ZeroCounter,
    /// A transaction counter with more than 16 one-bits is never used (X9.24-3:2017, 6.1).
    #[error("transaction counter has {0} one-bits; at most 16 are allowed")]
    TooManyOneBits(u32),
    /// BDKs, initial keys and intermediate derivation keys are AES keys (X9.24-3:2017, 6.3.1).
    #[error("an AES DUKPT derivation key must be AES, got {0:?}")]
    NotAesDerivationKey(KeyAlgorithm),
    /// A working key may not be stronger than the key it derives from (X9.24-3:2017, 6.1.3).
    #[error("a {working:?} working key cannot be derived from a {derivation:?} derivation key")]
    WorkingKeyTooStrong {
        /// The derivation (BDK / initial key) type.
        derivation: KeyAlgorithm,
        /// The working key type asked for.
        working: KeyAlgorithm,
    },
    /// The originator has used its last transaction counter and needs a new initial key.
    #[error("the transaction counter is exhausted; load a new initial key")]
    CounterExhausted,
    /// Saved originator state has the wrong length.
    #[error("originator state is {actual} bytes, expected {expected}")]
    StateLength {
        /// The length the header implies.
        expected: usize,
        /// The length given.
        actual: usize,
    },
    /// Saved originator state has an unknown format version.
    #[error("originator state format version {0} is not supported")]
    StateVersion(u8),
    /// Saved originator state names an unknown derivation key algorithm.
    #[error("originator state names unknown derivation key algorithm {0}")]
    StateKeyType(u8),
    /// Saved originator state has a counter no originator can hold (more than 16 one-bits).
    #[error("originator state has an invalid transaction counter")]
    StateCounter,
    /// Saved originator state's register map does not match its counter.
    #[error("originator state's register map does not match its counter")]
    StateRegisters,
    /// Saved originator state fails its checksum: its bytes are corrupt.
    #[error("originator state fails its checksum")]
    StateChecksum,
}

impl ErrorCode for AesDukptError {
    fn code(&self) -> &'static str {
        match self {
            Self::KsnLength(_) => "dukpt_aes_ksn_length",
            Self::KsnHex => "dukpt_aes_ksn_hex",
            Self::InitialKeyIdLength(_) => "dukpt_aes_initial_key_id_length",
            Self::ZeroCounter => "dukpt_aes_zero_counter",
            Self::TooManyOneBits(_) => "dukpt_aes_counter_too_many_one_bits",
            Self::NotAesDerivationKey(_) => "dukpt_aes_not_aes_derivation_key",
            Self::WorkingKeyTooStrong { .. } => "dukpt_aes_working_key_too_strong",
            Self::CounterExhausted => "dukpt_counter_exhausted",
            Self::StateLength { .. } => "dukpt_aes_state_length",
            Self::StateVersion(_) => "dukpt_aes_state_version",
            Self::StateKeyType(_) => "dukpt_aes_state_key_type",
            Self::StateCounter => "dukpt_aes_state_counter",
            Self::StateRegisters => "dukpt_aes_state_registers",
            Self::StateChecksum => "dukpt_aes_state_checksum",
        }
    }
}
