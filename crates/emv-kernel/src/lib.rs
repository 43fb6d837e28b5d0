//! EMV contactless level 2 kernel for SUNBAY SoftPOS.
//!
//! What it owns:
//! - BER-TLV ([`tlv`]), the data element dictionary ([`tags`]), Data Object Lists ([`dol`]) and
//!   APDUs ([`apdu`]): EMV 4.4 Book 3 Annex A and B, section 5.4, section 6.
//! - Offline data authentication ([`oda`]): CA key table, issuer and ICC key recovery, SDA, DDA,
//!   fDDA and CDA (EMV 4.4 Book 2 sections 5 and 6, Book C-3), with the AFL ([`afl`]) and dates
//!   ([`date`]) they need. RSA recovery uses `crypto-bigint`, SHA-1 RustCrypto's `sha1`.
//! - Cardholder verification ([`cvm`]: CVM List processing, Kernel 2 and Kernel 3 CVM selection),
//!   the TVR and TSI ([`tvr`]) and the outcome with its reason and authorisation data
//!   ([`outcome`]).
//! - Entry Point ([`entry_point`], EMV Contactless Book B), the Kernel 2 and Kernel 3 flows
//!   ([`kernel::c2`], [`kernel::c3`]) and the [`Transaction`] state machine that drives them.
//!
//! What it deliberately does not do: I/O. The kernel never talks to a card, reads a clock or draws
//! random numbers. The host creates a transaction with the amount, currency, date, unpredictable
//! number and terminal configuration, sends the command APDUs the kernel returns, and feeds back the
//! card's responses, until the kernel returns an outcome. It therefore builds unchanged for
//! `wasm32-unknown-unknown` and embedded targets.
//!
//! Out of scope: magnetic-stripe modes, Kernel 2 relay resistance, Data Storage and the second
//! GENERATE AC, Kernels 1 and 4 to 7, issuer scripts, exception files.
//!
//! # Robustness
//! Card data is hostile input: every parser returns a typed error and nothing here panics on data
//! from a card. Errors carry offsets and tags, never card data. A transaction sends at most
//! [`transaction::MAX_COMMANDS`] commands.
//!
//! # Security
//! The kernel holds no secret: it only performs public-key operations. The outcome carries the
//! clear PAN and Track 2 for the host to encrypt under its DUKPT data key; `Debug` output of the
//! outcome masks the PAN and hides the other cardholder data.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod afl;
pub mod apdu;
pub mod cvm;
pub mod date;
pub mod dol;
pub mod entry_point;
pub mod kernel;
pub mod oda;
pub mod outcome;
mod rsa;
pub mod tags;
pub mod tlv;
pub mod transaction;
pub mod tvr;

pub use date::Date;
pub use kernel::{TerminalConfig, TransactionParams};
pub use outcome::{Outcome, OutcomeKind};
pub use tlv::Tag;
pub use transaction::{Step, Transaction};

/// A stable, machine-readable code for an error, e.g. `"tlv_truncated_value"`.
///
/// Every error type of this crate implements it, so adapters (WASM ABI, host, server) can map errors
/// without matching on their text.
pub trait ErrorCode {
    /// The code: lowercase snake case, never changed once published.
    fn code(&self) -> &'static str;
}
