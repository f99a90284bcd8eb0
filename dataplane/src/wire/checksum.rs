//! The Internet checksum: full computation (RFC 1071) and incremental update
//! (RFC 1624).
//!
//! Layer: dataplane wire, below every view. The functions here are pure, take
//! plain byte slices and integers, never allocate and never panic, so the
//! per-packet path can call them on any input.
//!
//! Guarantees:
//! - 16-bit words are read big-endian with `u16::from_be_bytes`, two bytes
//!   at a time; a buffer is never reinterpreted as `&[u16]`, so unaligned
//!   mbuf data is fine.
//! - An odd trailing byte is padded with a zero byte on the right
//!   (RFC 1071 §4.1, "add left-over byte, if any").
//! - [`update_u16`] uses RFC 1624 eqn. 3, which never produces the
//!   "negative zero" pitfall of RFC 1141's eqn. 2 for a checksum that was
//!   computed in full.
//!
//! Refuses: nothing. Whether a checksum of 0 means "no checksum" (UDP) is a
//! protocol decision made by the views, not here.

/// Sums `data` as big-endian 16-bit words in ones'-complement arithmetic,
/// without folding the carries and without complementing.
///
/// Shape: any length; an odd trailing byte is taken as the high byte of a
/// word whose low byte is 0 (RFC 1071 §4.1).
///
/// The result is the exact arithmetic sum of the words for any input up to
/// 128 KiB (every IPv4 datagram fits). For longer inputs the carries above
/// bit 31 are folded back in, which keeps the value congruent modulo 0xffff,
/// so [`fold`] still yields the right checksum.
///
/// Combine partial sums (pseudo header + segment) with [`add`], which keeps
/// the end-around carry, rather than `+`.
///
/// Source: RFC 1071 §1 and §4.1.
pub fn sum(data: &[u8]) -> u32 {
    // A u64 accumulator cannot overflow for any slice that fits in memory
    // (2^47 words of at most 0xffff each), so no carry is ever lost.
    let mut acc: u64 = 0;
    let mut chunks = data.chunks_exact(8);
    for c in &mut chunks {
        // Four words per iteration lets the compiler keep independent adds
        // in flight; the order of ones'-complement additions is irrelevant.
        acc += u64::from(u16::from_be_bytes([c[0], c[1]]))
            + u64::from(u16::from_be_bytes([c[2], c[3]]))
            + u64::from(u16::from_be_bytes([c[4], c[5]]))
            + u64::from(u16::from_be_bytes([c[6], c[7]]));
    }
    let mut words = chunks.remainder().chunks_exact(2);
    for w in &mut words {
        acc += u64::from(u16::from_be_bytes([w[0], w[1]]));
    }
    if let [last] = words.remainder() {
        acc += u64::from(u16::from_be_bytes([*last, 0]));
    }
    // 2^32 ≡ 1 (mod 0xffff), so folding the high half onto the low half
    // preserves the ones'-complement value.
    while acc > u64::from(u32::MAX) {
        acc = (acc & 0xffff_ffff) + (acc >> 32);
    }
    acc as u32
}

/// Whether `data` (a header that carries its own checksum field) sums to
/// 0xffff in ones'-complement arithmetic: the verification of RFC 1071 §1,
/// as `fold(sum(data)) == 0xffff`, but faster on the per-packet path.
///
/// It adds 32-bit words in the machine's own byte order and folds them:
/// ones'-complement addition is independent of byte order (RFC 1071 §2(B):
/// the sum of byte-swapped words is the byte-swapped sum) and of word
/// width (a 32-bit word is two 16-bit words whose sum folding restores),
/// and 0xffff reads the same in either order. An odd last byte counts as a
/// word with a zero low byte, as in [`sum`].
#[inline]
pub fn verifies(data: &[u8]) -> bool {
    let mut acc: u64 = 0;
    // The common case, an IPv4 header without options: five words, no loop.
    if let Some(h) = data.first_chunk::<20>() {
        if data.len() == 20 {
            for w in h.chunks_exact(4) {
                acc += u64::from(u32::from_ne_bytes([w[0], w[1], w[2], w[3]]));
            }
            return fold_ne(acc);
        }
    }
    let mut words = data.chunks_exact(4);
    for w in &mut words {
        acc += u64::from(u32::from_ne_bytes([w[0], w[1], w[2], w[3]]));
    }
    let rest = words.remainder();
    let mut pair = [0u8; 4];
    pair[..rest.len()].copy_from_slice(rest);
    // The remainder's bytes keep their positions in a 4-byte word: bytes
    // 0-1 and 2-3 stay 16-bit words, an odd byte gets a zero partner.
    acc += u64::from(u32::from_ne_bytes(pair));
    fold_ne(acc)
}

