//! Stage `conn`: the connection a packet belongs to.
//!
//! Layer: dataplane pipeline, after `shard`. Looks the packet up by its
//! tuple (the hash `parse` computed); on a miss of a packet that may start
//! a flow (a bare TCP SYN, any UDP datagram, as IPVS without `sloppy_tcp`),
//! checks what creation needs (the source against the director's own
//! addresses, the L4 checksum), applies persistence or the service's
//! scheduler and inserts the connection. Every packet of a connection
//! advances its state (the IPVS TCP state table) and refreshes its timer.
//!
//! [`account`] is the one place that keeps the real servers'
//! activeconns/inactconns: creation, state changes and expiry all go
//! through it.

use crate::conn::{Conn, ConnId, ConnTable, Dir, FlowKey, InsertError, TcpState};
use crate::lport::LportPools;
use crate::persist::{TemplateFact, TemplateKey, TemplateTable};
use crate::snapshot::{ClientAddress, Method, Snapshot};
use crate::stats::{DropReason, RealStats, WorkerStats};
use crate::wire;
use crate::xmit;

use super::parse::{Parsed, L4};
use super::schedulers::SchedSet;
use super::templates::TemplateParts;
use super::validate;
use super::Ctx;

/// Moves one connection of real server `rid` between the activeconns and
/// inactconns counts: `from`/`to` are `Some(is_active)` for a counted state
/// and `None` for "not a connection" (before creation, after expiry).
/// Counts never go below zero.
#[inline]
pub fn account(reals: &mut [RealStats], rid: u32, from: Option<bool>, to: Option<bool>) {
    let Some(s) = reals.get_mut(rid as usize) else {
        return;
    };
    match from {
        Some(true) => s.active_conns = s.active_conns.saturating_sub(1),
        Some(false) => s.inactive_conns = s.inactive_conns.saturating_sub(1),
        None => {}
    }
    match to {
        Some(true) => s.active_conns += 1,
        Some(false) => s.inactive_conns += 1,
        None => {}
    }
}

/// Whether TCP `flags` are a bare SYN (no ACK, RST or FIN): the only
/// segment IPVS schedules a new connection for (without `sloppy_tcp`).
#[inline]
fn syn_only(flags: u8) -> bool {
    flags & (wire::tcp::FLAG_SYN | wire::tcp::FLAG_ACK | wire::tcp::FLAG_RST | wire::tcp::FLAG_FIN)
        == wire::tcp::FLAG_SYN
}

/// The parts of a worker the `conn` stage borrows.
pub struct ConnParts<'a> {
    /// The connection table.
    pub conns: &'a mut ConnTable,
    /// Per-real-server counters, by real-server id.
    pub reals: &'a mut Vec<RealStats>,
    /// The services' schedulers.
    pub sched: &'a mut SchedSet,
    /// Persistence templates.
    pub templates: &'a mut TemplateTable,
    /// Templates to share with the other workers.
    pub template_out: &'a mut Vec<TemplateFact>,
    /// Counters.
    pub stats: &'a mut WorkerStats,
    /// FullNAT local ports.
    pub lports: &'a mut LportPools,
    /// This worker's id.
    pub worker: u16,
    /// Workers in all.
    pub n_workers: u16,
}

