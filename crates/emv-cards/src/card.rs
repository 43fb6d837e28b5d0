//! A personalised virtual card and its command processing.
//!
//! Command coding and status words: ISO/IEC 7816-4 section 5 and EMV 4.4 Book 3 section 6.5
//! (with Book 1 section 11 for SELECT); FCI and directory entries: Book 1 section 11.3.4 and EMV
//! Contactless Book B section 3.3; records and AFL: Book 3 sections 5.3 and 10.2; GPO and
//! GENERATE AC responses: Book 3 sections 6.5.5.4 and 6.5.8.4, Books C-2 and C-3.

use alloc::vec::Vec;
use core::fmt;

use emv_kernel::apdu::{self, Command, CryptogramType, StatusWord, ins};
use emv_kernel::dol::Dol;
use emv_kernel::tlv::{self, Tag, TlvBuilder};
use payment_crypto::emv::{
    Atc, CardKeys, CryptogramVersion, Pan, PanSequenceNumber, TransactionInputs,
    UnpredictableNumber,
};

use crate::cert::{self, CertificateFields, CertifiedKey};
use crate::cryptogram::cryptogram_input;
use crate::profile::{self, CARD_CURRENCY, Fault, Flow, GpoFormat, ISSUER_COUNTRY, Profile};
use crate::rsa::{SignError, SigningKey};

/// Response of a command: data with `9000`, or an error status word.
type Answer = Result<Vec<u8>, StatusWord>;

/// PDOL of the Visa-like cards: TTQ, amounts, terminal country, TVR, currency, date, type, UN.
const PDOL_QVSDC: &[u8] = &[
    0x9F, 0x66, 0x04, 0x9F, 0x02, 0x06, 0x9F, 0x03, 0x06, 0x9F, 0x1A, 0x02, 0x95, 0x05, 0x5F, 0x2A,
    0x02, 0x9A, 0x03, 0x9C, 0x01, 0x9F, 0x37, 0x04,
];
/// PDOL of the M/Chip-like cards: terminal country code, terminal type.
const PDOL_MCHIP: &[u8] = &[0x9F, 0x1A, 0x02, 0x9F, 0x35, 0x01];
/// CDOL1 of the M/Chip-like cards: the terminal data of the cryptogram, terminal type and
/// CVM results.
const CDOL1_MCHIP: &[u8] = &[
    0x9F, 0x02, 0x06, 0x9F, 0x03, 0x06, 0x9F, 0x1A, 0x02, 0x95, 0x05, 0x5F, 0x2A, 0x02, 0x9A, 0x03,
    0x9C, 0x01, 0x9F, 0x37, 0x04, 0x9F, 0x35, 0x01, 0x9F, 0x34, 0x03,
];

/// Issuer Action Codes of the M/Chip-like cards: default, denial, online (Book 3 Annex A).
const IAC_DEFAULT: [u8; 5] = [0xB8, 0x50, 0xBC, 0x88, 0x00];
const IAC_DENIAL: [u8; 5] = [0x00, 0x00, 0x00, 0x00, 0x00];
const IAC_ONLINE: [u8; 5] = [0xB8, 0x70, 0xBC, 0x98, 0x00];

/// Issuer certificate and ICC certificate expiry (MMYY): December 2030.
const CERTIFICATE_EXPIRY: [u8; 2] = [0x12, 0x30];
const ISSUER_CERTIFICATE_SERIAL: [u8; 3] = [0x00, 0x00, 0x01];

/// AIP byte 1 bits (Book 3 Annex C1).
const AIP_DDA: u8 = 0x20;
const AIP_CDA: u8 = 0x01;
/// TTQ bits (Book C-3 Annex A, `9F66`).
const TTQ1_QVSDC: u8 = 0x20;
const TTQ1_OFFLINE_ONLY: u8 = 0x08;
const TTQ1_ODA_FOR_ONLINE: u8 = 0x01;
const TTQ2_ONLINE_CRYPTOGRAM_REQUIRED: u8 = 0x80;
/// CTQ byte 1 b8: online PIN required.
const CTQ1_ONLINE_PIN: u8 = 0x80;
/// P1 of GENERATE AC, b5: CDA signature requested (Book 3 Table 12).
const P1_CDA: u8 = 0x10;
/// fDDA version `01` in the Card Authentication Related Data (Book C-3).
const FDDA_VERSION: u8 = 0x01;

/// What is currently selected.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Selected {
    Nothing,
    Ppse,
    /// The application at this index of [`Card::apps`], with its transaction.
    Application(usize, Transaction),
}

/// The state of a transaction on the selected application.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Transaction {
    /// PDOL data of the GET PROCESSING OPTIONS that started it.
    pdol_data: Option<Vec<u8>>,
    /// Whether the cryptogram of this transaction has been produced.
    cryptogram_done: bool,
}

/// One record of the application's files.
#[derive(Debug, Clone)]
struct Record {
    sfi: u8,
    number: u8,
    /// The whole response: a `70` template.
    data: Vec<u8>,
}

/// A virtual contactless card: one or more payment applications personalised from a named
/// profile.
///
/// It answers C-APDUs through [`Card::transmit`] and keeps its state (selection, transaction,
/// ATC) between them, as a card in the field does. Everything is deterministic: two cards of the
/// same profile given the same commands give the same answers. Cloning a card copies its state,
/// which is the cheap way to start many runs from a fresh card (personalisation signs
/// certificates; a clone does not).
#[derive(Clone)]
pub struct Card {
    name: &'static str,
    ppse_fci: Vec<u8>,
    apps: Vec<App>,
    selected: Selected,
}

