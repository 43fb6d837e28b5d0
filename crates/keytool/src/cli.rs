//! The command line: clap types only, no logic.

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Key custodian's tool for SUNBAY SoftPOS payment cryptography.
///
/// Hex arguments accept either case and spaces. Output is `field: value` lines, or one JSON
/// object with `--json`. Exit codes: 0 success, 1 verification mismatch, 2 bad input (one line on
/// stderr: `error: <code>: <message>`).
#[derive(Debug, Parser)]
#[command(name = "softpos-keytool", version)]
pub(crate) struct Cli {
    /// Print one JSON object instead of text.
    #[arg(long, global = true)]
    pub(crate) json: bool,
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// MACs: ISO/IEC 9797-1 algorithms 1 and 3 (ANSI X9.19), CMAC.
    #[command(subcommand)]
    Mac(MacCommand),
    /// EMV issuer cryptography: ICC master keys, session keys, ARQC, ARPC (EMV Book 2).
    #[command(subcommand)]
    Emv(EmvCommand),
    /// Key check values.
    Kcv(KcvArgs),
    /// DUKPT: TDES (ANSI X9.24-1:2009) and AES (ANSI X9.24-3:2017) host-side derivations.
    #[command(subcommand)]
    Dukpt(DukptCommand),
    /// ISO 9564-1 PIN blocks, formats 0, 1, 3 and 4 (test PINs only).
    #[command(subcommand)]
    Pin(PinCommand),
    /// TR-31 / ANSI X9.143 key blocks, versions B (TDES KBPK) and D (AES KBPK).
    #[command(subcommand)]
    Tr31(Tr31Command),
    /// Release signing (Ed25519 over the canonical manifest bytes of `release-manifest`).
    #[command(subcommand)]
    Release(ReleaseCommand),
}

