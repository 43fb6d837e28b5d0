//! The originating (terminal) side: intermediate derivation key registers and the transaction
//! counter (X9.24-3:2017, 6.5 and Annex A `Load_Initial_Key`, `Generate_Working_Keys`,
//! `Update_State_for_next_Transaction`).
//!
//! Invariant, for a next counter `c` whose lowest one-bit is bit `k`: register `k` holds the
//! intermediate derivation key of `c`; each register `j > k` whose bit is zero in `c` holds the
//! key of `c`'s bits above `j` plus bit `j` (the next counter that will need it); every other
//! register is empty. Keys are derived forward only, so a device compromised later cannot
//! recompute the keys of past transactions.

use core::fmt;

use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use super::cipher::DerivationCipher;
use super::derivation::{
    aes_type_for_indicator, algorithm_indicator, check_derivation_key, check_working_key_type,
};
use super::ksn::{MAX_COUNTER_ONE_BITS, validate_counter};
use super::{AesDukptError, DerivationData, InitialKeyId, KeyUsage, Ksn, WorkingKeyUsage};
use crate::key::{KeyAlgorithm, SecretKey};
use crate::primitives;

/// Number of intermediate derivation key registers: one per counter bit (Annex A `NUMREG`).
pub const REGISTER_COUNT: usize = 32;

/// Format version of [`Originator::export_state`].
const STATE_VERSION: u8 = 1;

/// Header of the exported state: version, key type, initial key ID, counter, register map.
const STATE_HEADER_LEN: usize = 1 + 1 + 8 + 4 + 4;

/// Length of the checksum that ends the exported state.
const STATE_CHECKSUM_LEN: usize = 16;

/// Longest exported state: every register in use with AES-256 keys.
const MAX_STATE_LEN: usize = STATE_HEADER_LEN + REGISTER_COUNT * 32 + STATE_CHECKSUM_LEN;

/// An exported originator state (see [`Originator::export_state`]). It holds key bytes: the
/// buffer is zeroized on drop, `Debug` prints only its length, and the device must store it
/// encrypted.
pub struct OriginatorState {
    bytes: Zeroizing<[u8; MAX_STATE_LEN]>,
    len: usize,
}

impl OriginatorState {
    /// The serialised state.
    #[must_use]
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    /// Appends `data`; the format's fixed sizes keep the total within `MAX_STATE_LEN`.
    fn push(&mut self, data: &[u8]) {
        let end = self.len + data.len();
        self.bytes[self.len..end].copy_from_slice(data);
        self.len = end;
    }
}

impl fmt::Debug for OriginatorState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OriginatorState")
            .field("len", &self.len)
            .finish_non_exhaustive()
    }
}

/// An AES DUKPT originating device: its initial key ID, 32 intermediate derivation key registers
/// and the counter of its next transaction.
///
/// One transaction: read [`Originator::ksn`], derive as many working keys as the transaction needs
/// with [`Originator::derive_working_key`], then [`Originator::advance`]. For a one-key transaction
/// [`Originator::generate_working_key`] does all three.
///
/// Registers are [`SecretKey`]s: a key is zeroized as soon as its register is erased.
pub struct Originator {
    derivation_type: KeyAlgorithm,
    initial_key_id: InitialKeyId,
    registers: [Option<SecretKey>; REGISTER_COUNT],
    /// Counter of the next transaction; `None` once the counter is exhausted.
    next_counter: Option<u32>,
}

impl Originator {
    /// Loads an initial key (Annex A `Load_Initial_Key`): fills register `i` with the intermediate
    /// derivation key of counter `2^i` for every `i`, and sets the next counter to 1. The initial
    /// key itself is not kept.
    ///
    /// # Errors
    /// [`AesDukptError::NotAesDerivationKey`] if `initial_key` is not an AES key.
    pub fn load_initial_key(
        initial_key: &SecretKey,
        initial_key_id: InitialKeyId,
    ) -> Result<Self, AesDukptError> {
        let derivation_type = check_derivation_key(initial_key)?;
        let mut originator = Self {
            derivation_type,
            initial_key_id,
            registers: Default::default(),
            next_counter: Some(1),
        };
        originator.fill_registers_below(
            REGISTER_COUNT,
            0,
            &DerivationCipher::new(initial_key.expose_secret()),
        );
        Ok(originator)
    }

    /// The initial key ID.
    #[must_use]
    pub fn initial_key_id(&self) -> &InitialKeyId {
        &self.initial_key_id
    }

    /// The derivation key type (that of the initial key).
    #[must_use]
    pub fn derivation_key_type(&self) -> KeyAlgorithm {
        self.derivation_type
    }

    /// The counter of the next transaction, or `None` once the counter is exhausted.
    #[must_use]
    pub fn transaction_counter(&self) -> Option<u32> {
        self.next_counter
    }

    /// The KSN of the current (next) transaction.
    ///
    /// # Errors
    /// [`AesDukptError::CounterExhausted`] once the last counter has been used.
    pub fn ksn(&self) -> Result<Ksn, AesDukptError> {
        let counter = self.next_counter.ok_or(AesDukptError::CounterExhausted)?;
        Ok(Ksn::new(self.initial_key_id, counter))
    }