/// One personalised application and its own counter.
#[derive(Clone)]
struct App {
    profile: Profile,
    fci: Vec<u8>,
    pdol: Dol,
    cdol1: Dol,
    afl: Vec<u8>,
    records: Vec<Record>,
    keys: CardKeys,
    /// The key the card signs dynamic data with (prepared once; a cloned card's is uncertified).
    signing_key: Option<SigningKey>,
    atc: u16,
}

impl fmt::Debug for Card {
    /// Shows the profile and the counter; never the PAN or keys.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Card")
            .field("profile", &self.name)
            .field("atc", &self.atc())
            .finish_non_exhaustive()
    }
}

/// A profile's name and what it exercises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProfileInfo {
    /// The name [`Card::profile`] takes, e.g. `"visa-fdda"`.
    pub name: &'static str,
    /// What the card does and which kernel behaviour it exercises.
    pub description: &'static str,
}

/// One application on a card, as an issuer simulator needs it.
///
/// Its `Debug` output masks the PAN (first six and last four digits) and hides the PIN, so it is
/// safe to log even though the values are test data.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Application {
    /// The AID (`4F`, `84`).
    pub aid: &'static [u8],
    /// The Application Label (`50`).
    pub label: &'static str,
    /// The Application PAN (`5A`), a test PAN.
    pub pan: &'static str,
    /// The PAN Sequence Number (`5F34`), one byte of BCD.
    pub pan_sequence_number: u8,
    /// The test PIN (TEST ONLY).
    pub test_pin: &'static str,
    /// The identifier of the issuer master key; see [`crate::keys::issuer_master_key`].
    pub issuer_master_key_id: &'static str,
    /// How the application's keys derive and its cryptograms verify.
    pub cryptogram_version: CryptogramVersion,
}

impl fmt::Debug for Application {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pan = self.pan;
        let masked_len = pan.len().saturating_sub(10);
        let (head, tail) = (
            pan.get(..6).unwrap_or_default(),
            pan.get(pan.len().saturating_sub(4)..).unwrap_or_default(),
        );
        f.debug_struct("Application")
            .field("aid", &HexBytes(self.aid))
            .field("label", &self.label)
            .field("pan", &format_args!("{head}{:*<masked_len$}{tail}", ""))
            .field("pan_sequence_number", &self.pan_sequence_number)
            .field("test_pin", &"<redacted>")
            .field("issuer_master_key_id", &self.issuer_master_key_id)
            .field("cryptogram_version", &self.cryptogram_version)
            .finish()
    }
}

/// Upper-case hex in `Debug`.
struct HexBytes<'a>(&'a [u8]);

impl fmt::Debug for HexBytes<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|byte| write!(f, "{byte:02X}"))
    }
}

/// Every card profile.
#[must_use]
pub fn profiles() -> Vec<ProfileInfo> {
    profile::cards()
        .iter()
        .map(|card| ProfileInfo {
            name: card.name,
            description: card.description,
        })
        .collect()
}

impl Card {
    /// A freshly personalised card of the profile called `name` (see [`profiles`]); `None` for an
    /// unknown name.
    ///
    /// Personalisation builds the records and signs the issuer and ICC certificates with the
    /// TEST ONLY keys, so it costs two RSA signatures.
    #[must_use]
    pub fn profile(name: &str) -> Option<Self> {
        let card = profile::cards()
            .into_iter()
            .find(|card| card.name == name)?;
        let apps = card
            .applications
            .into_iter()
            .map(personalise)
            .collect::<Result<Vec<_>, _>>()
            .ok()
            .filter(|apps| !apps.is_empty())?;
        Some(Self {
            name: card.name,
            ppse_fci: ppse_fci(&apps),
            apps,
            selected: Selected::Nothing,
        })
    }

    /// Processes one command APDU and returns the response APDU (data followed by SW1 SW2).
    ///
    /// Never panics: malformed commands get the status word a card would give them.
    pub fn transmit(&mut self, capdu: &[u8]) -> Vec<u8> {
        let (data, sw) = match Command::parse(capdu) {
            Ok(command) => match self.process(&command) {
                Ok(data) => fit_le(data, command.le),
                Err(sw) => (Vec::new(), sw),
            },
            Err(_) => (Vec::new(), StatusWord::WRONG_LENGTH),
        };
        apdu::encode_response(&data, sw)
    }

    /// The profile name.
    #[must_use]
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The applications on the card, in PPSE order.
    #[must_use]
    pub fn applications(&self) -> Vec<Application> {
        self.apps.iter().map(App::info).collect()
    }

    /// The application with this AID, e.g. the DF Name (`84`) of an authorisation request.
    #[must_use]
    pub fn application(&self, aid: &[u8]) -> Option<Application> {
        self.apps
            .iter()
            .find(|app| app.profile.aid == aid)
            .map(App::info)
    }

    /// The selected application, or the first one when none is selected. The accessors below
    /// read it; a single-application card always answers for its only application.
    fn current(&self) -> &App {
        let idx = match self.selected {
            Selected::Application(idx, _) => idx,
            Selected::Nothing | Selected::Ppse => 0,
        };
        &self.apps[idx.min(self.apps.len() - 1)]
    }

