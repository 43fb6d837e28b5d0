//! Wrong commands get the status words of ISO/IEC 7816-4 section 5.6 and EMV Book 3 6.5.

use emv_cards::Card;
use emv_kernel::apdu::{Command, CryptogramType, Occurrence};
use emv_kernel::dol::Dol;
use emv_kernel::tlv::{self, Tag};

use crate::{Terminal, send, send_ok};

/// Where the card is when the command arrives.
#[derive(Debug, Clone, Copy)]
enum State {
    Fresh,
    PpseSelected,
    Selected,
    AfterGpo,
    AfterGenerateAc,
}

fn card_in(name: &str, state: State) -> Card {
    let mut card = Card::profile(name).unwrap();
    if matches!(state, State::Fresh) {
        return card;
    }
    send_ok(&mut card, &Command::select_ppse());
    if matches!(state, State::PpseSelected) {
        return card;
    }
    let aid = card.aid();
    let fci = send_ok(
        &mut card,
        &Command::select_by_name(aid, Occurrence::First).unwrap(),
    );
    if matches!(state, State::Selected) {
        return card;
    }
    let pdol = tlv::find_nested(&fci, Tag::Pdol)
        .unwrap()
        .map(|pdol| Dol::parse(pdol.value).unwrap())
        .unwrap_or_default();
    let data = Terminal::default().data();
    send_ok(
        &mut card,
        &Command::get_processing_options(&pdol.build(&data)).unwrap(),
    );
    if matches!(state, State::AfterGpo) {
        return card;
    }
    send_ok(
        &mut card,
        &Command::generate_ac(CryptogramType::Arqc, false, &mc_cdol1_data()).unwrap(),
    );
    card
}

/// CDOL1 data of the M/Chip-like cards (33 bytes).
fn mc_cdol1_data() -> Vec<u8> {
    let cdol1 =
        Dol::parse(&hex::decode("9F02069F03069F1A0295055F2A029A039C019F37049F35019F3403").unwrap())
            .unwrap();
    cdol1.build(&Terminal::default().data())
}

fn check(name: &str, state: State, command: &str, expected: u16) {
    let mut card = card_in(name, state);
    let (data, sw) = send(&mut card, &hex::decode(command).unwrap());
    assert_eq!(
        sw, expected,
        "{name} in {state:?} answered {command} with {sw:04X}"
    );
    if expected != 0x9000 {
        assert!(data.is_empty(), "error status words carry no data");
    }
}

#[test]
fn class_and_instruction() {
    // Unknown instruction: 6D00. Unknown class: 6E00. Right INS with the wrong class: 6E00.
    check("visa-fdda", State::Selected, "00100000", 0x6D00);
    check("visa-fdda", State::Selected, "00880000040102030400", 0x6D00);
    check("visa-fdda", State::Selected, "84B2010C00", 0x6E00);
    check("visa-fdda", State::Selected, "80B2010C00", 0x6E00);
    check("visa-fdda", State::Selected, "00A8000002830000", 0x6E00);
}

#[test]
fn malformed_command_apdus() {
    // Shorter than a header, and an Lc that does not match the body: 6700.
    check("visa-fdda", State::Fresh, "00A404", 0x6700);
    check("visa-fdda", State::Fresh, "00A404000E325041592E", 0x6700);
    check("visa-fdda", State::Fresh, "00A4040000", 0x6700);
}

#[test]
fn select() {
    // Unknown AID: 6A82; P1 other than "by name": 6A86; "next occurrence" of the only one: 6A82.
    check(
        "visa-fdda",
        State::Fresh,
        "00A4040007A000000004101000",
        0x6A82,
    );
    check(
        "visa-fdda",
        State::Fresh,
        "00A4000007A000000003101000",
        0x6A86,
    );
    check(
        "visa-fdda",
        State::Fresh,
        "00A4040207A000000003101000",
        0x6A82,
    );
    check(
        "no-supported-aid",
        State::Fresh,
        "00A4040007A000000003101000",
        0x6A82,
    );
    // Partial name (the RID and PIX start) selects the application.
    check("visa-fdda", State::Fresh, "00A4040005A00000000300", 0x9000);
    // Le shorter than the FCI: 6Cxx with the FCI length (ISO/IEC 7816-4 5.3.3); resending with
    // that Le gets the FCI.
    let mut card = Card::profile("visa-fdda").unwrap();
    let (_, sw) = send(&mut card, &Command::select_ppse().with_le(5).to_bytes());
    assert_eq!(sw & 0xFF00, 0x6C00);
    let exact = (sw & 0xFF) as u8;
    let (data, sw) = send(&mut card, &Command::select_ppse().with_le(exact).to_bytes());
    assert_eq!((data.len(), sw), (usize::from(exact), 0x9000));
}

