//! SUNBAY SoftPOS terminal core and the `softpos-terminal` command-line tool.
//!
//! Today it holds the first command of the tool, `softpos-terminal kernel replay FILE`, which runs
//! the EMV kernel against a recorded card session (see the `emv-replay` crate) with the
//! transaction parameters the recording used, and prints the outcome, the offline data
//! authentication result and the card data read.
//!
//! The terminal core of issue 7, the library an Android shell would link: [`store`] (the
//! secure store, a TEE stand-in: device key, DUKPT states, configuration, sealed at rest),
//! [`dukpt`] (the originator; counters persisted before keys are used), [`health`] (self
//! checks and injectable Android signals), [`attestation`] (software evidence), [`client`] (the
//! signed back-end client: registration, key injection, health, tokens, sales, refunds,
//! history, kernel updates) and [`payment`] (kernel → PIN → encryption → authorisation, with
//! timings). It reaches the server over HTTP only.
//!
//! Layout: [`cli`] parses arguments and turns errors into one-line messages and exit codes;
//! [`commands`] holds one module per command group; [`money`] and [`params`] read amounts,
//! currencies, dates and the other transaction parameters.
//!
//! # Security
//! Replayed transcripts of real cards hold the PAN and Track 2 in clear. No output of this crate
//! shows them: the PAN is always masked to its first six and last four digits, Track 2 and the
//! response data are never printed.

#![forbid(unsafe_code)]

pub mod attestation;
pub mod cli;
pub mod client;
pub mod commands;
pub mod dukpt;
pub mod error;
pub mod fleet;
pub mod health;
pub mod money;
pub mod params;
pub mod payment;
pub mod store;
pub mod virtual_reader;

pub use error::CliError;
