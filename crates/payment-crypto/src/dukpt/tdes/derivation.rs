//! Key derivation shared by both sides: the initial key (X9.24-1:2009 A.6), the non-reversible key
//! generation process (A.2), the receiving side's walk over the counter bits (A.3), the key
//! variants (A.4.1, Table A-1) and the data-key one-way function (A.4.1, Figure A-2).

use core::fmt;

use zeroize::Zeroizing;

use super::TdesDukptError;
use super::ksn::{COUNTER_BITS, Ksn, MAX_COUNTER_ONE_BITS};
use crate::key::{KeyAlgorithm, SecretKey};
use crate::primitives::{BlockCipher, des_encrypt_block};

/// Length of a double-length TDES key, the only key size X9.24-1:2009 DUKPT uses.
pub(crate) const KEY_LEN: usize = 16;

/// Raw bytes of a double-length key, wiped on drop.
pub(crate) type KeyBytes = Zeroizing<[u8; KEY_LEN]>;

/// The "C0C0 C0C0 0000 0000 C0C0 C0C0 0000 0000" mask of X9.24-1:2009 A.2 (non-reversible key
/// generation, step 4) and A.6 (right half of the initial key).
const KEY_REGISTER_MASK: [u8; KEY_LEN] = [
    0xC0, 0xC0, 0xC0, 0xC0, 0x00, 0x00, 0x00, 0x00, 0xC0, 0xC0, 0xC0, 0xC0, 0x00, 0x00, 0x00, 0x00,
];

/// The variants of the current (transaction) key, ANSI X9.24-1:2009 A.4.1, Table A-1.
///
/// Each variant is the current key XORed with a constant, so that a key used for one purpose is
/// never used for another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyVariant {
    /// PIN encryption: `0000 0000 0000 00FF 0000 0000 0000 00FF`.
    PinEncryption,
    /// MAC, request or both ways: `0000 0000 0000 FF00 0000 0000 0000 FF00`.
    MacRequest,
    /// MAC, response: `0000 0000 FF00 0000 0000 0000 FF00 0000`.
    MacResponse,
    /// Data encryption, request or both ways: `0000 0000 00FF 0000 0000 0000 00FF 0000`.
    DataRequest,
    /// Data encryption, response: `0000 00FF 0000 0000 0000 00FF 0000 0000`.
    DataResponse,
}

impl KeyVariant {
    /// The 16-byte variant constant XORed into the current key (Table A-1).
    #[must_use]
    pub const fn mask(self) -> [u8; KEY_LEN] {
        // The constant is one FF byte repeated in both halves; only its position differs.
        let position = match self {
            Self::PinEncryption => 7,
            Self::MacRequest => 6,
            Self::DataRequest => 5,
            Self::MacResponse => 4,
            Self::DataResponse => 3,
        };
        let mut mask = [0u8; KEY_LEN];
        mask[position] = 0xFF;
        mask[position + 8] = 0xFF;
        mask
    }
}

/// The raw bytes of a double-length TDES key.
pub(crate) fn double_length_key_bytes(key: &SecretKey) -> Result<KeyBytes, TdesDukptError> {
    let algorithm = key.algorithm();
    if algorithm != KeyAlgorithm::Tdes2 {
        return Err(TdesDukptError::KeyNotDoubleLengthTdes { algorithm });
    }
    let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
    bytes.copy_from_slice(key.expose_secret());
    Ok(bytes)
}

/// A `SecretKey` from double-length key bytes.
pub(crate) fn secret_key(bytes: &[u8; KEY_LEN]) -> SecretKey {
    SecretKey::new(KeyAlgorithm::Tdes2, bytes)
        .unwrap_or_else(|_| unreachable!("16 bytes always make a double-length TDES key"))
}

fn xor_into<const N: usize>(target: &mut [u8; N], mask: &[u8; N]) {
    target.iter_mut().zip(mask).for_each(|(t, m)| *t ^= m);
}

