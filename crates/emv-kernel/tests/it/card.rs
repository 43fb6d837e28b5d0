//! A scripted contactless card for the transaction tests: PPSE, one application, GPO, records and
//! GENERATE AC, with fDDA and CDA signatures made with the fixed test keys of `oda_keys`.
//!
//! Expected values in the tests come from what this card was told to answer and from the Book 2
//! formats; the kernel's own code is not used to build card answers (only the generic TLV
//! encoder and the SHA-1 helper).

use std::collections::BTreeMap;
use std::sync::OnceLock;

use crypto_bigint::modular::{BoxedMontyForm, BoxedMontyParams};
use crypto_bigint::{BoxedUint, Odd};
use emv_kernel::apdu::{Command, StatusWord, encode_response};
use emv_kernel::entry_point::{AidConfig, Kernel};
use emv_kernel::oda::{CaKeyTable, CaPublicKey, sha1};
use emv_kernel::tlv::{Tag, TlvBuilder};
use emv_kernel::{Date, Outcome, Step, TerminalConfig, Transaction, TransactionParams};
use hex_literal::hex;

use crate::oda_keys::*;

pub(crate) const VISA_AID: [u8; 7] = hex!("A0000000031010");
pub(crate) const MASTERCARD_AID: [u8; 7] = hex!("A0000000041010");
pub(crate) const PAN: [u8; 8] = hex!("4761739001010010");
pub(crate) const MC_PAN: [u8; 8] = hex!("5413330089010434");
pub(crate) const UN: [u8; 4] = hex!("1A2B3C4D");

pub(crate) fn sign(message: &[u8], private_exponent: &[u8], modulus: &[u8]) -> Vec<u8> {
    let bits = (modulus.len() * 8).div_ceil(64) as u32 * 64;
    let n = BoxedUint::from_be_slice(modulus, bits).unwrap();
    let params = BoxedMontyParams::new_vartime(Odd::new(n).unwrap());
    let m = BoxedUint::from_be_slice(message, bits).unwrap();
    let d = BoxedUint::from_be_slice(private_exponent, bits).unwrap();
    let s = BoxedMontyForm::new(m, &params)
        .pow(&d)
        .retrieve()
        .to_be_bytes();
    s[s.len() - modulus.len()..].to_vec()
}

/// 6A || body || SHA-1(body || extra) || BC, signed.
pub(crate) fn signed(body: &[u8], extra: &[u8], d: &[u8], n: &[u8]) -> Vec<u8> {
    assert_eq!(body.len() + 22, n.len(), "frame length");
    let mut message = vec![0x6A];
    message.extend_from_slice(body);
    message.extend_from_slice(&sha1(&[body, extra]));
    message.push(0xBC);
    sign(&message, d, n)
}

fn issuer_certificate(pan_prefix: [u8; 4]) -> (Vec<u8>, Vec<u8>) {
    let split = CA_MODULUS.len() - 36;
    let mut body = vec![0x02];
    body.extend_from_slice(&pan_prefix);
    body.extend_from_slice(&hex!("1230 000001 01 01"));
    body.extend_from_slice(&[ISSUER_MODULUS.len() as u8, 0x01]);
    body.extend_from_slice(&ISSUER_MODULUS[..split]);
    let remainder = ISSUER_MODULUS[split..].to_vec();
    let extra = [&remainder[..], &[0x03]].concat();
    (
        signed(&body, &extra, &CA_PRIVATE_EXPONENT, &CA_MODULUS),
        remainder,
    )
}

fn icc_certificate(pan: &[u8], static_data: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let split = ISSUER_MODULUS.len() - 42;
    let mut padded_pan = pan.to_vec();
    padded_pan.resize(10, 0xFF);
    let mut body = vec![0x04];
    body.extend_from_slice(&padded_pan);
    body.extend_from_slice(&hex!("1230 000002 01 01"));
    body.extend_from_slice(&[ICC_MODULUS.len() as u8, 0x01]);
    body.extend_from_slice(&ICC_MODULUS[..split]);
    let remainder = ICC_MODULUS[split..].to_vec();
    let extra = [&remainder[..], &[0x03], static_data].concat();
    (
        signed(&body, &extra, &ISSUER_PRIVATE_EXPONENT, &ISSUER_MODULUS),
        remainder,
    )
}

/// Signed Data Format of a DDA or CDA signature (Book 2 Tables 17 and 19).
pub(crate) const FORMAT_DDA: u8 = 0x05;
/// Signed Data Format of an fDDA signature (Book C-3), as real Visa cards sign it.
pub(crate) const FORMAT_FDDA: u8 = 0x95;

