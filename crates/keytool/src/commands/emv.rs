//! `emv ...`: ICC master keys, session keys, application cryptograms and ARPCs (EMV Book 2).

use payment_crypto::SecretKey;
use payment_crypto::emv::{
    self, ArpcResponse, Atc, CardKeys, Cryptogram, CryptogramVersion, EmvCryptoError,
    MasterKeyDerivation, Pan, PanSequenceNumber, TransactionInputs, UnpredictableNumber,
};
use serde::Serialize;

use crate::cli::{
    ArpcArgs, CardArgs, CipherArg, DerivationOptionArg, EmvCommand, IccMasterKeyArgs,
    SessionKeyArgs, VersionArg,
};
use crate::error::CliError;
use crate::input;
use crate::output::{Report, Verified};

#[derive(Serialize)]
struct IccMasterKeyOutput {
    icc_master_key: String,
}

#[derive(Serialize)]
struct SessionKeyOutput {
    session_key: String,
}

#[derive(Serialize)]
struct ArqcOutput {
    arqc: String,
}

#[derive(Serialize)]
struct ArpcOutput {
    arpc: String,
}

pub(super) fn run(command: &EmvCommand) -> Result<Report, CliError> {
    match command {
        EmvCommand::IccMasterKey(args) => icc_master_key(args),
        EmvCommand::SessionKey(args) => session_key(args),
        EmvCommand::Arqc(args) => {
            let (card, inputs) = card(&args.card)?;
            let data = input::bytes("--data", &args.data)?;
            let arqc = card.generate_cryptogram(&inputs, &data)?;
            Ok(Report::of(&ArqcOutput {
                arqc: hex::encode_upper(arqc.as_bytes()),
            }))
        }
        EmvCommand::VerifyArqc(args) => {
            let (card, inputs) = card(&args.arqc_input.card)?;
            let data = input::bytes("--data", &args.arqc_input.data)?;
            let received = cryptogram("--arqc", &args.arqc)?;
            verified(card.verify_cryptogram(&inputs, &data, &received))
        }
        EmvCommand::Arpc(args) => {
            let (card, inputs, arqc, proprietary_data) = arpc_inputs(args)?;
            let response = response(args, &proprietary_data)?;
            let arpc = card.generate_arpc(&inputs, &arqc, &response)?;
            Ok(Report::of(&ArpcOutput {
                arpc: hex::encode_upper(arpc.as_bytes()),
            }))
        }
        EmvCommand::VerifyArpc(args) => {
            let (card, inputs, arqc, proprietary_data) = arpc_inputs(&args.arpc_input)?;
            let response = response(&args.arpc_input, &proprietary_data)?;
            let received = input::bytes("--arpc", &args.arpc)?;
            verified(card.verify_arpc(&inputs, &arqc, &response, &received))
        }
    }
}

fn icc_master_key(args: &IccMasterKeyArgs) -> Result<Report, CliError> {
    let imk = input::key("--imk", &args.imk, CipherArg::Tdes)?;
    let method = match args.option {
        DerivationOptionArg::A => MasterKeyDerivation::OptionA,
        DerivationOptionArg::B => MasterKeyDerivation::OptionB,
    };
    let key =
        emv::derive_icc_master_key(method, &imk, &pan(&args.pan)?, psn(args.psn.as_deref())?)?;
    Ok(Report::of(&IccMasterKeyOutput {
        icc_master_key: hex::encode_upper(key.expose_secret()),
    }))
}

fn session_key(args: &SessionKeyArgs) -> Result<Report, CliError> {
    let master_key = input::key("--master-key", &args.master_key, args.cipher)?;
    let r = match (&args.atc, &args.r) {
        (Some(atc), _) => {
            // A1.3.1 for application cryptograms: R = ATC || 00 .. 00, one block long.
            let atc = input::array::<2>("--atc", atc)?;
            let mut r = vec![0u8; master_key.algorithm().block_len()];
            r[..2].copy_from_slice(&atc);
            r
        }
        (None, Some(r)) => input::bytes("--r", r)?,
        // clap's required argument group makes one of the two present.
        (None, None) => unreachable!("clap requires --atc or --r"),
    };
    let key = emv::derive_session_key(&master_key, &r)
        .map_err(|err| CliError::from(err).for_flag("--r"))?;
    Ok(Report::of(&SessionKeyOutput {
        session_key: hex::encode_upper(key.expose_secret()),
    }))
}

