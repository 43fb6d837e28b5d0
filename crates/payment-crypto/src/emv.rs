//! EMV issuer cryptography (EMV 4.4 Book 2, Annex A1): ICC master keys, session keys, ARQC, ARPC.
