//! `softpos-terminal`: the SUNBAY SoftPOS desktop terminal. All logic lives in the library.

fn main() -> std::process::ExitCode {
    terminal::cli::main()
}
