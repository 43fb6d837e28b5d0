//! `dukpt ...`: host-side DUKPT derivations: TDES (ANSI X9.24-1:2009) and AES (ANSI X9.24-3:2017).

use payment_crypto::KeyAlgorithm;
use payment_crypto::dukpt::aes::{self as aes_dukpt, InitialKeyId, WorkingKeyUsage};
use payment_crypto::dukpt::tdes::{self as tdes_dukpt, KeyVariant, TransactionKeys};
use serde::Serialize;

use crate::cli::{
    AesDukptCommand, AesUsageArg, CipherArg, DukptCommand, KeyTypeArg, TdesDukptCommand, TdesKeyArg,
};
use crate::error::CliError;
use crate::input;
use crate::output::Report;

#[derive(Serialize)]
struct IpekOutput {
    ipek: String,
}

#[derive(Serialize)]
struct TransactionKeyOutput {
    key: String,
}

#[derive(Serialize)]
struct InitialKeyOutput {
    initial_key: String,
}

#[derive(Serialize)]
struct WorkingKeyOutput {
    working_key: String,
}

pub(super) fn run(command: &DukptCommand) -> Result<Report, CliError> {
    match command {
        DukptCommand::Tdes(command) => tdes(command),
        DukptCommand::Aes(command) => aes(command),
    }
}

fn tdes(command: &TdesDukptCommand) -> Result<Report, CliError> {
    match command {
        TdesDukptCommand::Ipek(args) => {
            let bdk = input::key("--bdk", &args.bdk, CipherArg::Tdes)?;
            let ipek = tdes_dukpt::derive_ipek(&bdk, &tdes_ksn(&args.ksn)?)?;
            Ok(Report::of(&IpekOutput {
                ipek: hex::encode_upper(ipek.expose_secret()),
            }))
        }
        TdesDukptCommand::TransactionKey(args) => {
            let ksn = tdes_ksn(&args.ksn)?;
            let keys: TransactionKeys = match (&args.bdk, &args.ipek) {
                (Some(bdk), None) => {
                    let bdk = input::key("--bdk", bdk, CipherArg::Tdes)?;
                    tdes_dukpt::derive_transaction_keys(&bdk, &ksn)?
                }
                (None, Some(ipek)) => {
                    let ipek = input::key("--ipek", ipek, CipherArg::Tdes)?;
                    tdes_dukpt::derive_transaction_keys_from_ipek(&ipek, &ksn)?
                }
                // clap's required argument group admits exactly one of the two.
                _ => unreachable!("clap requires exactly one of --bdk and --ipek"),
            };
            let key = match args.key {
                TdesKeyArg::Pin => keys.pin_encryption_key(),
                TdesKeyArg::MacRequest => keys.mac_request_key(),
                TdesKeyArg::MacResponse => keys.mac_response_key(),
                TdesKeyArg::DataRequest => keys.data_request_key(),
                TdesKeyArg::DataResponse => keys.data_response_key(),
                TdesKeyArg::DataRequestVariant => keys.variant_key(KeyVariant::DataRequest),
                TdesKeyArg::DataResponseVariant => keys.variant_key(KeyVariant::DataResponse),
            };
            Ok(Report::of(&TransactionKeyOutput {
                key: hex::encode_upper(key.expose_secret()),
            }))
        }
    }
}

fn tdes_ksn(text: &str) -> Result<tdes_dukpt::Ksn, CliError> {
    tdes_dukpt::Ksn::from_bytes(&input::bytes("--ksn", text)?)
        .map_err(|err| CliError::from(err).for_flag("--ksn"))
}

fn aes(command: &AesDukptCommand) -> Result<Report, CliError> {
    match command {
        AesDukptCommand::InitialKey(args) => {
            let bdk = input::key("--bdk", &args.bdk, CipherArg::Aes)?;
            let id =
                InitialKeyId::from_slice(&input::bytes("--initial-key-id", &args.initial_key_id)?)
                    .map_err(|err| CliError::from(err).for_flag("--initial-key-id"))?;
            let key = aes_dukpt::derive_initial_key(&bdk, &id)?;
            Ok(Report::of(&InitialKeyOutput {
                initial_key: hex::encode_upper(key.expose_secret()),
            }))
        }
        AesDukptCommand::WorkingKey(args) => {
            let ksn = aes_dukpt::Ksn::from_bytes(&input::bytes("--ksn", &args.ksn)?)
                .map_err(|err| CliError::from(err).for_flag("--ksn"))?;
            let usage = aes_usage(args.usage);
            let key_type = key_type(args.key_type);
            let key = match (&args.bdk, &args.initial_key) {
                (Some(bdk), None) => {
                    let bdk = input::key("--bdk", bdk, CipherArg::Aes)?;
                    aes_dukpt::derive_working_key(&bdk, &ksn, usage, key_type)?
                }
                (None, Some(initial_key)) => {
                    let initial_key = input::key("--initial-key", initial_key, CipherArg::Aes)?;
                    aes_dukpt::derive_working_key_from_initial_key(
                        &initial_key,
                        &ksn,
                        usage,
                        key_type,
                    )?
                }
                // clap's required argument group admits exactly one of the two.
                _ => unreachable!("clap requires exactly one of --bdk and --initial-key"),
            };
            Ok(Report::of(&WorkingKeyOutput {
                working_key: hex::encode_upper(key.expose_secret()),
            }))
        }
    }
}

fn aes_usage(arg: AesUsageArg) -> WorkingKeyUsage {
    match arg {
        AesUsageArg::KeyEncryption => WorkingKeyUsage::KeyEncryptionKey,
        AesUsageArg::PinEncryption => WorkingKeyUsage::PinEncryption,
        AesUsageArg::MacGeneration => WorkingKeyUsage::MacGeneration,
        AesUsageArg::MacVerification => WorkingKeyUsage::MacVerification,
        AesUsageArg::MacBothWays => WorkingKeyUsage::MacBothWays,
        AesUsageArg::DataEncrypt => WorkingKeyUsage::DataEncryptionEncrypt,
        AesUsageArg::DataDecrypt => WorkingKeyUsage::DataEncryptionDecrypt,
        AesUsageArg::DataBothWays => WorkingKeyUsage::DataEncryptionBothWays,
    }
}

fn key_type(arg: KeyTypeArg) -> KeyAlgorithm {
    match arg {
        KeyTypeArg::Tdes2 => KeyAlgorithm::Tdes2,
        KeyTypeArg::Tdes3 => KeyAlgorithm::Tdes3,
        KeyTypeArg::Aes128 => KeyAlgorithm::Aes128,
        KeyTypeArg::Aes192 => KeyAlgorithm::Aes192,
        KeyTypeArg::Aes256 => KeyAlgorithm::Aes256,
    }
}
