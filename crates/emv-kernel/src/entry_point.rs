//! Entry Point: reader configuration per AID and kernel, pre-processing against the reader limits,
//! the PPSE directory, the candidate list and final selection.
//!
//! Source: EMV Contactless Book B (Entry Point), section 3.1 (Pre-Processing: Reader Contactless
//! Transaction Limit, Reader Contactless Floor Limit, Reader CVM Required Limit and the copy of the
//! TTQ), 3.3 (Combination Selection: SELECT PPSE, directory entries `61` with ADF Name `4F`,
//! Application Priority Indicator `87` and Kernel Identifier `9F2A`, default kernels by RID, the
//! candidate list in priority order) and 3.4 (Final Selection: SELECT of the ADF, validation of the
//! FCI, and going back to the candidate list when the card refuses). Book B Table 3-6 gives the
//! default kernel for each RID when the card gives no Kernel Identifier.

use alloc::vec::Vec;

use crate::ErrorCode;
use crate::tlv::{self, Tag, TlvError};

/// The kernels this reader runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kernel {
    /// Kernel 2 (Book C-2, M/Chip EMV mode).
    C2,
    /// Kernel 3 (Book C-3, qVSDC).
    C3,
}

impl Kernel {
    /// The Kernel Identifier (Book B 3.3.2.5).
    #[must_use]
    pub const fn id(self) -> u8 {
        match self {
            Self::C2 => 2,
            Self::C3 => 3,
        }
    }

    /// The kernel with this identifier, if this reader runs it.
    #[must_use]
    pub const fn from_id(id: u8) -> Option<Self> {
        match id {
            2 => Some(Self::C2),
            3 => Some(Self::C3),
            _ => None,
        }
    }
}

/// Kernel 2 reader parameters (Book C-2 Annex A).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct C2Config {
    /// CVM Capability – CVM Required (`DF8118`), used above the CVM Required Limit.
    pub cvm_capability_cvm_required: u8,
    /// CVM Capability – No CVM Required (`DF8119`), used at or below it.
    pub cvm_capability_no_cvm_required: u8,
    /// Kernel Configuration (`DF811B`): b6 = on device cardholder verification supported.
    pub kernel_configuration: u8,
    /// Security Capability (`DF811F`): b4 = CDA.
    pub security_capability: u8,
    /// Card Data Input Capability (`DF8117`).
    pub card_data_input_capability: u8,
}

impl Default for C2Config {
    /// Online PIN and signature above the CVM limit, no CVM below; on-device CVM and CDA on.
    fn default() -> Self {
        Self {
            cvm_capability_cvm_required: 0x60,
            cvm_capability_no_cvm_required: 0x08,
            kernel_configuration: 0x20,
            security_capability: 0x08,
            card_data_input_capability: 0x00,
        }
    }
}

/// Reader configuration of one AID + kernel combination (Book B 3.1: "Entry Point Configuration").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AidConfig {
    /// The AID (5 to 16 bytes).
    pub aid: Vec<u8>,
    /// Whether a card ADF Name longer than `aid` but starting with it matches (partial selection).
    pub partial_match: bool,
    /// The kernel for this AID.
    pub kernel: Kernel,
    /// Reader Contactless Transaction Limit: at or above it, contactless is not allowed.
    pub transaction_limit: Option<u64>,
    /// Reader Contactless Floor Limit: above it, the transaction must go online.
    pub floor_limit: Option<u64>,
    /// Reader CVM Required Limit: at or above it (Book B) a CVM is required.
    pub cvm_required_limit: Option<u64>,
    /// Terminal Transaction Qualifiers (`9F66`) for Kernel 3, before pre-processing.
    pub ttq: [u8; 4],
    /// Application Version Number of the terminal (`9F09`).
    pub application_version: [u8; 2],
    /// Terminal Action Code – Default.
    pub tac_default: [u8; 5],
    /// Terminal Action Code – Denial.
    pub tac_denial: [u8; 5],
    /// Terminal Action Code – Online.
    pub tac_online: [u8; 5],
    /// Kernel 2 parameters.
    pub c2: C2Config,
}

