//! Integration tests of `payment-crypto`: published vectors first (each table cites its source),
//! then property tests and bad-input cases.

mod data;
mod dukpt_aes;
mod dukpt_tdes;
mod emv;
mod kcv;
mod mac;
mod pinblock;
mod tr31;
