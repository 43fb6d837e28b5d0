//! The key block header: its fixed fields (ANSI X9.143-2021 6.2, Table 1) and their code tables
//! (6.3.1 to 6.3.5).

use alloc::vec::Vec;

use super::Tr31Error;
use super::optional_block::OptionalBlock;

/// Length of the fixed part of the header, in characters (X9.143-2021 6.2, Table 1).
pub(crate) const FIXED_HEADER_LEN: usize = 16;

/// Key block version ID, header byte 0 (X9.143-2021 6.2, Table 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Version {
    /// `B`: TDES key block protection key, key derivation binding method.
    B,
    /// `D`: AES key block protection key, key derivation binding method.
    D,
}

impl Version {
    /// The header character.
    #[must_use]
    pub const fn code(self) -> u8 {
        match self {
            Self::B => b'B',
            Self::D => b'D',
        }
    }

    /// Cipher block length of the KBPK family: 8 (TDES) or 16 (AES).
    #[must_use]
    pub const fn block_len(self) -> usize {
        match self {
            Self::B => 8,
            Self::D => 16,
        }
    }

    /// MAC length in bytes: the full CMAC, 8 for B (TDES) and 16 for D (AES) (X9.143-2021 6.1,
    /// Figure 2).
    #[must_use]
    pub const fn mac_len(self) -> usize {
        self.block_len()
    }

    pub(crate) fn parse(code: u8) -> Result<Self, Tr31Error> {
        match code {
            b'B' => Ok(Self::B),
            b'D' => Ok(Self::D),
            // A and C are the key variant binding methods that X9.143 deprecates; refused here.
            b'A' | b'C' => Err(Tr31Error::UnsupportedVersion(char::from(code))),
            _ => Err(Tr31Error::UnknownVersion),
        }
    }
}

/// Declares a code enum with its two-way mapping to header characters.
macro_rules! code_enum {
    (
        $(#[$meta:meta])*
        $name:ident, $code_ty:ty, $error:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $code:expr, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every value of the table, in the standard's order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The header characters.
            #[must_use]
            pub const fn code(self) -> $code_ty {
                match self {
                    $( Self::$variant => $code, )+
                }
            }

            pub(crate) fn parse(code: $code_ty) -> Result<Self, Tr31Error> {
                match code {
                    $( c if c == $code => Ok(Self::$variant), )+
                    _ => Err(Tr31Error::$error),
                }
            }
        }
    };
}

code_enum! {
    /// Key usage, header bytes 5–6 (X9.143-2021 6.3.1, Table 2).
    KeyUsage, [u8; 2], UnknownKeyUsage {
        /// `B0`: base derivation key (BDK).
        Bdk = *b"B0",
        /// `B1`: initial DUKPT key (IPEK).
        InitialDukptKey = *b"B1",
        /// `B2`: base key variant key.
        BaseKeyVariantKey = *b"B2",
        /// `B3`: key derivation key (non ANSI X9.24).
        KeyDerivationKey = *b"B3",
        /// `C0`: card verification key (CVK).
        CardVerificationKey = *b"C0",
        /// `D0`: symmetric key for data encryption.
        DataEncryption = *b"D0",
        /// `D1`: asymmetric key for data encryption.
        AsymmetricDataEncryption = *b"D1",
        /// `D2`: data encryption key for decimalization tables.
        DecimalizationTable = *b"D2",
        /// `D3`: data encryption key for sensitive data.
        SensitiveDataEncryption = *b"D3",
        /// `E0`: EMV/chip issuer master key, application cryptograms.
        EmvApplicationCryptograms = *b"E0",
        /// `E1`: EMV/chip issuer master key, secure messaging for confidentiality.
        EmvSecureMessagingConfidentiality = *b"E1",
        /// `E2`: EMV/chip issuer master key, secure messaging for integrity.
        EmvSecureMessagingIntegrity = *b"E2",
        /// `E3`: EMV/chip issuer master key, data authentication code.
        EmvDataAuthenticationCode = *b"E3",
        /// `E4`: EMV/chip issuer master key, dynamic numbers.
        EmvDynamicNumbers = *b"E4",
        /// `E5`: EMV/chip issuer master key, card personalization.
        EmvCardPersonalization = *b"E5",
        /// `E6`: EMV/chip issuer master key, other.
        EmvOther = *b"E6",
        /// `I0`: initialization vector.
        InitializationVector = *b"I0",
        /// `K0`: key encryption or wrapping key.
        KeyEncryption = *b"K0",
        /// `K1`: TR-31 key block protection key.
        KeyBlockProtection = *b"K1",
        /// `K2`: TR-34 asymmetric key.
        Tr34Asymmetric = *b"K2",
        /// `K3`: asymmetric key for key agreement or key wrapping.
        AsymmetricKeyAgreement = *b"K3",
        /// `M0`: ISO 16609 MAC algorithm 1 (TDEA).
        MacIso16609 = *b"M0",
        /// `M1`: ISO 9797-1 MAC algorithm 1.
        MacIso9797Alg1 = *b"M1",
        /// `M2`: ISO 9797-1 MAC algorithm 2.
        MacIso9797Alg2 = *b"M2",
        /// `M3`: ISO 9797-1 MAC algorithm 3 (retail MAC).
        MacIso9797Alg3 = *b"M3",
        /// `M4`: ISO 9797-1 MAC algorithm 4.
        MacIso9797Alg4 = *b"M4",
        /// `M5`: ISO 9797-1:1999 MAC algorithm 5.
        MacIso9797Alg5 = *b"M5",
        /// `M6`: ISO 9797-1:2011 MAC algorithm 5 (CMAC).
        MacCmac = *b"M6",
        /// `M7`: HMAC.
        MacHmac = *b"M7",
        /// `M8`: ISO 9797-1:2011 MAC algorithm 6.
        MacIso9797Alg6 = *b"M8",
        /// `P0`: PIN encryption key.
        PinEncryption = *b"P0",
        /// `P1`: PIN generation key.
        PinGeneration = *b"P1",
        /// `S0`: asymmetric key pair for digital signatures.
        AsymmetricSignature = *b"S0",
        /// `S1`: asymmetric key pair for a certificate authority.
        AsymmetricCertificateAuthority = *b"S1",
        /// `S2`: asymmetric key pair, non X9.24.
        AsymmetricOther = *b"S2",
        /// `V0`: PIN verification key, other algorithm.
        PinVerificationOther = *b"V0",
        /// `V1`: PIN verification key, IBM 3624.
        PinVerificationIbm3624 = *b"V1",
        /// `V2`: PIN verification key, VISA PVV.
        PinVerificationVisaPvv = *b"V2",
        /// `V3`: PIN verification key, ANSI X9.132 algorithm 1.
        PinVerificationX9132Alg1 = *b"V3",
        /// `V4`: PIN verification key, ANSI X9.132 algorithm 2.
        PinVerificationX9132Alg2 = *b"V4",
        /// `V5`: PIN verification key, ANSI X9.132 algorithm 3.
        PinVerificationX9132Alg3 = *b"V5",
    }
}

