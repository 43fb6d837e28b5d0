//! `kcv`: key check values (encrypt-zeros, or the CMAC method of X9.24-1:2017 Annex A.3).

use payment_crypto::kcv::{self, KcvMethod};
use serde::Serialize;

use crate::cli::{KcvArgs, KcvMethodArg};
use crate::error::CliError;
use crate::input;
use crate::output::Report;

#[derive(Serialize)]
struct KcvOutput {
    kcv: String,
}

pub(super) fn run(args: &KcvArgs) -> Result<Report, CliError> {
    let key = input::key("--key", &args.key, args.cipher)?;
    let method = match args.method {
        KcvMethodArg::EncryptZeros => KcvMethod::EncryptZeros,
        KcvMethodArg::Cmac => KcvMethod::Cmac,
    };
    let check_value = match args.length {
        Some(len) => kcv::kcv_with_len(&key, method, len)?,
        None => kcv::kcv(&key, method),
    };
    Ok(Report::of(&KcvOutput {
        kcv: hex::encode_upper(check_value.as_bytes()),
    }))
}
