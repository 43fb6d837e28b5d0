//! The named card profiles: what each card is personalised with and which behaviour it
//! exercises. Personalisation itself (records, certificates) happens in [`crate::card`].

use alloc::vec::Vec;

use payment_crypto::emv::CryptogramVersion;

use crate::keys::{
    CA_INDEX_MASTERCARD, CA_INDEX_VISA, IMK_MASTERCARD, IMK_PRIVATE_LABEL, IMK_VISA,
};
use crate::rsa::RsaTestKey;
use crate::test_keys;

/// How the application processes a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flow {
    /// Visa-like qVSDC (EMV Contactless Book C-3): the card decides and computes its cryptogram
    /// in GET PROCESSING OPTIONS; fDDA signature in the GPO response; no GENERATE AC.
    Qvsdc,
    /// Mastercard-like M/Chip EMV mode (Book C-2): GPO returns AIP and AFL, the cryptogram comes
    /// from GENERATE AC, with a CDA signature when asked for and supported.
    MChip,
}

/// Which GPO response template the card uses (Book 3 section 6.5.8.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum GpoFormat {
    /// `80`: AIP and AFL concatenated.
    Format1,
    /// `77`: BER-TLV objects.
    Format2,
}

/// Deliberate misbehaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    /// None: the card follows the books.
    None,
    /// GPO and READ RECORD answers are cut short, so their TLV declares more bytes than follow.
    TruncatedTlv,
}

/// The offline PKI of a card: the CA that certifies its issuer, the issuer key, the ICC key that
/// the issuer certifies, and the key the card actually signs with (another one for a cloned card).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Pki {
    pub(crate) ca_index: u8,
    pub(crate) ca: RsaTestKey,
    pub(crate) issuer: RsaTestKey,
    pub(crate) icc: RsaTestKey,
    pub(crate) signing: RsaTestKey,
}

/// One card profile.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Profile {
    pub(crate) name: &'static str,
    pub(crate) description: &'static str,
    pub(crate) flow: Flow,
    pub(crate) gpo_format: GpoFormat,
    pub(crate) fault: Fault,
    pub(crate) aid: &'static [u8],
    pub(crate) label: &'static str,
    /// Application Priority Indicator (`87`): 1 is the highest priority.
    pub(crate) priority: u8,
    /// Kernel Identifier (`9F2A`) in the PPSE directory entry, if the card gives one.
    pub(crate) kernel_id: Option<u8>,
    pub(crate) pan: &'static str,
    /// PAN Sequence Number (`5F34`), BCD.
    pub(crate) psn: u8,
    /// Application Expiration Date (`5F24`), YYMMDD BCD.
    pub(crate) expiry: [u8; 3],
    /// Application Effective Date (`5F25`), YYMMDD BCD.
    pub(crate) effective: [u8; 3],
    pub(crate) cardholder_name: &'static str,
    pub(crate) pin: &'static str,
    pub(crate) imk_id: &'static str,
    pub(crate) version: CryptogramVersion,
    /// Application Interchange Profile (`82`).
    pub(crate) aip: [u8; 2],
    /// Card Transaction Qualifiers (`9F6C`, qVSDC only).
    pub(crate) ctq: [u8; 2],
    /// Largest amount (minor units, in the card's currency) the card approves offline.
    pub(crate) offline_limit: u64,
    /// CVM List (`8E`) value, if the card has one.
    pub(crate) cvm_list: Option<&'static [u8]>,
    pub(crate) pki: Option<Pki>,
    pub(crate) initial_atc: u16,
}

/// Application currency and issuer country of every test card: US dollar, United States.
pub(crate) const CARD_CURRENCY: [u8; 2] = [0x08, 0x40];
pub(crate) const ISSUER_COUNTRY: [u8; 2] = [0x08, 0x40];

const AID_VISA: &[u8] = &[0xA0, 0x00, 0x00, 0x00, 0x03, 0x10, 0x10];
const AID_MASTERCARD: &[u8] = &[0xA0, 0x00, 0x00, 0x00, 0x04, 0x10, 0x10];
/// An AID under a RID no payment system registered: no reader kernel supports it.
const AID_PRIVATE_LABEL: &[u8] = &[0xA0, 0x00, 0x00, 0x99, 0x99, 0x01, 0x01];

