//! The EMV kernel as one WebAssembly module: a small, versioned C ABI over `emv-kernel` and
//! nothing else.
//!
//! Built with
//! `cargo build -p emv-kernel-wasm --profile wasm --target wasm32-unknown-unknown`, it gives
//! `target/wasm32-unknown-unknown/wasm/emv_kernel_wasm.wasm`: a module with **no imports** that
//! loads unchanged in a browser (`WebAssembly.instantiate` with an empty import object), in the
//! terminal and in the server (`kernel-host`, on wasmi).
//!
//! # ABI version 3
//! `ABI.md` beside this crate is the reference (exact message layouts and every error code).
//! In short, all integers are `i32`/`u32` and pointers are offsets into the exported `memory`:
//!
//! | export | meaning |
//! | --- | --- |
//! | `abi_version() -> u32` | `3` |
//! | `alloc(len) -> ptr`, `dealloc(ptr, len)` | buffers for the host to write messages into (reusable) |
//! | `kernel_configure(ptr, len) -> status` | JSON [`message::TerminalParams`], once per instance; 0 or error < 0 |
//! | `session_create(params_ptr, params_len) -> handle` | [`message::TransactionParams`], JSON or binary; handle > 0 or error < 0 |
//! | `session_resume(handle, rapdu_ptr, rapdu_len) -> status` | the card's R-APDU; 1 = command, 2 = outcome, < 0 error |
//! | `session_status(handle) -> status` | what the output is: 1 = command, 2 = outcome |
//! | `session_output_ptr(handle)`, `session_output_len(handle)` | the C-APDU's bytes, or the outcome's JSON [`message::Output`] |
//! | `session_free(handle) -> 0 / error` | ends the session |
//! | `last_error_ptr()`, `last_error_len()` | JSON `{"code","message"}` of the last failed call |
//!
//! An instance is configured once (reader configuration, AIDs, CA keys: parsed, validated and
//! checksummed once) and then runs any number of transactions, each from a message of a few
//! per-transaction values. Version 1 parsed the whole configuration in every `session_create`,
//! which cost more than a short transaction itself.
//!
//! The configuration and the outcome are JSON (serde, `no_std` + `alloc`) because the browser
//! reads them without glue and they are easy to audit. What repeats per transaction is kept
//! cheap: the parameters also come in a small binary form, a C-APDU is handed out as its bytes,
//! and the outcome message is written directly ([`encode`]) rather than through serde. In
//! version 2 those steps went through JSON both ways and were most of a short transaction's
//! cost in the `.wasm`. The same message types are public here, so a Rust host encodes and
//! decodes exactly what the module does.
//!
//! # What it deliberately does not do
//! No imports, so no clock, randomness, I/O or logging: like the kernel, the module is
//! sans-I/O, and the same inputs always give the same outputs (byte for byte). It holds no
//! secret. It keeps no state between sessions beyond the configuration and the session table.
//!
//! # Unsafe code
//! The workspace forbids `unsafe`. This crate lowers that to `deny` and allows it only in
//! [`abi`], which converts between raw pointers and slices and holds the global session table;
//! everything else ([`message`], [`session`]) is safe Rust and tested natively.
//!
//! # Security
//! The outcome's data record carries the clear PAN and Track 2 for the host to encrypt, as
//! `emv_kernel::Outcome` does; `Debug` of [`message::Outcome`] masks them.
#![no_std]

extern crate alloc;
// Natively (tests, and hosts that link the rlib), std provides the panic handler and allocator
// the cdylib needs; on wasm32, `abi` provides them.
#[cfg(not(target_arch = "wasm32"))]
extern crate std;

#[allow(unsafe_code)]
pub mod abi;
pub mod decode;
pub mod encode;
pub mod message;
pub mod session;

pub use abi::ABI_VERSION;
