//! The receiving (host) side: derive any transaction's keys from the BDK or the initial key
//! (X9.24-3:2017, 6.3.1 and 6.4, Annex A `Derive_Initial_Key` / `Host_Derive_Working_Key`).

use super::cipher::{DerivationCipher, EncryptBlock, keyed};
use super::derivation::{check_derivation_key, check_working_key_type};
use super::ksn::validate_counter;
use super::{AesDukptError, DerivationData, InitialKeyId, KeyUsage, Ksn, WorkingKeyUsage};
use crate::key::{KeyAlgorithm, SecretKey};
use aes::{Aes128Enc, Aes192Enc, Aes256Enc};
use cipher::KeyInit;
use core::fmt;

use zeroize::Zeroizing;

/// A BDK prepared for host derivations: checked to be AES once, its key schedule expanded once.
///
/// A host that serves many devices under one BDK keeps one `HostBdk` and saves a key schedule
/// per transaction over [`derive_working_key`]. The schedule is zeroized on drop and `Debug`
/// shows only the key type.
pub struct HostBdk {
    derivation_type: KeyAlgorithm,
    cipher: DerivationCipher,
}

impl HostBdk {
    /// Prepares `bdk`.
    ///
    /// # Errors
    /// [`AesDukptError::NotAesDerivationKey`] if `bdk` is not an AES key.
    pub fn new(bdk: &SecretKey) -> Result<Self, AesDukptError> {
        Ok(Self {
            derivation_type: check_derivation_key(bdk)?,
            cipher: DerivationCipher::new(bdk.expose_secret()),
        })
    }

    /// The BDK's type, which is also the type of every initial and intermediate key under it.
    #[must_use]
    pub fn derivation_key_type(&self) -> KeyAlgorithm {
        self.derivation_type
    }

    /// Derives a device's initial key (Annex A `Derive_Initial_Key`): the BDK's type, usage
    /// `8001`, over the whole initial key ID.
    #[must_use]
    pub fn derive_initial_key(&self, initial_key_id: &InitialKeyId) -> SecretKey {
        DerivationData::initial_key(self.derivation_type, initial_key_id)
            .derive(&self.cipher, self.derivation_type)
    }

    /// Derives the working key of `usage` and `key_type` for `ksn` (Annex A
    /// `Host_Derive_Working_Key`).
    ///
    /// # Errors
    /// [`AesDukptError::ZeroCounter`] / [`AesDukptError::TooManyOneBits`] if the KSN's counter
    /// names no transaction; [`AesDukptError::WorkingKeyTooStrong`] if `key_type` is stronger
    /// than the BDK.
    pub fn derive_working_key(
        &self,
        ksn: &Ksn,
        usage: WorkingKeyUsage,
        key_type: KeyAlgorithm,
    ) -> Result<SecretKey, AesDukptError> {
        check_request(self.derivation_type, ksn, key_type)?;
        // Annex A `Derive_Initial_Key`, kept in a zeroizing buffer rather than a `SecretKey`: it
        // only feeds the next derivation.
        let mut key = Zeroizing::new([0u8; 32]);
        DerivationData::initial_key(self.derivation_type, ksn.initial_key_id()).derive_into(
            &self.cipher,
            self.derivation_type,
            &mut key,
        );
        Ok(working_key_from_initial(
            key,
            self.derivation_type,
            ksn,
            usage,
            key_type,
        ))
    }
}

impl fmt::Debug for HostBdk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HostBdk")
            .field("derivation_type", &self.derivation_type)
            .finish_non_exhaustive()
    }
}

/// Derives a device's initial key from the BDK (Annex A `Derive_Initial_Key`): the initial key
/// has the BDK's type and is derived with usage `8001` over the whole initial key ID.
///
/// # Errors
/// [`AesDukptError::NotAesDerivationKey`] if `bdk` is not an AES key.
pub fn derive_initial_key(
    bdk: &SecretKey,
    initial_key_id: &InitialKeyId,
) -> Result<SecretKey, AesDukptError> {
    Ok(HostBdk::new(bdk)?.derive_initial_key(initial_key_id))
}

/// Derives the intermediate derivation key for `counter` from the initial key: starting from the
/// initial key, one derivation (usage `8000`) per one-bit of the counter, most significant first,
/// each over the counter's bits seen so far (Annex A `Host_Derive_Working_Key`, first loop).
///
/// This is the key an originator holds in a register when it reaches `counter`.
///
/// # Errors
/// [`AesDukptError::NotAesDerivationKey`] if `initial_key` is not AES;
/// [`AesDukptError::ZeroCounter`] or [`AesDukptError::TooManyOneBits`] for an invalid counter.
pub fn derive_intermediate_key(
    initial_key: &SecretKey,
    initial_key_id: &InitialKeyId,
    counter: u32,
) -> Result<SecretKey, AesDukptError> {
    let key_type = check_derivation_key(initial_key)?;
    validate_counter(counter)?;
    let mut key = Zeroizing::new([0u8; 32]);
    let key_len = key_type.key_len();
    key[..key_len].copy_from_slice(initial_key.expose_secret());
    walk_counter(&mut key, key_type, initial_key_id, counter);
    Ok(SecretKey::new(key_type, &key[..key_len])
        .unwrap_or_else(|_| unreachable!("the buffer is cut to the key type's length")))
}