code_enum! {
    /// Algorithm of the wrapped key, header byte 7 (X9.143-2021 6.3.2, Table 3).
    Algorithm, u8, UnknownAlgorithm {
        /// `A`: AES.
        Aes = b'A',
        /// `D`: single DEA.
        Dea = b'D',
        /// `E`: elliptic curve.
        EllipticCurve = b'E',
        /// `H`: HMAC.
        Hmac = b'H',
        /// `R`: RSA.
        Rsa = b'R',
        /// `S`: DSA.
        Dsa = b'S',
        /// `T`: TDES.
        Tdes = b'T',
    }
}

code_enum! {
    /// Mode of use, header byte 8 (X9.143-2021 6.3.3, Table 4).
    ModeOfUse, u8, UnknownModeOfUse {
        /// `B`: encrypt/wrap and decrypt/unwrap.
        EncryptDecrypt = b'B',
        /// `C`: MAC generate and verify.
        MacGenerateVerify = b'C',
        /// `D`: decrypt/unwrap only.
        DecryptOnly = b'D',
        /// `E`: encrypt/wrap only.
        EncryptOnly = b'E',
        /// `G`: MAC generate only.
        MacGenerateOnly = b'G',
        /// `N`: no special restrictions.
        NoRestrictions = b'N',
        /// `S`: signature only.
        SignatureOnly = b'S',
        /// `T`: sign and decrypt.
        SignDecrypt = b'T',
        /// `V`: MAC verify only.
        MacVerifyOnly = b'V',
        /// `X`: key derivation.
        KeyDerivation = b'X',
        /// `Y`: create key variants.
        KeyVariants = b'Y',
    }
}

code_enum! {
    /// Exportability, header byte 11 (X9.143-2021 6.3.5, Table 6).
    Exportability, u8, UnknownExportability {
        /// `E`: exportable under a KEK in a form meeting X9.24.
        Exportable = b'E',
        /// `N`: not exportable.
        NonExportable = b'N',
        /// `S`: sensitive; exportable under a KEK not meeting X9.24.
        Sensitive = b'S',
    }
}

code_enum! {
    /// Key context, header byte 14 (X9.143-2021 6.2, Table 1); byte 15 stays reserved `0`.
    KeyContext, u8, UnknownKeyContext {
        /// `0`: storage or exchange.
        StorageOrExchange = b'0',
        /// `1`: storage only, wrapped under a local key.
        StorageOnly = b'1',
        /// `2`: key exchange only.
        ExchangeOnly = b'2',
    }
}

/// Key version number, header bytes 9–10 (X9.143-2021 6.3.4, Table 5): `00` when unused, `c` plus a
/// component number for key components, otherwise two alphanumeric characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyVersion([u8; 2]);

impl KeyVersion {
    /// Version numbers not used (`00`).
    pub const UNUSED: Self = Self(*b"00");

    /// A key version from its two characters.
    ///
    /// # Errors
    /// [`Tr31Error::InvalidKeyVersion`] unless both are ASCII letters or digits.
    pub fn new(code: [u8; 2]) -> Result<Self, Tr31Error> {
        if code.iter().all(u8::is_ascii_alphanumeric) {
            Ok(Self(code))
        } else {
            Err(Tr31Error::InvalidKeyVersion)
        }
    }

