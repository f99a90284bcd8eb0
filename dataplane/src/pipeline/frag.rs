//! Stage `frag`: IPv4 fragments of balanced flows, without reassembly.
//!
//! Layer: dataplane pipeline, after `validate`, for fragments only (an
//! unfragmented packet never enters this file; its only cost is the
//! `Parsed::fragment` test the pipeline made anyway). The constraint
//! (fulcrum issue 11): every fragment of one datagram reaches the flow's
//! owner worker and the same real server. How (docs/architecture.md,
//! "Fragments"):
//!
//! 1. [`check`]: malformed fragments are `frag_bad` (RFC 791 §3.2 sizes,
//!    RFC 1858 §3.2 tiny/overlapping TCP fragments, RFC 8900 §3.7).
//! 2. Every fragment goes first to the datagram's home worker
//!    ([`crate::frag::home`] of source, destination, protocol and IP
//!    identification: computable from any fragment).
//! 3. At home, the first fragment (offset 0: it carries the ports) names
//!    the flow's owner ([`crate::owner::owner`] of the client address and
//!    port). If home is the owner it is balanced here through the normal
//!    stages; otherwise home remembers "owner O" and moves it to O, where
//!    it is balanced. The worker that balanced it remembers the rewrite it
//!    got (`Core::frag_record`).
//! 4. A later fragment at home is moved to O, or rewritten from the table
//!    when home is the owner ([`apply`]); at O it is rewritten from O's
//!    table. One ring carries home → O in order, so O has the first
//!    fragment's decision before any later fragment arrives.
//!
//! Refuses: a non-first fragment whose first fragment was not seen (or was
//! dropped, or came more than `FRAG_TIMEOUT_MS` earlier) as `frag_no_first`
//! (there is no hold queue: a fragment that overtakes its first fragment is
//! lost, and the sender's transport repeats the datagram); a first
//! fragment whose decision finds no slot as `frag_table_full`; fragments to
//! the director itself (no reassembly) as `ipv4_fragment`.

use crate::conn::Dir;
use crate::frag::{self, FragAction, FragKey, Rewrite, FRAG_TIMEOUT_MS};
use crate::owner::owner;
use crate::snapshot::LocalKind;
use crate::stats::DropReason;
use crate::wire::{Ipv4Packet, PROTO_TCP, PROTO_UDP};

use super::parse::Parsed;
use super::{Core, Ctx, Verdict};

/// Largest IPv4 datagram, in bytes (RFC 791 §3.1, total length is 16 bits).
const MAX_DATAGRAM: usize = 65535;

/// Checks the fragment `ip` (the IPv4 datagram from its first header byte
/// to `total_len`, already past `check_len`) of parsed packet `p`: its data
/// must end within a 65535-byte datagram; a fragment with MF set must carry
/// a non-zero multiple of 8 bytes (RFC 791 §3.2: offsets count 8-byte
/// units, so only the last fragment may be ragged); a TCP fragment may not
/// have offset 1 (RFC 1858 §3.2: it would rewrite the TCP flags of the
/// first one). A first fragment too short for its TCP/UDP header was
/// already refused by `parse` with the same reason.
///
/// # Errors
/// `frag_bad`.
#[inline]
pub fn check<T: AsRef<[u8]>>(ip: &Ipv4Packet<T>, p: &Parsed) -> Result<(), DropReason> {
    let data = usize::from(ip.total_len()).saturating_sub(ip.header_len());
    let offset = usize::from(ip.frag_offset()) * 8;
    if offset + data > MAX_DATAGRAM
        || (ip.more_frags() && (data == 0 || data % 8 != 0))
        || (p.key.proto == PROTO_TCP && ip.frag_offset() == 1)
    {
        return Err(DropReason::FragBad);
    }
    Ok(())
}

