//! Virtual contactless EMV test cards for SUNBAY SoftPOS.
//!
//! What it owns: cards that answer command APDUs as real contactless cards do, so the kernel,
//! the terminal, the WebAssembly demo and the server's issuer simulator can all run complete
//! payments without hardware:
//! - the PPSE `2PAY.SYS.DDF01` with directory entries (AID, label, priority, kernel identifier),
//!   SELECT of the application with its FCI and PDOL, GET PROCESSING OPTIONS (formats 1 and 2),
//!   READ RECORD along the AFL, GENERATE AC with CDA, GET DATA, and the status words of
//!   ISO/IEC 7816-4 and EMV Book 3 for wrong commands;
//! - personalisation from a TEST ONLY public key infrastructure ([`keys`]): CA keys that certify
//!   issuer keys, issuer keys that certify per-card ICC keys (EMV 4.4 Book 2 sections 5 and 6),
//!   and issuer master keys from which each card's ICC master key is derived (Book 2 Annex A1.4,
//!   through `payment-crypto`) for its application cryptograms;
//! - named profiles ([`profiles`]) that each exercise one path of the kernel: qVSDC with fDDA,
//!   M/Chip with CDA, online PIN, an expired card, a cloned card whose signature fails, a card
//!   without a supported AID, a card that answers malformed data, and a two-application card
//!   whose first application no kernel supports.
//! - the reader configuration the cards are personalised against ([`reader_config`]), which
//!   every test terminal (kernel, issuer simulator, server, load generator) gives the kernel.
//!
//! ```
//! use emv_cards::Card;
//!
//! let mut card = Card::profile("visa-fdda").expect("known profile");
//! let response = card.transmit(&emv_kernel::apdu::Command::select_ppse().to_bytes());
//! assert_eq!(response[response.len() - 2..], [0x90, 0x00]);
//! ```
//!
//! What it deliberately does not do: I/O, clocks, randomness. Everything a card "draws" (ICC
//! dynamic numbers, its own unpredictable number) is derived from its profile, its ATC and the
//! terminal's data, so a session replays identically: the kernel's native and WebAssembly
//! conformance runs can compare transcripts byte for byte. TLV and APDU coding come from
//! `emv-kernel` and cryptograms from `payment-crypto`; nothing is re-implemented here except the
//! raw RSA signing a card does.
//!
//! # Security
//! Every key in this crate is TEST ONLY and published in this repository: the CA keys must never
//! be trusted by a production terminal, and the issuer master keys must never reach a production
//! issuer host. The cards carry test PANs from the payment systems' test ranges and test PINs.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

mod card;
mod cert;
pub mod cryptogram;
pub mod keys;
mod profile;
mod reader;
mod rsa;
mod test_keys;
pub mod transcript;

pub use card::{Application, Card, ProfileInfo, profiles};
pub use reader::reader_config;