/// Signed Dynamic Application Data of Signed Data Format `format` with the test ICC key.
pub(crate) fn sdad(format: u8, icc_dynamic_data: &[u8], terminal_data: &[u8]) -> Vec<u8> {
    let mut body = vec![format, 0x01, icc_dynamic_data.len() as u8];
    body.extend_from_slice(icc_dynamic_data);
    body.resize(ICC_MODULUS.len() - 22, 0xBB);
    signed(&body, terminal_data, &ICC_PRIVATE_EXPONENT, &ICC_MODULUS)
}

fn tlv(build: impl FnOnce(&mut TlvBuilder)) -> Vec<u8> {
    let mut builder = TlvBuilder::new();
    build(&mut builder);
    builder.finish()
}

fn ok(data: &[u8]) -> Vec<u8> {
    encode_response(data, StatusWord::SUCCESS)
}

/// Which way the card decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    Online,
    Offline,
    Decline,
}

/// A scripted card. `overrides` replaces the answer to the n-th command (0-based).
#[derive(Clone)]
pub(crate) struct Card {
    pub(crate) aid: Vec<u8>,
    pub(crate) ppse: Vec<u8>,
    pub(crate) fci: Vec<u8>,
    pub(crate) records: BTreeMap<(u8, u8), Vec<u8>>,
    pub(crate) kind: Kernel,
    pub(crate) decision: Decision,
    pub(crate) gpo_extra: Vec<u8>,
    pub(crate) overrides: BTreeMap<usize, Vec<u8>>,
    pub(crate) commands: Vec<Vec<u8>>,
    pub(crate) aip: [u8; 2],
    /// Card Transaction Qualifiers a Kernel 3 card returns (`8000`: online PIN required).
    pub(crate) ctq: [u8; 2],
    pub(crate) pdol_data: Vec<u8>,
}

fn ppse_for(aid: &[u8], label: &[u8]) -> Vec<u8> {
    tlv(|b| {
        b.template(Tag::FciTemplate, |b| {
            b.primitive(Tag::DfName, b"2PAY.SYS.DDF01");
            b.template(Tag::FciProprietaryTemplate, |b| {
                b.template(Tag::FciIssuerDiscretionaryData, |b| {
                    b.template(Tag::ApplicationTemplate, |b| {
                        b.primitive(Tag::AdfName, aid);
                        b.primitive(Tag::ApplicationLabel, label);
                        b.primitive(Tag::ApplicationPriorityIndicator, &[0x01]);
                    });
                });
            });
        });
    })
}

fn fci_for(aid: &[u8], label: &[u8], pdol: Option<&[u8]>) -> Vec<u8> {
    tlv(|b| {
        b.template(Tag::FciTemplate, |b| {
            b.primitive(Tag::DfName, aid);
            b.template(Tag::FciProprietaryTemplate, |b| {
                b.primitive(Tag::ApplicationLabel, label);
                if let Some(pdol) = pdol {
                    b.primitive(Tag::Pdol, pdol);
                }
            });
        });
    })
}

/// Kernel 3 PDOL: TTQ, amounts, country, TVR, currency, date, type, UN (Book C-3 Annex A).
pub(crate) const VISA_PDOL: [u8; 24] =
    hex!("9F6604 9F0206 9F0306 9F1A02 9505 5F2A02 9A03 9C01 9F3704");

/// A Kernel 2 CDOL1 of the M/Chip shape (the one in the emv-tools example card).
pub(crate) const MC_CDOL1: [u8; 33] =
    hex!("9F0206 9F0306 9F1A02 9505 5F2A02 9A03 9C01 9F3704 9F3501 9F4502 9F4C08 9F3403");

impl Card {
    /// A Kernel 3 (qVSDC) card. Certificates are signed once and the card cloned afterwards.
    pub(crate) fn visa(decision: Decision) -> Self {
        static TEMPLATE: OnceLock<Card> = OnceLock::new();
        let mut card = TEMPLATE
            .get_or_init(|| Self::build_visa(Decision::Online))
            .clone();
        card.decision = decision;
        card
    }

    /// A Kernel 2 (M/Chip) card with CDA.
    pub(crate) fn mastercard(decision: Decision) -> Self {
        static TEMPLATE: OnceLock<Card> = OnceLock::new();
        let mut card = TEMPLATE
            .get_or_init(|| Self::build_mastercard(Decision::Online, hex!("3980")))
            .clone();
        card.decision = decision;
        card
    }

