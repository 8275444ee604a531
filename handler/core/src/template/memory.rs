//! The bytes a thread allocates, counted by [`CountingAllocator`] when a program installs it as its global
//! allocator (`handler` does; so do the core's tests): a template run stops past `MAX_MEMORY_BYTES` whatever
//! rhai's own size checks let through (an item set into a map, a string function whose result it checks only
//! after making it). Without it nothing is counted, and only rhai's checks bound a run.
//!
//! Every allocation is counted, frees are not: the budget is on what a run allocates in all, which a typical
//! reshape keeps to a few kilobytes.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

thread_local! {
    // A constant initialiser and no destructor: reading it never allocates, and works while a thread ends.
    static ALLOCATED: Cell<usize> = const { Cell::new(0) };
}

/// The system allocator, counting the bytes each thread allocates.
pub struct CountingAllocator;

fn count(bytes: usize) {
    let _ = ALLOCATED.try_with(|allocated| allocated.set(allocated.get().wrapping_add(bytes)));
}

/// Bytes this thread has allocated so far (0 when nothing counts).
pub fn allocated() -> usize {
    ALLOCATED.try_with(Cell::get).unwrap_or(0)
}

// SAFETY: every call is passed on to `System` unchanged; counting touches only a thread-local integer.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: the caller's contract for `alloc`, passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count(layout.size());
        // SAFETY: the caller's contract for `alloc_zeroed`, passed on.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count(new_size.saturating_sub(layout.size()));
        // SAFETY: the caller's contract for `realloc`, passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract for `dealloc`, passed on.
        unsafe { System.dealloc(ptr, layout) }
    }
}
