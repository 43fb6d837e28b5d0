//! Transcript replay for the SUNBAY emv-kernel: a recorded contactless card session answers the
//! kernel's commands, so the kernel can be checked against real cards without the card.
//!
//! What it owns:
//! - [`transcript`]: the text format (`>> C-APDU`, `<< R-APDU`, `#` comments) and its parser, with
//!   typed errors that name the line, and the writer used to record sessions.
//! - [`card`]: [`ReplayCard`], a card source that answers SELECT by the selected name, READ RECORD
//!   by P1/P2 and every other command by its INS in recorded order.
//! - [`replay`](mod@replay): [`replay()`] drives an [`emv_kernel::Transaction`] against a [`ReplayCard`] and returns
//!   the outcome with the exchanged APDUs; a command the transcript cannot answer ends the run
//!   with [`ReplayError::MissingAnswer`] naming it.
//! - [`decode`]: the card data a run read (AID, label, masked PAN, expiry, AIP, AFL, CVM list,
//!   CTQ, cryptogram type), decoded from the responses for display.
//! - [`ca_keys`]: CA public keys in the common `RID index modulus exponent` text form, into the
//!   kernel's [`emv_kernel::oda::CaKeyTable`], and the bundled TEST and PRODUCTION sets.
//!
//! What it deliberately does not do: talk to a reader, or make up answers. The only answer it
//! synthesises is `6A82` (file not found) to the SELECT of the PPSE when the recording has none,
//! which is what a card without a PPSE returns.
//!
//! # Security
//! Transcripts of real cards contain the PAN and Track 2 in clear: treat them as cardholder data.
//! Nothing this crate formats for display shows them unmasked; [`decode::CardData`] keeps only the
//! masked PAN, and the `Debug` output of the kernel's outcome masks it too.

#![forbid(unsafe_code)]

pub mod ca_keys;
pub mod card;
pub mod decode;
pub mod replay;
pub mod transcript;

pub use ca_keys::{CaKeyError, CaSet};
pub use card::{Answer, AnswerSource, ReplayCard};
pub use decode::CardData;
pub use replay::{ReplayError, ReplayRun, ReplayStep, command_name, replay};
pub use transcript::{Exchange, ParseError, ParseErrorKind, Transcript};
