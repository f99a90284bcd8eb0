//! `sh`: source hashing, as `net/netfilter/ipvs/ip_vs_sh.c`.
//!
//! Hashes the client IP (plus the client port with `sh-port`) into a table
//! of 256 buckets (`CONFIG_IP_VS_SH_TAB_BITS` = 8; here
//! [`SchedParams::sh_table_len`], any power of two) and returns the bucket's
//! server, so one client keeps reaching one real server.
//!
//! The table mirrors `ip_vs_sh_reassign`: walking the buckets in order, each
//! server in list order takes `weight` consecutive buckets before the next
//! one's turn, wrapping around the list until the table is full. A quiesced
//! server (weight 0) still takes one bucket (IPVS's `++count >= weight`
//! check is true at once), so quiescing a server does not move the others.
//!
//! When the bucket's server is quiesced the answer is `None`, unless
//! `sh-fallback` is set: then the following buckets are tried in order until
//! a usable server is found (IPVS rehashes with an increasing offset; the
//! visiting order differs, but each bucket is tried at most once either way).
//!
//! The hash is `dh`'s ([`bucket_of`]) on `src_ip + src_port` (wrapping), as
//! IPVS adds the port to the address before hashing.
//!
//! The table is rebuilt when the (id, weight) list changes; `pick` allocates
//! only then.
//!
//! [`SchedParams::sh_table_len`]: crate::SchedParams::sh_table_len

use crate::dh::bucket_of;
use crate::{BuiltFor, Dest, FlowInfo, Scheduler};

/// Fills `table` as IPVS `ip_vs_sh_reassign` does: server `p` takes
/// `max(weight_p, 1)` consecutive buckets, servers in list order, wrapping.
/// Entries are indices into `weights`; with no servers the table is emptied.
pub fn sh_fill(table: &mut Vec<u32>, weights: &[u32], table_len: usize) {
    table.clear();
    if weights.is_empty() {
        return;
    }
    let (mut p, mut turns) = (0usize, 0u32);
    for _ in 0..table_len {
        table.push(p as u32);
        turns += 1;
        if turns >= weights[p] {
            p = (p + 1) % weights.len();
            turns = 0;
        }
    }
}

/// Source-hashing scheduler: its table and flags.
#[derive(Clone, Debug)]
pub struct SourceHashing {
    table_len: usize,
    port: bool,
    fallback: bool,
    table: Vec<u32>,
    weights: Vec<u32>,
    built_for: BuiltFor,
}

impl SourceHashing {
    /// An `sh` with `table_len` buckets (power of two; IPVS default 256),
    /// `port` = `sh-port`, `fallback` = `sh-fallback`. The table is built at
    /// the first pick.
    pub fn new(table_len: usize, port: bool, fallback: bool) -> Self {
        SourceHashing {
            table_len: table_len.max(1),
            port,
            fallback,
            table: Vec::new(),
            weights: Vec::new(),
            built_for: BuiltFor::default(),
        }
    }

    fn rebuild(&mut self, dests: &[Dest]) {
        self.weights.clear();
        self.weights.extend(dests.iter().map(|d| d.weight));
        sh_fill(&mut self.table, &self.weights, self.table_len);
        self.built_for.set(dests);
    }

    #[inline]
    fn usable(&self, dests: &[Dest], b: usize) -> Option<usize> {
        let i = *self.table.get(b)? as usize;
        (dests.get(i)?.weight > 0).then_some(i)
    }
}

impl Default for SourceHashing {
    fn default() -> Self {
        SourceHashing::new(256, false, false)
    }
}