    /// The intermediate derivation key in register `index`, if that register is in use.
    /// For audits and tests; a transaction needs only [`Originator::derive_working_key`].
    #[must_use]
    pub fn intermediate_derivation_key(&self, index: usize) -> Option<&SecretKey> {
        self.registers.get(index).and_then(Option::as_ref)
    }

    /// Derives the current transaction's working key of `usage` and `key_type` (Annex A
    /// `Generate_Working_Keys`, derivation step), without advancing the counter.
    ///
    /// # Errors
    /// [`AesDukptError::CounterExhausted`] once the last counter has been used;
    /// [`AesDukptError::WorkingKeyTooStrong`] if `key_type` is stronger than the initial key.
    pub fn derive_working_key(
        &self,
        usage: WorkingKeyUsage,
        key_type: KeyAlgorithm,
    ) -> Result<SecretKey, AesDukptError> {
        check_working_key_type(self.derivation_type, key_type)?;
        let counter = self.next_counter.ok_or(AesDukptError::CounterExhausted)?;
        let register = self.current_register(counter);
        Ok(
            DerivationData::new(usage.into(), key_type, &self.initial_key_id, counter)
                .derive(&DerivationCipher::new(register.expose_secret()), key_type),
        )
    }

    /// Ends the current transaction (Annex A `Update_State_for_next_Transaction`): derives the
    /// future keys the next counters need from the current register, erases it, and moves to the
    /// next counter with at most 16 one-bits.
    ///
    /// # Errors
    /// [`AesDukptError::CounterExhausted`] if there is no current transaction.
    pub fn advance(&mut self) -> Result<(), AesDukptError> {
        let counter = self.next_counter.ok_or(AesDukptError::CounterExhausted)?;
        let current = counter.trailing_zeros() as usize;
        let Some(base) = self.registers.get_mut(current).and_then(Option::take) else {
            unreachable!("the register of the current counter is always loaded");
        };
        self.next_counter = if counter.count_ones() < MAX_COUNTER_ONE_BITS {
            // Counters c | 2^j for j below the current bit have at most 16 one-bits: derive their
            // keys now, from the current key, which is then erased (dropped) for good.
            self.fill_registers_below(
                current,
                counter,
                &DerivationCipher::new(base.expose_secret()),
            );
            // c + 1 cannot overflow: c has fewer than 16 one-bits, so it is not 0xFFFFFFFF.
            Some(counter + 1)
        } else {
            // Every counter c | x with x below the current bit has more than 16 one-bits: skip
            // them all. Past 0xFFFF0000 there is no counter left.
            counter.checked_add(1 << current)
        };
        Ok(())
    }

    /// Derives the current transaction's working key and advances to the next transaction
    /// (Annex A `Generate_Working_Keys`). Returns the KSN the host needs with the key.
    ///
    /// # Errors
    /// As [`Originator::derive_working_key`]; on error the counter does not move.
    pub fn generate_working_key(
        &mut self,
        usage: WorkingKeyUsage,
        key_type: KeyAlgorithm,
    ) -> Result<(Ksn, SecretKey), AesDukptError> {
        let ksn = self.ksn()?;
        let key = self.derive_working_key(usage, key_type)?;
        self.advance()?;
        Ok((ksn, key))
    }

    /// The register holding the current counter's intermediate derivation key.
    fn current_register(&self, counter: u32) -> &SecretKey {
        self.registers
            .get(counter.trailing_zeros() as usize)
            .and_then(Option::as_ref)
            .unwrap_or_else(|| unreachable!("the register of the current counter is always loaded"))
    }

    /// Annex A `Update_Derivation_Keys`: registers `below - 1` down to 0 get the keys of
    /// `counter | 2^j`, derived (usage `8000`) from `base`, the key of `counter`.
    fn fill_registers_below(&mut self, below: usize, counter: u32, base: &DerivationCipher) {
        for (index, register) in self.registers.iter_mut().enumerate().take(below) {
            let future_counter = counter | (1 << index);
            *register = Some(
                DerivationData::new(
                    KeyUsage::KeyDerivation,
                    self.derivation_type,
                    &self.initial_key_id,
                    future_counter,
                )
                .derive(base, self.derivation_type),
            );
        }
    }

