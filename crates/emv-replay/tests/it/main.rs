//! Integration tests of `emv-replay`: the transcript parser, the CA key files, transcripts
//! generated from the kernel's scripted test card (they must replay to the identical outcome and
//! C-APDU sequence), and transcripts written from public logs of real cards.

// The scripted card and its keys are the kernel's own test fixtures, shared rather than copied so
// that both crates test against the same card. Not every helper is used here.
#[allow(dead_code, unreachable_pub)]
#[path = "../../../emv-kernel/tests/it/card.rs"]
mod card;
#[allow(dead_code, unreachable_pub)]
#[path = "../../../emv-kernel/tests/it/oda_keys.rs"]
mod oda_keys;

mod ca_keys;
mod card_source;
mod generated;
mod parser;
mod real_cards;

/// The directory of the transcript files.
pub(crate) fn transcripts_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/transcripts")
}
