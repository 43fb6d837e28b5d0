//! Integration tests of `kernel-host`: the built kernel `.wasm` (imports, size, ABI errors,
//! determinism), the sandbox limits with small hand-written modules, and the conformance suite
//! (every virtual card × amounts around each reader limit, native against `.wasm`).

mod conformance;
mod kernel_wasm;
mod module;
mod sandbox;
