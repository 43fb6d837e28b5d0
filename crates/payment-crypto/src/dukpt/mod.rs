//! DUKPT (Derived Unique Key Per Transaction) key management.
//!
//! - [`tdes`]: ANSI X9.24-1:2009, TDES DUKPT with a 10-byte KSN and a 21-bit transaction counter.
//! - [`aes`]: ANSI X9.24-3:2017, AES DUKPT with a 12-byte KSN and a 32-bit transaction counter.
//!
//! Each has a receiving (host) side, which derives the key for any KSN from the BDK, and an
//! originating (terminal) side, which holds future keys and advances its counter.

pub mod aes;
pub mod tdes;