    /// The Application PAN (`5A`), a test PAN.
    #[must_use]
    pub fn pan(&self) -> &'static str {
        self.current().profile.pan
    }

    /// The PAN Sequence Number (`5F34`) as the card stores it: one byte of BCD, e.g. `0x01`
    /// (read it with `payment_crypto::emv::PanSequenceNumber::from_bcd`).
    #[must_use]
    pub fn pan_sequence_number(&self) -> u8 {
        self.current().profile.psn
    }

    /// The Application Expiration Date (`5F24`), YYMMDD in BCD.
    #[must_use]
    pub fn expiry(&self) -> [u8; 3] {
        self.current().profile.expiry
    }

    /// The AID of the application.
    #[must_use]
    pub fn aid(&self) -> &'static [u8] {
        self.current().profile.aid
    }

    /// The test PIN an issuer simulator accepts for this card (TEST ONLY).
    #[must_use]
    pub fn test_pin(&self) -> &'static str {
        self.current().profile.pin
    }

    /// The identifier of the issuer master key the ICC master key derives from; see
    /// [`crate::keys::issuer_master_key`].
    #[must_use]
    pub fn issuer_master_key_id(&self) -> &'static str {
        self.current().profile.imk_id
    }

    /// The cryptogram version: how to derive the keys and verify the cryptograms.
    #[must_use]
    pub fn cryptogram_version(&self) -> CryptogramVersion {
        self.current().profile.version
    }

    /// The Application Transaction Counter (`9F36`) of the last transaction.
    #[must_use]
    pub fn atc(&self) -> u16 {
        self.current().atc
    }

    fn process(&mut self, command: &Command) -> Answer {
        if command.cla != 0x00 && command.cla != 0x80 {
            return Err(StatusWord::CLA_NOT_SUPPORTED);
        }
        let expected_cla = match command.ins {
            ins::SELECT | ins::READ_RECORD => 0x00,
            ins::GET_PROCESSING_OPTIONS | ins::GENERATE_AC | ins::GET_DATA => 0x80,
            _ => return Err(StatusWord::INS_NOT_SUPPORTED),
        };
        if command.cla != expected_cla {
            return Err(StatusWord::CLA_NOT_SUPPORTED);
        }
        if command.ins == ins::SELECT {
            return self.select(command);
        }
        let (app, transaction) = match &mut self.selected {
            Selected::Application(idx, transaction) => match self.apps.get_mut(*idx) {
                Some(app) => (app, transaction),
                None => return Err(StatusWord::CONDITIONS_NOT_SATISFIED),
            },
            Selected::Ppse if command.ins == ins::READ_RECORD => {
                // The contactless PPSE has no records (Book B 3.3).
                return Err(StatusWord::RECORD_NOT_FOUND);
            }
            Selected::Nothing if command.ins == ins::READ_RECORD => {
                return Err(StatusWord::COMMAND_NOT_ALLOWED);
            }
            Selected::Nothing | Selected::Ppse => {
                return Err(StatusWord::CONDITIONS_NOT_SATISFIED);
            }
        };
        match command.ins {
            ins::READ_RECORD => app.read_record(command),
            ins::GET_PROCESSING_OPTIONS => app.get_processing_options(command, transaction),
            ins::GENERATE_AC => app.generate_ac(command, transaction),
            _ => app.get_data(command),
        }
    }

    /// SELECT by DF name (Book 1 section 11.3). A successful selection ends any transaction; a
    /// failed one leaves the current selection as it was (ISO/IEC 7816-4 7.1.1).
    fn select(&mut self, command: &Command) -> Answer {
        if command.p1 != 0x04 || (command.p2 != 0x00 && command.p2 != 0x02) {
            return Err(StatusWord::INCORRECT_P1_P2);
        }
        if command.data.is_empty() {
            return Err(StatusWord::WRONG_LENGTH);
        }
        if command.data == apdu::PPSE_NAME && command.p2 == 0x00 {
            self.selected = Selected::Ppse;
            return Ok(self.ppse_fci.clone());
        }
        // Partial name selection (Book 1 12.3.3): a name of 5 or more bytes selects the
        // first application whose AID starts with it; "next occurrence" is not supported.
        let found = self.apps.iter().position(|app| {
            command.p2 == 0x00
                && command.data.len() >= 5
                && app.profile.aid.starts_with(&command.data)
        });
        match found {
            Some(idx) => {
                self.selected = Selected::Application(idx, Transaction::default());
                Ok(self.apps[idx].fci.clone())
            }
            None => Err(StatusWord::FILE_NOT_FOUND),
        }
    }
}

impl App {
    /// What an issuer needs to know about this application.
    fn info(&self) -> Application {
        Application {
            aid: self.profile.aid,
            label: self.profile.label,
            pan: self.profile.pan,
            pan_sequence_number: self.profile.psn,
            test_pin: self.profile.pin,
            issuer_master_key_id: self.profile.imk_id,
            cryptogram_version: self.profile.version,
        }
    }