    /// Serialises the state for the device to persist (encrypted: it holds key bytes).
    ///
    /// Format (version 1): version `01`, derivation key algorithm indicator (X9.24-3:2017 6.3.2),
    /// initial key ID (8 bytes), next counter (4 bytes, big-endian, 0 once exhausted), map of
    /// registers in use (4 bytes, bit `i` for register `i`), the key of each register in use in
    /// ascending order, and a 16-byte checksum: the AES-CMAC, under the all-zero AES-128 key, of
    /// everything before it. The checksum key is public, so the checksum detects corruption, not
    /// tampering: authenticity at rest is the job of the device's encryption of this state.
    #[must_use]
    pub fn export_state(&self) -> OriginatorState {
        let mut state = OriginatorState {
            bytes: Zeroizing::new([0; MAX_STATE_LEN]),
            len: 0,
        };
        state.push(&[STATE_VERSION]);
        // Derivation keys are AES, whose indicators fit in the low byte.
        state.push(&algorithm_indicator(self.derivation_type).to_be_bytes()[1..]);
        state.push(self.initial_key_id.as_bytes());
        state.push(&self.next_counter.unwrap_or(0).to_be_bytes());
        state.push(&self.register_map().to_be_bytes());
        for key in self.registers.iter().flatten() {
            state.push(key.expose_secret());
        }
        let checksum = state_checksum(state.as_bytes());
        state.push(&checksum);
        state
    }

    /// Restores a state written by [`Originator::export_state`], checking it fully: version, key
    /// type, a counter with at most 16 one-bits, a register map that matches the counter, the
    /// exact length, and the checksum.
    ///
    /// # Errors
    /// [`AesDukptError::StateLength`], [`AesDukptError::StateVersion`],
    /// [`AesDukptError::StateKeyType`], [`AesDukptError::StateCounter`],
    /// [`AesDukptError::StateRegisters`] or [`AesDukptError::StateChecksum`].
    pub fn import_state(state: &[u8]) -> Result<Self, AesDukptError> {
        let (header, body) =
            state
                .split_first_chunk::<STATE_HEADER_LEN>()
                .ok_or(AesDukptError::StateLength {
                    expected: STATE_HEADER_LEN,
                    actual: state.len(),
                })?;
        let [
            version,
            type_indicator,
            id @ ..,
            c0,
            c1,
            c2,
            c3,
            m0,
            m1,
            m2,
            m3,
        ] = *header;
        if version != STATE_VERSION {
            return Err(AesDukptError::StateVersion(version));
        }
        let derivation_type = aes_type_for_indicator(type_indicator)
            .ok_or(AesDukptError::StateKeyType(type_indicator))?;
        let next_counter = match u32::from_be_bytes([c0, c1, c2, c3]) {
            0 => None,
            counter => {
                validate_counter(counter).map_err(|_| AesDukptError::StateCounter)?;
                Some(counter)
            }
        };
        let in_use = u32::from_be_bytes([m0, m1, m2, m3]);
        if in_use != expected_register_map(next_counter) {
            return Err(AesDukptError::StateRegisters);
        }
        let key_len = derivation_type.key_len();
        let expected =
            STATE_HEADER_LEN + in_use.count_ones() as usize * key_len + STATE_CHECKSUM_LEN;
        if state.len() != expected {
            return Err(AesDukptError::StateLength {
                expected,
                actual: state.len(),
            });
        }
        let (keys, checksum) = body.split_at(body.len() - STATE_CHECKSUM_LEN);
        let computed = state_checksum(&state[..expected - STATE_CHECKSUM_LEN]);
        if !bool::from(computed.ct_eq(checksum)) {
            return Err(AesDukptError::StateChecksum);
        }
        let mut originator = Self {
            derivation_type,
            initial_key_id: InitialKeyId::new(id),
            registers: Default::default(),
            next_counter,
        };
        let mut key_bytes = keys.chunks_exact(key_len);
        for (index, register) in originator.registers.iter_mut().enumerate() {
            if in_use & (1 << index) != 0 {
                *register = key_bytes
                    .next()
                    .and_then(|bytes| SecretKey::new(derivation_type, bytes).ok());
            }
        }
        Ok(originator)
    }

    /// Bit `i` set when register `i` is in use.
    fn register_map(&self) -> u32 {
        self.registers
            .iter()
            .enumerate()
            .filter(|(_, register)| register.is_some())
            .fold(0, |map, (index, _)| map | (1 << index))
    }
}

/// The registers an originator at `next_counter` holds (see the module invariant): the current
/// register plus every register above it whose counter bit is zero; none once exhausted.
fn expected_register_map(next_counter: Option<u32>) -> u32 {
    match next_counter {
        None => 0,
        Some(counter) => {
            let current_bit = counter & counter.wrapping_neg();
            // Bits strictly above the current one: all ones shifted past it.
            let above = !(current_bit | (current_bit - 1));
            current_bit | (!counter & above)
        }
    }
}

/// AES-CMAC of `data` under the all-zero AES-128 key: a corruption check (see
/// [`Originator::export_state`]).
fn state_checksum(data: &[u8]) -> [u8; STATE_CHECKSUM_LEN] {
    let checksum_key = SecretKey::new(KeyAlgorithm::Aes128, &[0; 16])
        .unwrap_or_else(|_| unreachable!("16 bytes is an AES-128 key"));
    primitives::cmac(&checksum_key, data).0
}

impl fmt::Debug for Originator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Originator")
            .field("derivation_type", &self.derivation_type)
            .field("initial_key_id", &self.initial_key_id)
            .field("next_counter", &self.next_counter)
            .field(
                "registers_in_use",
                &format_args!("{:#010X}", self.register_map()),
            )
            .finish_non_exhaustive()
    }
}