/// Derives the initial key (IPEK) from the BDK and the initial key serial number in `ksn`
/// (ANSI X9.24-1:2009 A.6, "Derivation of the Initial Key"). The KSN's counter bits are ignored.
///
/// # Errors
/// [`TdesDukptError::KeyNotDoubleLengthTdes`] when `bdk` is not a double-length TDES key.
pub fn derive_ipek(bdk: &SecretKey, ksn: &Ksn) -> Result<SecretKey, TdesDukptError> {
    Ok(BaseDerivationKey::new(bdk)?.derive_ipek(ksn))
}

/// A BDK keyed once for many host derivations.
///
/// Both TDEA keys of the initial key derivation (A.6) depend only on the BDK, so a host that
/// receives many KSNs under one BDK keys them once here instead of once per transaction. The
/// key schedules are wiped when this value is dropped.
pub struct BaseDerivationKey {
    /// Keyed with the BDK: gives the initial key's left half.
    left_half_cipher: BlockCipher,
    /// Keyed with the BDK XOR C0C0C0C000000000C0C0C0C000000000: gives the right half.
    right_half_cipher: BlockCipher,
}

impl BaseDerivationKey {
    /// Keys both TDEA ciphers of A.6 from `bdk`.
    ///
    /// # Errors
    /// [`TdesDukptError::KeyNotDoubleLengthTdes`] when `bdk` is not a double-length TDES key.
    pub fn new(bdk: &SecretKey) -> Result<Self, TdesDukptError> {
        let mut variant = double_length_key_bytes(bdk)?;
        xor_into(&mut variant, &KEY_REGISTER_MASK);
        Ok(Self {
            left_half_cipher: BlockCipher::new(bdk),
            right_half_cipher: BlockCipher::new(&secret_key(&variant)),
        })
    }

    /// The initial key (IPEK) of the device whose initial key serial number is in `ksn`
    /// (A.6); the counter bits are ignored.
    #[must_use]
    pub fn derive_ipek(&self, ksn: &Ksn) -> SecretKey {
        secret_key(&self.ipek_bytes(ksn))
    }

    /// Receiving (host) side: the keys of the transaction identified by `ksn` (A.6 then A.3).
    /// See [`derive_transaction_keys`] for the KSNs it refuses.
    ///
    /// # Errors
    /// [`TdesDukptError::CounterZero`] or [`TdesDukptError::CounterTooManyOneBits`] for a KSN no
    /// originator produces.
    pub fn derive_transaction_keys(&self, ksn: &Ksn) -> Result<TransactionKeys, TdesDukptError> {
        check_receivable(ksn)?;
        let ipek = self.ipek_bytes(ksn);
        Ok(TransactionKeys::new(*ksn, current_key_bytes(&ipek, ksn)))
    }

    fn ipek_bytes(&self, ksn: &Ksn) -> KeyBytes {
        // A.6: the leftmost 64 bits of the KSN with the 21 counter bits zeroed, TDEA-encrypted
        // under the BDK (left half) and under its C0C0C0C0 variant (right half).
        let serial = ksn.initial_key_serial();
        let mut ipek = Zeroizing::new([0u8; KEY_LEN]);
        let (left, right) = ipek.split_at_mut(8);
        left.copy_from_slice(&serial);
        right.copy_from_slice(&serial);
        for (cipher, half) in [
            (&self.left_half_cipher, left),
            (&self.right_half_cipher, right),
        ] {
            cipher
                .encrypt_ecb(half)
                .unwrap_or_else(|_| unreachable!("each half is one 8-byte block"));
        }
        ipek
    }
}

impl fmt::Debug for BaseDerivationKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BaseDerivationKey").finish_non_exhaustive()
    }
}

/// One half of the non-reversible key generation process: `data` XOR right half, DEA-encrypted
/// under the left half, XOR right half (X9.24-1:2009 A.2, steps 1-3 and 5-7).
fn non_reversible_half(key: &[u8; KEY_LEN], data: &[u8; 8]) -> [u8; 8] {
    let mut left = Zeroizing::new([0u8; 8]);
    let mut right = Zeroizing::new([0u8; 8]);
    left.copy_from_slice(&key[..8]);
    right.copy_from_slice(&key[8..]);
    let mut block = *data;
    xor_into(&mut block, &right);
    des_encrypt_block(&left, &mut block);
    xor_into(&mut block, &right);
    block
}

