//! The per-worker connection table: flow keys, connection entries, the IPVS
//! TCP state machine and the expiry wheel.
//!
//! Layer: dataplane. Each worker owns one [`ConnTable`]; flows are pinned to
//! workers by client address and port (see `owner`), so nothing here is
//! shared, locked or atomic. This is the equivalent of IPVS's
//! `ip_vs_conn_tab` plus its per-connection timers
//! (`net/netfilter/ipvs/ip_vs_conn.c`), made per core.
//!
//! Guarantees:
//! - one [`Conn`] is reachable by its inbound key (client → VIP) and, for
//!   NAT, by its outbound key (real server → client);
//! - after [`ConnTable::new`], no operation allocates, and none panics
//!   whatever the keys, ids, timeouts or clock values passed in;
//! - connections expire on a timer wheel of [`TICK_MS`] resolution: never
//!   before their expiry, and at most one tick after it when the wheel is
//!   driven with enough budget.
//!
//! Refuses: IPv6, persistence templates and connection sync (not built
//! yet); it also does not decide *when* to create a connection — that is the
//! packet path's job (IPVS schedules TCP only on a SYN).
//!
//! All addresses are IPv4 `u32` in host order (`10.0.0.1` is `0x0a00_0001`),
//! ports `u16` in host order, protocols IANA numbers (6 TCP, 17 UDP).

pub mod dump;
mod index;
mod table;
mod tcp_state;
mod wheel;

pub use dump::{ConnRecord, DumpChannel, DumpError};
pub use table::{ConnTable, MAX_CONNS};
pub use tcp_state::{TcpState, TCP_NONE_TIMEOUT_MS};
pub use wheel::{TICK_MS, WHEEL_SLOTS};

use crate::snapshot::{ClientAddress, Method};

/// A packet's 5-tuple as it appears in the packet, source → destination.
/// Addresses and ports in host order; `proto` is the IP protocol number.
/// 16 bytes (13 of data).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FlowKey {
    /// Source IPv4 address, host order.
    pub src_ip: u32,
    /// Destination IPv4 address, host order.
    pub dst_ip: u32,
    /// Source port, host order.
    pub src_port: u16,
    /// Destination port, host order.
    pub dst_port: u16,
    /// IP protocol number (6 = TCP, 17 = UDP).
    pub proto: u8,
}

/// Dense index of a connection in its worker's table: `0..capacity()`.
///
/// An id stays valid until its connection is removed or expires; after that
/// the slot may be reused by a new connection, so an id must not be kept
/// across packets (the packet path looks the flow up again instead). Using
/// a stale id never corrupts the table: on a free slot every call is a
/// no-op or returns `None`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConnId(pub u32);

/// Which direction a looked-up packet travels relative to its connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dir {
    /// Client → VIP (IPVS `IP_VS_DIR_INPUT`).
    In,
    /// Real server → client, a NAT reply (IPVS `IP_VS_DIR_OUTPUT`).
    Out,
}

/// One connection, as `ipvsadm -Lcn` lists it: client, virtual service, real
/// server, state, and for FullNAT the local address and port. 40 bytes (a
/// value handed out by the table, not its storage: see `table.rs`).
///
/// The address and port fields and `proto`/`method` define the connection's
/// keys; the table keeps its own copy of them from [`ConnTable::insert`]
/// and hands out copies ([`ConnTable::get`]), so a `Conn` in hand never
/// re-keys the connection. Only the state changes after insertion
/// ([`ConnTable::set_state`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conn {
    /// Client IP (CIP), host order.
    pub cip: u32,
    /// Client port, host order.
    pub cport: u16,
    /// Virtual IP the client addressed, host order.
    pub vip: u32,
    /// Virtual port the client addressed, host order.
    pub vport: u16,
    /// Real server IP (RIP), host order.
    pub rip: u32,
    /// Real server port, host order (equals `vport` in DR).
    pub rport: u16,
    /// IP protocol number (6 = TCP, 17 = UDP).
    pub proto: u8,
    /// Forwarding method; [`Method::Nat`] and [`Method::FullNat`] connections
    /// also get an outbound key.
    pub method: Method,
    /// Dense real-server id into `Snapshot::reals` (from 1), 0 = none.
    pub real: u32,
    /// Index of the virtual service in `Snapshot::services`.
    pub service: u16,
    /// IPVS TCP state; UDP connections use [`TcpState::Udp`].
    pub state: TcpState,
    /// FullNAT local address (LIP) the real server sees as the source, host
    /// order; 0 for other methods.
    pub lip: u32,
    /// FullNAT local port (lport), host order; 0 for other methods.
    pub lport: u16,
    /// FullNAT: how the client address reaches the real server.
    pub client_address: ClientAddress,
    /// FullNAT with [`ClientAddress::ProxyV2`]: the client's initial
    /// sequence number plus one (the sequence number of its first data
    /// byte, where the PROXY header goes), from its SYN; 0 otherwise.
    pub isn1: u32,
}

