//! Terminal Verification Results (`95`) and Transaction Status Information (`9B`), with every bit
//! named as EMV 4.4 Book 3 Annex C5 (TVR) and C6 (TSI) define them. Byte 5 bits b4-b1 of the TVR
//! follow EMV Contactless Book C-2 (relay resistance), which Book 3 reserves for that use.

use alloc::vec::Vec;

macro_rules! bit_set {
    (
        $(#[$type_doc:meta])* $name:ident, $bit:ident, $len:literal;
        $( $(#[$doc:meta])* $variant:ident = ($byte:literal, $mask:literal, $text:literal); )*
    ) => {
        $(#[$type_doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Default, Hash)]
        pub struct $name(pub [u8; $len]);

        /// One named bit.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum $bit {
            $( $(#[$doc])* $variant, )*
        }

        impl $bit {
            /// Every named bit, in byte and bit order.
            pub const ALL: &'static [Self] = &[$( Self::$variant, )*];

            /// Byte index (0-based) and mask.
            #[must_use]
            pub const fn position(self) -> (usize, u8) {
                match self {
                    $( Self::$variant => ($byte - 1, $mask), )*
                }
            }

            /// The name the book gives the bit.
            #[must_use]
            pub const fn name(self) -> &'static str {
                match self {
                    $( Self::$variant => $text, )*
                }
            }
        }

        impl $name {
            /// All bits clear.
            #[must_use]
            pub const fn new() -> Self {
                Self([0; $len])
            }

            /// Sets a bit.
            pub fn set(&mut self, bit: $bit) {
                let (byte, mask) = bit.position();
                self.0[byte] |= mask;
            }

            /// Clears a bit.
            pub fn clear(&mut self, bit: $bit) {
                let (byte, mask) = bit.position();
                self.0[byte] &= !mask;
            }

            /// Whether a bit is set.
            #[must_use]
            pub const fn is_set(&self, bit: $bit) -> bool {
                let (byte, mask) = bit.position();
                self.0[byte] & mask != 0
            }

            /// The named bits that are set.
            #[must_use]
            pub fn set_bits(&self) -> Vec<$bit> {
                $bit::ALL.iter().copied().filter(|bit| self.is_set(*bit)).collect()
            }

            /// The encoded value.
            #[must_use]
            pub const fn bytes(&self) -> [u8; $len] {
                self.0
            }
        }

        impl core::fmt::Debug for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                write!(f, "{}(", stringify!($name))?;
                for byte in self.0 {
                    write!(f, "{byte:02X}")?;
                }
                write!(f, ")")?;
                f.debug_list().entries(self.set_bits().iter().map(|bit| bit.name())).finish()
            }
        }
    };
}

bit_set! {
    /// Terminal Verification Results (`95`), Book 3 Annex C5.
    Tvr, TvrBit, 5;
    /// Byte 1 b8.
    OdaNotPerformed = (1, 0x80, "Offline data authentication was not performed");
    /// Byte 1 b7.
    SdaFailed = (1, 0x40, "SDA failed");
    /// Byte 1 b6.
    IccDataMissing = (1, 0x20, "ICC data missing");
    /// Byte 1 b5.
    CardOnExceptionFile = (1, 0x10, "Card appears on terminal exception file");
    /// Byte 1 b4.
    DdaFailed = (1, 0x08, "DDA failed");
    /// Byte 1 b3.
    CdaFailed = (1, 0x04, "CDA failed");
    /// Byte 1 b2.
    SdaSelected = (1, 0x02, "SDA selected");
    /// Byte 2 b8.
    DifferentApplicationVersions = (2, 0x80, "ICC and terminal have different application versions");
    /// Byte 2 b7.
    ExpiredApplication = (2, 0x40, "Expired application");
    /// Byte 2 b6.
    ApplicationNotYetEffective = (2, 0x20, "Application not yet effective");
    /// Byte 2 b5.
    ServiceNotAllowed = (2, 0x10, "Requested service not allowed for card product");
    /// Byte 2 b4.
    NewCard = (2, 0x08, "New card");
    /// Byte 3 b8.
    CardholderVerificationNotSuccessful = (3, 0x80, "Cardholder verification was not successful");
    /// Byte 3 b7.
    UnrecognisedCvm = (3, 0x40, "Unrecognised CVM");
    /// Byte 3 b6.
    PinTryLimitExceeded = (3, 0x20, "PIN Try Limit exceeded");
    /// Byte 3 b5.
    PinPadNotPresent = (3, 0x10, "PIN entry required and PIN pad not present or not working");
    /// Byte 3 b4.
    PinNotEntered = (3, 0x08, "PIN entry required, PIN pad present, but PIN was not entered");
    /// Byte 3 b3.
    OnlinePinEntered = (3, 0x04, "Online PIN entered");
    /// Byte 4 b8.
    ExceedsFloorLimit = (4, 0x80, "Transaction exceeds floor limit");
    /// Byte 4 b7.
    LowerConsecutiveOfflineLimitExceeded = (4, 0x40, "Lower consecutive offline limit exceeded");
    /// Byte 4 b6.
    UpperConsecutiveOfflineLimitExceeded = (4, 0x20, "Upper consecutive offline limit exceeded");
    /// Byte 4 b5.
    RandomlySelectedOnline = (4, 0x10, "Transaction selected randomly for online processing");
    /// Byte 4 b4.
    MerchantForcedOnline = (4, 0x08, "Merchant forced transaction online");
    /// Byte 5 b8.
    DefaultTdolUsed = (5, 0x80, "Default TDOL used");
    /// Byte 5 b7.
    IssuerAuthenticationFailed = (5, 0x40, "Issuer authentication failed");
    /// Byte 5 b6.
    ScriptFailedBeforeFinalGenerateAc = (5, 0x20, "Script processing failed before final GENERATE AC");
    /// Byte 5 b5.
    ScriptFailedAfterFinalGenerateAc = (5, 0x10, "Script processing failed after final GENERATE AC");
    /// Byte 5 b4 (Book C-2).
    RelayResistanceThresholdExceeded = (5, 0x08, "Relay resistance threshold exceeded");
    /// Byte 5 b3 (Book C-2).
    RelayResistanceTimeLimitsExceeded = (5, 0x04, "Relay resistance time limits exceeded");
    /// Byte 5 b2-b1 = `01` (Book C-2, relay resistance not performed).
    RelayResistanceNotPerformed = (5, 0x01, "Relay resistance not performed");
    /// Byte 5 b2-b1 = `10` (Book C-2, relay resistance performed).
    RelayResistancePerformed = (5, 0x02, "Relay resistance performed");
}

bit_set! {
    /// Transaction Status Information (`9B`), Book 3 Annex C6.
    Tsi, TsiBit, 2;
    /// Byte 1 b8.
    OdaPerformed = (1, 0x80, "Offline data authentication was performed");
    /// Byte 1 b7.
    CardholderVerificationPerformed = (1, 0x40, "Cardholder verification was performed");
    /// Byte 1 b6.
    CardRiskManagementPerformed = (1, 0x20, "Card risk management was performed");
    /// Byte 1 b5.
    IssuerAuthenticationPerformed = (1, 0x10, "Issuer authentication was performed");
    /// Byte 1 b4.
    TerminalRiskManagementPerformed = (1, 0x08, "Terminal risk management was performed");
    /// Byte 1 b3.
    ScriptProcessingPerformed = (1, 0x04, "Script processing was performed");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_are_distinct_and_round_trip() {
        let mut tvr = Tvr::new();
        for bit in TvrBit::ALL {
            assert!(!tvr.is_set(*bit), "{} overlaps", bit.name());
            tvr.set(*bit);
            assert!(tvr.is_set(*bit));
        }
        assert_eq!(tvr.set_bits().len(), TvrBit::ALL.len());
        let mut tsi = Tsi::new();
        tsi.set(TsiBit::OdaPerformed);
        tsi.set(TsiBit::CardRiskManagementPerformed);
        assert_eq!(tsi.bytes(), [0xA0, 0x00]);
        let mut tvr = Tvr::new();
        tvr.set(TvrBit::ExceedsFloorLimit);
        tvr.set(TvrBit::OdaNotPerformed);
        assert_eq!(tvr.bytes(), [0x80, 0x00, 0x00, 0x80, 0x00]);
        tvr.clear(TvrBit::OdaNotPerformed);
        assert_eq!(tvr.set_bits(), [TvrBit::ExceedsFloorLimit]);
    }
}