/// The "Non-reversible Key Generation Process" of ANSI X9.24-1:2009 A.2: derives the key for
/// the KSN whose rightmost 64 bits are `ksn_right` from the key register `key`.
pub(crate) fn non_reversible_key(key: &[u8; KEY_LEN], ksn_right: &[u8; 8]) -> KeyBytes {
    let mut derived = Zeroizing::new([0u8; KEY_LEN]);
    // Steps 1-3 leave Crypto Register-2, the right half of the new key.
    let crypto_register_2 = Zeroizing::new(non_reversible_half(key, ksn_right));
    // Step 4 XORs the key register with C0C0 C0C0 0000 0000 C0C0 C0C0 0000 0000; steps 5-7 then
    // leave Crypto Register-1, the left half.
    let mut variant = Zeroizing::new(*key);
    xor_into(&mut variant, &KEY_REGISTER_MASK);
    let crypto_register_1 = Zeroizing::new(non_reversible_half(&variant, ksn_right));
    derived[..8].copy_from_slice(crypto_register_1.as_slice());
    derived[8..].copy_from_slice(crypto_register_2.as_slice());
    derived
}

/// Rejects counters no originator ever uses (see [`derive_transaction_keys`]).
fn check_receivable(ksn: &Ksn) -> Result<(), TdesDukptError> {
    let counter = ksn.counter();
    if counter == 0 {
        return Err(TdesDukptError::CounterZero);
    }
    let ones = counter.count_ones();
    if ones > MAX_COUNTER_ONE_BITS {
        return Err(TdesDukptError::CounterTooManyOneBits { ones });
    }
    Ok(())
}

/// The current key for `ksn` from the initial key: starting from the IPEK and the KSN with its
/// counter cleared, for each counter "one" bit from the left, set that bit in the KSN register
/// and run the non-reversible key generation process (X9.24-1:2009 A.3 and A.2).
fn current_key_bytes(ipek: &[u8; KEY_LEN], ksn: &Ksn) -> KeyBytes {
    let counter = ksn.counter();
    let mut key = Zeroizing::new(*ipek);
    let mut register_counter = 0u32;
    for bit in (0..COUNTER_BITS).rev() {
        let shift_register = 1u32 << bit;
        if counter & shift_register == 0 {
            continue;
        }
        register_counter |= shift_register;
        let register = ksn.with_counter_unchecked(register_counter);
        *key = *non_reversible_key(&key, &register.rightmost_64_bits());
    }
    key
}

/// Receiving (host) side: the keys of the transaction identified by `ksn`, from the BDK
/// (X9.24-1:2009 A.6 then A.3).
///
/// The host refuses two kinds of KSN that no conforming originator sends: counter 0 (its key
/// would be the initial key itself, which A.2 never uses for a transaction) and counters with
/// more than 10 "one" bits (A.2, "New Key", skips them). The standard leaves the host's
/// reaction open; such a KSN is forged or corrupted, so it is refused rather than answered.
///
/// A host deriving many keys under one BDK should key it once with [`BaseDerivationKey`].
///
/// # Errors
/// - [`TdesDukptError::KeyNotDoubleLengthTdes`] when `bdk` is not a double-length TDES key.
/// - [`TdesDukptError::CounterZero`] or [`TdesDukptError::CounterTooManyOneBits`] for a KSN no
///   originator produces.
pub fn derive_transaction_keys(
    bdk: &SecretKey,
    ksn: &Ksn,
) -> Result<TransactionKeys, TdesDukptError> {
    BaseDerivationKey::new(bdk)?.derive_transaction_keys(ksn)
}

/// Receiving side from an initial key instead of the BDK (for hosts, or test tools, that are
/// given the IPEK of one device). Same checks as [`derive_transaction_keys`].
///
/// # Errors
/// - [`TdesDukptError::KeyNotDoubleLengthTdes`] when `ipek` is not a double-length TDES key.
/// - [`TdesDukptError::CounterZero`] or [`TdesDukptError::CounterTooManyOneBits`] for a KSN no
///   originator produces.
pub fn derive_transaction_keys_from_ipek(
    ipek: &SecretKey,
    ksn: &Ksn,
) -> Result<TransactionKeys, TdesDukptError> {
    let ipek = double_length_key_bytes(ipek)?;
    check_receivable(ksn)?;
    Ok(TransactionKeys::new(*ksn, current_key_bytes(&ipek, ksn)))
}