    /// READ RECORD (Book 3 section 6.5.11), P2 = SFI << 3 | 4.
    fn read_record(&self, command: &Command) -> Answer {
        if command.p2 & 0x07 != 0x04 {
            return Err(StatusWord::INCORRECT_P1_P2);
        }
        if !command.data.is_empty() {
            return Err(StatusWord::WRONG_LENGTH);
        }
        let sfi = command.p2 >> 3;
        self.records
            .iter()
            .find(|record| record.sfi == sfi && record.number == command.p1)
            .map(|record| self.faulty(record.data.clone()))
            .ok_or(StatusWord::RECORD_NOT_FOUND)
    }

    /// GET DATA (Book 3 section 6.5.7) for the counters a terminal may ask for.
    fn get_data(&self, command: &Command) -> Answer {
        let tag = Tag::from_raw(u32::from(u16::from_be_bytes([command.p1, command.p2])));
        let value: Vec<u8> = match tag {
            Tag::ApplicationTransactionCounter => self.atc.to_be_bytes().to_vec(),
            // Offline PIN is not personalised; the counter shows the issuer's initial 3 tries.
            Tag::PinTryCounter => alloc::vec![0x03],
            Tag::LastOnlineAtcRegister => alloc::vec![0x00, 0x00],
            _ => return Err(StatusWord::REFERENCED_DATA_NOT_FOUND),
        };
        let mut out = Vec::new();
        tlv::encode(tag, &value, &mut out);
        Ok(out)
    }

    /// GET PROCESSING OPTIONS (Book 3 section 6.5.8): checks the PDOL data, counts the
    /// transaction and answers with AIP and AFL; a qVSDC card also decides and signs here.
    fn get_processing_options(
        &mut self,
        command: &Command,
        transaction: &mut Transaction,
    ) -> Answer {
        if transaction.pdol_data.is_some() {
            return Err(StatusWord::CONDITIONS_NOT_SATISFIED);
        }
        if command.p1 != 0x00 || command.p2 != 0x00 {
            return Err(StatusWord::INCORRECT_P1_P2);
        }
        // The data must be exactly one Command Template `83` holding the PDOL data.
        let pdol_data = match tlv::parse_all(&command.data).as_deref() {
            Ok([template])
                if template.tag == Tag::CommandTemplate
                    && template.raw.len() == command.data.len()
                    && template.value.len() == self.pdol.data_len() =>
            {
                template.value.to_vec()
            }
            _ => return Err(StatusWord::WRONG_LENGTH),
        };
        let Ok(pdol_values) = self.pdol.split(&pdol_data) else {
            return Err(StatusWord::WRONG_LENGTH);
        };
        if self.profile.flow == Flow::Qvsdc {
            let ttq = value_of(&pdol_values, Tag::TerminalTransactionQualifiers);
            if ttq.first().is_none_or(|byte| byte & TTQ1_QVSDC == 0) {
                // The reader does not support qVSDC; this card has no other contactless path.
                return Err(StatusWord::CONDITIONS_NOT_SATISFIED);
            }
        }
        // The ATC counts every transaction the card starts; a card whose ATC reached its
        // maximum is permanently blocked (Book 3 Annex A, 9F36).
        let atc = self
            .atc
            .checked_add(1)
            .ok_or(StatusWord::CONDITIONS_NOT_SATISFIED)?;
        self.atc = atc;
        let response = match self.profile.flow {
            Flow::Qvsdc => self.qvsdc_gpo(&pdol_values)?,
            Flow::MChip => self.gpo_aip_afl(),
        };
        let qvsdc = self.profile.flow == Flow::Qvsdc;
        *transaction = Transaction {
            pdol_data: Some(pdol_data),
            cryptogram_done: qvsdc,
        };
        Ok(self.faulty(response))
    }

    /// The GPO response of an M/Chip-style card: AIP and AFL only.
    fn gpo_aip_afl(&self) -> Vec<u8> {
        let mut out = TlvBuilder::new();
        match self.profile.gpo_format {
            GpoFormat::Format1 => {
                let mut value = self.profile.aip.to_vec();
                value.extend_from_slice(&self.afl);
                out.primitive(Tag::ResponseMessageTemplateFormat1, &value);
            }
            GpoFormat::Format2 => {
                out.template(Tag::ResponseMessageTemplateFormat2, |body| {
                    body.primitive(Tag::ApplicationInterchangeProfile, &self.profile.aip)
                        .primitive(Tag::ApplicationFileLocator, &self.afl);
                });
            }
        }
        out.finish()
    }

