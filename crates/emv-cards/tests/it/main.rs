//! Integration tests of the virtual cards: the standard command sequence against every profile,
//! status words for wrong commands, the ARQC cross-check with payment-crypto, and property tests.

mod arqc;
mod kernel;
mod oda;
mod props;
mod sequence;
mod status_words;
mod transcript;

use std::collections::BTreeMap;

use emv_cards::Card;
use emv_kernel::apdu::{Command, CryptogramType, Occurrence, Response};
use emv_kernel::dol::Dol;
use emv_kernel::tlv::{self, Tag};

/// Sends `command` and splits the answer into data and status word.
pub(crate) fn send(card: &mut Card, command: &[u8]) -> (Vec<u8>, u16) {
    let response = card.transmit(command);
    let parsed = Response::parse(&response).expect("every answer carries a status word");
    (parsed.data.to_vec(), parsed.sw.0)
}

/// Sends `command` and expects `9000`.
pub(crate) fn send_ok(card: &mut Card, command: &Command) -> Vec<u8> {
    let (data, sw) = send(card, &command.to_bytes());
    assert_eq!(sw, 0x9000, "{} answered {sw:04X}", command_name(command));
    data
}

fn command_name(command: &Command) -> &'static str {
    emv_kernel::apdu::ins_name(command.ins)
}

/// What a test terminal sends, in minor units of US dollars on 26 November 2026.
#[derive(Debug, Clone)]
pub(crate) struct Terminal {
    pub(crate) amount_minor: u64,
    pub(crate) ttq: [u8; 4],
    pub(crate) unpredictable_number: [u8; 4],
    pub(crate) cryptogram: CryptogramType,
    pub(crate) cda: bool,
    pub(crate) cvm_results: [u8; 3],
}

impl Default for Terminal {
    fn default() -> Self {
        Self {
            amount_minor: 5000,
            // qVSDC, online PIN and signature supported, ODA for online authorisations.
            ttq: [0x37, 0x00, 0x40, 0x00],
            unpredictable_number: [0x12, 0x34, 0x56, 0x78],
            cryptogram: CryptogramType::Arqc,
            cda: true,
            cvm_results: [0x1F, 0x00, 0x02],
        }
    }
}

impl Terminal {
    /// The terminal data the cards' PDOLs and CDOL1 ask for.
    pub(crate) fn data(&self) -> BTreeMap<Tag, Vec<u8>> {
        let amount = bcd12(self.amount_minor);
        BTreeMap::from([
            (Tag::TerminalTransactionQualifiers, self.ttq.to_vec()),
            (Tag::AmountAuthorised, amount.to_vec()),
            (Tag::AmountOther, vec![0; 6]),
            (Tag::TerminalCountryCode, vec![0x08, 0x40]),
            (Tag::TerminalVerificationResults, vec![0; 5]),
            (Tag::TransactionCurrencyCode, vec![0x08, 0x40]),
            (Tag::TransactionDate, vec![0x26, 0x11, 0x26]),
            (Tag::TransactionType, vec![0x00]),
            (Tag::UnpredictableNumber, self.unpredictable_number.to_vec()),
            (Tag::TerminalType, vec![0x22]),
            (Tag::CvmResults, self.cvm_results.to_vec()),
        ])
    }
}

/// An amount as `n 12` BCD.
pub(crate) fn bcd12(amount: u64) -> [u8; 6] {
    let digits = format!("{amount:012}");
    let bytes = hex::decode(digits).expect("decimal digits are hex");
    bytes.try_into().expect("12 digits")
}

/// Everything a terminal learns from one run of the standard sequence.
#[derive(Debug, Default)]
pub(crate) struct Session {
    pub(crate) ppse: Vec<u8>,
    pub(crate) fci: Vec<u8>,
    pub(crate) aid: Vec<u8>,
    pub(crate) pdol_data: Vec<u8>,
    pub(crate) gpo: Vec<u8>,
    pub(crate) aip: Vec<u8>,
    pub(crate) afl: Vec<u8>,
    /// (SFI, record number, response data) in AFL order.
    pub(crate) records: Vec<(u8, u8, Vec<u8>)>,
    pub(crate) cdol1_data: Option<Vec<u8>>,
    pub(crate) generate_ac: Option<Vec<u8>>,
}

