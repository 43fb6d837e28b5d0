//! ANSI X9.24-1:2009 TDES DUKPT (Annex A, "Derived Unique Key Per Transaction").
//!
//! What it owns:
//! - [`Ksn`], the 10-byte Key Serial Number: a 59-bit initial key serial number and a 21-bit
//!   encryption counter (A.1).
//! - The initial key (IPEK) from a double-length BDK ([`derive_ipek`], A.6).
//! - The receiving (host) side: the keys of any transaction from the BDK or the IPEK
//!   ([`derive_transaction_keys`], [`derive_transaction_keys_from_ipek`]; A.3 using the
//!   non-reversible key generation process of A.2), and [`BaseDerivationKey`], a BDK keyed once
//!   for hosts that derive many keys under it.
//! - The working keys of a transaction ([`TransactionKeys`]): the PIN, MAC request/response and
//!   data request/response variants of Table A-1 (A.4.1). The data keys also pass through the
//!   one-way function of Figure A-2, as A.2 "Request PIN Entry 2" step 3 prescribes ("the
//!   resultant key is encrypted using itself as the key"); the bare XOR variant stays available
//!   through [`TransactionKeys::variant_key`] for systems that skip that step.
//! - The originating (terminal) side, [`Originator`]: 21 future key registers, the encryption
//!   counter that skips values with more than 10 "one" bits, exhaustion after counter `1FF800`,
//!   and export/import of its state (A.2).
//!
//! Only double-length (16-byte) TDES keys exist in this scheme; any other key is refused with a
//! typed error. AES DUKPT (X9.24-3) is [`crate::dukpt::aes`].

mod derivation;
mod ksn;
mod originator;

pub use derivation::{
    BaseDerivationKey, KeyVariant, TransactionKeys, derive_ipek, derive_transaction_keys,
    derive_transaction_keys_from_ipek,
};
pub use ksn::{COUNTER_BITS, COUNTER_MASK, KSN_LEN, Ksn, MAX_COUNTER_ONE_BITS};
pub use originator::{FUTURE_KEY_REGISTERS, Originator, STATE_FORMAT_VERSION, STATE_LEN};

use crate::ErrorCode;
use crate::key::KeyAlgorithm;

/// Errors of TDES DUKPT. None carries key material.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TdesDukptError {
    /// A KSN must be exactly 10 bytes.
    #[error("a TDES DUKPT KSN is 10 bytes, got {actual}")]
    KsnWrongLength {
        /// Length given.
        actual: usize,
    },
    /// A counter value does not fit in the KSN's 21 counter bits.
    #[error("counter {counter:#x} does not fit in 21 bits")]
    CounterOutOfRange {
        /// The counter asked for.
        counter: u32,
    },
    /// Counter 0 names the initial key, which is never a transaction key.
    #[error("KSN counter is zero: no transaction uses the initial key")]
    CounterZero,
    /// The counter has more than 10 "one" bits; no originator uses such a counter.
    #[error("KSN counter has {ones} one bits, more than the 10 an originator ever uses")]
    CounterTooManyOneBits {
        /// Number of one bits in the counter.
        ones: u32,
    },
    /// BDK, IPEK and transaction keys are double-length TDES keys.
    #[error("TDES DUKPT needs a double-length TDES key, got {algorithm:?}")]
    KeyNotDoubleLengthTdes {
        /// Algorithm of the key given.
        algorithm: KeyAlgorithm,
    },
    /// The originator has used its last key; the device must be loaded with a new initial key.
    #[error("DUKPT originator exhausted: every transaction counter has been used")]
    Exhausted,
    /// An exported originator state has the wrong length.
    #[error("originator state is {actual} bytes, expected {STATE_LEN}")]
    StateWrongLength {
        /// Length given.
        actual: usize,
    },
    /// An exported originator state has an unknown format version.
    #[error("originator state format version {version} is not supported")]
    StateUnsupportedVersion {
        /// Version byte found.
        version: u8,
    },
    /// The trailing LRC of an exported state does not match its contents.
    #[error("originator state fails its checksum")]
    StateChecksumMismatch,
    /// The counter and register mask of an exported state contradict each other.
    #[error("originator state is inconsistent")]
    StateInconsistent,
    /// A future key register of an exported state fails its LRC check.
    #[error("originator state future key register #{register} is corrupt")]
    StateRegisterCorrupt {
        /// Register number, 1 to 21 as in the standard.
        register: u8,
    },
}

impl ErrorCode for TdesDukptError {
    fn code(&self) -> &'static str {
        match self {
            Self::KsnWrongLength { .. } => "dukpt_tdes_ksn_wrong_length",
            Self::CounterOutOfRange { .. } => "dukpt_tdes_counter_out_of_range",
            Self::CounterZero => "dukpt_tdes_counter_zero",
            Self::CounterTooManyOneBits { .. } => "dukpt_tdes_counter_too_many_one_bits",
            Self::KeyNotDoubleLengthTdes { .. } => "dukpt_tdes_key_not_double_length",
            Self::Exhausted => "dukpt_tdes_exhausted",
            Self::StateWrongLength { .. } => "dukpt_tdes_state_wrong_length",
            Self::StateUnsupportedVersion { .. } => "dukpt_tdes_state_unsupported_version",
            Self::StateChecksumMismatch => "dukpt_tdes_state_checksum_mismatch",
            Self::StateInconsistent => "dukpt_tdes_state_inconsistent",
            Self::StateRegisterCorrupt { .. } => "dukpt_tdes_state_register_corrupt",
        }
    }
}
