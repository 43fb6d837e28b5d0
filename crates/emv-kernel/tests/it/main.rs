//! Integration tests of `emv-kernel`: published examples first (each cites its source), then our
//! own regression cases and property tests.

mod apdu;
mod cvm;
mod dol;
mod oda;
mod oda_keys;
mod tlv;