impl ConnParts<'_> {
    /// The persistence parts, reborrowed.
    #[inline]
    fn templates(&mut self) -> TemplateParts<'_> {
        TemplateParts {
            table: self.templates,
            out: self.template_out,
            stats: self.stats,
            worker: self.worker,
            n_workers: self.n_workers,
        }
    }

    /// The connection of a client → VIP packet, creating it on a miss.
    ///
    /// # Errors
    /// `no_service`, `tcp_no_conn` (a TCP segment other than a bare SYN
    /// without a connection), `ipv4_martian_source`, `ipv4_rpf_fail`, the L4
    /// checksum drops,
    /// `no_real_server`, `ttl_exceeded` (NAT would route a TTL-1 packet),
    /// `conn_table_full`, `conn_key_collision`.
    #[inline]
    pub fn inbound(
        &mut self,
        ctx: &Ctx<'_>,
        frame: &[u8],
        p: &Parsed,
    ) -> Result<ConnId, DropReason> {
        let (snap, now_ms) = (ctx.snap, ctx.now_ms);
        if let Some((id, _)) = self.conns.lookup_hashed(p.hash, &p.key) {
            let new_syn = p.kind == L4::Tcp && syn_only(p.tcp_flags);
            if snap.expire_nodest_conn && self.expire_if_nodest(snap, id) {
                // The connection to a dead real server is gone: a SYN that
                // reuses its tuple is scheduled afresh (below), anything
                // else is dropped so that the client gives up on it.
                if !new_syn {
                    return Err(DropReason::ConnDestUnavailable);
                }
            } else if !(new_syn && self.expire_if_closed(id)) {
                return Ok(id);
            }
        }
        let svc = p
            .proto()
            .and_then(|proto| snap.service(p.key.dst_ip, p.key.dst_port, proto))
            .ok_or(DropReason::NoService)?;
        // IPVS schedules only on a SYN (without sloppy_tcp); anything else
        // without a connection is stray or an attack.
        if p.kind == L4::Tcp && !syn_only(p.tcp_flags) {
            return Err(DropReason::TcpNoConn);
        }
        validate::source(p, snap, ctx.in_port)?;
        validate::l4_checksum(frame, p)?;
        // The SYN's sequence number: FullNAT's client address methods key
        // on the first data byte (ISN + 1). `parse` checked the TCP header.
        let l4 = usize::from(p.l4);
        let isn1 = match (p.kind, frame.get(l4 + 4..l4 + 8)) {
            (L4::Tcp, Some(b)) => u32::from_be_bytes([b[0], b[1], b[2], b[3]]).wrapping_add(1),
            _ => 0,
        };
        self.create(snap, svc, p, isn1, now_ms)
    }

    /// Removes connection `id` (`c`, just read) and gives back its FullNAT
    /// lport.
    fn remove(&mut self, id: ConnId, c: &Conn) {
        self.conns.remove(id);
        if c.method == Method::FullNat {
            self.lports.release(c.lip, c.lport);
        }
    }

    /// `expire_nodest_conn` (IPVS `ip_vs_in`): expires connection `id` when
    /// its real server is not [`available`](crate::snapshot::RealServer::available)
    /// any more, fixing activeconns/inactconns; returns whether it did.
    #[cold]
    fn expire_if_nodest(&mut self, snap: &Snapshot, id: ConnId) -> bool {
        let Some(c) = self.conns.get(id) else {
            return false;
        };
        if snap.reals.get(c.real as usize).is_some_and(|r| r.available) {
            return false;
        }
        self.remove(id, &c);
        account(self.reals, c.real, Some(c.state.is_active()), None);
        self.stats.conns_expired_nodest += 1;
        true
    }

    /// IPVS `conn_reuse_mode` 1 (`is_new_conn_expected()` in
    /// `ip_vs_core.c`): a bare SYN that reuses the tuple of a connection in
    /// TIME_WAIT or CLOSE starts a new connection, so connection `id` is
    /// expired now and the SYN is scheduled afresh. Without this, a client
    /// that reuses a port soon after a reset (the kernel frees the port of
    /// a refused connection at once) would be sent to the old real server,
    /// even one that has since left rotation. Returns whether it expired
    /// `id` (counted as `conns_reused`).
    #[cold]
    fn expire_if_closed(&mut self, id: ConnId) -> bool {
        let Some(c) = self.conns.get(id) else {
            return false;
        };
        if !matches!(c.state, TcpState::TimeWait | TcpState::Close) {
            return false;
        }
        self.remove(id, &c);
        account(self.reals, c.real, Some(c.state.is_active()), None);
        self.stats.conns_reused += 1;
        true
    }

    /// The connection of a real server → client packet (a NAT reply) or
    /// real server → LIP packet (a FullNAT reply).
    ///
    /// # Errors
    /// `reply_no_conn` when no connection has this outbound key.
    #[inline]
    pub fn outbound(&mut self, p: &Parsed) -> Result<ConnId, DropReason> {
        match self.conns.lookup_hashed(p.hash, &p.key) {
            Some((id, Dir::Out)) => Ok(id),
            _ => Err(DropReason::ReplyNoConn),
        }
    }

    /// Schedules and inserts a new connection of service index `svc` for
    /// the flow `p`; `isn1` is a TCP SYN's sequence number plus one. A
    /// FullNAT connection books its lport here (`fullnat_no_lport` when none
    /// is free) and gives it back if the insertion fails.
    fn create(
        &mut self,
        snap: &Snapshot,
        svc: u16,
        p: &Parsed,
        isn1: u32,
        now_ms: u64,
    ) -> Result<ConnId, DropReason> {
        let service = snap
            .services
            .get(usize::from(svc))
            .ok_or(DropReason::NoService)?;
        let key: &FlowKey = &p.key;
        // Persistence (IPVS `ip_vs_sched_persist()`): a live template whose
        // real server is still in the service decides; otherwise schedule
        // and create one. The template key's vport is the service's, so a
        // port-0 service sends every port of one client to one real server.
        let tkey = service.persistence.map(|pers| TemplateKey {
            vip: service.key.vip,
            cnet: key.src_ip & pers.mask,
            vport: service.key.vport,
            proto: key.proto,
        });
        let templated = tkey.and_then(|tk| self.templates().pick(snap, service, &tk, now_ms));
        let pick = match templated {
            Some(i) => i,
            None => self.sched.pick(snap, svc, service, self.reals, key)?,
        };
        let rid = *service.reals.get(pick).ok_or(DropReason::NoRealServer)?;
        let real = snap
            .reals
            .get(rid as usize)
            .ok_or(DropReason::NoRealServer)?;
        // NAT, TUN and FullNAT route, so the TTL would reach 0: no
        // connection for it.
        xmit::may_forward(real.method, p.ttl)?;
        let (lip, lport) = if real.method == Method::FullNat {
            self.lports
                .book(&service.local_addresses)
                .ok_or(DropReason::FullnatNoLport)?
        } else {
            (0, 0)
        };
        if let (Some(tk), Some(pers), None) = (tkey, service.persistence, templated) {
            self.templates().create(tk, real, pers.timeout_ms, now_ms);
        }
        let state = if key.proto == wire::PROTO_TCP {
            TcpState::None
        } else {
            TcpState::Udp
        };
        let conn = Conn {
            cip: key.src_ip,
            cport: key.src_port,
            vip: key.dst_ip,
            vport: key.dst_port,
            rip: real.ip,
            // A port-0 service keeps the client's destination port.
            rport: if real.port == 0 {
                key.dst_port
            } else {
                real.port
            },
            proto: key.proto,
            method: real.method,
            real: rid,
            service: svc,
            state,
            lip,
            lport,
            client_address: match real.method {
                Method::FullNat if key.proto == wire::PROTO_TCP => service.client_address,
                _ => ClientAddress::None,
            },
            isn1: if real.method == Method::FullNat {
                isn1
            } else {
                0
            },
        };
        let timeout = state.timeout_ms(&snap.timeouts);
        let id = match self.conns.insert(conn, timeout, now_ms) {
            Ok(id) => id,
            Err(e) => {
                if real.method == Method::FullNat {
                    self.lports.release(lip, lport);
                }
                return Err(match e {
                    InsertError::TableFull => DropReason::ConnTableFull,
                    InsertError::Exists => DropReason::ConnKeyCollision,
                });
            }
        };
        self.stats.conns_created += 1;
        if let Some(s) = self.reals.get_mut(rid as usize) {
            s.conns += 1;
        }
        account(self.reals, rid, None, Some(state.is_active()));
        Ok(id)
    }

    /// Moves connection `id` to its next state for a packet with TCP
    /// `flags` and IPv4 `ttl` travelling `dir`, and refreshes its timer;
    /// returns the connection as it now is.
    ///
    /// # Errors
    /// `ttl_exceeded` when the connection's forwarding method may not send
    /// the packet on ([`xmit::may_forward`]; the state is left as it was);
    /// `reply_no_conn` for a free id (never after a lookup in this burst).
    #[inline]
    pub fn advance(
        &mut self,
        snap: &Snapshot,
        id: ConnId,
        p: &Parsed,
        dir: Dir,
        now_ms: u64,
    ) -> Result<Conn, DropReason> {
        let c = self.conns.get(id).ok_or(DropReason::ReplyNoConn)?;
        xmit::may_forward(c.method, p.ttl)?;
        let old = c.state;
        let new = if c.proto == wire::PROTO_TCP {
            // DR and TUN replies bypass the director (IPVS sets
            // IP_VS_CONN_F_NOOUTPUT for every method but masquerading).
            old.next(
                p.tcp_flags,
                dir,
                matches!(c.method, Method::Dr | Method::Tun),
            )
        } else {
            old
        };
        let conn = if new == old {
            c
        } else {
            self.conns
                .set_state(id, new)
                .ok_or(DropReason::ReplyNoConn)?
        };
        if old.is_active() != new.is_active() {
            account(
                self.reals,
                conn.real,
                Some(old.is_active()),
                Some(new.is_active()),
            );
        }
        self.conns.touch(id, new.timeout_ms(&snap.timeouts), now_ms);
        Ok(conn)
    }
}
