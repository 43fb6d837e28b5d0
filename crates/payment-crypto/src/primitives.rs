//! Block-cipher plumbing shared by every module: one dispatch over the five key types.
//!
//! The ciphers and CMAC themselves are RustCrypto's (`des`, `aes`, `cmac`). What lives here is only
//! the glue: picking the cipher from a [`SecretKey`]'s algorithm, ECB over whole blocks, and CBC
//! chaining. CBC is chained here rather than through the `cbc` crate so that one enum dispatch
//! serves all five key types without five generic instantiations per call site.
//!
//! Expanded key schedules are zeroized on drop (the `zeroize` features of `des` and `aes`).

use aes::{Aes128, Aes192, Aes256};
use cipher::{Array, BlockCipherDecrypt, BlockCipherEncrypt, KeyInit};
use cmac::block_api::CmacCipher;
use cmac::{Cmac, Mac};
use des::{Des, TdesEde2, TdesEde3};

use crate::key::{KeyAlgorithm, SecretKey};

/// Input whose length is not a whole number of cipher blocks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NotBlockAligned;

/// A keyed block cipher of any algorithm this crate supports.
pub(crate) enum BlockCipher {
    Tdes2(TdesEde2),
    Tdes3(TdesEde3),
    Aes128(Aes128),
    Aes192(Aes192),
    Aes256(Aes256),
}

/// Keys a cipher from bytes whose length the `SecretKey` constructor already checked.
fn keyed<C: KeyInit>(key: &SecretKey) -> C {
    match C::new_from_slice(key.expose_secret()) {
        Ok(cipher) => cipher,
        // SecretKey guarantees the length matches its algorithm.
        Err(_) => unreachable!("SecretKey length always matches its algorithm"),
    }
}

impl BlockCipher {
    pub(crate) fn new(key: &SecretKey) -> Self {
        match key.algorithm() {
            KeyAlgorithm::Tdes2 => Self::Tdes2(keyed(key)),
            KeyAlgorithm::Tdes3 => Self::Tdes3(keyed(key)),
            KeyAlgorithm::Aes128 => Self::Aes128(keyed(key)),
            KeyAlgorithm::Aes192 => Self::Aes192(keyed(key)),
            KeyAlgorithm::Aes256 => Self::Aes256(keyed(key)),
        }
    }

    /// 8 for TDES, 16 for AES.
    pub(crate) fn block_len(&self) -> usize {
        match self {
            Self::Tdes2(_) | Self::Tdes3(_) => 8,
            Self::Aes128(_) | Self::Aes192(_) | Self::Aes256(_) => 16,
        }
    }

    fn check_aligned(&self, data: &[u8]) -> Result<(), NotBlockAligned> {
        if data.len().is_multiple_of(self.block_len()) {
            Ok(())
        } else {
            Err(NotBlockAligned)
        }
    }

    /// Encrypts one block in place; `block` must be exactly one block long.
    fn encrypt_one(&self, block: &mut [u8]) {
        match self {
            Self::Tdes2(c) => encrypt_with(c, block),
            Self::Tdes3(c) => encrypt_with(c, block),
            Self::Aes128(c) => encrypt_with(c, block),
            Self::Aes192(c) => encrypt_with(c, block),
            Self::Aes256(c) => encrypt_with(c, block),
        }
    }

    /// Decrypts one block in place; `block` must be exactly one block long.
    fn decrypt_one(&self, block: &mut [u8]) {
        match self {
            Self::Tdes2(c) => decrypt_with(c, block),
            Self::Tdes3(c) => decrypt_with(c, block),
            Self::Aes128(c) => decrypt_with(c, block),
            Self::Aes192(c) => decrypt_with(c, block),
            Self::Aes256(c) => decrypt_with(c, block),
        }
    }

    /// ECB-encrypts `data` in place, block by block.
    pub(crate) fn encrypt_ecb(&self, data: &mut [u8]) -> Result<(), NotBlockAligned> {
        self.check_aligned(data)?;
        data.chunks_exact_mut(self.block_len())
            .for_each(|block| self.encrypt_one(block));
        Ok(())
    }

    /// ECB-decrypts `data` in place, block by block.
    pub(crate) fn decrypt_ecb(&self, data: &mut [u8]) -> Result<(), NotBlockAligned> {
        self.check_aligned(data)?;
        data.chunks_exact_mut(self.block_len())
            .for_each(|block| self.decrypt_one(block));
        Ok(())
    }

    /// CBC-encrypts `data` in place under `iv` (one block long).
    pub(crate) fn encrypt_cbc(&self, iv: &[u8], data: &mut [u8]) -> Result<(), NotBlockAligned> {
        self.check_aligned(data)?;
        if iv.len() != self.block_len() {
            return Err(NotBlockAligned);
        }
        let mut chain = [0u8; 16];
        let chain = &mut chain[..self.block_len()];
        chain.copy_from_slice(iv);
        for block in data.chunks_exact_mut(self.block_len()) {
            block
                .iter_mut()
                .zip(chain.iter())
                .for_each(|(b, c)| *b ^= c);
            self.encrypt_one(block);
            chain.copy_from_slice(block);
        }
        Ok(())
    }

    /// CBC-decrypts `data` in place under `iv` (one block long).
    pub(crate) fn decrypt_cbc(&self, iv: &[u8], data: &mut [u8]) -> Result<(), NotBlockAligned> {
        self.check_aligned(data)?;
        if iv.len() != self.block_len() {
            return Err(NotBlockAligned);
        }
        let mut chain = [0u8; 16];
        let mut next = [0u8; 16];
        let block_len = self.block_len();
        chain[..block_len].copy_from_slice(iv);
        for block in data.chunks_exact_mut(block_len) {
            next[..block_len].copy_from_slice(block);
            self.decrypt_one(block);
            block
                .iter_mut()
                .zip(chain.iter())
                .for_each(|(b, c)| *b ^= c);
            chain[..block_len].copy_from_slice(&next[..block_len]);
        }
        Ok(())
    }
}

