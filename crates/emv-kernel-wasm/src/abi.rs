//! The exported C ABI, version [`ABI_VERSION`] (`ABI.md` describes it for hosts).
//!
//! This is the only module of the workspace that uses `unsafe`, for three reasons, each confined
//! to one helper:
//! - the exports receive raw pointers into linear memory from the host (`input`);
//! - `alloc` / `dealloc` hand out and take back raw allocations ([`alloc()`], [`dealloc`]);
//! - the session table is a global (`with_sessions`), guarded by a spin flag: on
//!   `wasm32-unknown-unknown` there are no threads, and in native tests the flag makes
//!   concurrent callers wait instead of aliasing the table.
//!
//! Every decision (parsing, the kernel, encoding) is made in the safe [`crate::session`]
//! module; this file only converts between pointers and slices. Symbols are exported unmangled
//! only on `wasm32`, so linking the `rlib` into a native program adds no global `alloc` symbol.

use core::cell::UnsafeCell;
use core::sync::atomic::{AtomicBool, Ordering};

use crate::session::{AbiError, Sessions};

/// The ABI version `abi_version` returns. A host refuses a module with another version.
pub const ABI_VERSION: u32 = 3;

struct Table {
    busy: AtomicBool,
    sessions: UnsafeCell<Sessions>,
}

// SAFETY: every access to `sessions` goes through `with_sessions`, which holds the `busy` flag
// for its whole duration, so no two references to the table exist at once.
unsafe impl Sync for Table {}

static TABLE: Table = Table {
    busy: AtomicBool::new(false),
    sessions: UnsafeCell::new(Sessions::new()),
};

/// Runs `f` with exclusive access to the session table.
fn with_sessions<R>(f: impl FnOnce(&mut Sessions) -> R) -> R {
    while TABLE
        .busy
        .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
        .is_err()
    {
        core::hint::spin_loop();
    }
    // SAFETY: the flag above is held, so this is the only reference to the table until it is
    // released below; `f` cannot reach `TABLE` again because no export is re-entered from Rust.
    let result = f(unsafe { &mut *TABLE.sessions.get() });
    TABLE.busy.store(false, Ordering::Release);
    result
}

/// A byte slice from a pointer and length passed by the host.
///
/// # Safety
/// `ptr` must point to `len` readable bytes that stay unchanged during the call (any value is
/// accepted when `len` is 0).
unsafe fn input<'a>(ptr: *const u8, len: usize) -> Result<&'a [u8], AbiError> {
    if len == 0 {
        return Ok(&[]);
    }
    if ptr.is_null() {
        return Err(AbiError::InvalidBuffer);
    }
    // SAFETY: non-null, and the caller guarantees `len` readable bytes.
    Ok(unsafe { core::slice::from_raw_parts(ptr, len) })
}

fn report(error: &AbiError) -> i32 {
    with_sessions(|sessions| sessions.set_error(error));
    error.status()
}

/// The ABI version of this module, [`ABI_VERSION`].
#[cfg_attr(target_arch = "wasm32", unsafe(no_mangle))]
pub extern "C" fn abi_version() -> u32 {
    ABI_VERSION
}

/// Allocates `len` bytes for the host to write a message into; returns 0 when `len` is 0 or
/// memory is exhausted. Free with [`dealloc`] and the same `len`.
#[cfg_attr(target_arch = "wasm32", unsafe(no_mangle))]
pub extern "C" fn alloc(len: usize) -> *mut u8 {
    let Ok(layout) = core::alloc::Layout::from_size_align(len, 1) else {
        return core::ptr::null_mut();
    };
    if len == 0 {
        return core::ptr::null_mut();
    }
    // SAFETY: the layout has a non-zero size.
    unsafe { ::alloc::alloc::alloc(layout) }
}

/// Frees a buffer from [`alloc()`].
///
/// # Safety
/// `ptr` must come from [`alloc()`] called with the same `len`, and not be freed twice.
#[cfg_attr(target_arch = "wasm32", unsafe(no_mangle))]
pub unsafe extern "C" fn dealloc(ptr: *mut u8, len: usize) {
    if ptr.is_null() || len == 0 {
        return;
    }
    if let Ok(layout) = core::alloc::Layout::from_size_align(len, 1) {
        // SAFETY: the caller guarantees `ptr` came from `alloc(len)`, i.e. from this layout.
        unsafe { ::alloc::alloc::dealloc(ptr, layout) }
    }
}