impl Scheduler for SourceHashing {
    fn pick(&mut self, dests: &[Dest], flow: &FlowInfo) -> Option<usize> {
        if !self.built_for.matches(dests) {
            self.rebuild(dests);
        }
        if self.table.is_empty() {
            return None;
        }
        let port = if self.port {
            u32::from(flow.src_port)
        } else {
            0
        };
        let b = bucket_of(flow.src_ip.wrapping_add(port), self.table.len());
        if let Some(i) = self.usable(dests, b) {
            return Some(i);
        }
        if !self.fallback {
            return None;
        }
        let len = self.table.len();
        (1..len).find_map(|k| self.usable(dests, (b + k) % len))
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

    fn from(src_ip: u32, src_port: u16) -> FlowInfo {
        FlowInfo {
            src_ip,
            src_port,
            ..FlowInfo::default()
        }
    }

    #[test]
    fn test_ipvs_table_weights_1_2_1() {
        // A takes 1 bucket, B 2, C 1, then around again.
        let mut t = Vec::new();
        sh_fill(&mut t, &[1, 2, 1], 8);
        assert_eq!(t, [0, 1, 1, 2, 0, 1, 1, 2]);
        sh_fill(&mut t, &[1, 2, 1], 256);
        assert_eq!(t.len(), 256);
        assert_eq!(t.iter().filter(|&&s| s == 1).count(), 128);
        assert_eq!(t.iter().filter(|&&s| s == 0).count(), 64);
    }

    #[test]
    fn test_ipvs_table_quiesced_keeps_one_bucket() {
        let mut t = Vec::new();
        sh_fill(&mut t, &[0, 2], 8);
        assert_eq!(t, [0, 1, 1, 0, 1, 1, 0, 1]);
        sh_fill(&mut t, &[3], 4);
        assert_eq!(t, [0, 0, 0, 0]);
        sh_fill(&mut t, &[], 4);
        assert!(t.is_empty());
    }

    #[test]
    fn test_pick_by_source() {
        let mut s = SourceHashing::new(8, false, false);
        let dests = d(&[1, 2, 1]);
        // src 1 → bucket 0b100 = 4 → A; src 2 → 0x3C6EF362 top 3 bits 001 → B.
        assert_eq!(s.pick(&dests, &from(1, 0)), Some(0));
        assert_eq!(s.pick(&dests, &from(2, 0)), Some(1));
        // Without sh-port the port is ignored.
        assert_eq!(s.pick(&dests, &from(1, 1)), Some(0));
    }

    #[test]
    fn test_sh_port() {
        let mut s = SourceHashing::new(8, true, false);
        let dests = d(&[1, 2, 1]);
        // 0 + port 1 hashes like src 1 → bucket 4 → A; src 1 + port 1 = 2 → B.
        assert_eq!(s.pick(&dests, &from(0, 1)), Some(0));
        assert_eq!(s.pick(&dests, &from(1, 1)), Some(1));
        assert_eq!(s.pick(&dests, &from(1, 0)), Some(0));
    }

    #[test]
    fn test_quiesced_none_without_fallback() {
        let mut s = SourceHashing::new(8, false, false);
        let dests = d(&[2, 0]);
        // Table [0,0,1,0,0,1,0,0]: bucket 4 → A, usable.
        assert_eq!(s.pick(&dests, &from(1, 0)), Some(0));
        // src 2 → bucket 1 → A.
        assert_eq!(s.pick(&dests, &from(2, 0)), Some(0));
        // Reweight to 1,0: table [0,1,0,1,…]; src 2 → bucket 1 → B quiesced.
        let dests = d(&[1, 0]);
        assert_eq!(s.pick(&dests, &from(2, 0)), None);
    }

    #[test]
    fn test_fallback_walks_to_next_bucket() {
        let mut s = SourceHashing::new(8, false, true);
        // Table [0,1,0,1,…]; src 2 → bucket 1 → B quiesced → bucket 2 → A.
        let dests = d(&[1, 0]);
        assert_eq!(s.pick(&dests, &from(2, 0)), Some(0));
        // Table [0,1,2,0,1,2,0,1]: bucket 1 → B quiesced → bucket 2 → C.
        let dests = d(&[1, 0, 1]);
        assert_eq!(s.pick(&dests, &from(2, 0)), Some(2));
        assert_eq!(s.pick(&d(&[0, 0, 0]), &from(2, 0)), None);
    }

    #[test]
    fn test_rebuild_on_weight_change() {
        let mut s = SourceHashing::new(8, false, false);
        assert_eq!(s.pick(&d(&[1, 1]), &from(2, 0)), Some(1));
        // Weights 2,1: [0,0,1,0,0,1,0,0]: bucket 1 → A now.
        assert_eq!(s.pick(&d(&[2, 1]), &from(2, 0)), Some(0));
        assert_eq!(s.pick(&d(&[]), &from(2, 0)), None);
    }
}