#[derive(Debug, Subcommand)]
pub(crate) enum ReleaseCommand {
    /// Generates a release signing key into a new file (mode 0600) and prints its public key.
    Keygen(ReleaseKeygenArgs),
    /// Prints the public key of a signing key file and its `RELEASE_PUBLIC_KEYS` entry.
    PublicKey(ReleasePublicKeyArgs),
    /// Signs the manifest of an artifact (kernel `.wasm` or terminal build).
    Sign(ReleaseSignArgs),
    /// Verifies a signed manifest (and optionally its artifact) with a public key.
    Verify(ReleaseVerifyArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ArtifactKindArg {
    /// An EMV kernel `.wasm`.
    Kernel,
    /// Terminal software.
    Terminal,
}

#[derive(Debug, Args)]
pub(crate) struct ReleaseKeygenArgs {
    /// File to create for the 32-byte seed (hex); refused if it exists.
    #[arg(long)]
    pub(crate) out: std::path::PathBuf,
    /// Key id to print in the `RELEASE_PUBLIC_KEYS` entry.
    #[arg(long, default_value = "release")]
    pub(crate) key_id: String,
}

#[derive(Debug, Args)]
pub(crate) struct ReleasePublicKeyArgs {
    /// Signing key file (32-byte seed, hex or base64).
    #[arg(long)]
    pub(crate) key: std::path::PathBuf,
    /// Key id for the `RELEASE_PUBLIC_KEYS` entry.
    #[arg(long, default_value = "release")]
    pub(crate) key_id: String,
}

#[derive(Debug, Args)]
pub(crate) struct ReleaseSignArgs {
    /// Signing key file (32-byte seed, hex or base64).
    #[arg(long)]
    pub(crate) key: std::path::PathBuf,
    /// Id of the key as the server knows it (`RELEASE_PUBLIC_KEYS`).
    #[arg(long)]
    pub(crate) key_id: String,
    /// The artifact: the kernel `.wasm` or the terminal build.
    #[arg(long, alias = "artifact")]
    pub(crate) wasm: std::path::PathBuf,
    /// Kernel or terminal software.
    #[arg(long, value_enum, default_value = "kernel")]
    pub(crate) kind: ArtifactKindArg,
    /// Release name (`[a-z0-9._-]`, at most 64).
    #[arg(long)]
    pub(crate) name: String,
    /// Semantic version.
    #[arg(long)]
    pub(crate) version: String,
    /// Kernel ABI version (kernels only).
    #[arg(long)]
    pub(crate) abi_version: Option<u32>,
    /// A supported scheme (repeat for several).
    #[arg(long = "scheme")]
    pub(crate) schemes: Vec<String>,
    /// A supported AID in hex (repeat for several).
    #[arg(long = "aid")]
    pub(crate) aids: Vec<String>,
    /// Build time, Unix seconds (default: now).
    #[arg(long)]
    pub(crate) created_at: Option<i64>,
    /// Also write the signed manifest JSON to this file.
    #[arg(long)]
    pub(crate) out: Option<std::path::PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct ReleaseVerifyArgs {
    /// Release public key (32 bytes, hex or base64).
    #[arg(long)]
    pub(crate) public_key: String,
    /// Signed manifest JSON file (as written by `release sign --out`).
    #[arg(long)]
    pub(crate) manifest: std::path::PathBuf,
    /// The artifact, to check its SHA-256 and size too.
    #[arg(long)]
    pub(crate) artifact: Option<std::path::PathBuf>,
}

/// A block cipher family, for keys whose length alone does not say (16 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum CipherArg {
    /// TDES, 16 or 24 bytes.
    Tdes,
    /// AES, 16, 24 or 32 bytes.
    Aes,
}

#[derive(Debug, Subcommand)]
pub(crate) enum MacCommand {
    /// Compute a MAC.
    Compute(MacComputeArgs),
    /// Verify a MAC (exit code 1 on mismatch).
    Verify(MacVerifyArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum MacAlgorithmArg {
    /// ISO/IEC 9797-1 MAC algorithm 1 (CBC-MAC) under TDES.
    CbcMacTdes,
    /// ISO/IEC 9797-1 MAC algorithm 1 (CBC-MAC) under AES.
    CbcMacAes,
    /// ISO/IEC 9797-1 MAC algorithm 3 (ANSI X9.19 retail MAC), double-length TDES key.
    RetailMac,
    /// CMAC (NIST SP 800-38B) under TDES.
    CmacTdes,
    /// CMAC (NIST SP 800-38B) under AES.
    CmacAes,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum PaddingArg {
    /// ISO/IEC 9797-1 padding method 1: zeros.
    #[value(name = "1")]
    Method1,
    /// ISO/IEC 9797-1 padding method 2: 80 then zeros.
    #[value(name = "2")]
    Method2,
}

#[derive(Debug, Args)]
pub(crate) struct MacInputArgs {
    /// The MAC algorithm.
    #[arg(long, value_enum)]
    pub(crate) algorithm: MacAlgorithmArg,
    /// ISO/IEC 9797-1 padding method; required for the CBC-MAC and retail MAC, refused for CMAC.
    #[arg(long, value_enum)]
    pub(crate) padding: Option<PaddingArg>,
    /// The MAC key, hex.
    #[arg(long)]
    pub(crate) key: String,
    /// The data, hex.
    #[arg(long)]
    pub(crate) data: String,
}

#[derive(Debug, Args)]
pub(crate) struct MacComputeArgs {
    #[command(flatten)]
    pub(crate) input: MacInputArgs,
    /// MAC length in bytes, 4 to the block length (default: the block length).
    #[arg(long)]
    pub(crate) length: Option<usize>,
}

#[derive(Debug, Args)]
pub(crate) struct MacVerifyArgs {
    #[command(flatten)]
    pub(crate) input: MacInputArgs,
    /// The MAC to check, hex; its length sets the truncation.
    #[arg(long)]
    pub(crate) mac: String,
}

#[derive(Debug, Subcommand)]
pub(crate) enum EmvCommand {
    /// Derive an ICC master key from an issuer master key (Book 2 A1.4).
    IccMasterKey(IccMasterKeyArgs),
    /// Derive a session key with the common session key derivation (Book 2 A1.3.1).
    SessionKey(SessionKeyArgs),
    /// Generate an application cryptogram (ARQC, TC or AAC) over CDOL data.
    Arqc(ArqcArgs),
    /// Verify an application cryptogram (exit code 1 on mismatch).
    VerifyArqc(VerifyArqcArgs),
    /// Generate an ARPC (Book 2 §8.2).
    Arpc(ArpcArgs),
    /// Verify an ARPC (exit code 1 on mismatch).
    VerifyArpc(VerifyArpcArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum DerivationOptionArg {
    /// Option A (A1.4.1).
    A,
    /// Option B (A1.4.2): SHA-1 for PANs longer than 16 digits.
    B,
}

#[derive(Debug, Args)]
pub(crate) struct IccMasterKeyArgs {
    /// Issuer master key (double-length TDES), hex.
    #[arg(long)]
    pub(crate) imk: String,
    /// The PAN, 12 to 19 digits.
    #[arg(long)]
    pub(crate) pan: String,
    /// PAN sequence number, two digits (default 00).
    #[arg(long)]
    pub(crate) psn: Option<String>,
    /// Derivation option.
    #[arg(long, value_enum)]
    pub(crate) option: DerivationOptionArg,
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("diversification_value").required(true))]
pub(crate) struct SessionKeyArgs {
    /// The ICC master key, hex.
    #[arg(long)]
    pub(crate) master_key: String,
    /// Cipher of the master key.
    #[arg(long, value_enum, default_value = "tdes")]
    pub(crate) cipher: CipherArg,
    /// ATC, 2 bytes hex: R = ATC || 00 .. 00.
    #[arg(long, group = "diversification_value")]
    pub(crate) atc: Option<String>,
    /// The diversification value R itself, one block, hex.
    #[arg(long, group = "diversification_value")]
    pub(crate) r: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum VersionArg {
    /// EMV common session key (Book 2 A1.3.1), TDES or AES.
    Emv,
    /// Visa CVN 10.
    VisaCvn10,
    /// Visa CVN 18.
    VisaCvn18,
    /// Visa CVN 22.
    VisaCvn22,
    /// Mastercard M/Chip (session key from ATC and unpredictable number).
    Mchip,
}

/// Which card: its cryptogram version and key.
#[derive(Debug, Args)]
pub(crate) struct CardArgs {
    /// Cryptogram version.
    #[arg(long, value_enum)]
    pub(crate) version: VersionArg,
    /// Issuer master key (double-length TDES), hex; needs --pan.
    #[arg(long, requires = "pan", conflicts_with = "icc_master_key")]
    pub(crate) imk: Option<String>,
    /// The PAN, 12 to 19 digits (with --imk).
    #[arg(long, requires = "imk")]
    pub(crate) pan: Option<String>,
    /// PAN sequence number, two digits (with --imk; default 00).
    #[arg(long, requires = "imk")]
    pub(crate) psn: Option<String>,
    /// The ICC master key itself, hex (instead of --imk and --pan).
    #[arg(long, required_unless_present = "imk")]
    pub(crate) icc_master_key: Option<String>,
    /// Cipher of --icc-master-key (AES only with --version emv).
    #[arg(long, value_enum, default_value = "tdes")]
    pub(crate) cipher: CipherArg,
    /// Application Transaction Counter (9F36), 2 bytes hex.
    #[arg(long)]
    pub(crate) atc: String,
    /// Unpredictable Number (9F37), 4 bytes hex; required by --version mchip.
    #[arg(long)]
    pub(crate) un: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct ArqcArgs {
    #[command(flatten)]
    pub(crate) card: CardArgs,
    /// The CDOL data: the concatenated values the CDOL lists, hex.
    #[arg(long)]
    pub(crate) data: String,
}

#[derive(Debug, Args)]
pub(crate) struct VerifyArqcArgs {
    #[command(flatten)]
    pub(crate) arqc_input: ArqcArgs,
    /// The cryptogram to check (9F26), 8 bytes hex.
    #[arg(long)]
    pub(crate) arqc: String,
}

/// The issuer's response the ARPC covers: --arc (method 1) or --csu (method 2).
#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("response").required(true))]
pub(crate) struct ArpcResponseArgs {
    /// ARPC method 1: Authorisation Response Code, 2 bytes hex (e.g. 3030).
    #[arg(long, group = "response")]
    pub(crate) arc: Option<String>,
    /// ARPC method 2: Card Status Update, 4 bytes hex.
    #[arg(long, group = "response")]
    pub(crate) csu: Option<String>,
    /// ARPC method 2: proprietary authentication data, 0 to 8 bytes hex.
    #[arg(long, requires = "csu")]
    pub(crate) proprietary_data: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct ArpcArgs {
    #[command(flatten)]
    pub(crate) card: CardArgs,
    /// The ARQC being answered (9F26), 8 bytes hex.
    #[arg(long)]
    pub(crate) arqc: String,
    #[command(flatten)]
    pub(crate) response: ArpcResponseArgs,
}

#[derive(Debug, Args)]
pub(crate) struct VerifyArpcArgs {
    #[command(flatten)]
    pub(crate) arpc_input: ArpcArgs,
    /// The ARPC to check, hex (8 bytes for method 1, 4 for method 2).
    #[arg(long)]
    pub(crate) arpc: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum KcvMethodArg {
    /// Encrypt one block of zeros, keep the leftmost bytes (default 3).
    EncryptZeros,
    /// CMAC of one block of zeros (X9.24-1:2017 Annex A.3), leftmost bytes (default 5).
    Cmac,
}

#[derive(Debug, Args)]
pub(crate) struct KcvArgs {
    /// The key, hex.
    #[arg(long)]
    pub(crate) key: String,
    /// Cipher of the key.
    #[arg(long, value_enum)]
    pub(crate) cipher: CipherArg,
    /// Check value method.
    #[arg(long, value_enum)]
    pub(crate) method: KcvMethodArg,
    /// Length in bytes, 2 to 8 (default: 3 for encrypt-zeros, 5 for CMAC).
    #[arg(long)]
    pub(crate) length: Option<usize>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum DukptCommand {
    /// TDES DUKPT (ANSI X9.24-1:2009).
    #[command(subcommand)]
    Tdes(TdesDukptCommand),
    /// AES DUKPT (ANSI X9.24-3:2017).
    #[command(subcommand)]
    Aes(AesDukptCommand),
}

#[derive(Debug, Subcommand)]
pub(crate) enum TdesDukptCommand {
    /// Derive a device's initial key (IPEK) from the BDK and a KSN (X9.24-1:2009 A.6).
    Ipek(TdesIpekArgs),
    /// Derive one key of the transaction a KSN names (X9.24-1:2009 A.3, A.4.1 Table A-1).
    TransactionKey(TdesTransactionKeyArgs),
}

#[derive(Debug, Args)]
pub(crate) struct TdesIpekArgs {
    /// The double-length TDES base derivation key, hex.
    #[arg(long)]
    pub(crate) bdk: String,
    /// A KSN of the device, 10 bytes hex (its counter bits are ignored).
    #[arg(long)]
    pub(crate) ksn: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum TdesKeyArg {
    /// PIN encryption key (PIN variant).
    Pin,
    /// MAC key, request or both ways.
    MacRequest,
    /// MAC key, response.
    MacResponse,
    /// Data encryption key, request or both ways (variant, then the one-way function).
    DataRequest,
    /// Data encryption key, response (variant, then the one-way function).
    DataResponse,
    /// The bare data request variant, without the one-way function (for systems that skip it).
    DataRequestVariant,
    /// The bare data response variant, without the one-way function (for systems that skip it).
    DataResponseVariant,
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("derivation_key").required(true))]
pub(crate) struct TdesTransactionKeyArgs {
    /// The double-length TDES base derivation key, hex.
    #[arg(long, group = "derivation_key")]
    pub(crate) bdk: Option<String>,
    /// The device's initial key (IPEK), hex (instead of --bdk).
    #[arg(long, group = "derivation_key")]
    pub(crate) ipek: Option<String>,
    /// The transaction's KSN, 10 bytes hex.
    #[arg(long)]
    pub(crate) ksn: String,
    /// Which key of the transaction.
    #[arg(long, value_enum)]
    pub(crate) key: TdesKeyArg,
}

#[derive(Debug, Subcommand)]
pub(crate) enum AesDukptCommand {
    /// Derive a device's initial key from the BDK and the initial key ID.
    InitialKey(AesInitialKeyArgs),
    /// Derive the working key of a usage and key type for a KSN.
    WorkingKey(AesWorkingKeyArgs),
}

#[derive(Debug, Args)]
pub(crate) struct AesInitialKeyArgs {
    /// The AES base derivation key, hex.
    #[arg(long)]
    pub(crate) bdk: String,
    /// The initial key ID (BDK ID || derivation ID), 8 bytes hex.
    #[arg(long)]
    pub(crate) initial_key_id: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum AesUsageArg {
    /// Key encryption key.
    KeyEncryption,
    /// PIN encryption.
    PinEncryption,
    /// MAC generation.
    MacGeneration,
    /// MAC verification.
    MacVerification,
    /// MAC, both ways.
    MacBothWays,
    /// Data encryption, encrypt.
    DataEncrypt,
    /// Data encryption, decrypt.
    DataDecrypt,
    /// Data encryption, both ways.
    DataBothWays,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum KeyTypeArg {
    /// Double-length TDES.
    Tdes2,
    /// Triple-length TDES.
    Tdes3,
    /// AES-128.
    Aes128,
    /// AES-192.
    Aes192,
    /// AES-256.
    Aes256,
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("derivation_key").required(true))]
pub(crate) struct AesWorkingKeyArgs {
    /// The AES base derivation key, hex.
    #[arg(long, group = "derivation_key")]
    pub(crate) bdk: Option<String>,
    /// The device's initial key, hex (instead of --bdk).
    #[arg(long, group = "derivation_key")]
    pub(crate) initial_key: Option<String>,
    /// The KSN: initial key ID || 32-bit counter, 12 bytes hex.
    #[arg(long)]
    pub(crate) ksn: String,
    /// What the working key is for.
    #[arg(long, value_enum)]
    pub(crate) usage: AesUsageArg,
    /// Type of the working key.
    #[arg(long, value_enum)]
    pub(crate) key_type: KeyTypeArg,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum PinFormatArg {
    /// ISO 9564-1 format 0 (TDES, PAN-bound).
    #[value(name = "0")]
    Iso0,
    /// ISO 9564-1 format 1 (TDES, no PAN).
    #[value(name = "1")]
    Iso1,
    /// ISO 9564-1 format 3 (TDES, PAN-bound, random fill).
    #[value(name = "3")]
    Iso3,
    /// ISO 9564-1 format 4 (AES, PAN-bound).
    #[value(name = "4")]
    Iso4,
}

/// PIN block commands. Clear PINs go in only through `--test-pin` and come out only through
/// `parse --reveal-test-pin`: both exist for test cards and published vectors, never for live
/// cardholder PINs.
#[derive(Debug, Subcommand)]
pub(crate) enum PinCommand {
    /// Build and encipher a PIN block from a test PIN.
    Build(PinBuildArgs),
    /// Decipher a PIN block and check its structure (prints the PIN length only, unless
    /// --reveal-test-pin).
    Parse(PinParseArgs),
    /// Check that a PIN block holds a test PIN (exit code 1 if not).
    Verify(PinVerifyArgs),
    /// Re-encipher a PIN block under another key and/or format, never revealing the PIN.
    Translate(PinTranslateArgs),
}

#[derive(Debug, Args)]
pub(crate) struct PinBuildArgs {
    /// PIN block format; format 4 takes an AES key, the others TDES.
    #[arg(long, value_enum)]
    pub(crate) format: PinFormatArg,
    /// The PIN encryption key, hex.
    #[arg(long)]
    pub(crate) key: String,
    /// TEST USE ONLY: the clear PIN, 4 to 12 digits. Never pass a live cardholder PIN.
    #[arg(long)]
    pub(crate) test_pin: String,
    /// The PAN (formats 0, 3 and 4), 8 to 19 digits.
    #[arg(long)]
    pub(crate) pan: Option<String>,
    /// TEST USE ONLY: fixed bytes, hex, in place of random fill (to reproduce published vectors).
    #[arg(long)]
    pub(crate) test_random: Option<String>,
}

/// An enciphered PIN block and what opens it: shared by `pin parse` and `pin verify`.
#[derive(Debug, Args)]
pub(crate) struct EncipheredPinArgs {
    /// PIN block format.
    #[arg(long, value_enum)]
    pub(crate) format: PinFormatArg,
    /// The PIN encryption key, hex.
    #[arg(long)]
    pub(crate) key: String,
    /// The enciphered PIN block, hex.
    #[arg(long)]
    pub(crate) block: String,
    /// The PAN (formats 0, 3 and 4).
    #[arg(long)]
    pub(crate) pan: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct PinParseArgs {
    #[command(flatten)]
    pub(crate) enciphered: EncipheredPinArgs,
    /// TEST USE ONLY: also print the clear PIN.
    #[arg(long)]
    pub(crate) reveal_test_pin: bool,
}

#[derive(Debug, Args)]
pub(crate) struct PinVerifyArgs {
    #[command(flatten)]
    pub(crate) enciphered: EncipheredPinArgs,
    /// TEST USE ONLY: the PIN the block should hold.
    #[arg(long)]
    pub(crate) test_pin: String,
}

#[derive(Debug, Args)]
pub(crate) struct PinTranslateArgs {
    /// The enciphered PIN block, hex.
    #[arg(long)]
    pub(crate) block: String,
    /// Format of the incoming block.
    #[arg(long, value_enum)]
    pub(crate) from_format: PinFormatArg,
    /// Key of the incoming block, hex.
    #[arg(long)]
    pub(crate) from_key: String,
    /// Format of the outgoing block.
    #[arg(long, value_enum)]
    pub(crate) to_format: PinFormatArg,
    /// Key of the outgoing block, hex.
    #[arg(long)]
    pub(crate) to_key: String,
    /// The PAN (when either format binds it).
    #[arg(long)]
    pub(crate) pan: Option<String>,
    /// TEST USE ONLY: fixed bytes, hex, in place of random fill.
    #[arg(long)]
    pub(crate) test_random: Option<String>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Tr31Command {
    /// Wrap a key into a key block.
    Wrap(Tr31WrapArgs),
    /// Unwrap and authenticate a key block; prints the key and the header fields.
    Unwrap(Tr31UnwrapArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Tr31VersionArg {
    /// Version B: TDES key block protection key.
    #[value(name = "B", alias = "b")]
    B,
    /// Version D: AES key block protection key.
    #[value(name = "D", alias = "d")]
    D,
}

#[derive(Debug, Args)]
pub(crate) struct Tr31WrapArgs {
    /// Key block protection key, hex (TDES for version B, AES for version D).
    #[arg(long)]
    pub(crate) kbpk: String,
    /// The key to wrap, hex; read as TDES or AES after --algorithm.
    #[arg(long)]
    pub(crate) key: String,
    /// Key block version.
    #[arg(long, value_enum)]
    pub(crate) version: Tr31VersionArg,
    /// Key usage, two characters (X9.143 Table 2), e.g. P0, B1, K0, D0.
    #[arg(long)]
    pub(crate) key_usage: String,
    /// Algorithm of the wrapped key, one character: T (TDES) or A (AES).
    #[arg(long)]
    pub(crate) algorithm: String,
    /// Mode of use, one character (X9.143 Table 4), e.g. E, D, B, X, N.
    #[arg(long)]
    pub(crate) mode_of_use: String,
    /// Exportability, one character: E (exportable), N (non-exportable) or S (sensitive).
    #[arg(long)]
    pub(crate) exportability: String,
    /// Key version number, two characters.
    #[arg(long, default_value = "00")]
    pub(crate) key_version: String,
    /// Key context, one character: 0 (storage or exchange), 1 (storage), 2 (exchange).
    #[arg(long, default_value = "0")]
    pub(crate) key_context: String,
    /// Mask the key length by padding the key to this many bytes.
    #[arg(long)]
    pub(crate) masked_length: Option<usize>,
    /// TEST USE ONLY: fixed bytes, hex, in place of random padding.
    #[arg(long)]
    pub(crate) test_random: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct Tr31UnwrapArgs {
    /// Key block protection key, hex.
    #[arg(long)]
    pub(crate) kbpk: String,
    /// The key block.
    #[arg(long)]
    pub(crate) key_block: String,
}