/// Sets the reader configuration (JSON `TerminalParams` at `params_ptr`: AIDs, limits, CA keys
/// with their checksums checked here, once) for every later session; returns 0 or a negative
/// error status. May be called again to replace it; open sessions keep theirs.
///
/// # Safety
/// `params_ptr` must point to `params_len` readable bytes.
#[cfg_attr(target_arch = "wasm32", unsafe(no_mangle))]
pub unsafe extern "C" fn kernel_configure(params_ptr: *const u8, params_len: usize) -> i32 {
    // SAFETY: forwarded from the caller.
    let params = match unsafe { input(params_ptr, params_len) } {
        Ok(params) => params,
        Err(error) => return report(&error),
    };
    with_sessions(|sessions| match sessions.configure(params) {
        Ok(()) => 0,
        Err(error) => error.status(),
    })
}

/// Starts a transaction from the per-transaction parameters at `params_ptr` (JSON, or the
/// binary form) under the configuration of [`kernel_configure`]; returns the session handle
/// (positive) or a negative error status. The first output (SELECT PPSE, or an outcome when
/// the parameters end it at once) is then readable with [`session_output_ptr`], and
/// [`session_status`] tells which it is.
///
/// # Safety
/// `params_ptr` must point to `params_len` readable bytes.
#[cfg_attr(target_arch = "wasm32", unsafe(no_mangle))]
pub unsafe extern "C" fn session_create(params_ptr: *const u8, params_len: usize) -> i32 {
    // SAFETY: forwarded from the caller.
    let params = match unsafe { input(params_ptr, params_len) } {
        Ok(params) => params,
        Err(error) => return report(&error),
    };
    with_sessions(|sessions| match sessions.create(params) {
        Ok((handle, _)) => handle,
        Err(error) => error.status(),
    })
}

/// Feeds the card's R-APDU (data, SW1, SW2) to a session; returns 1 when the output is the next
/// C-APDU, 2 when it is the outcome, or a negative error status.
///
/// # Safety
/// `rapdu_ptr` must point to `rapdu_len` readable bytes.
#[cfg_attr(target_arch = "wasm32", unsafe(no_mangle))]
pub unsafe extern "C" fn session_resume(
    handle: i32,
    rapdu_ptr: *const u8,
    rapdu_len: usize,
) -> i32 {
    // SAFETY: forwarded from the caller.
    let rapdu = match unsafe { input(rapdu_ptr, rapdu_len) } {
        Ok(rapdu) => rapdu,
        Err(error) => return report(&error),
    };
    with_sessions(|sessions| {
        sessions
            .resume(handle, rapdu)
            .unwrap_or_else(|error| error.status())
    })
}

/// The status of the session's last step: 1 when the output is a C-APDU, 2 when it is the
/// outcome, or -3 for an unknown handle.
#[cfg_attr(target_arch = "wasm32", unsafe(no_mangle))]
pub extern "C" fn session_status(handle: i32) -> i32 {
    with_sessions(|sessions| {
        sessions.status(handle).unwrap_or_else(|error| {
            sessions.set_error(&error);
            error.status()
        })
    })
}

/// Address of the session's output (the C-APDU's bytes, or the outcome's JSON), valid until the
/// next call on this session; 0 for an unknown handle.
#[cfg_attr(target_arch = "wasm32", unsafe(no_mangle))]
pub extern "C" fn session_output_ptr(handle: i32) -> *const u8 {
    with_sessions(|sessions| {
        sessions
            .output(handle)
            .map_or(core::ptr::null(), <[u8]>::as_ptr)
    })
}

/// Length of the session's output message, or a negative error status for an unknown handle.
#[cfg_attr(target_arch = "wasm32", unsafe(no_mangle))]
pub extern "C" fn session_output_len(handle: i32) -> i32 {
    with_sessions(|sessions| match sessions.output(handle) {
        Ok(output) => i32::try_from(output.len()).unwrap_or(AbiError::Encoding.status()),
        Err(error) => {
            sessions.set_error(&error);
            error.status()
        }
    })
}

/// Ends a session and frees its memory; returns 0, or -3 for an unknown handle.
#[cfg_attr(target_arch = "wasm32", unsafe(no_mangle))]
pub extern "C" fn session_free(handle: i32) -> i32 {
    with_sessions(|sessions| {
        if sessions.free(handle) {
            0
        } else {
            let error = AbiError::UnknownSession;
            sessions.set_error(&error);
            error.status()
        }
    })
}

/// Address of the JSON message (`{"code":…,"message":…}`) of the last failed call.
#[cfg_attr(target_arch = "wasm32", unsafe(no_mangle))]
pub extern "C" fn last_error_ptr() -> *const u8 {
    with_sessions(|sessions| sessions.last_error().as_ptr())
}