    fn build_visa(decision: Decision) -> Self {
        let aip = hex!("2000");
        let oda_record = tlv(|b| {
            b.template(Tag::ReadRecordResponseTemplate, |b| {
                b.primitive(
                    Tag::Track2EquivalentData,
                    &hex!("4761739001010010D30122011234567890"),
                );
                b.primitive(Tag::ApplicationPan, &PAN);
                b.primitive(Tag::ApplicationExpirationDate, &hex!("301231"));
                b.primitive(Tag::PanSequenceNumber, &[0x01]);
                b.primitive(Tag::StaticDataAuthenticationTagList, &[0x82]);
            });
        });
        let static_data = [&oda_record[2..], &aip[..]].concat();
        let (issuer_cert, issuer_rem) = issuer_certificate(hex!("476173FF"));
        let (icc_cert, icc_rem) = icc_certificate(&PAN, &static_data);
        let cert_record = tlv(|b| {
            b.template(Tag::ReadRecordResponseTemplate, |b| {
                b.primitive(Tag::CaPublicKeyIndexIcc, &[0x01]);
                b.primitive(Tag::IssuerPublicKeyCertificate, &issuer_cert);
                b.primitive(Tag::IssuerPublicKeyRemainder, &issuer_rem);
                b.primitive(Tag::IssuerPublicKeyExponent, &[0x03]);
            });
        });
        let icc_record = tlv(|b| {
            b.template(Tag::ReadRecordResponseTemplate, |b| {
                b.primitive(Tag::IccPublicKeyCertificate, &icc_cert);
                b.primitive(Tag::IccPublicKeyRemainder, &icc_rem);
                b.primitive(Tag::IccPublicKeyExponent, &[0x03]);
            });
        });
        let mut records = BTreeMap::new();
        records.insert((1, 1), oda_record);
        records.insert((2, 1), cert_record);
        records.insert((2, 2), icc_record);
        Self {
            aid: VISA_AID.to_vec(),
            ppse: ppse_for(&VISA_AID, b"VISA CREDIT"),
            fci: fci_for(&VISA_AID, b"VISA CREDIT", Some(&VISA_PDOL)),
            records,
            kind: Kernel::C3,
            decision,
            gpo_extra: Vec::new(),
            overrides: BTreeMap::new(),
            commands: Vec::new(),
            aip,
            ctq: hex!("8000"),
            pdol_data: Vec::new(),
        }
    }

    /// A Kernel 2 card with another AIP (certificates signed for it; slower).
    pub(crate) fn mastercard_with_aip(decision: Decision, aip: [u8; 2]) -> Self {
        Self::build_mastercard(decision, aip)
    }

    fn build_mastercard(decision: Decision, aip: [u8; 2]) -> Self {
        let oda_record = tlv(|b| {
            b.template(Tag::ReadRecordResponseTemplate, |b| {
                b.primitive(Tag::ApplicationPan, &MC_PAN);
                b.primitive(Tag::ApplicationExpirationDate, &hex!("301231"));
                b.primitive(Tag::ApplicationEffectiveDate, &hex!("200101"));
                b.primitive(Tag::PanSequenceNumber, &[0x00]);
                b.primitive(Tag::Cdol1, &MC_CDOL1);
                b.primitive(Tag::CvmList, &hex!("00000000 00000000 4203 1E03 1F03"));
                b.primitive(Tag::IssuerActionCodeDenial, &hex!("0000000000"));
                b.primitive(Tag::IssuerActionCodeOnline, &hex!("F470C49800"));
                b.primitive(Tag::IssuerActionCodeDefault, &hex!("F470C49800"));
                b.primitive(Tag::StaticDataAuthenticationTagList, &[0x82]);
            });
        });
        let static_data = [&oda_record[2..], &aip[..]].concat();
        let (issuer_cert, issuer_rem) = issuer_certificate(hex!("541333FF"));
        let (icc_cert, icc_rem) = icc_certificate(&MC_PAN, &static_data);
        let cert_record = tlv(|b| {
            b.template(Tag::ReadRecordResponseTemplate, |b| {
                b.primitive(Tag::CaPublicKeyIndexIcc, &[0x01]);
                b.primitive(Tag::IssuerPublicKeyCertificate, &issuer_cert);
                b.primitive(Tag::IssuerPublicKeyRemainder, &issuer_rem);
                b.primitive(Tag::IssuerPublicKeyExponent, &[0x03]);
            });
        });
        let icc_record = tlv(|b| {
            b.template(Tag::ReadRecordResponseTemplate, |b| {
                b.primitive(Tag::IccPublicKeyCertificate, &icc_cert);
                b.primitive(Tag::IccPublicKeyRemainder, &icc_rem);
                b.primitive(Tag::IccPublicKeyExponent, &[0x03]);
            });
        });
        let mut records = BTreeMap::new();
        records.insert((1, 1), oda_record);
        records.insert((2, 1), cert_record);
        records.insert((2, 2), icc_record);
        Self {
            aid: MASTERCARD_AID.to_vec(),
            ppse: ppse_for(&MASTERCARD_AID, b"MASTERCARD"),
            fci: fci_for(&MASTERCARD_AID, b"MASTERCARD", Some(&hex!("9F3501"))),
            records,
            kind: Kernel::C2,
            decision,
            gpo_extra: Vec::new(),
            overrides: BTreeMap::new(),
            commands: Vec::new(),
            aip,
            ctq: hex!("8000"),
            pdol_data: Vec::new(),
        }
    }

