//! The encrypt-only AES that the derivation function runs on.
//!
//! X9.24-3:2017 Annex A `Derive_Key` only ever encrypts, and the host keys a fresh cipher for
//! every one-bit of the counter (about a dozen per transaction). `primitives::BlockCipher` also
//! expands the decryption key schedule, which doubles the key setup and the schedule zeroized on
//! drop; this encrypt-only variant halves the host's cost per derivation (see
//! `benches/dukpt_aes.rs`). It is RustCrypto's `aes` all the same, keyed through `KeyInit`.

use aes::{Aes128Enc, Aes192Enc, Aes256Enc};
use cipher::{Array, BlockCipherEncrypt, KeyInit};

/// An AES key schedule for encryption only, zeroized on drop (the `aes` crate's `zeroize`
/// feature).
pub(super) enum DerivationCipher {
    Aes128(Aes128Enc),
    Aes192(Aes192Enc),
    Aes256(Aes256Enc),
}

impl DerivationCipher {
    /// Keys the cipher from the bytes of an AES key. Callers pass only keys whose length a
    /// `SecretKey` of an AES algorithm fixed (16, 24 or 32 bytes).
    pub(super) fn new(key: &[u8]) -> Self {
        match key.len() {
            16 => Self::Aes128(keyed(key)),
            24 => Self::Aes192(keyed(key)),
            32 => Self::Aes256(keyed(key)),
            _ => unreachable!("derivation keys are AES keys"),
        }
    }

    /// Encrypts one 16-byte block in place.
    pub(super) fn encrypt(&self, block: &mut [u8; 16]) {
        let block: &mut Array<u8, _> = block.into();
        match self {
            Self::Aes128(cipher) => cipher.encrypt_block(block),
            Self::Aes192(cipher) => cipher.encrypt_block(block),
            Self::Aes256(cipher) => cipher.encrypt_block(block),
        }
    }
}

fn keyed<C: KeyInit>(key: &[u8]) -> C {
    C::new_from_slice(key).unwrap_or_else(|_| unreachable!("key length matches the cipher"))
}
