//! The memory allocator of every binary linking neureg (the program, its tests and benches):
//! mimalloc, told to keep freed memory for reuse.
//!
//! Each training step allocates and drops tensors of several megabytes. glibc's allocator maps
//! every one of them afresh and unmaps it when dropped, and mimalloc by default hands freed
//! memory back to the system after 10 ms, so every large tensor of every step paid page faults
//! and the kernel's page clearing again: 16% of a ResNet18 training step and a third of the
//! stem's backward pass (`perf record`). Keeping freed memory made width-1 training 15-30%
//! faster (`cargo bench --bench classifier`); the process keeps its peak memory until it exits.

use std::alloc::{GlobalAlloc, Layout};
use std::sync::atomic::{AtomicBool, Ordering};

use mimalloc::MiMalloc;

/// mimalloc with purging of freed memory turned off, set on the first allocation.
struct Retaining;

/// `mi_option_purge_delay` in `mimalloc.h` (libmimalloc-sys names no constant for it).
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

static CONFIGURED: AtomicBool = AtomicBool::new(false);

impl Retaining {
    fn configure() {
        // A plain load first: a swap on every allocation would write the shared flag each time.
        if !CONFIGURED.load(Ordering::Relaxed) && !CONFIGURED.swap(true, Ordering::Relaxed) {
            // SAFETY: setting an option is allowed at any time; -1 means never purge.
            unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, -1) };
        }
    }
}

// SAFETY: every call is passed on to mimalloc unchanged.
unsafe impl GlobalAlloc for Retaining {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        Self::configure();
        unsafe { MiMalloc.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        Self::configure();
        unsafe { MiMalloc.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { MiMalloc.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        unsafe { MiMalloc.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Retaining = Retaining;

#[cfg(test)]
mod tests {
    #[test]
    fn purging_is_off() {
        drop(vec![0u8; 1 << 20]);
        // SAFETY: reading an option.
        let delay = unsafe { libmimalloc_sys::mi_option_get(super::PURGE_DELAY) };
        assert_eq!(delay, -1);
    }
}
