//! Originating (terminal) side: the future key registers and the encryption counter of
//! ANSI X9.24-1:2009 A.2 ("Load Initial Key", "Request PIN Entry 1/2", "New Key").

use core::fmt;

use zeroize::{Zeroize, Zeroizing};

use super::TdesDukptError;
use super::derivation::{
    KEY_LEN, KeyBytes, TransactionKeys, double_length_key_bytes, non_reversible_key,
};
use super::ksn::{COUNTER_BITS, COUNTER_MASK, KSN_LEN, Ksn, MAX_COUNTER_ONE_BITS};
use crate::key::SecretKey;

/// Number of future key registers: one per counter bit (X9.24-1:2009 A.1).
pub const FUTURE_KEY_REGISTERS: usize = 21;

/// Version byte that opens an exported originator state.
pub const STATE_FORMAT_VERSION: u8 = 1;

/// Bytes of one stored future key register: the key and its LRC (A.1).
const REGISTER_LEN: usize = KEY_LEN + 1;

/// Offsets of the exported state's fields.
const KSN_OFFSET: usize = 1;
const PRESENCE_OFFSET: usize = KSN_OFFSET + KSN_LEN;
const REGISTERS_OFFSET: usize = PRESENCE_OFFSET + 4;

const CHECK_OFFSET: usize = REGISTERS_OFFSET + FUTURE_KEY_REGISTERS * REGISTER_LEN;

/// Length of an exported originator state (see [`Originator::export_state`]).
pub const STATE_LEN: usize = CHECK_OFFSET + 1;

/// The terminal's DUKPT engine: 21 future key registers and the KSN register whose 21 rightmost
/// bits are the encryption counter (ANSI X9.24-1:2009 A.1, A.2).
///
/// Register `b` (counter bit `b`, the standard's Future Key Register #21 − b) holds the key the
/// terminal will use, or derive from, when `b` is the counter's rightmost "one" bit. A key is
/// wiped from its register as soon as it has been used; a counter of zero means the terminal has
/// ceased operation after its last key. Keys live only in zeroizing buffers.
pub struct Originator {
    /// Initial key serial number and the counter of the next transaction (zero once exhausted).
    ksn: Ksn,
    /// Future key registers, indexed by counter bit.
    registers: Zeroizing<[[u8; KEY_LEN]; FUTURE_KEY_REGISTERS]>,
    /// Bit `b` set when register `b` holds a valid key.
    present: u32,
}

impl Originator {
    /// Loads an initial key (X9.24-1:2009 A.2, "Load Initial Key"): derives the future key of
    /// every register from the IPEK, leftmost first, then forgets the IPEK. The counter of the
    /// first transaction is 1; the counter bits of `ksn` are ignored.
    ///
    /// # Errors
    /// [`TdesDukptError::KeyNotDoubleLengthTdes`] when `ipek` is not a double-length TDES key.
    pub fn initialize(ipek: &SecretKey, ksn: &Ksn) -> Result<Self, TdesDukptError> {
        let ipek = double_length_key_bytes(ipek)?;
        let mut originator = Self {
            ksn: ksn.initial(),
            registers: Zeroizing::new([[0; KEY_LEN]; FUTURE_KEY_REGISTERS]),
            present: 0,
        };
        // "New Key-3" with the shift register walking from bit #1 (leftmost) to bit #21: each
        // register receives the key for the counter holding only its own bit.
        originator.derive_future_keys(&ipek, 0, COUNTER_BITS);
        originator.set_counter(1);
        Ok(originator)
    }

    /// The KSN of the next transaction, or `None` once the originator is exhausted.
    #[must_use]
    pub fn next_ksn(&self) -> Option<Ksn> {
        (self.ksn.counter() != 0).then_some(self.ksn)
    }

    /// Whether every key has been used ("cease operation", A.2 "New Key-2").
    #[must_use]
    pub fn is_exhausted(&self) -> bool {
        self.ksn.counter() == 0
    }

    /// Keys for the next transaction, then the "New Key" process that prepares the one after
    /// (X9.24-1:2009 A.2 "Request PIN Entry 1", "Request PIN Entry 2", "New Key").
    ///
    /// The key handed out is wiped from its register before this returns.
    ///
    /// # Errors
    /// [`TdesDukptError::Exhausted`] once the counter has passed its last value (`1FF800`, the
    /// largest 21-bit counter with at most 10 "one" bits): the device must be re-keyed.
    pub fn next_transaction(&mut self) -> Result<TransactionKeys, TdesDukptError> {
        let (counter, bit) = self.current_register()?;
        let current = Zeroizing::new(self.registers[bit]);
        let ksn = self.ksn;
        self.new_key(counter, bit, &current);
        Ok(TransactionKeys::new(ksn, current))
    }

