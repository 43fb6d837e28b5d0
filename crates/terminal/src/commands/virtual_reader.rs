//! `virtual-reader`: puts a virtual test card in the field of pcscd's vpcd reader (see
//! [`crate::virtual_reader`]), so `readers` and `pay --reader` can be tried through the real PC/SC
//! stack without a card or a reader. It runs until pcscd goes away or the process is stopped,
//! which takes the card out of the field.

use std::net::SocketAddr;
use std::time::Duration;

use clap::Args;
use serde::Serialize;

use crate::CliError;
use crate::commands::output::{Progress, Reply, render};
use crate::error::EXIT_CARD;
use crate::payment::card::virtual_cards;
use crate::virtual_reader::{self, ContactlessType, Ending, VirtualCard};

/// Options of `virtual-reader`.
#[derive(Debug, Args)]
pub struct VirtualReaderArgs {
    /// The virtual card: visa-fdda, mc-cda, visa-online-pin, expired, bad-signature,
    /// no-supported-aid, malformed, multi-app.
    #[arg(long)]
    pub card: String,
    /// vpcd's address (the first slot of Debian's /etc/reader.conf.d/vpcd listens on port 35963).
    #[arg(long, default_value_t = SocketAddr::from(([127, 0, 0, 1], virtual_reader::VPCD_PORT)))]
    pub vpcd: SocketAddr,
    /// The ISO/IEC 14443-4 type the card's ATR announces.
    #[arg(long = "type", value_enum, default_value = "a")]
    pub kind: ContactlessType,
    /// Take the card out of the field once it has answered this many commands (a card pulled
    /// away during the transaction).
    #[arg(long, value_name = "N")]
    pub remove_after: Option<u64>,
    /// How long to keep trying to reach vpcd, in seconds.
    #[arg(long, default_value_t = 10, value_name = "SECS")]
    pub connect_timeout: u64,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Serialize)]
struct VirtualReaderView {
    card: String,
    vpcd: SocketAddr,
    atr: String,
    ending: Ending,
    commands: u64,
}

/// Runs `virtual-reader`.
///
/// # Errors
/// `unknown_card` (2); `vpcd_unreachable`, `vpcd_protocol`, `vpcd_io` (8).
pub fn run(args: &VirtualReaderArgs) -> Result<Reply, CliError> {
    let card = emv_cards::Card::profile(&args.card).ok_or_else(|| {
        CliError::bad_input(
            "unknown_card",
            format!(
                "unknown card profile {:?} (known: {})",
                args.card,
                virtual_cards().join(", ")
            ),
        )
    })?;
    let atr = virtual_reader::contactless_atr(args.kind);
    let bridge_error =
        |e: virtual_reader::VirtualReaderError| CliError::new(e.code(), e.to_string(), EXIT_CARD);
    let stream = virtual_reader::connect(args.vpcd, Duration::from_secs(args.connect_timeout))
        .map_err(bridge_error)?;
    let mut progress = Progress::new(args.json);
    progress.step(&format!(
        "{} is in the field of vpcd {} (ATR {}); stop with Ctrl-C to take it away",
        args.card,
        args.vpcd,
        hex::encode_upper(&atr)
    ));
    let summary = VirtualCard::new(card, atr.clone(), args.remove_after)
        .serve(stream)
        .map_err(bridge_error)?;
    progress.finish();
    let view = VirtualReaderView {
        card: args.card.clone(),
        vpcd: args.vpcd,
        atr: hex::encode_upper(&atr),
        ending: summary.ending,
        commands: summary.commands,
    };
    render(&view, args.json, |view| match view.ending {
        Ending::ReaderClosed => format!(
            "vpcd closed the connection; {} answered {} commands",
            view.card, view.commands
        ),
        Ending::Removed => format!(
            "{} left the field after {} commands",
            view.card, view.commands
        ),
    })
    .map(Reply::ok)
}
