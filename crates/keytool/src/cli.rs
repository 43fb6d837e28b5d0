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