    /// "Request PIN Entry 1": the register of the counter's rightmost "one" bit; a register
    /// without a valid key is skipped by adding the shift register to the counter (step 4).
    fn current_register(&mut self) -> Result<(u32, usize), TdesDukptError> {
        loop {
            let counter = self.ksn.counter();
            if counter == 0 {
                return Err(TdesDukptError::Exhausted);
            }
            let bit = counter.trailing_zeros() as usize;
            if self.present & (1 << bit) != 0 {
                return Ok((counter, bit));
            }
            self.set_counter(counter + (1 << bit));
        }
    }

    /// "New Key": after using register `bit` for `counter`, fill the registers to its right
    /// and advance the counter, skipping counters with more than 10 "one" bits.
    fn new_key(&mut self, counter: u32, bit: usize, current: &KeyBytes) {
        if counter.count_ones() < MAX_COUNTER_ONE_BITS {
            // "New Key-1"/"New Key-3": a future key for every shift register position to the
            // right of the current key, each derived with that bit OR'ed into the counter.
            self.derive_future_keys(current, counter, bit as u32);
            // "New Key-4": erase the current key, add one to the counter.
            self.erase(bit);
            self.set_counter(counter + 1);
        } else {
            // "New Key" steps 2-4: erase the current key and add the shift register to the
            // counter, which skips every counter value with more than 10 "one" bits.
            self.erase(bit);
            self.set_counter(counter + (1 << bit));
        }
        if self.is_exhausted() {
            // "New Key-2": an all-zero counter means the device ceases operation; nothing it
            // still holds may ever be used.
            self.erase_all();
        }
    }

    /// Stores into each register below `below_bit` the key derived from `key` for `counter` with
    /// that register's bit set ("New Key-3", steps 1-6).
    fn derive_future_keys(&mut self, key: &[u8; KEY_LEN], counter: u32, below_bit: u32) {
        for bit in (0..below_bit).rev() {
            let ksn = self.ksn.with_counter_unchecked(counter | (1 << bit));
            let future = non_reversible_key(key, &ksn.rightmost_64_bits());
            self.registers[bit as usize] = *future;
            self.present |= 1 << bit;
        }
    }

    /// Sets the counter; a carry out of the 21 bits leaves zero, the "cease operation" value.
    fn set_counter(&mut self, counter: u32) {
        self.ksn = self.ksn.with_counter_unchecked(counter & COUNTER_MASK);
    }

    fn erase(&mut self, bit: usize) {
        self.registers[bit].zeroize();
        self.present &= !(1 << bit);
    }

    fn erase_all(&mut self) {
        self.registers.zeroize();
        self.present = 0;
    }

    /// The state to persist between transactions, [`STATE_LEN`] bytes:
    ///
    /// | bytes | content |
    /// |---|---|
    /// | 1 | format version, [`STATE_FORMAT_VERSION`] |
    /// | 10 | KSN register: initial key serial number and the next counter (0 once exhausted) |
    /// | 4 | big-endian mask of the registers holding a key (bit `b` = counter bit `b`) |
    /// | 21 × 17 | Future Key Registers #1 to #21 (counter bits 20 down to 0): 16 key bytes and their LRC (A.1), all zero when empty |
    /// | 1 | LRC of all the preceding bytes |
    ///
    /// The bytes contain every future key in clear: the terminal must encrypt them, with
    /// integrity protection, before they leave secure memory. The LRCs only detect accidental
    /// corruption (every single corrupted byte), as the per-register LRC does in the standard.
    #[must_use]
    pub fn export_state(&self) -> Zeroizing<[u8; STATE_LEN]> {
        let mut state = Zeroizing::new([0u8; STATE_LEN]);
        state[0] = STATE_FORMAT_VERSION;
        state[KSN_OFFSET..PRESENCE_OFFSET].copy_from_slice(self.ksn.as_bytes());
        state[PRESENCE_OFFSET..REGISTERS_OFFSET].copy_from_slice(&self.present.to_be_bytes());
        let registers = state[REGISTERS_OFFSET..CHECK_OFFSET].chunks_exact_mut(REGISTER_LEN);
        // Stored in the standard's numbering: register #1 (counter bit 20) first.
        for (stored, bit) in registers.zip((0..FUTURE_KEY_REGISTERS).rev()) {
            if self.present & (1 << bit) != 0 {
                let key = &self.registers[bit];
                stored[..KEY_LEN].copy_from_slice(key);
                stored[KEY_LEN] = lrc(key);
            }
        }
        state[CHECK_OFFSET] = lrc(&state[..CHECK_OFFSET]);
        state
    }

