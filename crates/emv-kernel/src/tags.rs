//! The EMV data element dictionary: named [`Tag`] constants with their spec names, formats,
//! lengths and sources, and a lookup by tag number.
//!
//! Sources: EMV 4.4 Book 3, Annex A1 ("Data Elements Dictionary") for the EMV tags;
//! EMV Contactless Book B (Entry Point) for `9F2A`; Book C-2 (Kernel 2) Annex A for the `DF81xx`
//! reader data and `9F6E`, `DF8129`; Book C-3 (Kernel 3) Annex A for `9F66`, `9F6C`, `9F69`, `9F5D`.
//!
//! Formats (Book 3 section 4.3): `n` numeric BCD right-justified with leading zeros, `cn` compressed
//! numeric BCD left-justified padded with trailing `F`, `b` binary, `a` alphabetic, `an`
//! alphanumeric, `ans` alphanumeric special. Lengths are in bytes (a `n 12` amount is 6 bytes).
//! Certificate-sized values are bounded by 248 bytes, the largest modulus Book 2 allows.

use crate::tlv::Tag;

/// Data element format (Book 3 section 4.3), used for display and for DOL padding (Book 3 5.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// `n`: numeric, BCD, right-justified, padded with leading hex zeros.
    N,
    /// `cn`: compressed numeric, BCD, left-justified, padded with trailing hex `F`.
    Cn,
    /// `b`: binary.
    B,
    /// `a`: alphabetic (a-z, A-Z).
    A,
    /// `an`: alphanumeric.
    An,
    /// `ans`: alphanumeric special.
    Ans,
}

/// Who provides a data element (Book 3 Annex A1, "Source").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The card (ICC).
    Icc,
    /// The terminal or reader.
    Terminal,
    /// The issuer (in the authorisation response).
    Issuer,
}

/// One dictionary entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TagInfo {
    /// The tag.
    pub tag: Tag,
    /// The name the specification gives.
    pub name: &'static str,
    /// The format.
    pub format: Format,
    /// Shortest valid value, in bytes.
    pub min_len: usize,
    /// Longest valid value, in bytes.
    pub max_len: usize,
    /// Who provides it.
    pub source: Source,
}

impl TagInfo {
    /// Whether `len` bytes is a valid length for this element.
    #[must_use]
    pub const fn accepts_len(&self, len: usize) -> bool {
        len >= self.min_len && len <= self.max_len
    }
}

macro_rules! dictionary {
    ($( $name:ident = $raw:literal, $spec:literal, $fmt:ident, $min:literal ..= $max:literal, $src:ident; )*) => {
        /// Named tags (`Tag::ApplicationCryptogram // 9F26`), spelled as the specifications name them.
        #[allow(non_upper_case_globals)]
        impl Tag {
            $(
                #[doc = concat!($spec, " (tag `", stringify!($raw), "`, format `", stringify!($fmt), "`).")]
                pub const $name: Tag = Tag::from_raw($raw);
            )*
        }

        /// Every known data element, sorted by tag.
        pub static DICTIONARY: &[TagInfo] = &[
            $( TagInfo {
                tag: Tag::from_raw($raw),
                name: $spec,
                format: Format::$fmt,
                min_len: $min,
                max_len: $max,
                source: Source::$src,
            }, )*
        ];
    };
}

