//! The IPVS TCP connection state machine, plus a marker state for UDP.
//!
//! Layer: dataplane, connection table. This is what `ipvsadm -Lc` shows in
//! its "state" column and what decides a connection's timeout and whether it
//! counts as an active or an inactive connection of its real server.
//!
//! Guarantees: [`TcpState::next`] is a pure table lookup that accepts any
//! flags byte (it never panics and never allocates); the transitions are the
//! ones of the default (non-`secure_tcp`) tables in Linux
//! `net/netfilter/ipvs/ip_vs_proto_tcp.c` as of v6.x, written here in our own
//! layout (one row per current state instead of one row per TCP flag).
//!
//! Refuses: it does not validate sequence numbers, windows or anything else
//! a real TCP stack would — IPVS does not either; a director only watches
//! flags. The `secure_tcp` ("tcp_states_dos") tables are not implemented.

use super::Dir;
use crate::snapshot::Timeouts;

/// TCP header flag FIN (RFC 9293 §3.1), bit 0 of the flags byte.
const FIN: u8 = 0x01;
/// TCP header flag SYN (RFC 9293 §3.1), bit 1 of the flags byte.
const SYN: u8 = 0x02;
/// TCP header flag RST (RFC 9293 §3.1), bit 2 of the flags byte.
const RST: u8 = 0x04;
/// TCP header flag ACK (RFC 9293 §3.1), bit 4 of the flags byte.
const ACK: u8 = 0x10;

/// Timeout of [`TcpState::None`] in milliseconds: IPVS's `tcp_timeouts`
/// gives `IP_VS_TCP_S_NONE` 2 s. [`Timeouts`] has no field for it (nobody
/// tunes it), so it is a constant here.
pub const TCP_NONE_TIMEOUT_MS: u32 = 2_000;

/// IPVS TCP states (`IP_VS_TCP_S_*` in `include/uapi/linux/ip_vs.h`, same
/// order and discriminants), plus [`TcpState::Udp`] for UDP connections.
///
/// A new TCP connection is created in [`TcpState::None`] and the packet that
/// created it (the client's SYN) is then fed to [`TcpState::next`], which
/// moves it to [`TcpState::SynRecv`], as `ip_vs_conn_new` followed by
/// `ip_vs_set_state` does in IPVS. UDP connections are created in
/// [`TcpState::Udp`] and stay there (IPVS's single `IP_VS_UDP_S_NORMAL`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum TcpState {
    /// `sNO`: no segment seen yet.
    None = 0,
    /// `sES`: three-way handshake completed.
    Established = 1,
    /// `sSS`: SYN seen from the real server side first.
    SynSent = 2,
    /// `sSR`: client SYN seen, handshake not completed.
    SynRecv = 3,
    /// `sFW`: a FIN was seen (from the real server, or any FIN in input-only
    /// mode).
    FinWait = 4,
    /// `sTW`: both sides sent FIN.
    TimeWait = 5,
    /// `sCL`: reset, or closed without a handshake.
    Close = 6,
    /// `sCW`: the client sent FIN first (seen through the director).
    CloseWait = 7,
    /// `sLA`: last ACK awaited.
    LastAck = 8,
    /// `sLI`: listen (used by IPVS for FTP data connections).
    Listen = 9,
    /// `sSA`: SYN-ACK (only reachable through the `secure_tcp` tables).
    SynAck = 10,
    /// Not TCP: the single state of a UDP connection (`ipvsadm -Lc` prints
    /// "UDP").
    Udp = 11,
}

// Short names for the transition tables below, following IPVS's own
// abbreviations so a reader can compare cell by cell with the kernel source.
const NO: TcpState = TcpState::None;
const ES: TcpState = TcpState::Established;
const SS: TcpState = TcpState::SynSent;
const SR: TcpState = TcpState::SynRecv;
const FW: TcpState = TcpState::FinWait;
const TW: TcpState = TcpState::TimeWait;
const CL: TcpState = TcpState::Close;
const CW: TcpState = TcpState::CloseWait;
const LA: TcpState = TcpState::LastAck;
const LI: TcpState = TcpState::Listen;
const SA: TcpState = TcpState::SynAck;

