//! Random bytes for PIN block fill and TR-31 padding: the operating system's CSPRNG, or, for
//! reproducing published vectors only, fixed bytes given with `--test-random`.

use std::fs::File;
use std::io::Read;
use std::process;

use payment_crypto::RandomSource;
use payment_crypto::random::FixedBytes;

use crate::error::CliError;
use crate::input;
use crate::output;

/// Where random bytes come from for one command.
pub(crate) enum Randomness<'a> {
    /// `/dev/urandom`, the kernel CSPRNG.
    Os(File),
    /// Fixed bytes from `--test-random`, repeated cyclically.
    Fixed(FixedBytes<'a>),
}

/// The bytes of `--test-random`, if given; at least one byte.
pub(crate) fn test_bytes(text: Option<&str>) -> Result<Option<Vec<u8>>, CliError> {
    let Some(text) = text else { return Ok(None) };
    let bytes = input::bytes("--test-random", text)?;
    if bytes.is_empty() {
        return Err(CliError::bad_input(
            "invalid_length",
            "--test-random: needs at least one byte",
        ));
    }
    Ok(Some(bytes))
}

impl<'a> Randomness<'a> {
    /// Fixed bytes when `--test-random` gave some, else the OS CSPRNG.
    pub(crate) fn new(test_bytes: Option<&'a [u8]>) -> Result<Self, CliError> {
        match test_bytes {
            Some(bytes) => Ok(Self::Fixed(FixedBytes::new(bytes))),
            None => File::open("/dev/urandom")
                .map(Self::Os)
                .map_err(|_| CliError::bad_input("random_unavailable", "cannot open /dev/urandom")),
        }
    }
}

impl RandomSource for Randomness<'_> {
    fn fill(&mut self, buf: &mut [u8]) {
        match self {
            Self::Os(file) => {
                if file.read_exact(buf).is_err() {
                    // `RandomSource::fill` cannot fail; a CSPRNG that stops answering ends the
                    // process rather than letting a PIN block go out with predictable fill.
                    output::fail(&CliError::bad_input(
                        "random_unavailable",
                        "reading /dev/urandom failed",
                    ));
                    process::exit(74);
                }
            }
            Self::Fixed(fixed) => fixed.fill(buf),
        }
    }
}
