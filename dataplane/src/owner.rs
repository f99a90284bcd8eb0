//! Flow ownership: which worker owns a connection.
//!
//! Layer: dataplane policy shared by all workers. The owner is a function of
//! the client address and port only, so it can be computed from an inbound
//! packet (the source) and from a NAT reply (the destination) alike. A packet
//! that RSS delivered to another worker is moved to its owner over a ring
//! (see docs/architecture.md, "Threads" and "Decisions").

/// The worker (0..n_workers) that owns connections of client `cip:cport`
/// (host order).
///
/// Multiplicative (Fibonacci) hashing of the address mixed with the port,
/// reduced by the multiply-shift range mapping: no division, no bias beyond
/// 1/2^32. Returns 0 when `n_workers` is 0 or 1.
#[inline]
pub fn owner(cip: u32, cport: u16, n_workers: u16) -> u16 {
    if n_workers <= 1 {
        return 0;
    }
    let h = (cip ^ u32::from(cport).rotate_left(16) ^ u32::from(cport)).wrapping_mul(0x9e37_79b1);
    let h = h ^ (h >> 15);
    ((u64::from(h.wrapping_mul(0x85eb_ca6b)) * u64::from(n_workers)) >> 32) as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_owner_in_range_and_spread() {
        let mut count = [0u32; 3];
        for p in 0..30_000u16 {
            let o = owner(0x0a00_0002, 1024 + p, 3);
            count[o as usize] += 1;
        }
        for c in count {
            assert!((9_000..11_000).contains(&c), "uneven spread {count:?}");
        }
        assert_eq!(owner(1, 2, 1), 0);
        assert_eq!(owner(1, 2, 0), 0);
    }
}