dictionary! {
    IssuerIdentificationNumber = 0x42, "Issuer Identification Number (IIN)", N, 3..=3, Icc;
    AdfName = 0x4F, "Application Dedicated File (ADF) Name", B, 5..=16, Icc;
    ApplicationLabel = 0x50, "Application Label", Ans, 1..=16, Icc;
    Track2EquivalentData = 0x57, "Track 2 Equivalent Data", B, 1..=19, Icc;
    ApplicationPan = 0x5A, "Application Primary Account Number (PAN)", Cn, 1..=10, Icc;
    ApplicationTemplate = 0x61, "Application Template", B, 0..=252, Icc;
    FciTemplate = 0x6F, "File Control Information (FCI) Template", B, 0..=252, Icc;
    ReadRecordResponseTemplate = 0x70, "READ RECORD Response Message Template", B, 0..=252, Icc;
    IssuerScriptTemplate1 = 0x71, "Issuer Script Template 1", B, 0..=252, Issuer;
    IssuerScriptTemplate2 = 0x72, "Issuer Script Template 2", B, 0..=252, Issuer;
    DirectoryDiscretionaryTemplate = 0x73, "Directory Discretionary Template", B, 0..=252, Icc;
    ResponseMessageTemplateFormat2 = 0x77, "Response Message Template Format 2", B, 0..=65535, Icc;
    ResponseMessageTemplateFormat1 = 0x80, "Response Message Template Format 1", B, 0..=65535, Icc;
    AmountAuthorisedBinary = 0x81, "Amount, Authorised (Binary)", B, 4..=4, Terminal;
    ApplicationInterchangeProfile = 0x82, "Application Interchange Profile", B, 2..=2, Icc;
    CommandTemplate = 0x83, "Command Template", B, 0..=252, Terminal;
    DfName = 0x84, "Dedicated File (DF) Name", B, 5..=16, Icc;
    IssuerScriptCommand = 0x86, "Issuer Script Command", B, 0..=261, Issuer;
    ApplicationPriorityIndicator = 0x87, "Application Priority Indicator", B, 1..=1, Icc;
    ShortFileIdentifier = 0x88, "Short File Identifier (SFI)", B, 1..=1, Icc;
    AuthorisationCode = 0x89, "Authorisation Code", Ans, 6..=6, Issuer;
    AuthorisationResponseCode = 0x8A, "Authorisation Response Code", An, 2..=2, Issuer;
    Cdol1 = 0x8C, "Card Risk Management Data Object List 1 (CDOL1)", B, 0..=252, Icc;
    Cdol2 = 0x8D, "Card Risk Management Data Object List 2 (CDOL2)", B, 0..=252, Icc;
    CvmList = 0x8E, "Cardholder Verification Method (CVM) List", B, 10..=252, Icc;
    CaPublicKeyIndexIcc = 0x8F, "Certification Authority Public Key Index", B, 1..=1, Icc;
    IssuerPublicKeyCertificate = 0x90, "Issuer Public Key Certificate", B, 0..=248, Icc;
    IssuerAuthenticationData = 0x91, "Issuer Authentication Data", B, 8..=16, Issuer;
    IssuerPublicKeyRemainder = 0x92, "Issuer Public Key Remainder", B, 0..=248, Icc;
    SignedStaticApplicationData = 0x93, "Signed Static Application Data", B, 0..=248, Icc;
    ApplicationFileLocator = 0x94, "Application File Locator (AFL)", B, 0..=252, Icc;
    TerminalVerificationResults = 0x95, "Terminal Verification Results", B, 5..=5, Terminal;
    Tdol = 0x97, "Transaction Certificate Data Object List (TDOL)", B, 0..=252, Icc;
    TcHashValue = 0x98, "Transaction Certificate (TC) Hash Value", B, 20..=20, Terminal;
    TransactionPinData = 0x99, "Transaction Personal Identification Number (PIN) Data", B, 0..=252, Terminal;
    TransactionDate = 0x9A, "Transaction Date", N, 3..=3, Terminal;
    TransactionStatusInformation = 0x9B, "Transaction Status Information", B, 2..=2, Terminal;
    TransactionType = 0x9C, "Transaction Type", N, 1..=1, Terminal;
    DdfName = 0x9D, "Directory Definition File (DDF) Name", B, 5..=16, Icc;
    FciProprietaryTemplate = 0xA5, "File Control Information (FCI) Proprietary Template", B, 0..=252, Icc;
    CardholderName = 0x5F20, "Cardholder Name", Ans, 2..=26, Icc;
    ApplicationExpirationDate = 0x5F24, "Application Expiration Date", N, 3..=3, Icc;
    ApplicationEffectiveDate = 0x5F25, "Application Effective Date", N, 3..=3, Icc;
    IssuerCountryCode = 0x5F28, "Issuer Country Code", N, 2..=2, Icc;
    TransactionCurrencyCode = 0x5F2A, "Transaction Currency Code", N, 2..=2, Terminal;
    LanguagePreference = 0x5F2D, "Language Preference", An, 2..=8, Icc;
    ServiceCode = 0x5F30, "Service Code", N, 2..=2, Icc;
    PanSequenceNumber = 0x5F34, "Application Primary Account Number (PAN) Sequence Number", N, 1..=1, Icc;
    TransactionCurrencyExponent = 0x5F36, "Transaction Currency Exponent", N, 1..=1, Terminal;
    IssuerUrl = 0x5F50, "Issuer URL", Ans, 0..=252, Icc;
    Iban = 0x5F53, "International Bank Account Number (IBAN)", B, 0..=34, Icc;
    BankIdentifierCode = 0x5F54, "Bank Identifier Code (BIC)", B, 8..=11, Icc;
    IssuerCountryCodeAlpha2 = 0x5F55, "Issuer Country Code (alpha2 format)", A, 2..=2, Icc;
    IssuerCountryCodeAlpha3 = 0x5F56, "Issuer Country Code (alpha3 format)", A, 3..=3, Icc;
    AcquirerIdentifier = 0x9F01, "Acquirer Identifier", N, 6..=6, Terminal;
    AmountAuthorised = 0x9F02, "Amount, Authorised (Numeric)", N, 6..=6, Terminal;
    AmountOther = 0x9F03, "Amount, Other (Numeric)", N, 6..=6, Terminal;
    AmountOtherBinary = 0x9F04, "Amount, Other (Binary)", B, 4..=4, Terminal;
    ApplicationDiscretionaryData = 0x9F05, "Application Discretionary Data", B, 1..=32, Icc;
    AidTerminal = 0x9F06, "Application Identifier (AID) - terminal", B, 5..=16, Terminal;
    ApplicationUsageControl = 0x9F07, "Application Usage Control", B, 2..=2, Icc;
    ApplicationVersionNumberIcc = 0x9F08, "Application Version Number (ICC)", B, 2..=2, Icc;
    ApplicationVersionNumberTerminal = 0x9F09, "Application Version Number (terminal)", B, 2..=2, Terminal;
    ApplicationSelectionRegisteredProprietaryData = 0x9F0A, "Application Selection Registered Proprietary Data", B, 0..=252, Icc;
    CardholderNameExtended = 0x9F0B, "Cardholder Name Extended", Ans, 27..=45, Icc;
    IssuerActionCodeDefault = 0x9F0D, "Issuer Action Code - Default", B, 5..=5, Icc;
    IssuerActionCodeDenial = 0x9F0E, "Issuer Action Code - Denial", B, 5..=5, Icc;
    IssuerActionCodeOnline = 0x9F0F, "Issuer Action Code - Online", B, 5..=5, Icc;
    IssuerApplicationData = 0x9F10, "Issuer Application Data", B, 0..=32, Icc;
    IssuerCodeTableIndex = 0x9F11, "Issuer Code Table Index", N, 1..=1, Icc;
    ApplicationPreferredName = 0x9F12, "Application Preferred Name", Ans, 1..=16, Icc;
    LastOnlineAtcRegister = 0x9F13, "Last Online Application Transaction Counter (ATC) Register", B, 2..=2, Icc;
    LowerConsecutiveOfflineLimit = 0x9F14, "Lower Consecutive Offline Limit", B, 1..=1, Icc;
    MerchantCategoryCode = 0x9F15, "Merchant Category Code", N, 2..=2, Terminal;
    MerchantIdentifier = 0x9F16, "Merchant Identifier", Ans, 15..=15, Terminal;
    PinTryCounter = 0x9F17, "Personal Identification Number (PIN) Try Counter", B, 1..=1, Icc;
    IssuerScriptIdentifier = 0x9F18, "Issuer Script Identifier", B, 4..=4, Issuer;
    TokenRequestorId = 0x9F19, "Token Requestor ID", N, 6..=6, Icc;
    TerminalCountryCode = 0x9F1A, "Terminal Country Code", N, 2..=2, Terminal;
    TerminalFloorLimit = 0x9F1B, "Terminal Floor Limit", B, 4..=4, Terminal;
    TerminalIdentification = 0x9F1C, "Terminal Identification", An, 8..=8, Terminal;
    TerminalRiskManagementData = 0x9F1D, "Terminal Risk Management Data", B, 1..=8, Terminal;
    IfdSerialNumber = 0x9F1E, "Interface Device (IFD) Serial Number", An, 8..=8, Terminal;
    Track1DiscretionaryData = 0x9F1F, "Track 1 Discretionary Data", Ans, 0..=252, Icc;
    Track2DiscretionaryData = 0x9F20, "Track 2 Discretionary Data", Cn, 0..=252, Icc;
    TransactionTime = 0x9F21, "Transaction Time", N, 3..=3, Terminal;
    CaPublicKeyIndexTerminal = 0x9F22, "Certification Authority Public Key Index (terminal)", B, 1..=1, Terminal;
    UpperConsecutiveOfflineLimit = 0x9F23, "Upper Consecutive Offline Limit", B, 1..=1, Icc;
    PaymentAccountReference = 0x9F24, "Payment Account Reference (PAR)", An, 29..=29, Icc;
    LastFourDigitsOfPan = 0x9F25, "Last 4 Digits of PAN", N, 2..=2, Icc;
    ApplicationCryptogram = 0x9F26, "Application Cryptogram", B, 8..=8, Icc;
    CryptogramInformationData = 0x9F27, "Cryptogram Information Data", B, 1..=1, Icc;
    ExtendedSelection = 0x9F29, "Extended Selection", B, 0..=11, Icc;
    KernelIdentifier = 0x9F2A, "Kernel Identifier", B, 1..=8, Icc;
    IccPinEnciphermentPublicKeyCertificate = 0x9F2D, "ICC PIN Encipherment Public Key Certificate", B, 0..=248, Icc;
    IccPinEnciphermentPublicKeyExponent = 0x9F2E, "ICC PIN Encipherment Public Key Exponent", B, 1..=3, Icc;
    IccPinEnciphermentPublicKeyRemainder = 0x9F2F, "ICC PIN Encipherment Public Key Remainder", B, 0..=248, Icc;
    IssuerPublicKeyExponent = 0x9F32, "Issuer Public Key Exponent", B, 1..=3, Icc;
    TerminalCapabilities = 0x9F33, "Terminal Capabilities", B, 3..=3, Terminal;
    CvmResults = 0x9F34, "Cardholder Verification Method (CVM) Results", B, 3..=3, Terminal;
    TerminalType = 0x9F35, "Terminal Type", N, 1..=1, Terminal;
    ApplicationTransactionCounter = 0x9F36, "Application Transaction Counter (ATC)", B, 2..=2, Icc;
    UnpredictableNumber = 0x9F37, "Unpredictable Number", B, 4..=4, Terminal;
    Pdol = 0x9F38, "Processing Options Data Object List (PDOL)", B, 0..=252, Icc;
    PosEntryMode = 0x9F39, "Point-of-Service (POS) Entry Mode", N, 1..=1, Terminal;
    AmountReferenceCurrency = 0x9F3A, "Amount, Reference Currency", B, 4..=4, Terminal;
    ApplicationReferenceCurrency = 0x9F3B, "Application Reference Currency", N, 2..=8, Icc;
    TransactionReferenceCurrencyCode = 0x9F3C, "Transaction Reference Currency Code", N, 2..=2, Terminal;
    TransactionReferenceCurrencyExponent = 0x9F3D, "Transaction Reference Currency Exponent", N, 1..=1, Terminal;
    AdditionalTerminalCapabilities = 0x9F40, "Additional Terminal Capabilities", B, 5..=5, Terminal;
    TransactionSequenceCounter = 0x9F41, "Transaction Sequence Counter", N, 2..=4, Terminal;
    ApplicationCurrencyCode = 0x9F42, "Application Currency Code", N, 2..=2, Icc;
    ApplicationReferenceCurrencyExponent = 0x9F43, "Application Reference Currency Exponent", N, 1..=4, Icc;
    ApplicationCurrencyExponent = 0x9F44, "Application Currency Exponent", N, 1..=1, Icc;
    DataAuthenticationCode = 0x9F45, "Data Authentication Code", B, 2..=2, Icc;
    IccPublicKeyCertificate = 0x9F46, "ICC Public Key Certificate", B, 0..=248, Icc;
    IccPublicKeyExponent = 0x9F47, "ICC Public Key Exponent", B, 1..=3, Icc;
    IccPublicKeyRemainder = 0x9F48, "ICC Public Key Remainder", B, 0..=248, Icc;
    Ddol = 0x9F49, "Dynamic Data Authentication Data Object List (DDOL)", B, 0..=252, Icc;
    StaticDataAuthenticationTagList = 0x9F4A, "Static Data Authentication Tag List", B, 0..=252, Icc;
    SignedDynamicApplicationData = 0x9F4B, "Signed Dynamic Application Data", B, 0..=248, Icc;
    IccDynamicNumber = 0x9F4C, "ICC Dynamic Number", B, 2..=8, Icc;
    LogEntry = 0x9F4D, "Log Entry", B, 2..=2, Icc;
    MerchantNameAndLocation = 0x9F4E, "Merchant Name and Location", Ans, 0..=252, Terminal;
    LogFormat = 0x9F4F, "Log Format", B, 0..=252, Icc;
    TransactionCategoryCode = 0x9F53, "Transaction Category Code", An, 1..=1, Terminal;
    AvailableOfflineSpendingAmount = 0x9F5D, "Available Offline Spending Amount", N, 6..=6, Icc;
    TerminalTransactionQualifiers = 0x9F66, "Terminal Transaction Qualifiers (TTQ)", B, 4..=4, Terminal;
    CardAuthenticationRelatedData = 0x9F69, "Card Authentication Related Data", B, 5..=16, Icc;
    CardTransactionQualifiers = 0x9F6C, "Card Transaction Qualifiers (CTQ)", B, 2..=2, Icc;
    FormFactorIndicator = 0x9F6E, "Form Factor Indicator / Third Party Data", B, 4..=32, Icc;
    CustomerExclusiveData = 0x9F7C, "Customer Exclusive Data", B, 0..=32, Icc;
    FciIssuerDiscretionaryData = 0xBF0C, "File Control Information (FCI) Issuer Discretionary Data", B, 0..=222, Icc;
    ErrorIndication = 0xDF8115, "Error Indication", B, 6..=6, Terminal;
    CardDataInputCapability = 0xDF8117, "Card Data Input Capability", B, 1..=1, Terminal;
    CvmCapabilityCvmRequired = 0xDF8118, "CVM Capability - CVM Required", B, 1..=1, Terminal;
    CvmCapabilityNoCvmRequired = 0xDF8119, "CVM Capability - No CVM Required", B, 1..=1, Terminal;
    KernelConfiguration = 0xDF811B, "Kernel Configuration", B, 1..=1, Terminal;
    SecurityCapability = 0xDF811F, "Security Capability", B, 1..=1, Terminal;
    TerminalActionCodeDefault = 0xDF8120, "Terminal Action Code - Default", B, 5..=5, Terminal;
    TerminalActionCodeDenial = 0xDF8121, "Terminal Action Code - Denial", B, 5..=5, Terminal;
    TerminalActionCodeOnline = 0xDF8122, "Terminal Action Code - Online", B, 5..=5, Terminal;
    ReaderContactlessFloorLimit = 0xDF8123, "Reader Contactless Floor Limit", N, 6..=6, Terminal;
    ReaderContactlessTransactionLimitNoOnDeviceCvm = 0xDF8124, "Reader Contactless Transaction Limit (No On-device CVM)", N, 6..=6, Terminal;
    ReaderContactlessTransactionLimitOnDeviceCvm = 0xDF8125, "Reader Contactless Transaction Limit (On-device CVM)", N, 6..=6, Terminal;
    ReaderCvmRequiredLimit = 0xDF8126, "Reader CVM Required Limit", N, 6..=6, Terminal;
    OutcomeParameterSet = 0xDF8129, "Outcome Parameter Set", B, 8..=8, Terminal;
}