impl Session {
    /// The first value of `tag` in the GPO response, the records or the GENERATE AC response.
    pub(crate) fn value(&self, tag: Tag) -> Option<Vec<u8>> {
        let sources = [&self.gpo]
            .into_iter()
            .chain(self.records.iter().map(|(_, _, data)| data))
            .chain(self.generate_ac.as_ref());
        for source in sources {
            if let Some(found) = tlv::find_nested(source, tag).expect("well-formed TLV") {
                return Some(found.value.to_vec());
            }
        }
        None
    }
}

/// Runs PPSE, SELECT, GPO, READ RECORD along the AFL and, for cards that have a CDOL1,
/// GENERATE AC, checking every answer parses as TLV.
pub(crate) fn run_session(card: &mut Card, terminal: &Terminal) -> Session {
    let mut session = Session {
        ppse: send_ok(card, &Command::select_ppse()),
        ..Session::default()
    };
    let entry = tlv::find_nested(&session.ppse, Tag::ApplicationTemplate)
        .expect("well-formed PPSE FCI")
        .expect("a directory entry");
    session.aid = tlv::find(entry.value, Tag::AdfName)
        .unwrap()
        .expect("4F in the directory entry")
        .value
        .to_vec();
    session.fci = send_ok(
        card,
        &Command::select_by_name(&session.aid, Occurrence::First).unwrap(),
    );
    let data = terminal.data();
    let pdol = tlv::find_nested(&session.fci, Tag::Pdol)
        .unwrap()
        .map(|pdol| Dol::parse(pdol.value).expect("well-formed PDOL"))
        .unwrap_or_default();
    session.pdol_data = pdol.build(&data);
    session.gpo = send_ok(
        card,
        &Command::get_processing_options(&session.pdol_data).unwrap(),
    );
    let gpo = tlv::parse_single(&session.gpo).expect("well-formed GPO response");
    if gpo.tag == Tag::ResponseMessageTemplateFormat1 {
        session.aip = gpo.value[..2].to_vec();
        session.afl = gpo.value[2..].to_vec();
    } else {
        assert_eq!(gpo.tag, Tag::ResponseMessageTemplateFormat2);
        session.aip = tlv::find(gpo.value, Tag::ApplicationInterchangeProfile)
            .unwrap()
            .expect("AIP")
            .value
            .to_vec();
        session.afl = tlv::find(gpo.value, Tag::ApplicationFileLocator)
            .unwrap()
            .expect("AFL")
            .value
            .to_vec();
    }
    assert_eq!(session.afl.len() % 4, 0, "AFL entries are 4 bytes");
    for entry in session.afl.chunks(4) {
        let sfi = entry[0] >> 3;
        for number in entry[1]..=entry[2] {
            let record = send_ok(card, &Command::read_record(sfi, number).unwrap());
            let template = tlv::parse_single(&record).expect("well-formed record");
            assert_eq!(template.tag, Tag::ReadRecordResponseTemplate);
            session.records.push((sfi, number, record));
        }
    }
    if let Some(cdol1) = session.value(Tag::Cdol1) {
        let cdol1 = Dol::parse(&cdol1).expect("well-formed CDOL1");
        let cdol1_data = cdol1.build(&data);
        let response = send_ok(
            card,
            &Command::generate_ac(terminal.cryptogram, terminal.cda, &cdol1_data).unwrap(),
        );
        let template = tlv::parse_single(&response).expect("well-formed GENERATE AC response");
        assert_eq!(template.tag, Tag::ResponseMessageTemplateFormat2);
        session.cdol1_data = Some(cdol1_data);
        session.generate_ac = Some(response);
    }
    session
}