/// CVM List of the Mastercard-like cards (Book 3 Annex C3): amounts X = Y = 0, then
/// enciphered PIN online (`02`, apply the next rule if it fails: `42`) if the terminal supports it
/// (`03`), signature (`1E`) if supported, no CVM (`1F`) if supported.
const CVM_LIST_MASTERCARD: &[u8] = &[
    0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x42, 0x03, 0x1E, 0x03, 0x1F, 0x03,
];

/// CVM List of the online-PIN card: enciphered PIN online, always (`00`), failing cardholder
/// verification if it is not performed (b7 clear).
const CVM_LIST_ONLINE_PIN: &[u8] = &[0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00];

/// The Visa-like test PKI; `signing` differs from `icc` only for a cloned card.
fn visa_pki(icc: RsaTestKey, signing: RsaTestKey) -> Pki {
    Pki {
        ca_index: CA_INDEX_VISA,
        ca: test_keys::CA_VISA,
        issuer: test_keys::ISSUER_VISA,
        icc,
        signing,
    }
}

/// The Mastercard-like test PKI.
fn mastercard_pki(icc: RsaTestKey) -> Pki {
    Pki {
        ca_index: CA_INDEX_MASTERCARD,
        ca: test_keys::CA_MASTERCARD,
        issuer: test_keys::ISSUER_MASTERCARD,
        icc,
        signing: icc,
    }
}

/// A card: a name, what it exercises, and its applications in PPSE order.
#[derive(Debug, Clone)]
pub(crate) struct CardProfile {
    pub(crate) name: &'static str,
    pub(crate) description: &'static str,
    pub(crate) applications: Vec<Profile>,
}

/// Every card profile: one per single-application profile, then the multi-application card.
pub(crate) fn cards() -> Vec<CardProfile> {
    let applications = applications();
    let mut cards: Vec<CardProfile> = applications
        .iter()
        .map(|app| CardProfile {
            name: app.name,
            description: app.description,
            applications: alloc::vec![*app],
        })
        .collect();
    let find = |name: &str| applications.iter().find(|app| app.name == name).copied();
    if let (Some(private_label), Some(mastercard)) = (find("no-supported-aid"), find("mc-cda")) {
        cards.push(CardProfile {
            name: "multi-app",
            description: "Two applications: the private-label one no kernel supports at \
                          priority 1, then the Mastercard-like M/Chip CDA one at priority 2; \
                          Entry Point must skip the first and select the second.",
            applications: alloc::vec![
                Profile {
                    priority: 0x01,
                    ..private_label
                },
                Profile {
                    priority: 0x02,
                    pan: "5413330089010459",
                    cardholder_name: "SUNBAY/MULTI APP",
                    pki: Some(mastercard_pki(test_keys::ICC_MC_MULTI_APP)),
                    initial_atc: 0x0060,
                    ..mastercard
                },
            ],
        });
    }
    cards
}

