//! Property tests: nothing a reader sends makes a card panic, and every answer ends in a status
//! word.

use emv_cards::{Card, profiles};
use proptest::prelude::*;

use crate::{Terminal, run_session};

/// A command with a known class and instruction and random parameters and body.
fn plausible_command() -> impl Strategy<Value = Vec<u8>> {
    (
        prop::sample::select(vec![0x00u8, 0x80, 0x84, 0xFF]),
        prop::sample::select(vec![0xA4u8, 0xB2, 0xA8, 0xAE, 0xCA, 0x88, 0x84, 0xC0, 0x20]),
        any::<u8>(),
        any::<u8>(),
        prop::collection::vec(any::<u8>(), 0..260),
    )
        .prop_map(|(cla, ins, p1, p2, body)| {
            let mut command = vec![cla, ins, p1, p2];
            command.extend_from_slice(&body);
            command
        })
}

fn check_answer(response: &[u8]) {
    assert!(response.len() >= 2, "an answer always has a status word");
}

proptest! {
    #[test]
    fn random_bytes_never_panic(
        profile_idx in 0usize..8,
        commands in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 1..8),
    ) {
        let name = profiles()[profile_idx].name;
        let mut card = Card::profile(name).unwrap();
        for command in commands {
            check_answer(&card.transmit(&command));
        }
    }

    #[test]
    fn random_commands_mid_transaction_never_panic(
        profile_idx in 0usize..8,
        commands in prop::collection::vec(plausible_command(), 1..8),
    ) {
        let name = profiles()[profile_idx].name;
        let mut card = Card::profile(name).unwrap();
        if name != "malformed" {
            // Start a transaction, then select again so GPO and GENERATE AC are reachable.
            run_session(&mut card, &Terminal::default());
            card.transmit(&emv_kernel::apdu::Command::select_by_name(
                card.aid(),
                emv_kernel::apdu::Occurrence::First,
            ).unwrap().to_bytes());
        }
        for command in commands {
            check_answer(&card.transmit(&command));
        }
    }
}