/// The dictionary entry for `tag`, if the kernel knows it.
#[must_use]
pub fn lookup(tag: Tag) -> Option<&'static TagInfo> {
    DICTIONARY
        .binary_search_by_key(&tag, |info| info.tag)
        .ok()
        .map(|idx| &DICTIONARY[idx])
}

/// The format of `tag`: the dictionary's, or `b` for a tag the dictionary does not know.
#[must_use]
pub fn format_of(tag: Tag) -> Format {
    lookup(tag).map_or(Format::B, |info| info.format)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dictionary_is_sorted_and_unique() {
        for pair in DICTIONARY.windows(2) {
            assert!(
                pair[0].tag < pair[1].tag,
                "{} before {}",
                pair[0].tag,
                pair[1].tag
            );
        }
    }

    #[test]
    fn dictionary_tags_are_well_formed() {
        for info in DICTIONARY {
            let encoded = info.tag.to_vec();
            let (parsed, len) = Tag::parse(&encoded).expect("well-formed tag");
            assert_eq!((parsed, len), (info.tag, encoded.len()), "{}", info.name);
            assert!(info.min_len <= info.max_len, "{}", info.name);
        }
    }

    #[test]
    fn lookup_by_number() {
        let info = lookup(Tag::ApplicationCryptogram).expect("9F26 is known");
        assert_eq!(info.name, "Application Cryptogram");
        assert_eq!(info.format, Format::B);
        assert_eq!(lookup(Tag::from_raw(0x9F26)), Some(info));
        assert_eq!(format_of(Tag::ApplicationPan), Format::Cn);
        assert_eq!(format_of(Tag::AmountAuthorised), Format::N);
        assert_eq!(lookup(Tag::from_raw(0xDF7F)), None);
        assert_eq!(format_of(Tag::from_raw(0xDF7F)), Format::B);
    }
}