/// Rewrites the non-first fragment `frame` (parsed as `p`) as its first
/// fragment was, per `rw`: TTL, addresses (each with the incremental IPv4
/// header checksum update, RFC 1624), then the L2 header.
///
/// # Errors
/// `frag_bad` if the fragment's L2 header has another length than the
/// first fragment's (another VLAN encapsulation), `ttl_exceeded` if the
/// method routes (`ttl_dec > 0`) and the TTL would reach 0 (RFC 1812
/// §5.3.1).
#[inline]
pub fn apply(frame: &mut [u8], p: &Parsed, rw: &Rewrite) -> Result<Verdict, DropReason> {
    let l3 = usize::from(p.l3);
    if usize::from(rw.l2_len) != l3 || l3 > rw.l2.len() {
        return Err(DropReason::FragBad);
    }
    let (l2, rest) = frame.split_at_mut(l3.min(frame.len()));
    let ip_len = usize::from(p.ip_end) - l3;
    let Some(ipb) = rest.get_mut(..ip_len) else {
        return Err(DropReason::FragBad);
    };
    let mut ip = Ipv4Packet::new_unchecked(ipb);
    if rw.ttl_dec > 0 {
        let ttl = ip.ttl();
        if ttl <= rw.ttl_dec {
            return Err(DropReason::TtlExceeded);
        }
        ip.rewrite_ttl(ttl - rw.ttl_dec);
    }
    if ip.src_addr() != rw.src {
        ip.rewrite_src_addr(rw.src);
    }
    if ip.dst_addr() != rw.dst {
        ip.rewrite_dst_addr(rw.dst);
    }
    l2.copy_from_slice(&rw.l2[..l3]);
    Ok(Verdict::Tx(rw.port))
}

/// The datagram key of fragment `frame` parsed as `p`.
#[inline]
fn key_of(frame: &[u8], p: &Parsed) -> FragKey {
    let l3 = usize::from(p.l3);
    let id = frame
        .get(l3 + 4..l3 + 6)
        .map_or(0, |b| u16::from_be_bytes([b[0], b[1]]));
    FragKey {
        src: p.key.src_ip,
        dst: p.key.dst_ip,
        id,
        proto: p.key.proto,
    }
}

impl Core {
    /// Steers the fragment `frame` (parsed as `p`, `p.fragment` set, past
    /// `validate`) to where its datagram is handled; see the module
    /// documentation. `Ok(None)`: a first fragment this worker balances
    /// itself through the normal stages (then [`Core::frag_record`]).
    ///
    /// # Errors
    /// `ipv4_fragment` (to a director address other than a VIP's TCP/UDP),
    /// `vrrp_backup`, `not_for_us` (neither to a VIP nor from a NAT real
    /// server), `frag_no_first`, `frag_table_full`, and those of [`apply`].
    pub(super) fn fragment(
        &mut self,
        ctx: &Ctx<'_>,
        frame: &mut [u8],
        p: &Parsed,
    ) -> Result<Option<Verdict>, DropReason> {
        let balanced = p.key.proto == PROTO_TCP || p.key.proto == PROTO_UDP;
        // Parse read the ports of a first fragment only.
        let first = p.has_ports();
        let dir = match self.local_index.get(p.key.dst_ip) {
            Some(LocalKind::Vip) if balanced => Dir::In,
            Some(LocalKind::Standby) => return Err(DropReason::VrrpBackup),
            // A reply: to a client through NAT, or to a LIP (FullNAT).
            Some(LocalKind::Lip) | None if balanced => {
                let from_real = if first {
                    self.may_be_reply(p.key.src_ip, p.key.src_port)
                } else {
                    self.nat_real_ips.contains(&p.key.src_ip)
                };
                if !from_real {
                    return Err(DropReason::NotForUs);
                }
                Dir::Out
            }
            Some(_) => return Err(DropReason::Ipv4Fragment),
            None => return Err(DropReason::NotForUs),
        };
        let key = key_of(frame, p);
        let now_ms = ctx.now_ms;
        let home = frag::home(&key, self.n_workers);
        if self.id != home {
            if !ctx.redirected {
                self.stats.redirects_out += 1;
                return Ok(Some(Verdict::Redirect(home)));
            }
            // Moved here by the home worker: this worker owns the flow.
            if first {
                return self.balance_here(&key, now_ms);
            }
            return match self.frags.lookup(&key, now_ms) {
                Some(FragAction::Forward(rw)) => self.frag_forward(frame, p, &rw),
                _ => Err(DropReason::FragNoFirst),
            };
        }
        if first {
            let (cip, cport) = match dir {
                Dir::In => (p.key.src_ip, p.key.src_port),
                Dir::Out => (p.key.dst_ip, p.key.dst_port),
            };
            let o = owner(cip, cport, self.n_workers);
            if o == self.id {
                return self.balance_here(&key, now_ms);
            }
            self.frags
                .insert(key, FragAction::Owner(o), now_ms, FRAG_TIMEOUT_MS)
                .map_err(|_| DropReason::FragTableFull)?;
            self.stats.redirects_out += 1;
            return Ok(Some(Verdict::Redirect(o)));
        }
        match self.frags.lookup(&key, now_ms) {
            Some(FragAction::Owner(o)) => {
                self.stats.redirects_out += 1;
                Ok(Some(Verdict::Redirect(o)))
            }
            Some(FragAction::Forward(rw)) => self.frag_forward(frame, p, &rw),
            None => Err(DropReason::FragNoFirst),
        }
    }