/// Every single-application profile.
fn applications() -> [Profile; 7] {
    let visa = Profile {
        name: "visa-fdda",
        description: "Visa-like qVSDC card with fDDA: approves offline (TC) up to 20.00 USD when \
                      the reader allows it, otherwise goes online (ARQC); cryptogram version 18.",
        flow: Flow::Qvsdc,
        gpo_format: GpoFormat::Format2,
        fault: Fault::None,
        aid: AID_VISA,
        label: "VISA CREDIT",
        priority: 0x01,
        kernel_id: Some(0x03),
        pan: "4761739001010010",
        psn: 0x01,
        expiry: [0x30, 0x12, 0x31],
        effective: [0x24, 0x01, 0x01],
        cardholder_name: "SUNBAY/VISA FDDA",
        pin: "1234",
        imk_id: IMK_VISA,
        version: CryptogramVersion::VisaCvn18,
        // DDA (fDDA) supported.
        aip: [0x20, 0x00],
        // Go online if ODA fails and the reader is online capable (b6).
        ctq: [0x20, 0x00],
        offline_limit: 2000,
        cvm_list: None,
        pki: Some(visa_pki(test_keys::ICC_VISA_FDDA, test_keys::ICC_VISA_FDDA)),
        initial_atc: 0x0010,
    };
    let mastercard = Profile {
        name: "mc-cda",
        description: "Mastercard-like M/Chip card with CDA: GENERATE AC returns a TC up to 10.00 \
                      USD, an ARQC above, signed with CDA when the reader asks; CVM list with \
                      online PIN, signature, no CVM.",
        flow: Flow::MChip,
        gpo_format: GpoFormat::Format2,
        fault: Fault::None,
        aid: AID_MASTERCARD,
        label: "MASTERCARD",
        priority: 0x01,
        kernel_id: Some(0x02),
        pan: "5413330089010434",
        psn: 0x01,
        expiry: [0x29, 0x11, 0x30],
        effective: [0x24, 0x01, 0x01],
        cardholder_name: "SUNBAY/MC CDA",
        pin: "1234",
        imk_id: IMK_MASTERCARD,
        version: CryptogramVersion::MChip,
        // Cardholder verification, terminal risk management, CDA; EMV mode (Book C-2).
        aip: [0x19, 0x80],
        ctq: [0x00, 0x00],
        offline_limit: 1000,
        cvm_list: Some(CVM_LIST_MASTERCARD),
        pki: Some(mastercard_pki(test_keys::ICC_MC_CDA)),
        initial_atc: 0x0020,
    };
    [
        visa,
        mastercard,
        Profile {
            name: "visa-online-pin",
            description: "Visa-like qVSDC card that always asks for online PIN (CTQ byte 1 b8, \
                          CVM list rule 02 00) and always goes online (ARQC); fDDA on.",
            pan: "4761739001010119",
            cardholder_name: "SUNBAY/VISA PIN",
            pin: "4315",
            // Online PIN required (b8), go online if ODA fails (b6).
            ctq: [0xA0, 0x00],
            offline_limit: 0,
            cvm_list: Some(CVM_LIST_ONLINE_PIN),
            pki: Some(visa_pki(
                test_keys::ICC_VISA_ONLINE_PIN,
                test_keys::ICC_VISA_ONLINE_PIN,
            )),
            initial_atc: 0x0030,
            ..visa
        },
        Profile {
            name: "expired",
            description: "Mastercard-like M/Chip card with CDA whose application expired on \
                          2024-11-30 (5F24); its certificates are still valid, so only the \
                          expiry check fails. Answers GPO in format 1.",
            gpo_format: GpoFormat::Format1,
            pan: "5413330089010442",
            expiry: [0x24, 0x11, 0x30],
            effective: [0x21, 0x12, 0x01],
            cardholder_name: "SUNBAY/MC EXPIRED",
            pin: "2580",
            pki: Some(mastercard_pki(test_keys::ICC_MC_EXPIRED)),
            initial_atc: 0x0040,
            ..mastercard
        },
        Profile {
            name: "bad-signature",
            description: "Visa-like qVSDC card whose certificates are genuine but whose fDDA \
                          signature is made with an uncertified key, as a cloned card's would \
                          be: offline data authentication must fail.",
            pan: "4761739001010028",
            cardholder_name: "SUNBAY/VISA CLONE",
            pin: "1234",
            pki: Some(visa_pki(
                test_keys::ICC_VISA_BAD_SIGNATURE,
                test_keys::ICC_ROGUE,
            )),
            initial_atc: 0x0050,
            ..visa
        },
        Profile {
            name: "no-supported-aid",
            description: "Private-label card whose only application (A0000099990101) no \
                          payment kernel supports; otherwise a plain EMV card without ODA.",
            flow: Flow::MChip,
            gpo_format: GpoFormat::Format1,
            aid: AID_PRIVATE_LABEL,
            label: "SUNBAY LOYALTY",
            kernel_id: None,
            pan: "6799990000000012",
            cardholder_name: "SUNBAY/PRIVATE LABEL",
            pin: "0000",
            imk_id: IMK_PRIVATE_LABEL,
            version: CryptogramVersion::Emv,
            aip: [0x08, 0x00],
            offline_limit: 0,
            cvm_list: Some(CVM_LIST_MASTERCARD),
            pki: None,
            initial_atc: 0x0001,
            ..mastercard
        },
        Profile {
            name: "malformed",
            description: "Visa-like card that selects normally but answers GET PROCESSING \
                          OPTIONS and READ RECORD with truncated TLV (a length longer than the \
                          data that follows).",
            fault: Fault::TruncatedTlv,
            pan: "4761739001010036",
            cardholder_name: "SUNBAY/MALFORMED",
            pin: "1234",
            aip: [0x00, 0x00],
            pki: None,
            initial_atc: 0x0001,
            ..visa
        },
    ]
}