    /// qVSDC processing in GPO (Book C-3): card risk management, the cryptogram, and the fDDA
    /// signature over the terminal's dynamic data.
    fn qvsdc_gpo(&self, pdol_values: &[(Tag, &[u8])]) -> Answer {
        let ttq = value_of(pdol_values, Tag::TerminalTransactionQualifiers);
        let ttq = |idx: usize| ttq.get(idx).copied().unwrap_or(0);
        let online_pin = self.profile.ctq[0] & CTQ1_ONLINE_PIN != 0;
        let offline_only = ttq(0) & TTQ1_OFFLINE_ONLY != 0;
        let cryptogram = if !online_pin
            && ttq(1) & TTQ2_ONLINE_CRYPTOGRAM_REQUIRED == 0
            && self.within_offline_limit(pdol_values)
        {
            CryptogramType::Tc
        } else if offline_only {
            CryptogramType::Aac
        } else {
            CryptogramType::Arqc
        };
        let atc = self.atc.to_be_bytes();
        let iad = [0x06, 0x01, 0x12, 0x03, cvr_ac_bits(cryptogram), 0x00, 0x00];
        let ac = self.cryptogram(pdol_values, &iad)?;
        let un = value_of(pdol_values, Tag::UnpredictableNumber);
        let mut response = TlvBuilder::new();
        let mut body = TlvBuilder::new();
        body.primitive(Tag::ApplicationInterchangeProfile, &self.profile.aip)
            .primitive(Tag::ApplicationFileLocator, &self.afl)
            .primitive(Tag::ApplicationTransactionCounter, &atc)
            .primitive(Tag::CryptogramInformationData, &[cryptogram.bits()])
            .primitive(Tag::ApplicationCryptogram, &ac)
            .primitive(Tag::IssuerApplicationData, &iad)
            .primitive(Tag::CardTransactionQualifiers, &self.profile.ctq);
        let signs = self.profile.aip[0] & AIP_DDA != 0
            && (cryptogram == CryptogramType::Tc || ttq(0) & TTQ1_ODA_FOR_ONLINE != 0);
        if let (true, Some(signing_key)) = (signs, &self.signing_key) {
            let card_un = self.card_random(b"card unpredictable number", un);
            let mut card_data = alloc::vec![FDDA_VERSION];
            card_data.extend_from_slice(&card_un[..4]);
            card_data.extend_from_slice(&self.profile.ctq);
            let mut dynamic_data = alloc::vec![0x08];
            dynamic_data.extend_from_slice(&self.card_random(b"icc dynamic number", un)[..8]);
            let sdad = cert::signed_dynamic_data(
                signing_key,
                &dynamic_data,
                &[
                    un,
                    value_of(pdol_values, Tag::AmountAuthorised),
                    value_of(pdol_values, Tag::TransactionCurrencyCode),
                    &card_data,
                ],
            )
            .map_err(internal)?;
            body.primitive(Tag::SignedDynamicApplicationData, &sdad)
                .primitive(Tag::CardAuthenticationRelatedData, &card_data);
        }
        response.primitive(Tag::ResponseMessageTemplateFormat2, &body.finish());
        Ok(response.finish())
    }

    /// GENERATE AC (Book 3 section 6.5.5) of an M/Chip-style card, with CDA (Book 2 6.6.1).
    fn generate_ac(&mut self, command: &Command, transaction: &mut Transaction) -> Answer {
        let Some(pdol_data) = transaction.pdol_data.clone() else {
            return Err(StatusWord::CONDITIONS_NOT_SATISFIED);
        };
        if transaction.cryptogram_done {
            // qVSDC cards answer in GPO; contactless M/Chip has no second GENERATE AC.
            return Err(StatusWord::CONDITIONS_NOT_SATISFIED);
        }
        let Some(requested) = CryptogramType::from_bits(command.p1) else {
            return Err(StatusWord::INCORRECT_P1_P2);
        };
        if command.p2 != 0x00 {
            return Err(StatusWord::INCORRECT_P1_P2);
        }
        let Ok(values) = self.cdol1.split(&command.data) else {
            return Err(StatusWord::WRONG_LENGTH);
        };
        // Card risk management: never more than asked for (Book 3 6.5.5.4); online PIN needs
        // an online authorisation; offline only within the card's limit.
        let online_pin = value_of(&values, Tag::CvmResults)
            .first()
            .is_some_and(|cvm| cvm & 0x3F == 0x02);
        let cryptogram = match requested {
            CryptogramType::Aac => CryptogramType::Aac,
            CryptogramType::Tc if !online_pin && self.within_offline_limit(&values) => {
                CryptogramType::Tc
            }
            CryptogramType::Tc | CryptogramType::Arqc => CryptogramType::Arqc,
        };
        let cid = cryptogram.bits();
        let atc = self.atc.to_be_bytes();
        let mut iad = [0u8; 18];
        // Key derivation index, cryptogram version number, CVR (6), DAC/IDN (2), counters (8).
        iad[0] = 0x01;
        iad[1] = 0x10;
        iad[2] = cvr_ac_bits(cryptogram);
        let ac = self.cryptogram(&values, &iad)?;
        transaction.cryptogram_done = true;
        let cda = command.p1 & P1_CDA != 0
            && self.profile.aip[0] & AIP_CDA != 0
            && cryptogram != CryptogramType::Aac;
        let mut body = TlvBuilder::new();
        body.primitive(Tag::CryptogramInformationData, &[cid])
            .primitive(Tag::ApplicationTransactionCounter, &atc);
        let body = match (cda, &self.signing_key) {
            (true, Some(signing_key)) => {
                let un = value_of(&values, Tag::UnpredictableNumber);
                let mut iad_tlv = Vec::new();
                tlv::encode(Tag::IssuerApplicationData, &iad, &mut iad_tlv);
                // Transaction Data Hash Code (Book 2 6.6.1): PDOL data, CDOL1 data, and the
                // response's data objects other than the signature, in the order sent.
                let mut head = body.clone().finish();
                head.extend_from_slice(&iad_tlv);
                let hash_code = cert::sha1(&[&pdol_data, &command.data, &head]);
                let idn = self.card_random(b"icc dynamic number", un);
                // ICC Dynamic Data (Book 2 Table 18): IDN length, IDN, CID, AC, hash code.
                let mut dynamic_data = alloc::vec![0x08];
                dynamic_data.extend_from_slice(&idn[..8]);
                dynamic_data.push(cid);
                dynamic_data.extend_from_slice(&ac);
                dynamic_data.extend_from_slice(&hash_code);
                let sdad = cert::signed_dynamic_data(signing_key, &dynamic_data, &[un])
                    .map_err(internal)?;
                body.primitive(Tag::SignedDynamicApplicationData, &sdad)
                    .raw(&iad_tlv);
                body
            }
            _ => {
                body.primitive(Tag::ApplicationCryptogram, &ac)
                    .primitive(Tag::IssuerApplicationData, &iad);
                body
            }
        };
        let mut response = TlvBuilder::new();
        response.primitive(Tag::ResponseMessageTemplateFormat2, &body.finish());
        Ok(response.finish())
    }

