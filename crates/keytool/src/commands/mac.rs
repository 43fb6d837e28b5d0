//! `mac compute` and `mac verify`: ISO/IEC 9797-1 algorithms 1 and 3, CMAC.

use payment_crypto::SecretKey;
use payment_crypto::mac::{self, MacAlgorithm, MacError, Padding};
use serde::Serialize;

use crate::cli::{CipherArg, MacAlgorithmArg, MacCommand, MacInputArgs, PaddingArg};
use crate::error::CliError;
use crate::input;
use crate::output::{Report, Verified};

#[derive(Serialize)]
struct MacOutput {
    mac: String,
}

pub(super) fn run(command: &MacCommand) -> Result<Report, CliError> {
    match command {
        MacCommand::Compute(args) => {
            let (algorithm, key, data) = parse(&args.input)?;
            let length = args.length.unwrap_or(key.algorithm().block_len());
            let mac = mac::compute_mac(algorithm, &key, &data, length)?;
            Ok(Report::of(&MacOutput {
                mac: hex::encode_upper(mac.as_bytes()),
            }))
        }
        MacCommand::Verify(args) => {
            let (algorithm, key, data) = parse(&args.input)?;
            let received = input::bytes("--mac", &args.mac)?;
            match mac::verify_mac(algorithm, &key, &data, &received) {
                Ok(()) => Ok(Report::of(&Verified { valid: true })),
                Err(err @ MacError::Mismatch) => Err(CliError::mismatch(&err)),
                Err(err) => Err(err.into()),
            }
        }
    }
}

fn parse(args: &MacInputArgs) -> Result<(MacAlgorithm, SecretKey, Vec<u8>), CliError> {
    let padding = args.padding.map(|padding| match padding {
        PaddingArg::Method1 => Padding::Method1,
        PaddingArg::Method2 => Padding::Method2,
    });
    let (algorithm, cipher) = match (args.algorithm, padding) {
        (MacAlgorithmArg::CmacTdes | MacAlgorithmArg::CmacAes, Some(_)) => {
            return Err(CliError::bad_input(
                "usage",
                "--padding: CMAC pads internally and takes no padding method",
            ));
        }
        (MacAlgorithmArg::CmacTdes, None) => (MacAlgorithm::Cmac, CipherArg::Tdes),
        (MacAlgorithmArg::CmacAes, None) => (MacAlgorithm::Cmac, CipherArg::Aes),
        (_, None) => {
            return Err(CliError::bad_input(
                "usage",
                "--padding: required for the CBC-MAC and the retail MAC (1 or 2)",
            ));
        }
        (MacAlgorithmArg::CbcMacTdes, Some(padding)) => {
            (MacAlgorithm::CbcMac(padding), CipherArg::Tdes)
        }
        (MacAlgorithmArg::CbcMacAes, Some(padding)) => {
            (MacAlgorithm::CbcMac(padding), CipherArg::Aes)
        }
        (MacAlgorithmArg::RetailMac, Some(padding)) => {
            (MacAlgorithm::RetailMac(padding), CipherArg::Tdes)
        }
    };
    let key = input::key("--key", &args.key, cipher)?;
    let data = input::bytes("--data", &args.data)?;
    Ok((algorithm, key, data))
}