/// Number of real TCP states (`IP_VS_TCP_S_LAST`); [`TcpState::Udp`] is
/// outside the tables.
const N_TCP_STATES: usize = 11;

/// Event column of a transition row: which flag decided the transition.
/// Order of the columns in [`Row`].
const EV_SYN: usize = 0;
const EV_FIN: usize = 1;
const EV_ACK: usize = 2;
const EV_RST: usize = 3;

/// Successor states for one current state: `[on SYN, on FIN, on ACK, on RST]`.
type Row = [TcpState; 4];

/// Packets from the client towards the real server (`TCP_DIR_INPUT`), used
/// when the director also sees the replies (NAT). Indexed by current state.
///
/// Transposed from `tcp_states[]` (INPUT block) in
/// `net/netfilter/ipvs/ip_vs_proto_tcp.c` (Linux v6.x).
#[rustfmt::skip]
const INPUT: [Row; N_TCP_STATES] = [
    //     SYN  FIN  ACK  RST
    /*NO*/ [SR, CL, ES, CL],
    /*ES*/ [ES, CW, ES, CL],
    /*SS*/ [ES, SS, SS, CL],
    /*SR*/ [SR, TW, ES, SR],
    /*FW*/ [SR, TW, FW, CL],
    /*TW*/ [SR, TW, TW, CL],
    /*CL*/ [SR, CL, CL, CL],
    /*CW*/ [SR, CW, CW, CL],
    /*LA*/ [SR, LA, CL, LA],
    /*LI*/ [SR, LI, LI, LI],
    /*SA*/ [SR, TW, ES, SR],
];

/// Packets from the real server back to the client (`TCP_DIR_OUTPUT`),
/// only seen in NAT. Indexed by current state.
///
/// Transposed from `tcp_states[]` (OUTPUT block) in
/// `net/netfilter/ipvs/ip_vs_proto_tcp.c` (Linux v6.x).
#[rustfmt::skip]
const OUTPUT: [Row; N_TCP_STATES] = [
    //     SYN  FIN  ACK  RST
    /*NO*/ [SS, TW, ES, CL],
    /*ES*/ [ES, FW, ES, CL],
    /*SS*/ [SS, SS, SS, SS],
    /*SR*/ [SR, TW, ES, CL],
    /*FW*/ [SS, FW, FW, CL],
    /*TW*/ [SS, TW, TW, TW],
    /*CL*/ [SS, CL, CL, CL],
    /*CW*/ [SS, TW, CW, CL],
    /*LA*/ [SS, LA, LA, CL],
    /*LI*/ [LI, LI, ES, CL],
    /*SA*/ [SR, TW, ES, CL],
];

/// Packets from the client when the replies bypass the director
/// (`TCP_DIR_INPUT_ONLY`, IPVS's `IP_VS_CONN_F_NOOUTPUT`: DR and TUN). A
/// client FIN here means FIN_WAIT, not CLOSE_WAIT, because the director never
/// learns whether the real server has closed too. Indexed by current state.
///
/// Transposed from `tcp_states[]` (INPUT-ONLY block) in
/// `net/netfilter/ipvs/ip_vs_proto_tcp.c` (Linux v6.x).
#[rustfmt::skip]
const INPUT_ONLY: [Row; N_TCP_STATES] = [
    //     SYN  FIN  ACK  RST
    /*NO*/ [SR, CL, ES, CL],
    /*ES*/ [ES, FW, ES, CL],
    /*SS*/ [ES, SS, SS, CL],
    /*SR*/ [SR, TW, ES, SR],
    /*FW*/ [SR, FW, FW, CL],
    /*TW*/ [SR, TW, TW, CL],
    /*CL*/ [SR, CL, CL, CL],
    /*CW*/ [SR, CW, CW, CL],
    /*LA*/ [SR, LA, CL, LA],
    /*LI*/ [SR, LI, LI, LI],
    /*SA*/ [SR, TW, ES, CL],
];