    /// The application cryptogram over the transaction's data (see [`crate::cryptogram`]), under
    /// the session key of the card's cryptogram version. An AAC is computed the same way.
    fn cryptogram(&self, values: &[(Tag, &[u8])], iad: &[u8]) -> Result<[u8; 8], StatusWord> {
        let atc = self.atc.to_be_bytes();
        let mut data: Vec<(Tag, &[u8])> = values.to_vec();
        data.push((Tag::ApplicationInterchangeProfile, &self.profile.aip));
        data.push((Tag::ApplicationTransactionCounter, &atc));
        data.push((Tag::IssuerApplicationData, iad));
        let input = cryptogram_input(self.profile.version, data.as_slice());
        let un = value_of(values, Tag::UnpredictableNumber);
        let inputs = TransactionInputs {
            atc: Atc::from(self.atc),
            unpredictable_number: UnpredictableNumber::from_bytes(un).ok(),
        };
        self.keys
            .generate_cryptogram(&inputs, &input)
            .map(|cryptogram| *cryptogram.as_bytes())
            .map_err(|_| StatusWord(0x6F00))
    }

    /// Whether the amount is within the card's offline limit in the card's own currency.
    fn within_offline_limit(&self, values: &[(Tag, &[u8])]) -> bool {
        value_of(values, Tag::TransactionCurrencyCode) == CARD_CURRENCY
            && bcd_amount(value_of(values, Tag::AmountAuthorised))
                .is_some_and(|amount| amount <= self.profile.offline_limit)
    }

    /// Deterministic per-transaction card randomness: SHA-1 over the profile, a label, the ATC
    /// and the terminal's unpredictable number. Test cards must replay identically.
    fn card_random(&self, label: &[u8], terminal_un: &[u8]) -> [u8; 20] {
        cert::sha1(&[
            self.profile.name.as_bytes(),
            label,
            &self.atc.to_be_bytes(),
            terminal_un,
        ])
    }

    /// Applies the profile's fault to a response.
    fn faulty(&self, mut response: Vec<u8>) -> Vec<u8> {
        match self.profile.fault {
            Fault::None => {}
            Fault::TruncatedTlv => response.truncate(response.len().saturating_sub(7)),
        }
        response
    }
}

/// CVR bits for the cryptogram returned (shared layout of the Visa and M/Chip CVRs): b8-b7
/// "second GENERATE AC not requested" (`10`), b6-b5 the first cryptogram (`00` AAC, `01` TC,
/// `10` ARQC).
fn cvr_ac_bits(cryptogram: CryptogramType) -> u8 {
    0x80 | match cryptogram {
        CryptogramType::Aac => 0x00,
        CryptogramType::Tc => 0x10,
        CryptogramType::Arqc => 0x20,
    }
}

/// The value of `tag` in DOL data split into values, or empty.
fn value_of<'a>(values: &[(Tag, &'a [u8])], tag: Tag) -> &'a [u8] {
    values
        .iter()
        .find(|(candidate, _)| *candidate == tag)
        .map_or(&[], |(_, value)| value)
}

/// An `n 12` amount in BCD; `None` for a non-decimal nibble.
fn bcd_amount(bytes: &[u8]) -> Option<u64> {
    bytes
        .iter()
        .flat_map(|byte| [byte >> 4, byte & 0x0F])
        .try_fold(0u64, |acc, digit| {
            (digit < 10).then(|| acc.saturating_mul(10).saturating_add(u64::from(digit)))
        })
}

/// Truncation rule for Le (ISO/IEC 7816-4 5.3.3): a shorter Le than the data gets `6Cxx` with
/// the right length; `00` or no Le takes everything.
fn fit_le(data: Vec<u8>, le: Option<u8>) -> (Vec<u8>, StatusWord) {
    match le {
        Some(le) if le != 0 && usize::from(le) < data.len() => {
            let len = u8::try_from(data.len()).unwrap_or(0);
            (Vec::new(), StatusWord(0x6C00 | u16::from(len)))
        }
        _ => (data, StatusWord::SUCCESS),
    }
}

/// Any failure inside the card's own cryptography: `6F00`, "no precise diagnosis".
fn internal(_: SignError) -> StatusWord {
    StatusWord(0x6F00)
}

