//! Integration tests of `emv-kernel`: published examples first (each cites its source), then our
//! own regression cases and property tests.

mod apdu;
mod card;
mod cvm;
mod dol;
mod entry_point;
mod oda;
mod oda_keys;
mod tlv;
mod transaction;