impl AidConfig {
    /// A combination with no limits, the given kernel, and common defaults: TTQ `26 00 40 00`
    /// (EMV mode, online PIN, signature, consumer device CVM), TAC Denial zeros, TAC Online and
    /// Default `F4 50 84 80 0C`.
    #[must_use]
    pub fn new(aid: &[u8], kernel: Kernel) -> Self {
        Self {
            aid: aid.to_vec(),
            partial_match: true,
            kernel,
            transaction_limit: None,
            floor_limit: None,
            cvm_required_limit: None,
            ttq: [0x26, 0x00, 0x40, 0x00],
            application_version: [0x00, 0x02],
            tac_default: [0xF4, 0x50, 0x84, 0x80, 0x0C],
            tac_denial: [0x00; 5],
            tac_online: [0xF4, 0x50, 0x84, 0x80, 0x0C],
            c2: C2Config::default(),
        }
    }
}

/// Result of pre-processing one combination (Book B 3.1.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Preprocessing {
    /// The amount is at or above the contactless transaction limit.
    pub not_allowed: bool,
    /// The amount is above the contactless floor limit.
    pub floor_limit_exceeded: bool,
    /// The amount is at or above the CVM Required Limit.
    pub cvm_required_limit_exceeded: bool,
    /// The TTQ for Kernel 3 after pre-processing.
    pub ttq: [u8; 4],
}

/// Pre-processes one combination for `amount` (Book B 3.1.1).
#[must_use]
pub fn preprocess(config: &AidConfig, amount: u64) -> Preprocessing {
    let not_allowed = config
        .transaction_limit
        .is_some_and(|limit| amount >= limit);
    let floor_limit_exceeded = config.floor_limit.is_some_and(|limit| amount > limit);
    let cvm_required_limit_exceeded = config
        .cvm_required_limit
        .is_some_and(|limit| amount >= limit);
    let mut ttq = config.ttq;
    // Byte 2 b8 (online cryptogram required) and b7 (CVM required) are reset, then set from the
    // limits (Book B 3.1.1.2 to 3.1.1.6). A zero amount also asks for an online cryptogram.
    ttq[1] &= !0xC0;
    if floor_limit_exceeded || amount == 0 {
        ttq[1] |= 0x80;
    }
    if cvm_required_limit_exceeded {
        ttq[1] |= 0x40;
    }
    Preprocessing {
        not_allowed,
        floor_limit_exceeded,
        cvm_required_limit_exceeded,
        ttq,
    }
}

/// An entry of the PPSE directory (`61` template in `BF0C`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectoryEntry {
    /// ADF Name (`4F`).
    pub adf_name: Vec<u8>,
    /// Application Label (`50`).
    pub label: Option<Vec<u8>>,
    /// Application Priority Indicator (`87`) bits b4-b1; `None` when absent or zero.
    pub priority: Option<u8>,
    /// Kernel Identifier (`9F2A`) as returned.
    pub kernel_identifier: Option<Vec<u8>>,
    /// Extended Selection (`9F29`).
    pub extended_selection: Option<Vec<u8>>,
}

/// Malformed PPSE or ADF FCI.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EntryPointError {
    /// The FCI is not valid BER-TLV.
    #[error("malformed FCI: {0}")]
    Tlv(#[from] TlvError),
    /// The FCI lacks a mandatory template or object.
    #[error("FCI lacks {0}")]
    Missing(Tag),
    /// The DF Name in the FCI is not the name selected.
    #[error("FCI DF name differs from the selected name")]
    DfNameMismatch,
}

impl ErrorCode for EntryPointError {
    fn code(&self) -> &'static str {
        match self {
            Self::Tlv(_) => "fci_malformed",
            Self::Missing(_) => "fci_missing_data",
            Self::DfNameMismatch => "fci_df_name_mismatch",
        }
    }
}