#[test]
fn read_record() {
    check("visa-fdda", State::Fresh, "00B2010C00", 0x6986);
    check("visa-fdda", State::PpseSelected, "00B2010C00", 0x6A83);
    check("visa-fdda", State::Selected, "00B2012C00", 0x6A83);
    check("visa-fdda", State::Selected, "00B2090C00", 0x6A83);
    check("visa-fdda", State::Selected, "00B2000C00", 0x6A83);
    check("visa-fdda", State::Selected, "00B2010800", 0x6A86);
    check("visa-fdda", State::Selected, "00B2010C00", 0x9000);
}

#[test]
fn get_processing_options() {
    // Before an application is selected, or a second time: 6985.
    check("visa-fdda", State::Fresh, "80A8000002830000", 0x6985);
    check("visa-fdda", State::PpseSelected, "80A8000002830000", 0x6985);
    check("mc-cda", State::AfterGpo, "80A80000058303084022", 0x6985);
    // PDOL data of the wrong length, or not in an 83 template: 6700.
    check("visa-fdda", State::Selected, "80A8000002830000", 0x6700);
    check("mc-cda", State::Selected, "80A80000048302084000", 0x6700);
    check("mc-cda", State::Selected, "80A80000058403084022", 0x6700);
    check("mc-cda", State::Selected, "80A8010005830308402200", 0x6A86);
    check("mc-cda", State::Selected, "80A8000005830308402200", 0x9000);
    // A reader without qVSDC (TTQ byte 1 b6 clear) cannot run this card contactless: 6985.
    let mut card = card_in("visa-fdda", State::Selected);
    let data = Terminal {
        ttq: [0x80, 0x00, 0x00, 0x00],
        ..Terminal::default()
    }
    .data();
    let pdol =
        Dol::parse(&hex::decode("9F66049F02069F03069F1A0295055F2A029A039C019F3704").unwrap())
            .unwrap();
    let (_, sw) = send(
        &mut card,
        &Command::get_processing_options(&pdol.build(&data))
            .unwrap()
            .to_bytes(),
    );
    assert_eq!(sw, 0x6985);
}

#[test]
fn generate_ac() {
    let gac = |p1: u8, data: &[u8]| {
        let mut command = vec![0x80, 0xAE, p1, 0x00, data.len() as u8];
        command.extend_from_slice(data);
        command.push(0x00);
        hex::encode(command)
    };
    let good = mc_cdol1_data();
    // Before GPO, after the first GENERATE AC, and on a qVSDC card: 6985.
    check("mc-cda", State::Selected, &gac(0x80, &good), 0x6985);
    check("mc-cda", State::AfterGenerateAc, &gac(0x80, &good), 0x6985);
    check("visa-fdda", State::AfterGpo, &gac(0x80, &good), 0x6985);
    // CDOL1 data of the wrong length: 6700. Reserved cryptogram type 11: 6A86.
    check("mc-cda", State::AfterGpo, &gac(0x80, &good[1..]), 0x6700);
    check("mc-cda", State::AfterGpo, &gac(0xC0, &good), 0x6A86);
    check("mc-cda", State::AfterGpo, &gac(0x90, &good), 0x9000);
}

#[test]
fn get_data() {
    check("mc-cda", State::Fresh, "80CA9F3600", 0x6985);
    check("mc-cda", State::Selected, "80CA9F3600", 0x9000);
    check("mc-cda", State::Selected, "80CA9F1700", 0x9000);
    check("mc-cda", State::Selected, "80CA9F4F00", 0x6A88);
    check("mc-cda", State::Selected, "00CA9F3600", 0x6E00);
}

#[test]
fn selecting_again_ends_the_transaction() {
    let mut card = card_in("mc-cda", State::AfterGpo);
    let aid = card.aid();
    send_ok(
        &mut card,
        &Command::select_by_name(aid, Occurrence::First).unwrap(),
    );
    let (_, sw) = send(
        &mut card,
        &Command::generate_ac(CryptogramType::Arqc, true, &mc_cdol1_data())
            .unwrap()
            .to_bytes(),
    );
    assert_eq!(sw, 0x6985);
}

#[test]
fn a_failed_select_keeps_the_current_application() {
    let mut card = card_in("visa-fdda", State::Selected);
    let (_, sw) = send(
        &mut card,
        &hex::decode("00A4040007A000000004101000").unwrap(),
    );
    assert_eq!(sw, 0x6A82);
    let (_, sw) = send(&mut card, &hex::decode("00B2010C00").unwrap());
    assert_eq!(sw, 0x9000);
}
