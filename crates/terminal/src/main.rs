//! `softpos-terminal`: the SUNBAY SoftPOS desktop terminal. All logic lives in the library.

// The fleet simulator runs thousands of terminals in one process; glibc's allocator took
// about a twelfth of its CPU per payment (perf: malloc, free).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    terminal::cli::main()
}