    /// A first fragment this worker balances: refused before any state
    /// changes if its decision would find no slot.
    #[inline]
    fn balance_here(&self, key: &FragKey, now_ms: u64) -> Result<Option<Verdict>, DropReason> {
        if !self.frags.can_insert(key, now_ms) {
            return Err(DropReason::FragTableFull);
        }
        Ok(None)
    }

    #[inline]
    fn frag_forward(
        &mut self,
        frame: &mut [u8],
        p: &Parsed,
        rw: &Rewrite,
    ) -> Result<Option<Verdict>, DropReason> {
        let v = apply(frame, p, rw)?;
        self.stats.frags_forwarded += 1;
        Ok(Some(v))
    }

    /// After the first fragment `frame` (parsed as `p` before its rewrite)
    /// was balanced to verdict `v`, remembers the rewrite it got for the
    /// datagram's later fragments: the output port, its L2 header as it
    /// leaves, its addresses and how much its TTL went down. Returns `v`.
    ///
    /// # Errors
    /// `frag_table_full`: no slot for the decision; the first fragment is
    /// dropped too, since the rest could not follow it.
    pub(super) fn frag_record(
        &mut self,
        frame: &[u8],
        p: &Parsed,
        v: Verdict,
        now_ms: u64,
    ) -> Result<Verdict, DropReason> {
        let Verdict::Tx(port) = v else {
            return Ok(v);
        };
        let l3 = usize::from(p.l3);
        let mut l2 = [0u8; 18];
        let (Some(hdr), Some(ipb)) = (frame.get(..l3), frame.get(l3..usize::from(p.ip_end))) else {
            return Err(DropReason::FragBad);
        };
        let Some(dst) = l2.get_mut(..l3) else {
            return Err(DropReason::FragBad);
        };
        dst.copy_from_slice(hdr);
        let ip = Ipv4Packet::new_unchecked(ipb);
        let rw = Rewrite {
            port,
            l2_len: l3 as u8,
            l2,
            src: ip.src_addr(),
            dst: ip.dst_addr(),
            ttl_dec: p.ttl.saturating_sub(ip.ttl()),
        };
        // Keyed by the datagram as it arrived: what its later fragments carry.
        let key = key_of(frame, p);
        self.frags
            .insert(key, FragAction::Forward(rw), now_ms, FRAG_TIMEOUT_MS)
            .map_err(|_| DropReason::FragTableFull)?;
        self.stats.frags_first += 1;
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conn::ConnTable;
    use crate::pipeline::parse::parse;
    use crate::snapshot::PortConf;
    use etherparse::{IpNumber, Ipv4Header, PacketBuilder};

    const MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
    const PEER: [u8; 6] = [2, 0, 0, 0, 0, 2];

    fn port() -> PortConf {
        PortConf {
            mac: MAC,
            ..PortConf::default()
        }
    }

    /// An Ethernet frame holding `data` as the fragment at byte offset
    /// `off` of a datagram of protocol `proto`, MF as given (etherparse
    /// computes the header checksum).
    fn frag(proto: u8, off: u16, mf: bool, data: &[u8]) -> Vec<u8> {
        let mut h = Ipv4Header::new(
            data.len() as u16,
            64,
            IpNumber(proto),
            [10, 0, 0, 2],
            [10, 0, 0, 100],
        )
        .unwrap();
        h.identification = 0x1234;
        h.more_fragments = mf;
        h.fragment_offset = etherparse::IpFragOffset::try_new(off / 8).unwrap();
        h.header_checksum = h.calc_header_checksum();
        let mut f = Vec::new();
        etherparse::Ethernet2Header {
            source: PEER,
            destination: MAC,
            ether_type: etherparse::EtherType::IPV4,
        }
        .write(&mut f)
        .unwrap();
        h.write(&mut f).unwrap();
        f.extend_from_slice(data);
        f
    }

    fn checked(f: &[u8]) -> Result<(), DropReason> {
        let t = ConnTable::new(4);
        let p = parse(f, &port(), &t)?;
        let ip = Ipv4Packet::new_unchecked(&f[usize::from(p.l3)..usize::from(p.ip_end)]);
        check(&ip, &p)
    }

    #[test]
    fn test_check_sizes() {
        assert_eq!(checked(&frag(17, 8, true, &[0; 16])), Ok(()));
        assert_eq!(
            checked(&frag(17, 8, false, &[0; 5])),
            Ok(()),
            "last may be ragged"
        );
        assert_eq!(
            checked(&frag(17, 8, true, &[0; 12])),
            Err(DropReason::FragBad)
        );
        assert_eq!(checked(&frag(17, 8, true, &[])), Err(DropReason::FragBad));
        assert_eq!(checked(&frag(17, 65528, false, &[0; 7])), Ok(()));
        assert_eq!(
            checked(&frag(17, 65528, false, &[0; 8])),
            Err(DropReason::FragBad)
        );
        assert_eq!(
            checked(&frag(6, 8, true, &[0; 8])),
            Err(DropReason::FragBad),
            "RFC 1858"
        );
        assert_eq!(checked(&frag(6, 16, true, &[0; 8])), Ok(()));
    }

    #[test]
    fn test_first_fragment_ports_and_short_first() {
        let mut full = Vec::new();
        PacketBuilder::ipv4([10, 0, 0, 2], [10, 0, 0, 100], 64)
            .udp(40000, 53)
            .write(&mut full, &[7; 100])
            .unwrap();
        let l4 = &full[20..];
        let t = ConnTable::new(4);
        let p = parse(&frag(17, 0, true, &l4[..32]), &port(), &t).unwrap();
        assert!(p.fragment && p.has_ports());
        assert_eq!((p.key.src_port, p.key.dst_port), (40000, 53));
        let p = parse(&frag(17, 32, false, &l4[32..]), &port(), &t).unwrap();
        assert!(p.fragment && !p.has_ports());
        // 8 bytes hold the UDP ports; a TCP header needs 20.
        assert!(parse(&frag(17, 0, true, &l4[..8]), &port(), &t).is_ok());
        assert_eq!(
            parse(&frag(6, 0, true, &[0x50; 16]), &port(), &t),
            Err(DropReason::FragBad)
        );
    }

    #[test]
    fn test_apply_rewrites_like_the_first() {
        let mut f = frag(17, 1480, false, &[9; 40]);
        let t = ConnTable::new(4);
        let p = parse(&f, &port(), &t).unwrap();
        let rw = Rewrite {
            port: 1,
            l2_len: 14,
            l2: [0xaa; 18],
            src: 0x0a00_0002,
            dst: 0x0a01_000b,
            ttl_dec: 1,
        };
        assert_eq!(apply(&mut f, &p, &rw), Ok(Verdict::Tx(1)));
        let (h, rest) = Ipv4Header::from_slice(&f[14..]).unwrap();
        assert_eq!(h.destination, [10, 1, 0, 11]);
        assert_eq!(h.time_to_live, 63);
        assert_eq!(h.header_checksum, h.calc_header_checksum());
        assert_eq!(rest, &[9; 40][..]);
        assert_eq!(&f[..14], &[0xaa; 14]);
        let mut f = frag(17, 1480, false, &[9; 40]);
        f[14 + 8] = 1;
        let p = parse(&f, &port(), &t).unwrap();
        assert_eq!(apply(&mut f, &p, &rw), Err(DropReason::TtlExceeded));
        let rw18 = Rewrite { l2_len: 18, ..rw };
        assert_eq!(apply(&mut f, &p, &rw18), Err(DropReason::FragBad));
    }
}
