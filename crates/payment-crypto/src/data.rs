//! Data encryption under DUKPT data keys: TDES/AES CBC with the standard padding.