/// Which table column a segment selects, with IPVS's precedence
/// (`tcp_state_idx`): RST, then SYN, then FIN, then ACK. `None` when none of
/// the four flags is set.
fn event(flags: u8) -> Option<usize> {
    if flags & RST != 0 {
        Some(EV_RST)
    } else if flags & SYN != 0 {
        Some(EV_SYN)
    } else if flags & FIN != 0 {
        Some(EV_FIN)
    } else if flags & ACK != 0 {
        Some(EV_ACK)
    } else {
        None
    }
}

impl TcpState {
    /// Every state, in discriminant order (for tests and for tools that
    /// print per-state counts).
    pub const ALL: [TcpState; 12] = [NO, ES, SS, SR, FW, TW, CL, CW, LA, LI, SA, TcpState::Udp];

    /// The state after one TCP segment, as IPVS's `set_tcp_state` computes it.
    ///
    /// - `flags`: the raw TCP flags byte (byte 13 of the TCP header: CWR ECE
    ///   URG ACK PSH RST SYN FIN, FIN in bit 0). Only RST, SYN, FIN and ACK
    ///   matter, with IPVS's precedence RST > SYN > FIN > ACK; a segment with
    ///   none of them leaves the state unchanged. (Here we deliberately differ
    ///   from the kernel, whose `set_tcp_state` falls through to CLOSE for such
    ///   a segment: a spoofed flagless segment must not be able to shorten a
    ///   live connection's timeout to 10 s.)
    /// - `dir`: [`Dir::In`] for client → real server as the director sees it,
    ///   [`Dir::Out`] for real server → client (NAT replies only).
    /// - `input_only`: `true` when the replies never pass the director (DR,
    ///   TUN);
    ///   IPVS then uses its INPUT-ONLY table for [`Dir::In`]. A [`Dir::Out`]
    ///   segment always uses the OUTPUT table (IPVS clears
    ///   `IP_VS_CONN_F_NOOUTPUT` as soon as it sees one).
    ///
    /// [`TcpState::Udp`] is returned unchanged whatever the arguments: UDP
    /// has no flags.
    ///
    /// Source: `tcp_state_idx` and `set_tcp_state` in
    /// `net/netfilter/ipvs/ip_vs_proto_tcp.c`.
    pub fn next(self, flags: u8, dir: Dir, input_only: bool) -> TcpState {
        let table = match (dir, input_only) {
            (Dir::Out, _) => &OUTPUT,
            (Dir::In, false) => &INPUT,
            (Dir::In, true) => &INPUT_ONLY,
        };
        match (event(flags), table.get(self as usize)) {
            (Some(ev), Some(row)) => row[ev],
            // No decisive flag, or Udp (outside the tables): unchanged.
            _ => self,
        }
    }

    /// This state's idle timeout in milliseconds, read from the snapshot's
    /// [`Timeouts`] (IPVS `tcp_timeouts[]` / `udp_timeouts[]` defaults:
    /// ESTABLISHED 900 s, SYN_SENT 120 s, SYN_RECV 60 s, FIN_WAIT 120 s,
    /// TIME_WAIT 120 s, CLOSE 10 s, CLOSE_WAIT 60 s, LAST_ACK 30 s, LISTEN
    /// 120 s, SYNACK 120 s, UDP 300 s). [`TcpState::None`] has no field in
    /// [`Timeouts`] and uses [`TCP_NONE_TIMEOUT_MS`] (2 s, as IPVS).
    pub fn timeout_ms(self, t: &Timeouts) -> u32 {
        match self {
            TcpState::None => TCP_NONE_TIMEOUT_MS,
            TcpState::Established => t.tcp_established_ms,
            TcpState::SynSent => t.tcp_syn_sent_ms,
            TcpState::SynRecv => t.tcp_syn_recv_ms,
            TcpState::FinWait => t.tcp_fin_wait_ms,
            TcpState::TimeWait => t.tcp_time_wait_ms,
            TcpState::Close => t.tcp_close_ms,
            TcpState::CloseWait => t.tcp_close_wait_ms,
            TcpState::LastAck => t.tcp_last_ack_ms,
            TcpState::Listen => t.tcp_listen_ms,
            TcpState::SynAck => t.tcp_synack_ms,
            TcpState::Udp => t.udp_ms,
        }
    }