/// Reads the directory entries of a SELECT PPSE response (Book B 3.3.2). Entries without a
/// valid ADF Name are skipped, as Book B requires.
///
/// # Errors
/// [`EntryPointError`] when the FCI is malformed or has no `6F` / `A5` / `BF0C`.
pub fn parse_ppse(fci: &[u8]) -> Result<Vec<DirectoryEntry>, EntryPointError> {
    let template = tlv::parse_single(fci)?;
    if template.tag != Tag::FciTemplate {
        return Err(EntryPointError::Missing(Tag::FciTemplate));
    }
    let proprietary = tlv::find(template.value, Tag::FciProprietaryTemplate)?
        .ok_or(EntryPointError::Missing(Tag::FciProprietaryTemplate))?;
    let discretionary = tlv::find(proprietary.value, Tag::FciIssuerDiscretionaryData)?
        .ok_or(EntryPointError::Missing(Tag::FciIssuerDiscretionaryData))?;
    let mut entries = Vec::new();
    for object in tlv::TlvIter::new(discretionary.value) {
        let object = object?;
        if object.tag != Tag::ApplicationTemplate {
            continue;
        }
        let field = |tag: Tag| -> Result<Option<Vec<u8>>, EntryPointError> {
            Ok(tlv::find(object.value, tag)?.map(|found| found.value.to_vec()))
        };
        let Some(adf_name) = field(Tag::AdfName)? else {
            continue;
        };
        if !(5..=16).contains(&adf_name.len()) {
            continue;
        }
        let priority = field(Tag::ApplicationPriorityIndicator)?
            .and_then(|value| value.first().map(|byte| byte & 0x0F))
            .filter(|priority| *priority != 0);
        entries.push(DirectoryEntry {
            adf_name,
            label: field(Tag::ApplicationLabel)?,
            priority,
            kernel_identifier: field(Tag::KernelIdentifier)?,
            extended_selection: field(Tag::ExtendedSelection)?,
        });
    }
    Ok(entries)
}

/// The default kernel for an AID's RID when the card gives no Kernel Identifier (Book B
/// Table 3-6): `A000000004` Kernel 2, `A000000003` Kernel 3, `A000000025` 4, `A000000065` 5,
/// `A000000152` 6, `A000000333` 7.
#[must_use]
pub fn default_kernel_id(adf_name: &[u8]) -> Option<u8> {
    let rid: &[u8] = adf_name.get(..5)?;
    match rid {
        [0xA0, 0x00, 0x00, 0x00, 0x04] => Some(2),
        [0xA0, 0x00, 0x00, 0x00, 0x03] => Some(3),
        [0xA0, 0x00, 0x00, 0x00, 0x25] => Some(4),
        [0xA0, 0x00, 0x00, 0x00, 0x65] => Some(5),
        [0xA0, 0x00, 0x00, 0x01, 0x52] => Some(6),
        [0xA0, 0x00, 0x00, 0x03, 0x33] => Some(7),
        _ => None,
    }
}

/// The kernel an entry asks for (Book B 3.3.2.5): the Kernel Identifier's first byte when it
/// names an international kernel (b8-b7 = `00` or `01`) other than 0, else the RID default.
/// Domestic kernels (b8-b7 = `10` or `11`) are not run here.
#[must_use]
pub fn requested_kernel_id(entry: &DirectoryEntry) -> Option<u8> {
    match entry.kernel_identifier.as_deref() {
        None | Some([]) => default_kernel_id(&entry.adf_name),
        Some([first, ..]) if first & 0x80 == 0 => match first & 0x3F {
            0 => default_kernel_id(&entry.adf_name),
            id => Some(id),
        },
        Some(_) => None,
    }
}

/// One combination on the candidate list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The ADF Name to select.
    pub adf_name: Vec<u8>,
    /// The directory priority (`None` sorts last).
    pub priority: Option<u8>,
    /// The kernel.
    pub kernel: Kernel,
    /// Index of the matching [`AidConfig`].
    pub config_index: usize,
    /// Order in the directory, to keep equal priorities stable.
    pub order: usize,
}

/// Builds the candidate list (Book B 3.3.2.5 to 3.3.3): each directory entry against each allowed
/// reader combination, with exact or partial AID match and the same kernel, sorted by priority.
#[must_use]
pub fn build_candidates(
    entries: &[DirectoryEntry],
    configs: &[AidConfig],
    preprocessing: &[Preprocessing],
) -> Vec<Candidate> {
    let mut candidates = Vec::new();
    for (order, entry) in entries.iter().enumerate() {
        let Some(kernel_id) = requested_kernel_id(entry) else {
            continue;
        };
        for (config_index, config) in configs.iter().enumerate() {
            let allowed = preprocessing
                .get(config_index)
                .is_some_and(|result| !result.not_allowed);
            let name_matches = entry.adf_name == config.aid
                || (config.partial_match && entry.adf_name.starts_with(&config.aid));
            if allowed && name_matches && config.kernel.id() == kernel_id {
                candidates.push(Candidate {
                    adf_name: entry.adf_name.clone(),
                    priority: entry.priority,
                    kernel: config.kernel,
                    config_index,
                    order,
                });
                break;
            }
        }
    }
    candidates.sort_by_key(|candidate| (candidate.priority.unwrap_or(16), candidate.order));
    candidates
}