/// Folds a sum of native-order 32-bit words to 16 bits and says whether it
/// is 0xffff (see [`verifies`]).
#[inline]
fn fold_ne(acc: u64) -> bool {
    let mut s = (acc & 0xffff_ffff) + (acc >> 32);
    s = (s & 0xffff_ffff) + (s >> 32);
    let mut t = (s & 0xffff) + (s >> 16);
    t = (t & 0xffff) + (t >> 16);
    t = (t & 0xffff) + (t >> 16);
    t == 0xffff
}

/// Adds two unfolded sums (as returned by [`sum`] or [`pseudo_header_v4`])
/// with an end-around carry, so the result is never lost to overflow.
///
/// The result is congruent to `a + b` modulo 0xffff, which is all the
/// Internet checksum depends on; when `a + b` fits in 32 bits it is exactly
/// `a + b`.
///
/// Source: RFC 1071 §2(B), ones'-complement addition is associative and
/// commutative, and carries may be deferred.
pub fn add(a: u32, b: u32) -> u32 {
    let (s, carry) = a.overflowing_add(b);
    // When the add overflowed, s <= u32::MAX - 1, so adding the carry back
    // cannot overflow again.
    s + u32::from(carry)
}

/// Folds an unfolded sum to 16 bits by adding the carries back in
/// ("end-around carry") until none remain. The result is NOT complemented.
///
/// A non-zero input never folds to 0: ones'-complement zero is represented
/// as 0xffff here, which is what checksum verification expects (a correct
/// header sums to 0xffff).
///
/// Source: RFC 1071 §4.1 ("fold 32-bit sum to 16 bits").
pub fn fold(sum: u32) -> u16 {
    let mut s = sum;
    while s >> 16 != 0 {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

/// The checksum to store in a header: `!fold(sum(data))`, host order.
///
/// Compute it with the checksum field of `data` set to zero. Verifying a
/// header that already carries its checksum gives 0 here (equivalently
/// `fold(sum(data)) == 0xffff`).
///
/// Source: RFC 1071 §1 ("the 16-bit one's complement of the one's
/// complement sum").
pub fn checksum(data: &[u8]) -> u16 {
    !fold(sum(data))
}

/// Unfolded sum of the IPv4 pseudo header used by the TCP and UDP checksums:
/// source address, destination address, zero byte + protocol, and the
/// length of the TCP/UDP segment (header + data) in bytes.
///
/// `src` and `dst` are IPv4 addresses in host order (`10.0.0.1` is
/// `0x0a00_0001`); `l4_len` is in bytes, host order. Add the result to the
/// segment's [`sum`] with [`add`], then [`fold`] and complement.
///
/// Source: RFC 9293 §3.1 ("TCP pseudo-header"), RFC 768 ("pseudo header").
pub fn pseudo_header_v4(src: u32, dst: u32, proto: u8, l4_len: u16) -> u32 {
    (src >> 16)
        + (src & 0xffff)
        + (dst >> 16)
        + (dst & 0xffff)
        + u32::from(proto)
        + u32::from(l4_len)
}

/// Incrementally updates a stored checksum `csum` after one 16-bit word of
/// the covered data changed from `old` to `new`. All three are host order,
/// as read by the views' getters.
///
/// Computes `HC' = ~(~HC + ~m + m')`. For a checksum that was computed in
/// full the result equals a full recompute, bit for bit, including the
/// 0x0000 case that RFC 1141's formula got wrong.
///
/// Source: RFC 1624 §3, eqn. 3.
pub fn update_u16(csum: u16, old: u16, new: u16) -> u16 {
    let s = u32::from(!csum) + u32::from(!old) + u32::from(new);
    !fold(s)
}

/// Incrementally updates a stored checksum after a 32-bit field (an IPv4
/// address, a TCP sequence number) changed from `old` to `new`, as two
/// 16-bit updates of the high and low halves. Host order throughout.
///
/// The field must start on an even offset of the covered data, which holds
/// for every 32-bit field of IPv4, TCP, UDP and the pseudo header.
///
/// Source: RFC 1624 §3, eqn. 3, applied once per 16-bit word.
pub fn update_u32(csum: u16, old: u32, new: u32) -> u16 {
    let hi = update_u16(csum, (old >> 16) as u16, (new >> 16) as u16);
    update_u16(hi, old as u16, new as u16)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Reference: one word at a time, u64, no tricks.
    fn naive_sum(data: &[u8]) -> u64 {
        let mut acc = 0u64;
        let mut i = 0;
        while i < data.len() {
            let hi = u64::from(data[i]) << 8;
            let lo = data.get(i + 1).copied().map_or(0, u64::from);
            acc += hi | lo;
            i += 2;
        }
        acc
    }

    #[test]
    fn test_sum_rfc1071_example() {
        // RFC 1071 §3 numerical example: bytes 00 01 f2 03 f4 f5 f6 f7 sum
        // to 2ddf0, which folds to ddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(sum(&data), 0x2_ddf0);
        assert_eq!(fold(sum(&data)), 0xddf2);
        assert_eq!(checksum(&data), !0xddf2);
    }

    #[test]
    fn test_sum_odd_length() {
        // The trailing 0xab is the high byte of 0xab00.
        assert_eq!(sum(&[0x12, 0x34, 0xab]), 0x1234 + 0xab00);
        assert_eq!(sum(&[0xff]), 0xff00);
        assert_eq!(sum(&[]), 0);
    }

    #[test]
    fn test_sum_unaligned() {
        // Same words starting at an odd address give the same sum.
        let backing = [0u8, 0x45, 0x00, 0x00, 0x54, 0xde, 0xad, 0xbe, 0xef, 0x01];
        assert_eq!(
            sum(&backing[1..]),
            0x4500 + 0x0054 + 0xdead + 0xbeef + 0x0100
        );
    }

    #[test]
    fn test_sum_long_input_no_overflow() {
        // 256 KiB of 0xff: the plain sum exceeds u32; the folded checksum of
        // any non-zero all-ones data is 0xffff, i.e. checksum 0.
        let data = vec![0xffu8; 256 * 1024];
        assert_eq!(fold(sum(&data)), 0xffff);
        assert_eq!(checksum(&data), 0);
    }

    #[test]
    fn test_fold() {
        assert_eq!(fold(0), 0);
        assert_eq!(fold(0xffff), 0xffff);
        assert_eq!(fold(0x1_0000), 1);
        assert_eq!(fold(0x1_fffe), 0xffff);
        assert_eq!(fold(u32::MAX), 0xffff);
    }

    #[test]
    fn test_add_carry() {
        assert_eq!(add(1, 2), 3);
        assert_eq!(add(u32::MAX, 1), 1);
        // 2^32 - 1 is ones'-complement zero (a multiple of 0xffff), so the
        // sum of two of them is too: it must fold to 0xffff, not to 0xfffe
        // as a dropped carry would give.
        assert_eq!(add(u32::MAX, u32::MAX), u32::MAX);
        assert_eq!(fold(add(u32::MAX, u32::MAX)), 0xffff);
    }

    #[test]
    fn test_checksum_ipv4_header() {
        // A captured IPv4 header (ICMP echo 192.168.0.1 -> 192.168.0.199),
        // checksum field 0xb861 included: verifies to 0.
        let hdr = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0xb8, 0x61, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        assert_eq!(checksum(&hdr), 0);
        let mut zeroed = hdr;
        zeroed[10] = 0;
        zeroed[11] = 0;
        assert_eq!(checksum(&zeroed), 0xb861);
    }

    #[test]
    fn test_pseudo_header_v4() {
        let s = pseudo_header_v4(0xc0a8_0001, 0x0a00_0002, 6, 40);
        assert_eq!(s, 0xc0a8 + 0x0001 + 0x0a00 + 0x0002 + 6 + 40);
        // Same as summing the 12 pseudo-header bytes of RFC 9293 §3.1.
        let bytes = [
            0xc0, 0xa8, 0x00, 0x01, 0x0a, 0x00, 0x00, 0x02, 0x00, 0x06, 0x00, 0x28,
        ];
        assert_eq!(s, sum(&bytes));
    }

    #[test]
    fn test_update_u16_rfc1624_example() {
        // RFC 1624 §4: HC = 0xdd2f, m = 0x5555 -> m' = 0x3285 gives
        // HC' = 0x0000 (eqn. 3), where eqn. 2 would have given 0xffff.
        assert_eq!(update_u16(0xdd2f, 0x5555, 0x3285), 0x0000);
    }

    #[test]
    fn test_update_u32_address() {
        let mut hdr = [
            0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8,
            0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
        ];
        let before = checksum(&hdr);
        hdr[16..20].copy_from_slice(&[10, 1, 2, 3]);
        let after_full = checksum(&hdr);
        assert_eq!(update_u32(before, 0xc0a8_00c7, 0x0a01_0203), after_full);
    }

    proptest! {
        #[test]
        fn prop_verifies_matches_fold_sum(data in proptest::collection::vec(any::<u8>(), 0..200)) {
            prop_assert_eq!(verifies(&data), fold(sum(&data)) == 0xffff);
            let mut d = data.clone();
            if d.len() >= 2 {
                d[0] = 0;
                d[1] = 0;
                let c = checksum(&d);
                d[..2].copy_from_slice(&c.to_be_bytes());
                prop_assert!(verifies(&d));
            }
        }
        #[test]
        fn prop_sum_matches_naive(data in proptest::collection::vec(any::<u8>(), 0..600)) {
            let naive = naive_sum(&data);
            prop_assert_eq!(u64::from(sum(&data)), naive);
        }

        #[test]
        fn prop_add_keeps_value(a in any::<u32>(), b in any::<u32>()) {
            let exact = u64::from(a) + u64::from(b);
            prop_assert_eq!(u64::from(add(a, b)) % 0xffff, exact % 0xffff);
        }

        #[test]
        fn prop_update_u16_equals_recompute(
            mut data in proptest::collection::vec(any::<u8>(), 2..200),
            word_idx in any::<prop::sample::Index>(),
            new in any::<u16>(),
        ) {
            // Checksum lives in bytes 0..2 (like ICMP's at 2..4, position is
            // irrelevant); rewrite some other word and compare.
            if data.len() % 2 == 1 { data.push(0); }
            data[0] = 0;
            data[1] = 0;
            let n_words = data.len() / 2;
            prop_assume!(n_words >= 2);
            let w = 1 + word_idx.index(n_words - 1);
            let stored = checksum(&data);
            let old = u16::from_be_bytes([data[2 * w], data[2 * w + 1]]);
            data[2 * w..2 * w + 2].copy_from_slice(&new.to_be_bytes());
            let full = checksum(&data);
            let incr = update_u16(stored, old, new);
            // A stored checksum is verified by summing all words including
            // it: both must verify identically, and when the data is not
            // all zero they are bit-identical.
            if data.iter().any(|&b| b != 0) {
                prop_assert_eq!(incr, full);
            }
        }

        #[test]
        fn prop_update_u32_equals_recompute(
            mut data in proptest::collection::vec(any::<u8>(), 8..200),
            new in any::<u32>(),
        ) {
            data[0] = 0;
            data[1] = 0;
            // Keep a non-zero constant word so the data is never all zero.
            data[2] = 0x45;
            let stored = checksum(&data);
            let old = u32::from_be_bytes([data[4], data[5], data[6], data[7]]);
            data[4..8].copy_from_slice(&new.to_be_bytes());
            prop_assert_eq!(update_u32(stored, old, new), checksum(&data));
        }
    }
}