    /// The two header characters.
    #[must_use]
    pub const fn code(self) -> [u8; 2] {
        self.0
    }
}

/// A key block header: the fixed fields and the optional blocks.
///
/// The block length and the number of optional blocks are computed by [`super::wrap`]; a
/// padding block (`PB`) is added or removed there too and never appears in `optional_blocks`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyBlockHeader {
    /// Key block version: decides the binding method and the KBPK family.
    pub version: Version,
    /// What the wrapped key may be used for.
    pub key_usage: KeyUsage,
    /// Algorithm of the wrapped key.
    pub algorithm: Algorithm,
    /// Operations the wrapped key may perform.
    pub mode_of_use: ModeOfUse,
    /// Key version number.
    pub key_version: KeyVersion,
    /// Whether and how the key may be exported.
    pub exportability: Exportability,
    /// Where the key block may be used.
    pub key_context: KeyContext,
    /// Optional blocks other than the padding block, in order.
    pub optional_blocks: Vec<OptionalBlock>,
}

impl KeyBlockHeader {
    /// A header with no key version, context "storage or exchange" and no optional blocks.
    #[must_use]
    pub fn new(
        version: Version,
        key_usage: KeyUsage,
        algorithm: Algorithm,
        mode_of_use: ModeOfUse,
        exportability: Exportability,
    ) -> Self {
        Self {
            version,
            key_usage,
            algorithm,
            mode_of_use,
            key_version: KeyVersion::UNUSED,
            exportability,
            key_context: KeyContext::StorageOrExchange,
            optional_blocks: Vec::new(),
        }
    }
}

/// The fixed header fields as parsed, before the optional blocks.
pub(crate) struct FixedHeader {
    pub(crate) header: KeyBlockHeader,
    pub(crate) declared_len: usize,
    pub(crate) optional_block_count: usize,
}

/// Parses the 16 fixed characters (X9.143-2021 6.2, Table 1). `bytes` is at least 16 long.
pub(crate) fn parse_fixed(bytes: &[u8]) -> Result<FixedHeader, Tr31Error> {
    let field = |range: core::ops::Range<usize>| bytes.get(range).ok_or(Tr31Error::Truncated);
    let byte = |index: usize| bytes.get(index).copied().ok_or(Tr31Error::Truncated);

    let version = Version::parse(byte(0)?)?;
    let declared_len = parse_decimal(field(1..5)?).ok_or(Tr31Error::MalformedLengthField)?;
    let key_usage = KeyUsage::parse(two(field(5..7)?))?;
    let algorithm = Algorithm::parse(byte(7)?)?;
    let mode_of_use = ModeOfUse::parse(byte(8)?)?;
    let key_version = KeyVersion::new(two(field(9..11)?))?;
    let exportability = Exportability::parse(byte(11)?)?;
    let optional_block_count =
        parse_decimal(field(12..14)?).ok_or(Tr31Error::MalformedOptionalBlockCount)?;
    let key_context = KeyContext::parse(byte(14)?)?;
    if byte(15)? != b'0' {
        return Err(Tr31Error::ReservedFieldNotZero);
    }
    Ok(FixedHeader {
        header: KeyBlockHeader {
            version,
            key_usage,
            algorithm,
            mode_of_use,
            key_version,
            exportability,
            key_context,
            optional_blocks: Vec::new(),
        },
        declared_len,
        optional_block_count,
    })
}

/// Writes the 16 fixed characters for a block of `total_len` characters with
/// `optional_block_count` optional blocks.
pub(crate) fn write_fixed(
    header: &KeyBlockHeader,
    total_len: usize,
    optional_block_count: usize,
    out: &mut Vec<u8>,
) {
    out.push(header.version.code());
    push_decimal(total_len, 4, out);
    out.extend_from_slice(&header.key_usage.code());
    out.push(header.algorithm.code());
    out.push(header.mode_of_use.code());
    out.extend_from_slice(&header.key_version.code());
    out.push(header.exportability.code());
    push_decimal(optional_block_count, 2, out);
    out.push(header.key_context.code());
    out.push(b'0');
}

/// Two bytes of a slice known to be two long.
fn two(slice: &[u8]) -> [u8; 2] {
    let mut out = [0u8; 2];
    out.copy_from_slice(slice);
    out
}

/// A decimal number of ASCII digits, or `None` for anything else.
fn parse_decimal(digits: &[u8]) -> Option<usize> {
    digits.iter().try_fold(0usize, |acc, &d| {
        d.is_ascii_digit().then(|| acc * 10 + usize::from(d - b'0'))
    })
}

/// Appends `value` as exactly `width` decimal digits; callers keep `value < 10^width`.
fn push_decimal(value: usize, width: u32, out: &mut Vec<u8>) {
    for position in (0..width).rev() {
        let digit = (value / 10usize.pow(position)) % 10;
        // A decimal digit is below 10, so it fits a byte.
        out.push(b'0' + digit as u8);
    }
}