/// The keys of one transaction: its KSN and current key, from which the working keys derive.
///
/// Built by the host ([`derive_transaction_keys`]) or by the terminal
/// ([`Originator::next_transaction`](super::Originator::next_transaction)); both give the same
/// keys for the same KSN. The current key is wiped when this value is dropped.
pub struct TransactionKeys {
    ksn: Ksn,
    current_key: KeyBytes,
}

impl TransactionKeys {
    pub(crate) fn new(ksn: Ksn, current_key: KeyBytes) -> Self {
        Self { ksn, current_key }
    }

    /// The KSN the terminal sends with this transaction.
    #[must_use]
    pub fn ksn(&self) -> Ksn {
        self.ksn
    }

    /// The current key itself (X9.24-1:2009 A.2 "Key Register" contents), before any variant.
    /// Use it only to derive keys outside this module; never encrypt with it directly.
    #[must_use]
    pub fn current_key(&self) -> SecretKey {
        secret_key(&self.current_key)
    }

    /// The current key XORed with `variant`'s constant (A.4.1, Table A-1), without the data-key
    /// one-way function. For data encryption use [`Self::data_request_key`] or
    /// [`Self::data_response_key`], which apply it.
    #[must_use]
    pub fn variant_key(&self, variant: KeyVariant) -> SecretKey {
        secret_key(&self.variant_bytes(variant))
    }

    /// The PIN encryption key (A.2 "Request PIN Entry 2", step 4; Table A-1).
    #[must_use]
    pub fn pin_encryption_key(&self) -> SecretKey {
        self.variant_key(KeyVariant::PinEncryption)
    }

    /// The MAC key for requests, or both ways (A.2 "Request PIN Entry 2", step 2; Table A-1).
    #[must_use]
    pub fn mac_request_key(&self) -> SecretKey {
        self.variant_key(KeyVariant::MacRequest)
    }

    /// The MAC key for responses (A.2 "Request PIN Entry 2", step 2; Table A-1).
    #[must_use]
    pub fn mac_response_key(&self) -> SecretKey {
        self.variant_key(KeyVariant::MacResponse)
    }

    /// The data encryption key for requests, or both ways: the data request variant passed
    /// through the one-way function of A.4.1, Figure A-2 (A.2 "Request PIN Entry 2", step 3).
    #[must_use]
    pub fn data_request_key(&self) -> SecretKey {
        self.data_key(KeyVariant::DataRequest)
    }

    /// The data encryption key for responses: the data response variant passed through the
    /// one-way function of A.4.1, Figure A-2 (A.2 "Request PIN Entry 2", step 3).
    #[must_use]
    pub fn data_response_key(&self) -> SecretKey {
        self.data_key(KeyVariant::DataResponse)
    }

    fn variant_bytes(&self, variant: KeyVariant) -> KeyBytes {
        let mut key = Zeroizing::new(*self.current_key);
        xor_into(&mut key, &variant.mask());
        key
    }

    /// Figure A-2: the variant TDEA-encrypts its own left half and its own right half; the two
    /// results form the data key. Parity is not adjusted on the way in.
    fn data_key(&self, variant: KeyVariant) -> SecretKey {
        let variant_key = self.variant_bytes(variant);
        let mut data_key = Zeroizing::new(*variant_key);
        // ECB over the two 8-byte halves encrypts each half on its own, as the figure does.
        BlockCipher::new(&secret_key(&variant_key))
            .encrypt_ecb(data_key.as_mut_slice())
            .unwrap_or_else(|_| unreachable!("16 bytes are two whole TDEA blocks"));
        secret_key(&data_key)
    }
}

impl fmt::Debug for TransactionKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TransactionKeys")
            .field("ksn", &self.ksn)
            .finish_non_exhaustive()
    }
}
