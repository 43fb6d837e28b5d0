//! Tests of the `softpos-terminal` binary: they run it as a user would.

mod core_flow;
mod core_kernel;
mod core_refund;
mod core_server;
mod core_store;
mod kernel_replay;

use std::path::PathBuf;
use std::process::{Command, Output};

/// The emv-replay transcripts directory.
pub(crate) fn transcripts() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../emv-replay/tests/transcripts")
}

/// Runs the binary with `args` in the transcripts directory.
pub(crate) fn softpos_terminal(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_softpos-terminal"))
        .args(args)
        .current_dir(transcripts())
        .output()
        .expect("binary runs")
}

pub(crate) fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

pub(crate) fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}