    /// Answers one command.
    pub(crate) fn transmit(&mut self, capdu: &[u8]) -> Vec<u8> {
        let index = self.commands.len();
        self.commands.push(capdu.to_vec());
        if let Some(answer) = self.overrides.get(&index) {
            return answer.clone();
        }
        let Ok(command) = Command::parse(capdu) else {
            return hex!("6700").to_vec();
        };
        match command.ins {
            0xA4 if command.data == b"2PAY.SYS.DDF01" => ok(&self.ppse),
            0xA4 if command.data == self.aid => ok(&self.fci),
            0xA4 => hex!("6A82").to_vec(),
            0xA8 => self.gpo(&command.data),
            0xB2 => {
                let sfi = command.p2 >> 3;
                match self.records.get(&(sfi, command.p1)) {
                    Some(record) => ok(record),
                    None => hex!("6A83").to_vec(),
                }
            }
            0xAE => self.generate_ac(&command),
            _ => hex!("6D00").to_vec(),
        }
    }

    fn gpo(&mut self, data: &[u8]) -> Vec<u8> {
        // data = 83 L pdol-data
        self.pdol_data = data.get(2..).unwrap_or_default().to_vec();
        match self.kind {
            Kernel::C3 => self.visa_gpo(),
            Kernel::C2 => ok(&tlv(|b| {
                b.template(Tag::ResponseMessageTemplateFormat2, |b| {
                    b.primitive(Tag::ApplicationInterchangeProfile, &self.aip);
                    b.primitive(Tag::ApplicationFileLocator, &hex!("08010101 10010200"));
                    b.raw(&self.gpo_extra);
                });
            })),
        }
    }

    fn visa_gpo(&self) -> Vec<u8> {
        let pdol = &self.pdol_data;
        // A real card answers "wrong length" to PDOL data shorter than its PDOL asks for (which
        // happens when a test flips a byte of the FCI's PDOL), rather than reading past it.
        let (Some(amount), Some(currency), Some(un)) =
            (pdol.get(4..10), pdol.get(23..25), pdol.get(29..33))
        else {
            return hex!("6700").to_vec();
        };
        let card_auth_data = hex!("01 11223344 0000");
        let cid: u8 = match self.decision {
            Decision::Online => 0x80,
            Decision::Offline => 0x40,
            Decision::Decline => 0x00,
        };
        // A qVSDC card signs for an offline approval, and for an online authorisation when the
        // TTQ says "offline data authentication for online authorisations supported" (byte 1
        // b1), as real Visa cards do (Book C-3).
        let oda_for_online = pdol.first().is_some_and(|ttq| ttq & 0x01 != 0);
        let signs = match self.decision {
            Decision::Offline => true,
            Decision::Online => oda_for_online,
            Decision::Decline => false,
        };
        ok(&tlv(|b| {
            b.template(Tag::ResponseMessageTemplateFormat2, |b| {
                b.primitive(Tag::ApplicationInterchangeProfile, &self.aip);
                if signs {
                    b.primitive(Tag::ApplicationFileLocator, &hex!("08010101 10010200"));
                    let terminal = [un, amount, currency, &card_auth_data].concat();
                    b.primitive(
                        Tag::SignedDynamicApplicationData,
                        &sdad(FORMAT_FDDA, &hex!("02 ABCD"), &terminal),
                    );
                    b.primitive(Tag::CardAuthenticationRelatedData, &card_auth_data);
                } else {
                    b.primitive(
                        Tag::Track2EquivalentData,
                        &hex!("4761739001010010D30122011234567890"),
                    );
                    b.primitive(Tag::PanSequenceNumber, &[0x01]);
                }
                b.primitive(Tag::ApplicationCryptogram, &hex!("1122334455667788"));
                b.primitive(Tag::CryptogramInformationData, &[cid]);
                b.primitive(Tag::ApplicationTransactionCounter, &hex!("0042"));
                b.primitive(Tag::IssuerApplicationData, &hex!("06011203A00000"));
                b.primitive(Tag::CardTransactionQualifiers, &self.ctq);
                b.primitive(Tag::FormFactorIndicator, &hex!("00000000"));
                b.raw(&self.gpo_extra);
            });
        }))
    }