/// Decimal digits packed two per byte, padded with `F` to `len` bytes (format `cn`); `D` in the
/// text becomes the Track 2 field separator nibble.
fn pack_digits(text: &str, len: usize) -> Vec<u8> {
    let mut nibbles: Vec<u8> = text
        .bytes()
        .map(|c| {
            if c == b'D' {
                0x0D
            } else {
                c.wrapping_sub(b'0') & 0x0F
            }
        })
        .collect();
    nibbles.resize(len * 2, 0x0F);
    nibbles
        .chunks(2)
        .map(|pair| (pair[0] << 4) | pair[1])
        .collect()
}

fn bcd_text(bytes: &[u8]) -> alloc::string::String {
    bytes
        .iter()
        .flat_map(|byte| [byte >> 4, byte & 0x0F])
        .map(|nibble| char::from(b'0' + nibble))
        .collect()
}

/// Why personalisation failed (only with broken constants; the tests personalise every profile).
#[derive(Debug)]
enum PersoError {
    Sign,
    Keys,
}

/// The PPSE FCI (Book B 3.3): one directory entry per application, in the card's order.
fn ppse_fci(apps: &[App]) -> Vec<u8> {
    let mut ppse = TlvBuilder::new();
    ppse.template(Tag::FciTemplate, |fci| {
        fci.primitive(Tag::DfName, apdu::PPSE_NAME).template(
            Tag::FciProprietaryTemplate,
            |proprietary| {
                proprietary.template(Tag::FciIssuerDiscretionaryData, |discretionary| {
                    for app in apps {
                        let profile = &app.profile;
                        discretionary.template(Tag::ApplicationTemplate, |entry| {
                            entry
                                .primitive(Tag::AdfName, profile.aid)
                                .primitive(Tag::ApplicationLabel, profile.label.as_bytes())
                                .primitive(Tag::ApplicationPriorityIndicator, &[profile.priority]);
                            if let Some(kernel_id) = profile.kernel_id {
                                entry.primitive(Tag::KernelIdentifier, &[kernel_id]);
                            }
                        });
                    }
                });
            },
        );
    });
    ppse.finish()
}

