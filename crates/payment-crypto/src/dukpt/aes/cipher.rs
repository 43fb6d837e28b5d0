//! The encrypt-only AES that the derivation function runs on.
//!
//! X9.24-3:2017 Annex A `Derive_Key` only ever encrypts, and the host keys a fresh cipher for
//! every one-bit of the counter (about a dozen per transaction). `primitives::BlockCipher` also
//! expands the decryption key schedule, which doubles the key setup and the schedule zeroized on
//! drop; the encrypt-only ciphers here halve the host's cost per derivation, and the host's
//! counter walk is generic over them so that no key schedule is moved between calls (see
//! `benches/dukpt_aes.rs`). It is RustCrypto's `aes` all the same, keyed through `KeyInit`, and
//! each key schedule is zeroized on drop (the `aes` crate's `zeroize` feature).

use aes::{Aes128Enc, Aes192Enc, Aes256Enc};
use cipher::consts::U16;
use cipher::{Array, BlockCipherEncrypt, KeyInit};

/// Encryption of one 16-byte block: what `Derive_Key` needs from a cipher.
pub(super) trait EncryptBlock {
    /// Encrypts `block` in place.
    fn encrypt(&self, block: &mut [u8; 16]);
}

impl<C: BlockCipherEncrypt<BlockSize = U16>> EncryptBlock for C {
    fn encrypt(&self, block: &mut [u8; 16]) {
        let block: &mut Array<u8, U16> = block.into();
        self.encrypt_block(block);
    }
}

/// Keys an encrypt-only AES of type `C` from `key`, whose length callers fixed from the
/// derivation key's type.
pub(super) fn keyed<C: KeyInit>(key: &[u8]) -> C {
    C::new_from_slice(key).unwrap_or_else(|_| unreachable!("key length matches the cipher"))
}

/// An encrypt-only AES key schedule of any of the three sizes, for single derivations.
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
}

impl EncryptBlock for DerivationCipher {
    fn encrypt(&self, block: &mut [u8; 16]) {
        match self {
            Self::Aes128(cipher) => cipher.encrypt(block),
            Self::Aes192(cipher) => cipher.encrypt(block),
            Self::Aes256(cipher) => cipher.encrypt(block),
        }
    }
}