impl Conn {
    /// The key of the client's packets: `cip:cport → vip:vport`.
    pub fn inbound_key(&self) -> FlowKey {
        FlowKey {
            src_ip: self.cip,
            dst_ip: self.vip,
            src_port: self.cport,
            dst_port: self.vport,
            proto: self.proto,
        }
    }

    /// The key of the real server's replies: `rip:rport → cip:cport` for a
    /// NAT connection, `rip:rport → lip:lport` for FullNAT; `None` for DR
    /// and TUN (replies bypass the director).
    pub fn outbound_key(&self) -> Option<FlowKey> {
        match self.method {
            Method::FullNat => Some(FlowKey {
                src_ip: self.rip,
                dst_ip: self.lip,
                src_port: self.rport,
                dst_port: self.lport,
                proto: self.proto,
            }),
            Method::Nat => Some(FlowKey {
                src_ip: self.rip,
                dst_ip: self.cip,
                src_port: self.rport,
                dst_port: self.cport,
                proto: self.proto,
            }),
            Method::Dr | Method::Tun => None,
        }
    }
}

/// Why [`ConnTable::insert`] refused a connection. Nothing was inserted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InsertError {
    /// `max_conns` connections are live (count it as `conn_table_full`).
    TableFull,
    /// The inbound key, or for NAT the outbound key, is already in the table
    /// (or the two keys of the new connection are equal).
    Exists,
}

impl core::fmt::Display for InsertError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            InsertError::TableFull => "connection table full",
            InsertError::Exists => "connection key already in the table",
        })
    }
}

impl std::error::Error for InsertError {}

#[cfg(test)]
mod tests {
    use super::*;

    fn nat() -> Conn {
        Conn {
            cip: 0xc0a8_0001,
            cport: 40000,
            vip: 0x0a00_0064,
            vport: 80,
            rip: 0x0a01_0002,
            rport: 8080,
            proto: 6,
            method: Method::Nat,
            real: 1,
            service: 0,
            state: TcpState::None,
            lip: 0,
            lport: 0,
            client_address: ClientAddress::None,
            isn1: 0,
        }
    }

    #[test]
    fn test_conn_keys() {
        let c = nat();
        assert_eq!(
            c.inbound_key(),
            FlowKey {
                src_ip: 0xc0a8_0001,
                dst_ip: 0x0a00_0064,
                src_port: 40000,
                dst_port: 80,
                proto: 6
            }
        );
        assert_eq!(
            c.outbound_key(),
            Some(FlowKey {
                src_ip: 0x0a01_0002,
                dst_ip: 0xc0a8_0001,
                src_port: 8080,
                dst_port: 40000,
                proto: 6
            })
        );
        let d = Conn {
            method: Method::Dr,
            ..c
        };
        assert_eq!(d.outbound_key(), None);
        let f = Conn {
            method: Method::FullNat,
            lip: 0x0a02_0001,
            lport: 5000,
            ..c
        };
        assert_eq!(
            f.outbound_key(),
            Some(FlowKey {
                src_ip: 0x0a01_0002,
                dst_ip: 0x0a02_0001,
                src_port: 8080,
                dst_port: 5000,
                proto: 6
            })
        );
    }

    #[test]
    fn test_conn_sizes() {
        assert_eq!(core::mem::size_of::<Conn>(), 40);
        assert_eq!(core::mem::size_of::<FlowKey>(), 16);
        assert_eq!(core::mem::size_of::<TcpState>(), 1);
    }

    #[test]
    fn test_insert_error_display() {
        assert_eq!(InsertError::TableFull.to_string(), "connection table full");
        assert_eq!(
            InsertError::Exists.to_string(),
            "connection key already in the table"
        );
    }
}
