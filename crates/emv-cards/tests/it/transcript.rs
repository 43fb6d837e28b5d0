//! Transcripts of virtual card sessions, for the kernel's replay mode.

use emv_cards::Card;
use emv_cards::transcript::RecordingCard;
use emv_kernel::apdu::Command;

#[test]
fn records_commands_and_answers_as_text() {
    let mut card = RecordingCard::new(Card::profile("visa-fdda").unwrap());
    card.comment("PPSE\nthen nothing");
    let answer = card.transmit(&Command::select_ppse().to_bytes());
    let (_, transcript) = card.finish();
    let lines: Vec<&str> = transcript.lines().collect();
    assert_eq!(lines[0], "# virtual card profile visa-fdda");
    assert_eq!(lines[1], "# PPSE then nothing");
    assert_eq!(lines[2], ">> 00A404000E325041592E5359532E444446303100");
    assert_eq!(lines[3], format!("<< {}", hex::encode_upper(&answer)));
    assert_eq!(lines.len(), 4);
}
