//! Allocator tuning for training loops.
//!
//! Tensors of a few hundred KiB to a few MiB are allocated and freed on
//! every step. glibc serves blocks above its mmap threshold with fresh
//! `mmap`s and returns them with `munmap`, so each step pays page faults
//! and zeroing for memory it just released (a quarter of CPU time went to
//! the kernel in PLM training). Raising the thresholds keeps those blocks in
//! the heap for reuse.

/// Call once at start-up, before the first large allocation. No-op on
/// non-glibc targets.
pub fn tune_for_training() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; called before
    // other threads allocate.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 1 << 30);
        libc::mallopt(libc::M_ARENA_MAX, 4);
    }
}
