//! `dh`: destination hashing, as `net/netfilter/ipvs/ip_vs_dh.c`.
//!
//! IPVS hashes the destination IP into a table of 256 buckets
//! (`CONFIG_IP_VS_DH_TAB_BITS` = 8; here [`SchedParams::dh_table_len`],
//! any power of two) and returns the bucket's server. If that server is
//! quiesced (weight 0) the answer is `None`: `dh` never falls back, because
//! its point is that one destination IP always reaches the same cache.
//!
//! The table: `ip_vs_dh_reassign` walks the destination list once per
//! bucket, one bucket per server in turn, *ignoring weights* (unlike `sh`),
//! and quiesced servers keep their buckets. So bucket `b` holds server
//! `b mod n`; fulcrum computes that instead of storing it, which needs no
//! allocation and no rebuild when weights change.
//!
//! The hash is Knuth's multiplicative hash with IPVS's constant
//! 2654435761, keeping the top `log2(len)` bits of the 32-bit product (IPVS
//! keeps the low bits, which for a multiplicative hash depend only on the
//! low bits of the address; the top bits mix all 32).
//!
//! [`SchedParams::dh_table_len`]: crate::SchedParams::dh_table_len

use crate::{Dest, FlowInfo, Scheduler};

/// IPVS's multiplicative hash constant (⌊2³² / φ⌋, rounded to a prime).
pub const HASH_MUL: u32 = 2_654_435_761;

/// Bucket of `key` in a table of `len` buckets: the top `log2(len)` bits of
/// `key · 2654435761 mod 2³²`.
///
/// `len` must be a power of two in 1..=2³² (checked by
/// [`SchedParams::validate`](crate::SchedParams::validate)); any other value
/// still returns an index `< len` (the hash is reduced modulo `len`), so this
/// never panics. `len` 0 returns 0.
#[inline]
pub fn bucket_of(key: u32, len: usize) -> usize {
    let h = key.wrapping_mul(HASH_MUL);
    if len <= 1 {
        return 0;
    }
    let bits = len.trailing_zeros();
    if len.is_power_of_two() && bits <= 32 {
        (h >> (32 - bits)) as usize
    } else {
        h as usize % len
    }
}

/// Destination-hashing scheduler: the bucket count (power of two).
#[derive(Clone, Copy, Debug)]
pub struct DestinationHashing {
    table_len: usize,
}

impl DestinationHashing {
    /// A `dh` with `table_len` buckets (power of two; IPVS default 256).
    pub fn new(table_len: usize) -> Self {
        DestinationHashing {
            table_len: table_len.max(1),
        }
    }

    /// Index of the server bucket `bucket` holds for `n_dests` servers
    /// (IPVS `ip_vs_dh_reassign`: one bucket per server in turn), `None`
    /// when there are no servers.
    #[inline]
    pub fn bucket_server(bucket: usize, n_dests: usize) -> Option<usize> {
        bucket.checked_rem(n_dests)
    }
}

impl Default for DestinationHashing {
    fn default() -> Self {
        DestinationHashing::new(256)
    }
}

impl Scheduler for DestinationHashing {
    fn pick(&mut self, dests: &[Dest], flow: &FlowInfo) -> Option<usize> {
        let b = bucket_of(flow.dst_ip, self.table_len);
        let i = Self::bucket_server(b, dests.len())?;
        (dests[i].weight > 0).then_some(i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(ws: &[u32]) -> Vec<Dest> {
        ws.iter()
            .map(|&weight| Dest {
                weight,
                ..Dest::default()
            })
            .collect()
    }

    fn to(dst_ip: u32) -> FlowInfo {
        FlowInfo {
            dst_ip,
            ..FlowInfo::default()
        }
    }

    #[test]
    fn test_bucket_of() {
        // 1 · 2654435761 = 0x9E3779B1: top 8 bits 0x9E = 158.
        assert_eq!(bucket_of(1, 256), 0x9E);
        assert_eq!(bucket_of(0, 256), 0);
        // 2 · 0x9E3779B1 = 0x13C6EF362 → mod 2³² 0x3C6EF362: top 8 bits 0x3C.
        assert_eq!(bucket_of(2, 256), 0x3C);
        assert_eq!(bucket_of(1, 8), 0b100);
        assert_eq!(bucket_of(12345, 1), 0);
        // Not a power of two: still in range.
        assert!(bucket_of(u32::MAX, 100) < 100);
        assert_eq!(bucket_of(7, 0), 0);
    }

    #[test]
    fn test_ipvs_table_ignores_weight() {
        // Weights 1,2,1: IPVS assigns buckets 0,1,2,0,1,2,… regardless.
        let table: Vec<_> = (0..8)
            .map(|b| DestinationHashing::bucket_server(b, 3).unwrap())
            .collect();
        assert_eq!(table, [0, 1, 2, 0, 1, 2, 0, 1]);
        assert_eq!(DestinationHashing::bucket_server(5, 0), None);
    }

    #[test]
    fn test_pick_by_destination() {
        let mut s = DestinationHashing::default();
        let dests = d(&[1, 2, 1]);
        // dst 1 → bucket 158 → 158 mod 3 = 2; dst 2 → bucket 60 → 0.
        assert_eq!(s.pick(&dests, &to(1)), Some(2));
        assert_eq!(s.pick(&dests, &to(2)), Some(0));
        assert_eq!(s.pick(&dests, &to(0)), Some(0));
        // Source is irrelevant.
        let f = FlowInfo {
            src_ip: 99,
            src_port: 1234,
            ..to(1)
        };
        assert_eq!(s.pick(&dests, &f), Some(2));
    }

    #[test]
    fn test_quiesced_bucket_is_none() {
        let mut s = DestinationHashing::default();
        // dst 1 maps to server 2, which is quiesced: IPVS returns NULL.
        let dests = d(&[1, 1, 0]);
        assert_eq!(s.pick(&dests, &to(1)), None);
        assert_eq!(s.pick(&dests, &to(2)), Some(0));
        assert_eq!(s.pick(&[], &to(1)), None);
    }
}
