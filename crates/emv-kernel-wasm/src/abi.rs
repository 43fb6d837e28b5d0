//! The exported C ABI, version [`ABI_VERSION`] (`ABI.md` describes it for hosts).
//!
//! This is the only module of the workspace that uses `unsafe`, for three reasons, each confined
//! to one helper:
//! - the exports receive raw pointers into linear memory from the host ([`input`]);
//! - `alloc` / `dealloc` hand out and take back raw allocations ([`alloc`], [`dealloc`]);
//! - the session table is a global ([`with_sessions`]), guarded by a spin flag: on
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
pub const ABI_VERSION: u32 = 1;

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

/// Frees a buffer from [`alloc`].
///
/// # Safety
/// `ptr` must come from [`alloc`] called with the same `len`, and not be freed twice.
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

/// Starts a transaction from the JSON parameters at `params_ptr`; returns the session handle
/// (positive) or a negative error status. The first output (SELECT PPSE, or an outcome when
/// the parameters end it at once) is then readable with [`session_output_ptr`].
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

/// Address of the session's output message (JSON), valid until the next call on this session;
/// 0 for an unknown handle.
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
