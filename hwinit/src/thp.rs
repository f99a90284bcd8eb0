//! Transparent huge pages for the big per-worker tables.
//!
//! Layer: hwinit, the only crate that calls C. A worker's connection table
//! (1 M connections: a 56 MB slab and its hash index) is read at random
//! addresses, one or two per packet; on 4 KiB pages nearly every lookup is
//! a TLB miss and a page walk, and a software prefetch waits for that walk.
//! Debian's default is `transparent_hugepage=madvise`, so such memory gets
//! 2 MiB pages only when asked for with `madvise(MADV_HUGEPAGE)` before it
//! is first touched: [`with_capacity`] does exactly that.
//!
//! Refuses nothing: where the kernel has no THP, or says no, the memory is
//! ordinary pages and everything works, only slower.

use std::mem::MaybeUninit;

/// Below this many bytes the advice is not worth a system call.
const MIN_BYTES: usize = 4 << 20;

/// A `Vec` with room for `n` elements whose untouched memory the kernel is
/// asked to back with transparent huge pages (`MADV_HUGEPAGE`, Linux
/// `madvise(2)`). Fill it (`push`, `resize`) after this call: pages touched
/// before the advice stay small.
///
/// Returns the vector and whether the kernel accepted the advice (`false`
/// for small vectors, non-Linux systems, or `EINVAL` when THP is off).
///
/// # Panics
/// Only if the allocation fails (Rust's usual out-of-memory abort).
pub fn with_capacity<T>(n: usize) -> (Vec<T>, bool) {
    let mut v: Vec<T> = Vec::with_capacity(n);
    let ok = advise(v.spare_capacity_mut());
    (v, ok)
}

/// Asks for huge pages over the whole pages inside `mem`.
fn advise<T>(mem: &mut [MaybeUninit<T>]) -> bool {
    let len = std::mem::size_of_val(mem);
    if len < MIN_BYTES {
        return false;
    }
    let page = 4096usize;
    let start = mem.as_mut_ptr() as usize;
    let first = start.next_multiple_of(page);
    let end = (start + len) & !(page - 1);
    if end <= first {
        return false;
    }
    #[cfg(target_os = "linux")]
    {
        // SAFETY: madvise with MADV_HUGEPAGE only changes how the kernel
        // backs the range; it never reads, writes or unmaps it. The range
        // [first, end) lies inside `mem`, an allocation this function
        // borrows mutably, and is page aligned as madvise requires.
        let rc =
            unsafe { libc::madvise(first as *mut libc::c_void, end - first, libc::MADV_HUGEPAGE) };
        rc == 0
    }
    #[cfg(not(target_os = "linux"))]
    {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_with_capacity_is_usable_either_way() {
        let (mut v, _advised) = with_capacity::<u64>(1 << 20);
        assert!(v.capacity() >= 1 << 20);
        v.resize(1 << 20, 7);
        assert_eq!(v.iter().sum::<u64>(), 7 << 20);
        let (small, advised) = with_capacity::<u8>(16);
        assert!(!advised && small.capacity() >= 16);
    }
}