    /// Whether the connection counts in its real server's activeconns
    /// (`true`) or inactconns (`false`): only [`TcpState::Established`] is
    /// active; every other state, and UDP, is inactive. This is the
    /// `IP_VS_CONN_F_INACTIVE` rule of `set_tcp_state` before Linux 4.x;
    /// newer kernels (`tcp_state_active_table`) also count SYN_SENT,
    /// SYN_RECV and SYNACK as active.
    pub fn is_active(self) -> bool {
        self == TcpState::Established
    }

    /// The state's name as `ipvsadm -Lc` prints it: "NONE", "ESTABLISHED",
    /// "SYN_SENT", "SYN_RECV", "FIN_WAIT", "TIME_WAIT", "CLOSE",
    /// "CLOSE_WAIT", "LAST_ACK", "LISTEN", "SYNACK", and "UDP" for UDP
    /// (`tcp_state_name_table` / `udp_state_name_table`).
    pub fn name(self) -> &'static str {
        match self {
            TcpState::None => "NONE",
            TcpState::Established => "ESTABLISHED",
            TcpState::SynSent => "SYN_SENT",
            TcpState::SynRecv => "SYN_RECV",
            TcpState::FinWait => "FIN_WAIT",
            TcpState::TimeWait => "TIME_WAIT",
            TcpState::Close => "CLOSE",
            TcpState::CloseWait => "CLOSE_WAIT",
            TcpState::LastAck => "LAST_ACK",
            TcpState::Listen => "LISTEN",
            TcpState::SynAck => "SYNACK",
            TcpState::Udp => "UDP",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const F_SYN: u8 = SYN;
    const F_SYNACK: u8 = SYN | ACK;
    const F_ACK: u8 = ACK;
    const F_FINACK: u8 = FIN | ACK;
    const F_RST: u8 = RST;
    const F_PSHACK: u8 = 0x08 | ACK;

    /// Feeds `(flags, dir)` segments from `TcpState::None` and checks the
    /// state after each one.
    fn run(input_only: bool, steps: &[(u8, Dir, TcpState)]) {
        let mut s = TcpState::None;
        for (i, &(flags, dir, want)) in steps.iter().enumerate() {
            s = s.next(flags, dir, input_only);
            assert_eq!(s, want, "step {i}: flags {flags:#04x} {dir:?}");
        }
    }

    #[test]
    fn test_nat_client_closes_first() {
        run(
            false,
            &[
                (F_SYN, Dir::In, TcpState::SynRecv),
                (F_SYNACK, Dir::Out, TcpState::SynRecv),
                (F_ACK, Dir::In, TcpState::Established),
                (F_PSHACK, Dir::In, TcpState::Established),
                (F_PSHACK, Dir::Out, TcpState::Established),
                (F_FINACK, Dir::In, TcpState::CloseWait),
                (F_ACK, Dir::Out, TcpState::CloseWait),
                (F_FINACK, Dir::Out, TcpState::TimeWait),
                (F_ACK, Dir::In, TcpState::TimeWait),
            ],
        );
    }

    #[test]
    fn test_nat_server_closes_first() {
        run(
            false,
            &[
                (F_SYN, Dir::In, TcpState::SynRecv),
                (F_SYNACK, Dir::Out, TcpState::SynRecv),
                (F_ACK, Dir::In, TcpState::Established),
                (F_FINACK, Dir::Out, TcpState::FinWait),
                (F_ACK, Dir::In, TcpState::FinWait),
                (F_FINACK, Dir::In, TcpState::TimeWait),
                (F_ACK, Dir::Out, TcpState::TimeWait),
                // A late RST from the client in TIME_WAIT closes it.
                (F_RST, Dir::In, TcpState::Close),
            ],
        );
    }

    #[test]
    fn test_nat_reset() {
        run(
            false,
            &[
                (F_SYN, Dir::In, TcpState::SynRecv),
                (F_SYNACK, Dir::Out, TcpState::SynRecv),
                (F_ACK, Dir::In, TcpState::Established),
                (F_RST | ACK, Dir::Out, TcpState::Close),
                // A new SYN on the same tuple reopens it (port reuse).
                (F_SYN, Dir::In, TcpState::SynRecv),
            ],
        );
        // Real server refuses: RST in SYN_RECV seen from the output side.
        run(
            false,
            &[
                (F_SYN, Dir::In, TcpState::SynRecv),
                (F_RST | ACK, Dir::Out, TcpState::Close),
            ],
        );
        // IPVS quirk kept: a client RST in SYN_RECV stays SYN_RECV.
        run(
            false,
            &[
                (F_SYN, Dir::In, TcpState::SynRecv),
                (F_RST, Dir::In, TcpState::SynRecv),
            ],
        );
    }

    #[test]
    fn test_input_only_sequence() {
        run(
            true,
            &[
                (F_SYN, Dir::In, TcpState::SynRecv),
                (F_ACK, Dir::In, TcpState::Established),
                (F_PSHACK, Dir::In, TcpState::Established),
                (F_FINACK, Dir::In, TcpState::FinWait),
                (F_ACK, Dir::In, TcpState::FinWait),
                (F_RST, Dir::In, TcpState::Close),
            ],
        );
        // Client FIN after the handshake, then its last ACK of the server FIN.
        run(
            true,
            &[
                (F_SYN, Dir::In, TcpState::SynRecv),
                (F_FINACK, Dir::In, TcpState::TimeWait),
                (F_ACK, Dir::In, TcpState::TimeWait),
            ],
        );
    }

    #[test]
    fn test_input_only_differs_from_input() {
        // The one place the two input tables differ on the common path: a
        // client FIN in ESTABLISHED.
        assert_eq!(ES.next(F_FINACK, Dir::In, false), TcpState::CloseWait);
        assert_eq!(ES.next(F_FINACK, Dir::In, true), TcpState::FinWait);
        // FIN in FIN_WAIT: INPUT goes to TIME_WAIT, INPUT-ONLY stays.
        assert_eq!(FW.next(FIN, Dir::In, false), TcpState::TimeWait);
        assert_eq!(FW.next(FIN, Dir::In, true), TcpState::FinWait);
        // RST in SYNACK: INPUT keeps SYN_RECV, INPUT-ONLY closes.
        assert_eq!(SA.next(F_RST, Dir::In, false), TcpState::SynRecv);
        assert_eq!(SA.next(F_RST, Dir::In, true), TcpState::Close);
        // Dir::Out ignores input_only.
        assert_eq!(ES.next(F_FINACK, Dir::Out, true), TcpState::FinWait);
    }

    #[test]
    fn test_flag_precedence() {
        // RST beats SYN: SYN|RST from NONE closes.
        assert_eq!(NO.next(SYN | RST, Dir::In, false), TcpState::Close);
        // SYN beats FIN: SYN|FIN from NONE is handled as a SYN.
        assert_eq!(NO.next(SYN | FIN, Dir::In, false), TcpState::SynRecv);
        // FIN beats ACK.
        assert_eq!(ES.next(FIN | ACK, Dir::In, false), TcpState::CloseWait);
        // Mainline v6.x: a bare ACK from NONE is ESTABLISHED (older kernels
        // had CLOSE there).
        assert_eq!(NO.next(ACK, Dir::In, false), TcpState::Established);
    }

    #[test]
    fn test_no_flags_unchanged() {
        for s in TcpState::ALL {
            for dir in [Dir::In, Dir::Out] {
                for io in [false, true] {
                    // PSH|URG|ECE|CWR only: no decisive flag.
                    assert_eq!(s.next(0xe8, dir, io), s);
                    assert_eq!(s.next(0, dir, io), s);
                }
            }
        }
    }

    #[test]
    fn test_udp_unchanged() {
        for flags in 0..=u8::MAX {
            assert_eq!(TcpState::Udp.next(flags, Dir::In, false), TcpState::Udp);
            assert_eq!(TcpState::Udp.next(flags, Dir::Out, false), TcpState::Udp);
            assert_eq!(TcpState::Udp.next(flags, Dir::In, true), TcpState::Udp);
        }
    }

    #[test]
    fn test_tables_spot_check() {
        // A few cells read straight from the kernel's row-per-flag layout,
        // to catch transposition mistakes.
        assert_eq!(LA.next(ACK, Dir::In, false), TcpState::Close); // INPUT ack sLA
        assert_eq!(LA.next(ACK, Dir::Out, false), TcpState::LastAck); // OUTPUT ack sLA
        assert_eq!(LI.next(ACK, Dir::Out, false), TcpState::Established); // OUTPUT ack sLI
        assert_eq!(SS.next(RST, Dir::Out, false), TcpState::SynSent); // OUTPUT rst sSS
        assert_eq!(TW.next(RST, Dir::Out, false), TcpState::TimeWait); // OUTPUT rst sTW
        assert_eq!(CW.next(FIN, Dir::Out, false), TcpState::TimeWait); // OUTPUT fin sCW
        assert_eq!(NO.next(FIN, Dir::Out, false), TcpState::TimeWait); // OUTPUT fin sNO
        assert_eq!(NO.next(SYN, Dir::Out, false), TcpState::SynSent); // OUTPUT syn sNO
        assert_eq!(SS.next(SYN, Dir::In, true), TcpState::Established); // INPUT-ONLY syn sSS
        assert_eq!(LA.next(RST, Dir::In, true), TcpState::LastAck); // INPUT-ONLY rst sLA
    }

    #[test]
    fn test_timeout_ms_defaults() {
        let t = Timeouts::default();
        let want: [(TcpState, u32); 12] = [
            (TcpState::None, 2_000),
            (TcpState::Established, 900_000),
            (TcpState::SynSent, 120_000),
            (TcpState::SynRecv, 60_000),
            (TcpState::FinWait, 120_000),
            (TcpState::TimeWait, 120_000),
            (TcpState::Close, 10_000),
            (TcpState::CloseWait, 60_000),
            (TcpState::LastAck, 30_000),
            (TcpState::Listen, 120_000),
            (TcpState::SynAck, 120_000),
            (TcpState::Udp, 300_000),
        ];
        for (s, ms) in want {
            assert_eq!(s.timeout_ms(&t), ms, "{}", s.name());
        }
        // A tuned field is honoured.
        let t2 = Timeouts {
            tcp_close_ms: 1_234,
            ..Timeouts::default()
        };
        assert_eq!(TcpState::Close.timeout_ms(&t2), 1_234);
    }

    #[test]
    fn test_is_active() {
        for s in TcpState::ALL {
            assert_eq!(s.is_active(), s == TcpState::Established, "{}", s.name());
        }
    }

    #[test]
    fn test_name() {
        let names: Vec<&str> = TcpState::ALL.iter().map(|s| s.name()).collect();
        assert_eq!(
            names,
            [
                "NONE",
                "ESTABLISHED",
                "SYN_SENT",
                "SYN_RECV",
                "FIN_WAIT",
                "TIME_WAIT",
                "CLOSE",
                "CLOSE_WAIT",
                "LAST_ACK",
                "LISTEN",
                "SYNACK",
                "UDP"
            ]
        );
        // ALL is in discriminant order, which the tables rely on.
        for (i, s) in TcpState::ALL.iter().enumerate() {
            assert_eq!(*s as usize, i);
        }
    }
}
