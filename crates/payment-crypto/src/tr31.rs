//! TR-31 / ANSI X9.143 key blocks, versions B (TDES KBPK) and D (AES KBPK).