/// The card's keys and this transaction's inputs.
fn card(args: &CardArgs) -> Result<(CardKeys, TransactionInputs), CliError> {
    let version = match args.version {
        VersionArg::Emv => CryptogramVersion::Emv,
        VersionArg::VisaCvn10 => CryptogramVersion::VisaCvn10,
        VersionArg::VisaCvn18 => CryptogramVersion::VisaCvn18,
        VersionArg::VisaCvn22 => CryptogramVersion::VisaCvn22,
        VersionArg::Mchip => CryptogramVersion::MChip,
    };
    let card = match (&args.imk, &args.pan, &args.icc_master_key) {
        (Some(imk), Some(pan_digits), None) => {
            let imk: SecretKey = input::key("--imk", imk, CipherArg::Tdes)?;
            CardKeys::derive(version, &imk, &pan(pan_digits)?, psn(args.psn.as_deref())?)?
        }
        (None, None, Some(icc_master_key)) => {
            let key = input::key("--icc-master-key", icc_master_key, args.cipher)?;
            CardKeys::from_icc_master_key(version, key)?
        }
        // clap's requires / conflicts_with rules admit only the two shapes above.
        _ => unreachable!("clap enforces --imk with --pan, or --icc-master-key"),
    };
    let atc = Atc::from_bytes(&input::bytes("--atc", &args.atc)?)?;
    let unpredictable_number = args
        .un
        .as_deref()
        .map(|un| Ok::<_, CliError>(UnpredictableNumber::from_bytes(&input::bytes("--un", un)?)?))
        .transpose()?;
    Ok((
        card,
        TransactionInputs {
            atc,
            unpredictable_number,
        },
    ))
}

type ArpcInputs = (CardKeys, TransactionInputs, Cryptogram, Vec<u8>);

fn arpc_inputs(args: &ArpcArgs) -> Result<ArpcInputs, CliError> {
    let (card, inputs) = card(&args.card)?;
    let arqc = cryptogram("--arqc", &args.arqc)?;
    let proprietary_data = match &args.response.proprietary_data {
        Some(text) => input::bytes("--proprietary-data", text)?,
        None => Vec::new(),
    };
    Ok((card, inputs, arqc, proprietary_data))
}

fn response<'a>(args: &ArpcArgs, proprietary_data: &'a [u8]) -> Result<ArpcResponse<'a>, CliError> {
    match (&args.response.arc, &args.response.csu) {
        (Some(arc), None) => Ok(ArpcResponse::Method1 {
            response_code: input::array::<2>("--arc", arc)?,
        }),
        (None, Some(csu)) => Ok(ArpcResponse::Method2 {
            card_status_update: input::array::<4>("--csu", csu)?,
            proprietary_data,
        }),
        // clap's required argument group admits exactly one of --arc and --csu.
        _ => unreachable!("clap requires exactly one of --arc and --csu"),
    }
}

fn pan(digits: &str) -> Result<Pan, CliError> {
    Pan::from_digits(digits).map_err(|err| CliError::from(err).for_flag("--pan"))
}

fn psn(digits: Option<&str>) -> Result<PanSequenceNumber, CliError> {
    digits.map_or(Ok(PanSequenceNumber::ABSENT), |digits| {
        PanSequenceNumber::from_digits(digits).map_err(|err| CliError::from(err).for_flag("--psn"))
    })
}

fn cryptogram(flag: &str, text: &str) -> Result<Cryptogram, CliError> {
    Cryptogram::from_bytes(&input::bytes(flag, text)?)
        .map_err(|err| CliError::from(err).for_flag(flag))
}

fn verified(result: Result<(), EmvCryptoError>) -> Result<Report, CliError> {
    match result {
        Ok(()) => Ok(Report::of(&Verified { valid: true })),
        Err(err @ (EmvCryptoError::CryptogramMismatch | EmvCryptoError::ArpcMismatch)) => {
            Err(CliError::mismatch(&err))
        }
        Err(err) => Err(err.into()),
    }
}
