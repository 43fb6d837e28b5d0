//! The matching rules of `ReplayCard`, and robustness: random transcripts and random recorded
//! answers never make the parser, the card source or a replay panic.

use emv_replay::{AnswerSource, ReplayCard, Transcript, replay};
use hex_literal::hex;
use proptest::prelude::*;

const TRANSCRIPT: &str = "\
>> 00A4040007A000000003101000
<< 6F009000
>> 00B2011400
<< 7001AA9000
>> 00B2011400
<< 7001BB9000
>> 80CA9F3600
<< 9F360200019000
>> 80CA9F3600
<< 9F360200029000
>> 80AE8000020000
<< 770100 9000
";

fn answer(card: &mut ReplayCard, command: &[u8]) -> Option<Vec<u8>> {
    card.transmit(command).map(|answer| answer.response)
}

#[test]
fn select_is_answered_by_name() {
    let mut card = ReplayCard::new(&Transcript::parse(TRANSCRIPT).unwrap());
    // Another P2 or Le still selects the same name.
    let found = card.transmit(&hex!("00A4040207A0000000031010")).unwrap();
    assert_eq!(found.response, hex!("6F009000"));
    assert!(matches!(
        found.source,
        AnswerSource::Recorded {
            line: 1,
            command_matches: false,
            ..
        }
    ));
    // Read again: the last recording repeats.
    assert_eq!(
        answer(&mut card, &hex!("00A4040007A000000003101000")).unwrap(),
        hex!("6F009000")
    );
    assert_eq!(answer(&mut card, &hex!("00A4040007A000000004101000")), None);
    // The PPSE the transcript lacks: 6A82.
    let ppse = card
        .transmit(&hex!("00A404000E325041592E5359532E444446303100"))
        .unwrap();
    assert_eq!(
        (ppse.response, ppse.source),
        (hex!("6A82").to_vec(), AnswerSource::NoPpse)
    );
}

#[test]
fn read_record_is_answered_by_p1_p2_in_order_then_repeats() {
    let mut card = ReplayCard::new(&Transcript::parse(TRANSCRIPT).unwrap());
    assert_eq!(
        answer(&mut card, &hex!("00B2011400")).unwrap(),
        hex!("7001AA9000")
    );
    assert_eq!(
        answer(&mut card, &hex!("00B2011400")).unwrap(),
        hex!("7001BB9000")
    );
    assert_eq!(
        answer(&mut card, &hex!("00B2011400")).unwrap(),
        hex!("7001BB9000")
    );
    assert_eq!(answer(&mut card, &hex!("00B2021400")), None);
    assert_eq!(answer(&mut card, &hex!("00B2010C00")), None);
}

#[test]
fn other_commands_are_answered_by_ins_once_each() {
    let mut card = ReplayCard::new(&Transcript::parse(TRANSCRIPT).unwrap());
    // GET DATA for another tag still takes the next GET DATA recording: matching is by INS.
    assert_eq!(
        answer(&mut card, &hex!("80CA9F1700")).unwrap(),
        hex!("9F360200019000")
    );
    assert_eq!(
        answer(&mut card, &hex!("80CA9F3600")).unwrap(),
        hex!("9F360200029000")
    );
    assert_eq!(answer(&mut card, &hex!("80CA9F3600")), None);
    assert_eq!(
        answer(&mut card, &hex!("80AE4000020000")).unwrap(),
        hex!("7701009000")
    );
    assert_eq!(answer(&mut card, &hex!("80AE4000020000")), None);
    assert_eq!(answer(&mut card, &hex!("0088000004AABBCCDD00")), None);
}

fn params() -> emv_kernel::TransactionParams {
    crate::card::params(1_000)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn parser_never_panics(text in "[<> #0-9a-fA-FxX\t\n]{0,200}") {
        let _ = Transcript::parse(&text);
    }

    #[test]
    fn replay_of_random_answers_never_panics(
        answers in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 1..6),
    ) {
        // The kernel's usual commands, each answered by random bytes plus a status word.
        let commands = [
            "00A404000E325041592E5359532E444446303100",
            "00A4040007A000000003101000",
            "80A8000002830000",
            "00B2010C00",
            "80AE8000020000",
            "00B2011400",
        ];
        let mut text = String::new();
        for (command, answer) in commands.iter().zip(&answers) {
            text.push_str(&format!(">> {command}\n<< {}9000\n", hex::encode(answer)));
        }
        let transcript = Transcript::parse(&text).unwrap();
        let _ = replay(&transcript, params());
    }
}