/// Length of the last error message (0 if no call failed yet).
#[cfg_attr(target_arch = "wasm32", unsafe(no_mangle))]
pub extern "C" fn last_error_len() -> i32 {
    with_sessions(|sessions| i32::try_from(sessions.last_error().len()).unwrap_or(0))
}

/// The allocator of the `.wasm`: dlmalloc over `memory.grow`, as Rust's std uses on wasm32.
#[cfg(target_arch = "wasm32")]
#[global_allocator]
static ALLOCATOR: dlmalloc::GlobalDlmalloc = dlmalloc::GlobalDlmalloc;

/// A panic (a bug: nothing here panics on input) traps, which the host reports as a trap.
#[cfg(target_arch = "wasm32")]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    core::arch::wasm32::unreachable()
}

#[cfg(test)]
mod tests {
    //! The exports called natively, as a host calls them: pointers in, statuses and messages out.

    use alloc::string::String;
    use alloc::vec::Vec;

    use emv_kernel::ErrorCode;

    use super::*;
    use crate::message::{Output, TransactionParams};
    use crate::session::{STATUS_COMMAND, STATUS_OUTCOME};

    const CONFIG: &str = r#"{
        "country_code": "0840", "terminal_type": "22", "capabilities": "0068C8",
        "additional_capabilities": "6000F0A001",
        "aids": [{"aid": "A000000004", "kernel": 2, "floor_limit": 1000}]
    }"#;
    const PARAMS: &str = r#"{
        "amount": 999, "currency_code": "0840", "currency_exponent": 2,
        "date": "2026-11-26", "time": "120000", "unpredictable_number": "5B000001"
    }"#;

    /// Calls `export` with `bytes` copied into a buffer from `alloc`, as a host does.
    fn call(export: unsafe extern "C" fn(*const u8, usize) -> i32, bytes: &[u8]) -> i32 {
        let ptr = alloc(bytes.len());
        // SAFETY: `ptr` has `bytes.len()` writable bytes from `alloc`.
        unsafe { core::ptr::copy_nonoverlapping(bytes.as_ptr(), ptr, bytes.len()) };
        // SAFETY: `ptr` holds the message; freed with the same length.
        let status = unsafe { export(ptr, bytes.len()) };
        unsafe { dealloc(ptr, bytes.len()) };
        status
    }

    fn configure(config: &[u8]) -> i32 {
        call(kernel_configure, config)
    }

    fn create(params: &[u8]) -> i32 {
        call(session_create, params)
    }

    fn output(handle: i32) -> Vec<u8> {
        let len = usize::try_from(session_output_len(handle)).expect("a known handle");
        let ptr = session_output_ptr(handle);
        // SAFETY: the session's output buffer has `len` bytes until the next call on it.
        unsafe { core::slice::from_raw_parts(ptr, len) }.to_vec()
    }

    fn last_error() -> String {
        let len = usize::try_from(last_error_len()).unwrap();
        // SAFETY: the error buffer has `len` bytes until the next failing call.
        let bytes = unsafe { core::slice::from_raw_parts(last_error_ptr(), len) };
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    /// Runs a whole transaction through the exports against a virtual card.
    fn transaction(params: &[u8]) -> (Vec<Vec<u8>>, Vec<u8>) {
        let mut card = emv_cards::Card::profile("mc-cda").unwrap();
        let handle = create(params);
        assert!(handle > 0, "{}", last_error());
        let mut commands = Vec::new();
        let mut status = session_status(handle);
        loop {
            let message = output(handle);
            match status {
                STATUS_COMMAND => {
                    let rapdu = card.transmit(&message);
                    commands.push(message);
                    // SAFETY: `rapdu` is a live slice.
                    status = unsafe { session_resume(handle, rapdu.as_ptr(), rapdu.len()) };
                    assert_eq!(session_status(handle), status);
                }
                STATUS_OUTCOME => {
                    assert!(matches!(
                        serde_json::from_slice::<Output>(&message),
                        Ok(Output::Outcome { .. })
                    ));
                    // SAFETY: an empty response; the session is over and says so again.
                    let again = unsafe { session_resume(handle, core::ptr::null(), 0) };
                    assert_eq!(again, STATUS_OUTCOME);
                    assert_eq!(output(handle), message);
                    assert_eq!(session_free(handle), 0);
                    return (commands, message);
                }
                other => panic!("status {other}"),
            }
        }
    }

    /// The same parameters in the binary form.
    fn binary(params: &str) -> Vec<u8> {
        serde_json::from_str::<TransactionParams>(params)
            .unwrap()
            .to_binary()
            .unwrap()
    }

    /// The session table is global to the instance (here, the test process): the tests that
    /// configure it run one after the other.
    #[test]
    fn exports() {
        errors_have_statuses_and_messages();
        a_configured_instance_runs_transaction_after_transaction();
    }

    fn a_configured_instance_runs_transaction_after_transaction() {
        assert_eq!(abi_version(), 3);
        assert_eq!(configure(CONFIG.as_bytes()), 0, "{}", last_error());
        let (commands, message) = transaction(PARAMS.as_bytes());
        // PPSE, application, GPO, records, GENERATE AC.
        assert_eq!(commands[0][..5], [0x00, 0xA4, 0x04, 0x00, 0x0E]);
        assert_eq!(commands.last().unwrap()[..2], [0x80, 0xAE]);
        let Output::Outcome { outcome } = serde_json::from_slice(&message).unwrap() else {
            panic!("an outcome")
        };
        // The parameters trust no CA key, so CDA cannot succeed and the card is not approved
        // offline.
        assert_eq!(outcome.kind, "online_request");
        assert_eq!(
            (outcome.oda.status.as_str(), outcome.oda.error.as_deref()),
            ("failed", Some("oda_ca_key_not_found")),
            "{outcome:?}"
        );
        // Deterministic: the same inputs give the same bytes, in the same instance, with no
        // reconfiguration.
        assert_eq!(
            transaction(PARAMS.as_bytes()),
            (commands.clone(), message.clone())
        );
        // The binary form of the same parameters runs the same transaction.
        assert_eq!(transaction(&binary(PARAMS)), (commands, message.clone()));
        let other = PARAMS.replace("5B000001", "5B000002");
        assert_ne!(transaction(other.as_bytes()).1, message);
    }

    fn errors_have_statuses_and_messages() {
        // Nothing runs before a configuration.
        assert_eq!(create(PARAMS.as_bytes()), -7);
        assert!(last_error().contains("\"code\":\"not_configured\""));
        assert_eq!(configure(b"{"), -1);
        assert!(last_error().contains("\"code\":\"params_malformed\""));
        let bad_kernel = CONFIG.replace("\"kernel\": 2", "\"kernel\": 4");
        assert_eq!(configure(bad_kernel.as_bytes()), -2);
        assert!(last_error().contains("kernel 4"), "{}", last_error());
        assert_eq!(create(PARAMS.as_bytes()), -7);
        assert_eq!(configure(CONFIG.as_bytes()), 0);
        assert_eq!(create(b"{"), -1);
        assert!(last_error().contains("\"code\":\"params_malformed\""));
        let unknown_field = PARAMS.replacen("\"amount\"", "\"amount_typo\": 1, \"amount\"", 1);
        assert_eq!(create(unknown_field.as_bytes()), -1);
        let bad_length = PARAMS.replace(
            "\"0840\", \"currency_exponent\"",
            "\"08\", \"currency_exponent\"",
        );
        assert_eq!(create(bad_length.as_bytes()), -2);
        assert!(last_error().contains("currency_code"), "{}", last_error());
        let bad_date = PARAMS.replace("2026-11-26", "2026-02-30");
        assert_eq!(create(bad_date.as_bytes()), -2);
        // The binary form is checked alike: a truncated message is malformed, a value of the
        // wrong length invalid, naming its field.
        let params = binary(PARAMS);
        assert_eq!(create(&params[..params.len() - 1]), -1);
        assert!(last_error().contains("\"code\":\"params_malformed\""));
        assert_eq!(create(&binary(&bad_length)), -2);
        assert!(last_error().contains("currency_code"), "{}", last_error());
        assert_eq!(create(&binary(&bad_date)), -2);
        assert_eq!(session_status(i32::MAX - 7), -3);
        // SAFETY: a null pointer with a length is refused before it is read.
        assert_eq!(unsafe { session_create(core::ptr::null(), 10) }, -5);
        assert_eq!(unsafe { kernel_configure(core::ptr::null(), 10) }, -5);
        assert_eq!(
            unsafe { session_resume(i32::MAX - 7, [0x90, 0x00].as_ptr(), 2) },
            -3
        );
        assert_eq!(session_output_len(i32::MAX - 7), -3);
        assert!(session_output_ptr(i32::MAX - 7).is_null());
        assert_eq!(session_free(i32::MAX - 7), -3);
        assert_eq!(AbiError::UnknownSession.code(), "unknown_session");
        assert!(alloc(0).is_null());
        // SAFETY: freeing nothing is a no-op.
        unsafe { dealloc(core::ptr::null_mut(), 0) };
    }
}