/// Builds one application's files, certificates and keys from its profile.
fn personalise(profile: Profile) -> Result<App, PersoError> {
    let (pdol_bytes, cdol1_bytes): (&[u8], &[u8]) = match profile.flow {
        Flow::Qvsdc => (PDOL_QVSDC, &[]),
        Flow::MChip if profile.gpo_format == GpoFormat::Format1 && profile.pki.is_none() => {
            (&[], CDOL1_MCHIP)
        }
        Flow::MChip => (PDOL_MCHIP, CDOL1_MCHIP),
    };
    let pdol = Dol::parse(pdol_bytes).map_err(|_| PersoError::Keys)?;
    let cdol1 = Dol::parse(cdol1_bytes).map_err(|_| PersoError::Keys)?;

    // Application FCI (Book 1 11.3.4, Table 45).
    let mut fci = TlvBuilder::new();
    fci.template(Tag::FciTemplate, |fci| {
        fci.primitive(Tag::DfName, profile.aid).template(
            Tag::FciProprietaryTemplate,
            |proprietary| {
                proprietary
                    .primitive(Tag::ApplicationLabel, profile.label.as_bytes())
                    .primitive(Tag::ApplicationPriorityIndicator, &[profile.priority]);
                if !pdol.is_empty() {
                    proprietary.primitive(Tag::Pdol, pdol_bytes);
                }
                proprietary.primitive(Tag::LanguagePreference, b"en");
            },
        );
    });

    // SFI 1, record 1: magnetic-stripe image; not signed.
    let yymm = bcd_text(&profile.expiry[..2]);
    let track2_text = alloc::format!("{}D{yymm}2010000000000", profile.pan);
    let track2 = pack_digits(&track2_text, track2_text.len().div_ceil(2));
    let pan = pack_digits(profile.pan, profile.pan.len().div_ceil(2));
    let mut record_1 = TlvBuilder::new();
    record_1.template(Tag::ReadRecordResponseTemplate, |record| {
        record
            .primitive(Tag::Track2EquivalentData, &track2)
            .primitive(Tag::CardholderName, profile.cardholder_name.as_bytes());
    });

    // SFI 2, record 1: the data ODA signs (Book 3 10.3).
    let mut record_2 = TlvBuilder::new();
    record_2.template(Tag::ReadRecordResponseTemplate, |record| {
        record
            .primitive(Tag::ApplicationPan, &pan)
            .primitive(Tag::ApplicationExpirationDate, &profile.expiry)
            .primitive(Tag::ApplicationEffectiveDate, &profile.effective)
            .primitive(Tag::IssuerCountryCode, &ISSUER_COUNTRY)
            .primitive(Tag::PanSequenceNumber, &[profile.psn])
            .primitive(Tag::ApplicationUsageControl, &[0xFF, 0x00])
            .primitive(Tag::ApplicationCurrencyCode, &CARD_CURRENCY)
            .primitive(Tag::ApplicationVersionNumberIcc, &[0x00, 0x02]);
        if !cdol1.is_empty() {
            record
                .primitive(Tag::Cdol1, cdol1_bytes)
                .primitive(Tag::IssuerActionCodeDefault, &IAC_DEFAULT)
                .primitive(Tag::IssuerActionCodeDenial, &IAC_DENIAL)
                .primitive(Tag::IssuerActionCodeOnline, &IAC_ONLINE);
        }
        if let Some(cvm_list) = profile.cvm_list {
            record.primitive(Tag::CvmList, cvm_list);
        }
        if profile.pki.is_some() {
            record.primitive(Tag::StaticDataAuthenticationTagList, &[0x82]);
        }
    });
    let record_1 = record_1.finish();
    let record_2 = record_2.finish();
    let mut records = alloc::vec![
        Record {
            sfi: 1,
            number: 1,
            data: record_1,
        },
        Record {
            sfi: 2,
            number: 1,
            data: record_2.clone(),
        },
    ];
    // AFL (Book 3 10.2): SFI 1 record 1; SFI 2 record 1, signed when the card does ODA.
    let mut afl = alloc::vec![0x08, 0x01, 0x01, 0x00, 0x10, 0x01, 0x01, 0x00];

    if let Some(pki) = profile.pki {
        afl[7] = 0x01;
        afl.extend_from_slice(&[0x18, 0x01, 0x02, 0x00]);
        let issuer_id = pack_digits(&profile.pan[..6], 4);
        let issuer = cert::issuer_certificate(
            &pki.ca,
            &pki.issuer,
            CertificateFields {
                subject: &issuer_id,
                expiry_mmyy: CERTIFICATE_EXPIRY,
                serial: ISSUER_CERTIFICATE_SERIAL,
            },
        )
        .map_err(|_| PersoError::Sign)?;
        // Static data to be authenticated: the value of the signed record's `70` template,
        // then the AIP named by the SDA tag list.
        let signed = tlv::parse_single(&record_2).map_err(|_| PersoError::Keys)?;
        let mut static_data = signed.value.to_vec();
        static_data.extend_from_slice(&profile.aip);
        let icc_pan = pack_digits(profile.pan, 10);
        let serial = [0x00, 0x01, profile.initial_atc.to_be_bytes()[1]];
        let icc = cert::icc_certificate(
            &pki.issuer,
            &pki.icc,
            CertificateFields {
                subject: &icc_pan,
                expiry_mmyy: CERTIFICATE_EXPIRY,
                serial,
            },
            &static_data,
        )
        .map_err(|_| PersoError::Sign)?;
        records.push(certificate_record(
            3,
            1,
            Some(pki.ca_index),
            &issuer,
            [
                Tag::IssuerPublicKeyCertificate,
                Tag::IssuerPublicKeyExponent,
                Tag::IssuerPublicKeyRemainder,
            ],
        ));
        records.push(certificate_record(
            3,
            2,
            None,
            &icc,
            [
                Tag::IccPublicKeyCertificate,
                Tag::IccPublicKeyExponent,
                Tag::IccPublicKeyRemainder,
            ],
        ));
    }

    let pan_digits = Pan::from_digits(profile.pan).map_err(|_| PersoError::Keys)?;
    let psn = PanSequenceNumber::from_bcd(profile.psn).map_err(|_| PersoError::Keys)?;
    let imk = crate::keys::issuer_master_key(profile.imk_id).ok_or(PersoError::Keys)?;
    let keys =
        CardKeys::derive(profile.version, &imk, &pan_digits, psn).map_err(|_| PersoError::Keys)?;

    Ok(App {
        profile,
        fci: fci.finish(),
        pdol,
        cdol1,
        afl,
        records,
        keys,
        signing_key: profile
            .pki
            .map(|pki| pki.signing.prepare())
            .transpose()
            .map_err(|_| PersoError::Sign)?,
        atc: profile.initial_atc,
    })
}

/// A record holding a certified key: optional CA index `8F`, certificate, exponent and remainder
/// (omitted when empty).
fn certificate_record(
    sfi: u8,
    number: u8,
    ca_index: Option<u8>,
    key: &CertifiedKey,
    [certificate_tag, exponent_tag, remainder_tag]: [Tag; 3],
) -> Record {
    let mut record = TlvBuilder::new();
    record.template(Tag::ReadRecordResponseTemplate, |record| {
        if let Some(index) = ca_index {
            record.primitive(Tag::CaPublicKeyIndexIcc, &[index]);
        }
        record
            .primitive(certificate_tag, &key.certificate)
            .primitive(exponent_tag, &key.exponent);
        if !key.remainder.is_empty() {
            record.primitive(remainder_tag, &key.remainder);
        }
    });
    Record {
        sfi,
        number,
        data: record.finish(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_pack_as_cn_and_track2() {
        assert_eq!(pack_digits("476173", 4), [0x47, 0x61, 0x73, 0xFF]);
        assert_eq!(pack_digits("12D3", 2), [0x12, 0xD3]);
        assert_eq!(pack_digits("123", 2), [0x12, 0x3F]);
    }

    #[test]
    fn amounts_read_as_bcd() {
        assert_eq!(bcd_amount(&[0, 0, 0, 0, 0x20, 0x00]), Some(2000));
        assert_eq!(bcd_amount(&[0, 0, 0, 0, 0x2A, 0x00]), None);
    }

    #[test]
    fn le_shorter_than_the_data_gets_6cxx() {
        assert_eq!(
            fit_le(alloc::vec![1, 2, 3], Some(2)),
            (Vec::new(), StatusWord(0x6C03))
        );
        assert_eq!(fit_le(alloc::vec![1, 2, 3], Some(0)).1, StatusWord::SUCCESS);
    }
}