/// The parts of an application's FCI the kernels use (Book 1 Table 45, Book B 3.4).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdfFci {
    /// DF Name (`84`).
    pub df_name: Vec<u8>,
    /// PDOL (`9F38`), if the card gave one.
    pub pdol: Option<Vec<u8>>,
    /// Application Label (`50`).
    pub label: Option<Vec<u8>>,
    /// Language Preference (`5F2D`).
    pub language_preference: Option<Vec<u8>>,
    /// Every primitive object of the FCI proprietary template, for the kernel's data store.
    pub objects: Vec<(Tag, Vec<u8>)>,
}

/// Reads and checks the FCI of a selected application.
///
/// # Errors
/// [`EntryPointError`] when it is malformed, lacks `6F` or `84`, or names another DF.
pub fn parse_adf_fci(fci: &[u8], selected: &[u8]) -> Result<AdfFci, EntryPointError> {
    let template = tlv::parse_single(fci)?;
    if template.tag != Tag::FciTemplate {
        return Err(EntryPointError::Missing(Tag::FciTemplate));
    }
    let df_name = tlv::find(template.value, Tag::DfName)?
        .ok_or(EntryPointError::Missing(Tag::DfName))?
        .value
        .to_vec();
    if df_name != selected {
        return Err(EntryPointError::DfNameMismatch);
    }
    let mut objects = Vec::new();
    if let Some(proprietary) = tlv::find(template.value, Tag::FciProprietaryTemplate)? {
        tlv::for_each_primitive(proprietary.value, &mut |object| {
            objects.push((object.tag, object.value.to_vec()));
        })?;
    }
    let get = |tag: Tag| {
        objects
            .iter()
            .find(|(found, _)| *found == tag)
            .map(|(_, value)| value.clone())
    };
    Ok(AdfFci {
        pdol: get(Tag::Pdol),
        label: get(Tag::ApplicationLabel),
        language_preference: get(Tag::LanguagePreference),
        df_name,
        objects,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(adf_name: &[u8], kernel_identifier: Option<&[u8]>) -> DirectoryEntry {
        DirectoryEntry {
            adf_name: adf_name.to_vec(),
            label: None,
            priority: None,
            kernel_identifier: kernel_identifier.map(<[u8]>::to_vec),
            extended_selection: None,
        }
    }

    #[test]
    fn kernel_identifier_rules() {
        let visa = [0xA0, 0x00, 0x00, 0x00, 0x03, 0x10, 0x10];
        assert_eq!(requested_kernel_id(&entry(&visa, None)), Some(3));
        assert_eq!(requested_kernel_id(&entry(&visa, Some(&[0x00]))), Some(3));
        assert_eq!(requested_kernel_id(&entry(&visa, Some(&[0x02]))), Some(2));
        assert_eq!(
            requested_kernel_id(&entry(&visa, Some(&[0x83, 0x01, 0x02]))),
            None
        );
        assert_eq!(
            requested_kernel_id(&entry(&[0xA0, 0, 0, 0, 0x99], None)),
            None
        );
    }

    #[test]
    fn preprocessing_sets_ttq_bits() {
        let mut config = AidConfig::new(&[0xA0, 0, 0, 0, 3], Kernel::C3);
        config.transaction_limit = Some(10_000);
        config.floor_limit = Some(0);
        config.cvm_required_limit = Some(5_000);
        let small = preprocess(&config, 100);
        assert!(!small.not_allowed && small.floor_limit_exceeded);
        assert_eq!(small.ttq[1], 0x80);
        let cvm = preprocess(&config, 5_000);
        assert_eq!(cvm.ttq[1], 0xC0);
        assert!(preprocess(&config, 10_000).not_allowed);
    }
}
