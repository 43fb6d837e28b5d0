//! The reader configuration the virtual cards are personalised against: what a test terminal
//! gives the kernel so every profile takes the path its documentation promises.

use alloc::vec;

use emv_kernel::TerminalConfig;
use emv_kernel::entry_point::{AidConfig, Kernel};
use emv_kernel::oda::{CaKeyTable, CaPublicKey};

use crate::keys::{RID_MASTERCARD, RID_VISA, test_ca_public_keys};

/// The reader the virtual cards are personalised against: a United States (`0840`), online
/// capable, attended merchant reader (`9F35` `22`, capabilities `0068C8`), MCC 5411, with the
/// test CA keys of [`crate::keys`] trusted and two applications:
/// - Visa (`A000000003`, Kernel 3): transaction limit 1,000.00, floor limit 50.00, CVM required
///   from 30.00, TTQ `27004000` (qVSDC, online PIN, signature, ODA for online authorisations);
/// - Mastercard (`A000000004`, Kernel 2): the same limits.
///
/// Tests that need other limits start from this one and change the fields they care about.
///
/// # Panics
/// Never: the test CA keys are valid RSA public keys (checked by this crate's tests).
#[must_use]
pub fn reader_config() -> TerminalConfig {
    let mut ca_keys = CaKeyTable::new();
    for key in test_ca_public_keys() {
        ca_keys.insert(
            CaPublicKey::new(key.rid, key.index, &key.modulus, &key.exponent)
                .expect("the test CA keys are valid RSA public keys"),
        );
    }
    let mut visa = AidConfig::new(&RID_VISA, Kernel::C3);
    visa.transaction_limit = Some(100_000);
    visa.floor_limit = Some(5_000);
    visa.cvm_required_limit = Some(3_000);
    visa.ttq = [0x27, 0x00, 0x40, 0x00];
    let mut mastercard = AidConfig::new(&RID_MASTERCARD, Kernel::C2);
    mastercard.transaction_limit = Some(100_000);
    mastercard.floor_limit = Some(5_000);
    mastercard.cvm_required_limit = Some(3_000);
    TerminalConfig {
        country_code: [0x08, 0x40],
        terminal_type: 0x22,
        terminal_capabilities: [0x00, 0x68, 0xC8],
        additional_terminal_capabilities: [0x60, 0x00, 0xF0, 0xA0, 0x01],
        ifd_serial_number: Some(*b"SUNBAY01"),
        merchant_category_code: Some([0x54, 0x11]),
        merchant_identifier: None,
        terminal_identification: Some(*b"TERM0001"),
        merchant_name_and_location: None,
        online_capable: true,
        aids: vec![visa, mastercard],
        ca_keys,
    }
}