    /// Restores a state written by [`Self::export_state`], validating it completely.
    ///
    /// # Errors
    /// - [`TdesDukptError::StateWrongLength`] when `state` is not [`STATE_LEN`] bytes.
    /// - [`TdesDukptError::StateUnsupportedVersion`] for an unknown format version.
    /// - [`TdesDukptError::StateChecksumMismatch`] when the trailing LRC does not match.
    /// - [`TdesDukptError::StateInconsistent`] when the counter has more than 10 "one" bits, the
    ///   register mask names registers that do not exist, or an exhausted state still holds keys.
    /// - [`TdesDukptError::StateRegisterCorrupt`] when a register's LRC does not match its key,
    ///   or an empty register is not all zeros.
    pub fn import_state(state: &[u8]) -> Result<Self, TdesDukptError> {
        let state =
            <&[u8; STATE_LEN]>::try_from(state).map_err(|_| TdesDukptError::StateWrongLength {
                actual: state.len(),
            })?;
        let (version, rest) = state.split_at(KSN_OFFSET);
        if version != [STATE_FORMAT_VERSION] {
            return Err(TdesDukptError::StateUnsupportedVersion {
                version: version.first().copied().unwrap_or_default(),
            });
        }
        let (body, check) = state.split_at(CHECK_OFFSET);
        if check != [lrc(body)] {
            return Err(TdesDukptError::StateChecksumMismatch);
        }
        let (ksn, rest) = rest.split_at(KSN_LEN);
        let (presence, rest) = rest.split_at(REGISTERS_OFFSET - PRESENCE_OFFSET);
        let registers = &rest[..CHECK_OFFSET - REGISTERS_OFFSET];
        let ksn = Ksn::from_bytes(ksn)?;
        let present = u32::from_be_bytes(
            presence
                .try_into()
                .map_err(|_| TdesDukptError::StateInconsistent)?,
        );
        check_consistent(ksn.counter(), present)?;
        let mut originator = Self {
            ksn,
            registers: Zeroizing::new([[0; KEY_LEN]; FUTURE_KEY_REGISTERS]),
            present,
        };
        for (index, stored) in registers.chunks_exact(REGISTER_LEN).enumerate() {
            let bit = FUTURE_KEY_REGISTERS - 1 - index;
            let register_number = (index + 1) as u8;
            originator.registers[bit] = read_register(stored, present & (1 << bit) != 0).ok_or(
                TdesDukptError::StateRegisterCorrupt {
                    register: register_number,
                },
            )?;
        }
        Ok(originator)
    }
}

/// Checks the counter and register mask of an imported state against each other.
fn check_consistent(counter: u32, present: u32) -> Result<(), TdesDukptError> {
    let registers_exist = present >> COUNTER_BITS == 0;
    let counter_usable = counter.count_ones() <= MAX_COUNTER_ONE_BITS;
    let ceased_without_keys = counter != 0 || present == 0;
    if registers_exist && counter_usable && ceased_without_keys {
        Ok(())
    } else {
        Err(TdesDukptError::StateInconsistent)
    }
}

/// One stored register: its key when present and its LRC matches, all zeros when empty.
fn read_register(stored: &[u8], present: bool) -> Option<[u8; KEY_LEN]> {
    let (key, check) = stored.split_at(KEY_LEN);
    let key = <[u8; KEY_LEN]>::try_from(key).ok()?;
    let valid = if present {
        check == [lrc(&key)]
    } else {
        stored.iter().all(|&b| b == 0)
    };
    valid.then_some(key)
}

/// Longitudinal redundancy check (ISO 1155: the two's complement of the byte sum), as
/// X9.24-1:2009 A.2 stores with each future key.
fn lrc(bytes: &[u8]) -> u8 {
    bytes
        .iter()
        .fold(0u8, |sum, &b| sum.wrapping_add(b))
        .wrapping_neg()
}

impl fmt::Debug for Originator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Originator")
            .field("ksn", &self.ksn)
            .field("registers_with_keys", &self.present.count_ones())
            .finish_non_exhaustive()
    }
}
