//! Payment cryptography for SUNBAY SoftPOS.
//!
//! What it owns:
//! - DUKPT key management: TDES DUKPT (ANSI X9.24-1:2009, [`dukpt::tdes`]) and AES DUKPT
//!   (ANSI X9.24-3:2017, [`dukpt::aes`]), host (receiving) and terminal (originating) sides.
//! - PIN blocks (ISO 9564-1 formats 0, 1, 3 and 4) and PIN translation that never hands the clear PIN
//!   back to its caller ([`pinblock`]).
//! - TR-31 / ANSI X9.143 key blocks, versions B and D ([`tr31`]).
//! - Key check values ([`kcv`]), ISO/IEC 9797-1 MACs and AES-CMAC ([`mac`]), data encryption under
//!   DUKPT data keys ([`data`]), and EMV issuer cryptography: ICC master keys, session keys,
//!   ARQC and ARPC ([`emv`]).
//!
//! What it deliberately does not do: I/O, clocks, global state, or drawing randomness.
//! Whatever needs random bytes (PIN block fill, TR-31 padding) takes a [`RandomSource`] from the
//! caller, so the crate is deterministic under test and runs unchanged on `wasm32-unknown-unknown`.
//! Block ciphers and CMAC come from RustCrypto (`des`, `aes`, `cmac`); nothing here hand-rolls a
//! cipher.
//!
//! # Security
//! Key material lives in [`SecretKey`], which zeroizes on drop, prints redacted, and compares in
//! constant time.
//! Errors never carry key, PIN or PAN bytes.
//! Every parser returns a typed error for malformed input and never panics on input data.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod data;
pub mod dukpt;
pub mod emv;
pub mod kcv;
pub mod key;
pub mod mac;
pub mod pinblock;
mod primitives;
pub mod random;
pub mod tr31;

pub use key::{KeyAlgorithm, KeyError, SecretKey};
pub use random::RandomSource;

/// A stable, machine-readable code for an error, e.g. `"dukpt_counter_exhausted"`.
///
/// Every error type of this crate implements it, so adapters (HTTP, CLI) can map errors without
/// matching on their text.
pub trait ErrorCode {
    /// The code: lowercase snake case, never changed once published.
    fn code(&self) -> &'static str;
}