/// Derives the working key of `usage` and `key_type` for `ksn` from the BDK
/// (Annex A `Host_Derive_Working_Key`).
///
/// # Errors
/// [`AesDukptError::NotAesDerivationKey`] if `bdk` is not AES;
/// [`AesDukptError::ZeroCounter`] / [`AesDukptError::TooManyOneBits`] if the KSN's counter names
/// no transaction; [`AesDukptError::WorkingKeyTooStrong`] if `key_type` is stronger than the BDK.
pub fn derive_working_key(
    bdk: &SecretKey,
    ksn: &Ksn,
    usage: WorkingKeyUsage,
    key_type: KeyAlgorithm,
) -> Result<SecretKey, AesDukptError> {
    HostBdk::new(bdk)?.derive_working_key(ksn, usage, key_type)
}

/// Derives the working key of `usage` and `key_type` for `ksn` from the device's initial key,
/// for hosts that store initial keys rather than BDKs.
///
/// # Errors
/// As [`derive_working_key`], with `initial_key` in place of the BDK.
pub fn derive_working_key_from_initial_key(
    initial_key: &SecretKey,
    ksn: &Ksn,
    usage: WorkingKeyUsage,
    key_type: KeyAlgorithm,
) -> Result<SecretKey, AesDukptError> {
    let derivation_type = check_derivation_key(initial_key)?;
    check_request(derivation_type, ksn, key_type)?;
    let mut key = Zeroizing::new([0u8; 32]);
    key[..derivation_type.key_len()].copy_from_slice(initial_key.expose_secret());
    Ok(working_key_from_initial(
        key,
        derivation_type,
        ksn,
        usage,
        key_type,
    ))
}

fn check_request(
    derivation_type: KeyAlgorithm,
    ksn: &Ksn,
    key_type: KeyAlgorithm,
) -> Result<(), AesDukptError> {
    validate_counter(ksn.counter())?;
    check_working_key_type(derivation_type, key_type)
}

/// Both checks done: walk the counter from the initial key (in `key`), then derive the working
/// key from the intermediate derivation key with the working key's own usage and type (Annex A,
/// last step).
fn working_key_from_initial(
    mut key: Zeroizing<[u8; 32]>,
    derivation_type: KeyAlgorithm,
    ksn: &Ksn,
    usage: WorkingKeyUsage,
    key_type: KeyAlgorithm,
) -> SecretKey {
    walk_counter(
        &mut key,
        derivation_type,
        ksn.initial_key_id(),
        ksn.counter(),
    );
    DerivationData::new(usage.into(), key_type, ksn.initial_key_id(), ksn.counter()).derive(
        &DerivationCipher::new(&key[..derivation_type.key_len()]),
        key_type,
    )
}

/// The first loop of Annex A `Host_Derive_Working_Key`: for each one-bit of `counter`, most
/// significant first, derive the next intermediate key (usage `8000`, the derivation key's type)
/// over the counter bits set so far. `key` holds the initial key on entry and the intermediate
/// derivation key of `counter` on return; each key overwrites the one it came from, and the
/// buffer is zeroized when its owner drops it. Counter 0 leaves the initial key in place.
fn walk_counter(
    key: &mut Zeroizing<[u8; 32]>,
    derivation_type: KeyAlgorithm,
    initial_key_id: &InitialKeyId,
    counter: u32,
) {
    // One monomorphic loop per AES size, so each step keys its cipher in place.
    match derivation_type.key_len() {
        16 => walk_counter_with::<Aes128Enc>(key, derivation_type, initial_key_id, counter),
        24 => walk_counter_with::<Aes192Enc>(key, derivation_type, initial_key_id, counter),
        _ => walk_counter_with::<Aes256Enc>(key, derivation_type, initial_key_id, counter),
    }
}

fn walk_counter_with<C: KeyInit + EncryptBlock>(
    key: &mut Zeroizing<[u8; 32]>,
    derivation_type: KeyAlgorithm,
    initial_key_id: &InitialKeyId,
    counter: u32,
) {
    let key_len = derivation_type.key_len();
    let mut working_counter = 0u32;
    let mut remaining = counter;
    while remaining != 0 {
        let bit = 1u32 << (31 - remaining.leading_zeros());
        remaining &= !bit;
        working_counter |= bit;
        let cipher: C = keyed(&key[..key_len]);
        DerivationData::new(
            KeyUsage::KeyDerivation,
            derivation_type,
            initial_key_id,
            working_counter,
        )
        .derive_into(&cipher, derivation_type, key);
    }
}
