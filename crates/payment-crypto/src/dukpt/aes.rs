//! ANSI X9.24-3:2017 AES DUKPT: host (receiving) and terminal (originating) sides.
//!
//! What it owns:
//! - The 12-byte [`Ksn`] (8-byte [`InitialKeyId`] + 32-bit transaction counter, section 6.1) and
//!   the counter rule: never 0, never more than 16 one-bits ([`validate_counter`]).
//! - The 16-byte [`DerivationData`] block (6.3.2, tables 2 and 3; built as in 6.3.3) with every [`KeyUsage`] and algorithm indicator
//!   the standard defines, and the key derivation function of Annex A (`Derive_Key`: AES-ECB of
//!   the derivation data under the derivation key, one block per 128 output bits; 6.3.1).
//! - Host side ([`derive_initial_key`], [`derive_intermediate_key`], [`derive_working_key`],
//!   [`derive_working_key_from_initial_key`], and [`HostBdk`] for a BDK prepared once): Annex A
//!   `Derive_Initial_Key` and `Host_Derive_Working_Key`.
//! - Terminal side ([`Originator`]): Annex A `Load_Initial_Key`, `Generate_Working_Keys`,
//!   `Update_State_for_next_Transaction`, with 32 intermediate derivation key registers, counters
//!   with more than 16 one-bits skipped, and exhaustion after counter `FFFF0000`.
//!
//! Derivation keys (BDK, initial key, intermediate derivation keys) are AES-128, AES-192 or
//! AES-256 (6.3.1). Working keys may be 2TDEA, 3TDEA or AES of any size, but never stronger than
//! the derivation key (6.1.3): an AES-128 BDK cannot yield AES-192 or AES-256 working keys.
//!
//! What it does not do: choose the BDK from the BDK ID, or use the working keys (PIN blocks, MACs
//! and data encryption live in their own modules).
//!
//! # Security
//! Every key, intermediate ones included, is a zeroizing [`SecretKey`](crate::SecretKey); the
//! originator's registers are erased the moment a transaction no longer needs them.

mod cipher;
mod derivation;
mod error;
mod host;
mod ksn;
mod originator;

pub use derivation::{
    DerivationData, KeyUsage, WorkingKeyUsage, algorithm_indicator, key_length_bits,
};
pub use error::AesDukptError;
pub use host::{
    HostBdk, derive_initial_key, derive_intermediate_key, derive_working_key,
    derive_working_key_from_initial_key,
};
pub use ksn::{InitialKeyId, Ksn, MAX_COUNTER_ONE_BITS, validate_counter};
pub use originator::{Originator, OriginatorState, REGISTER_COUNT};
