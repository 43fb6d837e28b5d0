//! Cost of one authorisation of a real kernel online request (ARQC check, ARPC, PIN check), the
//! simulator's share of an end-to-end payment.

use criterion::{Criterion, criterion_group, criterion_main};
use emv_cards::Card;
use emv_cards::keys::test_ca_public_keys;
use emv_kernel::entry_point::{AidConfig, Kernel};
use emv_kernel::oda::{CaKeyTable, CaPublicKey};
use emv_kernel::{Date, OutcomeKind, Step, Tag, TerminalConfig, Transaction, TransactionParams};
use issuer_sim::{AuthorizationRequest, IssuerSimulator};
use payment_crypto::SecretKey;
use payment_crypto::pinblock::{self, ClearPin, PinBlockFormat};
use payment_crypto::random::FixedBytes;

fn field_55(profile: &str, amount: u64) -> Vec<u8> {
    let mut ca_keys = CaKeyTable::new();
    for key in test_ca_public_keys() {
        ca_keys.insert(CaPublicKey::new(key.rid, key.index, &key.modulus, &key.exponent).unwrap());
    }
    let mut visa = AidConfig::new(&[0xA0, 0x00, 0x00, 0x00, 0x03], Kernel::C3);
    visa.ttq = [0x27, 0x00, 0x40, 0x00];
    visa.cvm_required_limit = Some(3_000);
    let mastercard = AidConfig::new(&[0xA0, 0x00, 0x00, 0x00, 0x04], Kernel::C2);
    let config = TerminalConfig {
        country_code: [0x08, 0x40],
        terminal_type: 0x22,
        terminal_capabilities: [0x00, 0x68, 0xC8],
        additional_terminal_capabilities: [0x60, 0x00, 0xF0, 0xA0, 0x01],
        ifd_serial_number: None,
        merchant_category_code: None,
        merchant_identifier: None,
        terminal_identification: None,
        merchant_name_and_location: None,
        online_capable: true,
        aids: vec![visa, mastercard],
        ca_keys,
    };
    let mut card = Card::profile(profile).unwrap();
    let (mut transaction, mut step) = Transaction::new(TransactionParams {
        amount,
        amount_other: 0,
        currency_code: [0x08, 0x40],
        currency_exponent: 2,
        transaction_type: 0x00,
        date: Date::new(2026, 11, 26).unwrap(),
        time: [0x12, 0x00, 0x00],
        unpredictable_number: [1, 2, 3, 4],
        config,
    });
    loop {
        match step {
            Step::SendApdu(command) => step = transaction.resume(&card.transmit(&command)),
            Step::Done(outcome) => {
                assert_eq!(outcome.kind, OutcomeKind::OnlineRequest);
                assert!(outcome.data.get(Tag::ApplicationCryptogram).is_some());
                return outcome.data.to_tlv();
            }
        }
    }
}

fn bench(c: &mut Criterion) {
    let zpk = SecretKey::tdes(&[0x13; 16]).unwrap();
    let simulator = IssuerSimulator::new(zpk.clone(), PinBlockFormat::Iso0);
    let mut group = c.benchmark_group("authorize");
    for (profile, pan, amount, pin) in [
        ("mc-cda", "5413330089010434", 2500, None),
        ("visa-fdda", "4761739001010010", 2500, None),
        ("visa-online-pin", "4761739001010119", 4000, Some("4315")),
    ] {
        let icc = field_55(profile, amount);
        let block = pin.map(|pin| {
            let pan = pinblock::Pan::new(pan).unwrap();
            let mut rng = FixedBytes::new(&[7]);
            pinblock::encrypt_pin(
                &zpk,
                PinBlockFormat::Iso0,
                &ClearPin::new(pin).unwrap(),
                Some(&pan),
                &mut rng,
            )
            .unwrap()
            .as_bytes()
            .to_vec()
        });
        let request = AuthorizationRequest {
            pan,
            pan_sequence_number: Some(1),
            expiry_yymm: if profile == "mc-cda" { "2911" } else { "3012" },
            amount_minor: amount,
            currency_numeric: 840,
            icc_data: &icc,
            pin_block: block.as_deref(),
            today_yymmdd: "261126",
        };
        assert!(
            simulator.authorize(&request).decision.is_approved(),
            "{profile}"
        );
        group.bench_function(profile, |b| b.iter(|| simulator.authorize(&request)));
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