    fn generate_ac(&self, command: &Command) -> Vec<u8> {
        let requested = command.p1 & 0xC0;
        let cda = command.p1 & 0x10 != 0;
        let cid = match (self.decision, requested) {
            (Decision::Decline, _) | (_, 0x00) => 0x00,
            (Decision::Online, _) | (Decision::Offline, 0x80) => 0x80,
            (Decision::Offline, _) => 0x40,
        };
        let atc = hex!("0007");
        let iad = hex!("0110A00003220000000000000000000000FF");
        let ac = hex!("8877665544332211");
        if cda && cid != 0x00 {
            let cdol1_data = &command.data;
            let un = &cdol1_data[25..29];
            let mut head = Vec::new();
            emv_kernel::tlv::encode(Tag::CryptogramInformationData, &[cid], &mut head);
            emv_kernel::tlv::encode(Tag::ApplicationTransactionCounter, &atc, &mut head);
            let mut tail = Vec::new();
            emv_kernel::tlv::encode(Tag::IssuerApplicationData, &iad, &mut tail);
            let hash = sha1(&[&self.pdol_data, cdol1_data, &head, &tail]);
            let dynamic = [&hex!("08 0102030405060708")[..], &[cid], &ac, &hash].concat();
            let signature = sdad(FORMAT_DDA, &dynamic, un);
            let mut template = head.clone();
            emv_kernel::tlv::encode(Tag::SignedDynamicApplicationData, &signature, &mut template);
            template.extend_from_slice(&tail);
            let mut out = Vec::new();
            emv_kernel::tlv::encode(Tag::ResponseMessageTemplateFormat2, &template, &mut out);
            return ok(&out);
        }
        ok(&tlv(|b| {
            b.template(Tag::ResponseMessageTemplateFormat2, |b| {
                b.primitive(Tag::CryptogramInformationData, &[cid]);
                b.primitive(Tag::ApplicationTransactionCounter, &atc);
                b.primitive(Tag::ApplicationCryptogram, &ac);
                b.primitive(Tag::IssuerApplicationData, &iad);
            });
        }))
    }
}

pub(crate) fn terminal_config() -> TerminalConfig {
    let mut ca_keys = CaKeyTable::new();
    for rid in [hex!("A000000003"), hex!("A000000004")] {
        ca_keys.insert(CaPublicKey::new(rid, 0x01, &CA_MODULUS, &[0x03]).unwrap());
    }
    let mut visa = AidConfig::new(&VISA_AID[..5], Kernel::C3);
    visa.transaction_limit = Some(100_000);
    visa.floor_limit = Some(5_000);
    visa.cvm_required_limit = Some(3_000);
    let mut mastercard = AidConfig::new(&MASTERCARD_AID[..5], Kernel::C2);
    mastercard.transaction_limit = Some(100_000);
    mastercard.floor_limit = Some(0);
    mastercard.cvm_required_limit = Some(3_000);
    TerminalConfig {
        country_code: hex!("0250"),
        terminal_type: 0x22,
        terminal_capabilities: hex!("0068C8"),
        additional_terminal_capabilities: hex!("6000F0A001"),
        ifd_serial_number: Some(*b"SUNBAY01"),
        merchant_category_code: Some(hex!("5411")),
        merchant_identifier: Some(b"MERCHANT0000001".to_vec()),
        terminal_identification: Some(*b"TERM0001"),
        merchant_name_and_location: None,
        online_capable: true,
        aids: vec![visa, mastercard],
        ca_keys,
    }
}

pub(crate) fn params(amount: u64) -> TransactionParams {
    TransactionParams {
        amount,
        amount_other: 0,
        currency_code: hex!("0978"),
        currency_exponent: 2,
        transaction_type: 0x00,
        date: Date::new(2026, 11, 26).unwrap(),
        time: hex!("120000"),
        unpredictable_number: UN,
        config: terminal_config(),
    }
}

/// Runs a transaction against `card` to its outcome (bounded).
pub(crate) fn run(card: &mut Card, params: TransactionParams) -> Outcome {
    let (mut transaction, mut step) = Transaction::new(params);
    for _ in 0..100 {
        match step {
            Step::SendApdu(command) => step = transaction.resume(&card.transmit(&command)),
            Step::Done(outcome) => return outcome,
        }
    }
    panic!("transaction did not end");
}
