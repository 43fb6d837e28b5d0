//! Key check values: TDES and AES encrypt-zeros, and the AES CMAC method of X9.24-3.