fn encrypt_with<C: BlockCipherEncrypt>(cipher: &C, block: &mut [u8]) {
    // Callers hand over `chunks_exact` pieces of the block length, so the conversion cannot fail.
    let block = <&mut Array<u8, C::BlockSize>>::try_from(block)
        .unwrap_or_else(|_| unreachable!("callers pass whole blocks"));
    cipher.encrypt_block(block);
}

fn decrypt_with<C: BlockCipherDecrypt>(cipher: &C, block: &mut [u8]) {
    let block = <&mut Array<u8, C::BlockSize>>::try_from(block)
        .unwrap_or_else(|_| unreachable!("callers pass whole blocks"));
    cipher.decrypt_block(block);
}

/// CMAC (NIST SP 800-38B) of `data` under `key`; returns the full tag (8 or 16 bytes) in a
/// 16-byte buffer and its length.
pub(crate) fn cmac(key: &SecretKey, data: &[u8]) -> ([u8; 16], usize) {
    fn run<C>(key: &SecretKey, data: &[u8]) -> ([u8; 16], usize)
    where
        C: CmacCipher + KeyInit,
    {
        let mut mac = <Cmac<C> as KeyInit>::new_from_slice(key.expose_secret())
            .unwrap_or_else(|_| unreachable!("SecretKey length always matches its algorithm"));
        mac.update(data);
        let tag = mac.finalize().into_bytes();
        let mut out = [0u8; 16];
        out[..tag.len()].copy_from_slice(&tag);
        (out, tag.len())
    }
    match key.algorithm() {
        KeyAlgorithm::Tdes2 => run::<TdesEde2>(key, data),
        KeyAlgorithm::Tdes3 => run::<TdesEde3>(key, data),
        KeyAlgorithm::Aes128 => run::<Aes128>(key, data),
        KeyAlgorithm::Aes192 => run::<Aes192>(key, data),
        KeyAlgorithm::Aes256 => run::<Aes256>(key, data),
    }
}

/// Single-DES encryption of one block, for the places the standards use single DES on purpose
/// (the X9.24-1 non-reversible key generation process and the ISO 9797-1 retail MAC).
pub(crate) fn des_encrypt_block(key: &[u8; 8], block: &mut [u8; 8]) {
    let des = Des::new(&Array::from(*key));
    let mut buf = Array::from(*block);
    des.encrypt_block(&mut buf);
    *block = buf.into();
}

/// Single-DES decryption of one block (the middle step of the ISO 9797-1 retail MAC).
pub(crate) fn des_decrypt_block(key: &[u8; 8], block: &mut [u8; 8]) {
    let des = Des::new(&Array::from(*key));
    let mut buf = Array::from(*block);
    des.decrypt_block(&mut buf);
    *block = buf.into();
}

#[cfg(test)]
mod tests {
    use super::*;
    use hex_literal::hex;

    /// FIPS-197 Appendix C.1 (AES-128) and NIST SP 800-38B Appendix D.1 (AES-128 CMAC, example 2).
    #[test]
    fn aes_and_cmac_match_nist() {
        let key = SecretKey::aes(&hex!("000102030405060708090a0b0c0d0e0f")).unwrap();
        let mut block = hex!("00112233445566778899aabbccddeeff");
        let cipher = BlockCipher::new(&key);
        cipher.encrypt_ecb(&mut block).unwrap();
        assert_eq!(block, hex!("69c4e0d86a7b0430d8cdb78070b4c55a"));
        cipher.decrypt_ecb(&mut block).unwrap();
        assert_eq!(block, hex!("00112233445566778899aabbccddeeff"));

        let key = SecretKey::aes(&hex!("2b7e151628aed2a6abf7158809cf4f3c")).unwrap();
        let (tag, len) = cmac(&key, &hex!("6bc1bee22e409f96e93d7e117393172a"));
        assert_eq!(&tag[..len], hex!("070a16b46b4d4144f79bdd9dd04a287c"));
    }

    /// NIST SP 800-38A F.2.1 (CBC-AES128.Encrypt), first two blocks.
    #[test]
    fn cbc_matches_nist() {
        let key = SecretKey::aes(&hex!("2b7e151628aed2a6abf7158809cf4f3c")).unwrap();
        let iv = hex!("000102030405060708090a0b0c0d0e0f");
        let plain = hex!("6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51");
        let mut data = plain;
        let cipher = BlockCipher::new(&key);
        cipher.encrypt_cbc(&iv, &mut data).unwrap();
        assert_eq!(
            data,
            hex!("7649abac8119b246cee98e9b12e9197d5086cb9b507219ee95db113a917678b2")
        );
        cipher.decrypt_cbc(&iv, &mut data).unwrap();
        assert_eq!(data, plain);
        assert_eq!(
            cipher.encrypt_cbc(&iv, &mut data[..5]),
            Err(NotBlockAligned)
        );
    }

    /// The classic DES test: key 133457799BBCDFF1, plaintext 0123456789ABCDEF.
    #[test]
    fn single_des_round_trips() {
        let key = hex!("133457799BBCDFF1");
        let mut block = hex!("0123456789ABCDEF");
        des_encrypt_block(&key, &mut block);
        assert_eq!(block, hex!("85E813540F0AB405"));
        des_decrypt_block(&key, &mut block);
        assert_eq!(block, hex!("0123456789ABCDEF"));
    }
}
