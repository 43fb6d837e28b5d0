//! What the virtual cards cost a conformance run: personalising a card (two certificate
//! signatures) and answering one whole transaction (one dynamic signature for the ODA cards).

use criterion::{Criterion, criterion_group, criterion_main};
use emv_cards::Card;
use emv_kernel::apdu::{Command, CryptogramType, Occurrence};
use emv_kernel::dol::Dol;
use emv_kernel::tlv::{self, Tag};
use std::collections::BTreeMap;
use std::hint::black_box;

fn terminal_data() -> BTreeMap<Tag, Vec<u8>> {
    BTreeMap::from([
        (
            Tag::TerminalTransactionQualifiers,
            vec![0x37, 0x00, 0x40, 0x00],
        ),
        (Tag::AmountAuthorised, vec![0, 0, 0, 0, 0x50, 0x00]),
        (Tag::TerminalCountryCode, vec![0x08, 0x40]),
        (Tag::TransactionCurrencyCode, vec![0x08, 0x40]),
        (Tag::TransactionDate, vec![0x26, 0x11, 0x26]),
        (Tag::UnpredictableNumber, vec![0x12, 0x34, 0x56, 0x78]),
        (Tag::TerminalType, vec![0x22]),
    ])
}

/// PPSE, SELECT, GPO, every record, GENERATE AC with CDA where the card has a CDOL1.
fn transaction(card: &mut Card, data: &BTreeMap<Tag, Vec<u8>>) {
    let body = |response: Vec<u8>| response[..response.len() - 2].to_vec();
    card.transmit(&Command::select_ppse().to_bytes());
    let aid = card.aid();
    let fci = body(
        card.transmit(
            &Command::select_by_name(aid, Occurrence::First)
                .unwrap()
                .to_bytes(),
        ),
    );
    let pdol = tlv::find_nested(&fci, Tag::Pdol)
        .unwrap()
        .map(|pdol| Dol::parse(pdol.value).unwrap())
        .unwrap_or_default();
    let gpo = body(
        card.transmit(
            &Command::get_processing_options(&pdol.build(data))
                .unwrap()
                .to_bytes(),
        ),
    );
    let afl = match tlv::find_nested(&gpo, Tag::ApplicationFileLocator).unwrap() {
        Some(afl) => afl.value.to_vec(),
        None => tlv::parse_single(&gpo).unwrap().value[2..].to_vec(),
    };
    let mut cdol1 = None;
    for entry in afl.chunks(4) {
        for number in entry[1]..=entry[2] {
            let record = body(
                card.transmit(
                    &Command::read_record(entry[0] >> 3, number)
                        .unwrap()
                        .to_bytes(),
                ),
            );
            if let Some(found) = tlv::find_nested(&record, Tag::Cdol1).unwrap() {
                cdol1 = Some(Dol::parse(found.value).unwrap());
            }
        }
    }
    if let Some(cdol1) = cdol1 {
        black_box(
            card.transmit(
                &Command::generate_ac(CryptogramType::Arqc, true, &cdol1.build(data))
                    .unwrap()
                    .to_bytes(),
            ),
        );
    }
}

fn bench(c: &mut Criterion) {
    let data = terminal_data();
    for name in ["visa-fdda", "mc-cda", "no-supported-aid"] {
        c.bench_function(&format!("personalise/{name}"), |b| {
            b.iter(|| Card::profile(black_box(name)).unwrap());
        });
        let fresh = Card::profile(name).unwrap();
        let mut card = fresh.clone();
        c.bench_function(&format!("transaction/{name}"), |b| {
            b.iter(|| {
                // A real card blocks when its ATC runs out; start again from a fresh one.
                if card.atc() > 0xFF00 {
                    card = fresh.clone();
                }
                transaction(&mut card, &data);
            });
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
