//! Per-stage criterion benches of the packet path, one group per stage:
//!
//! - `parse/eth_ipv4_tcp_64B`: the Ethernet, IPv4 and TCP views of one
//!   64-byte client frame with the checks `Core::process` makes (destination
//!   MAC, ethertype, `check_len` of every header, IPv4 header checksum,
//!   fragment bits), ending with the 5-tuple and the TCP flags;
//! - `lookup/{hit,miss}/<live>_in_<capacity>`: one `ConnTable::lookup` in a
//!   table holding `live` NAT connections, created with
//!   `ConnTable::new(capacity)` (which preallocates for `capacity`), in a
//!   shuffled order so that neither the slab nor the index is walked in
//!   insertion order. `1k_in_1M` is the daemon's default table size with a
//!   small load, as in the pipeline's 1k scenario;
//! - `schedule/<sched>_64`: one steady-state `pick()` of rr, wrr, wlc, sh, mh
//!   over 64 real servers (`sched/benches/pick.rs` covers all 14 at 4, 64 and
//!   1024);
//! - `nat_rewrite/inbound_64B`: NAT's inbound rewrite (destination address
//!   and port) plus the TTL decrement, each with its incremental checksum
//!   update (RFC 1624);
//! - `stage_parse/{syn_64B,seg_1500B}`, `stage_validate/{..}`,
//!   `stage_l4_checksum/{..}`: the pipeline's own stage functions
//!   (`pipeline::parse::parse`, `pipeline::validate::ipv4` with the default
//!   `verify_checksums: NewFlows`, `pipeline::validate::l4_checksum`) on a
//!   64-byte client SYN and on a 1514-byte frame (a 1500-byte IPv4 datagram,
//!   1460 bytes of TCP payload), so validation's own cost is measured apart
//!   from the rest of `Core::process`. `l4_checksum` sums the whole segment,
//!   so its 1500-byte figure is the one that grows with the payload;
//! - `calibration/chase_hash`: a fixed memory-and-ALU loop that exercises no
//!   fulcrum code. `benches/gate.sh` divides every stage by it, so that a
//!   slower or busier machine does not look like a regression.
//!
//! The whole `Core::process` is benched in `benches/benches/process.rs`
//! (group `process`), which the gate runs too.
//!
//! Every iteration handles one item (one frame, one key, one pick); the
//! reported time is per item. Setup (tables, frames, shuffles) happens before
//! `b.iter`, and inputs and results pass through `black_box`.
//!
//! Test hook for the gate: when the environment variable
//! `FULCRUM_BENCH_SLOW` names a bench id (for example
//! `parse/eth_ipv4_tcp_64B`), that bench does its work 3 times per
//! iteration. `benches/gate.sh --selftest` uses it to prove that the gate
//! fails on a 3x slower stage. Unset, every bench does its work once.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use dataplane::conn::ConnTable;
use dataplane::conn::FlowKey;
use dataplane::pipeline::{parse as stage_parse, validate};
use dataplane::snapshot::Method;
use dataplane::wire::{
    EthernetFrame, Ipv4Packet, TcpPacket, ETHERNET_HEADER_LEN, ETHERTYPE_IPV4, PROTO_TCP,
};
use dataplane::xmit;
use dataplane::{Core, Verdict};
use fulcrum_benches::{client, client_frame, nat_snapshot, OUT_MAC, VIP};
use sched::{AnyScheduler, Dest, FlowInfo, SchedKind, Scheduler};

/// Times the bench `id` does its work per iteration: 3 when
/// `FULCRUM_BENCH_SLOW` equals `id` (the gate's self-test), else 1.
fn reps(id: &str) -> usize {
    match std::env::var("FULCRUM_BENCH_SLOW") {
        Ok(v) if v == id => {
            eprintln!("FULCRUM_BENCH_SLOW: {id} does its work 3 times per iteration");
            3
        }
        _ => 1,
    }
}

/// A xorshift64 stream: deterministic inputs without a `rand` dependency.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Fisher-Yates shuffle of `v`.
    fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            let j = (self.next() % (i as u64 + 1)) as usize;
            v.swap(i, j);
        }
    }
}

/// The 5-tuple and TCP flags of a client frame, with the checks of
/// `Core::process` on the way: `None` where process() would drop it.
#[inline]
fn parse(frame: &[u8]) -> Option<(FlowKey, u8)> {
    let eth = EthernetFrame::new_checked(frame).ok()?;
    if eth.dst_addr() != OUT_MAC || eth.ethertype() != ETHERTYPE_IPV4 {
        return None;
    }
    let ip = Ipv4Packet::new_checked(frame.get(ETHERNET_HEADER_LEN..)?).ok()?;
    if !ip.verify_checksum() || ip.more_frags() || ip.frag_offset() != 0 {
        return None;
    }
    if ip.protocol() != PROTO_TCP {
        return None;
    }
    let l4 = ETHERNET_HEADER_LEN + ip.header_len();
    let end = ETHERNET_HEADER_LEN + usize::from(ip.total_len());
    let tcp = TcpPacket::new_checked(frame.get(l4..end)?).ok()?;
    Some((
        FlowKey {
            src_ip: ip.src_addr(),
            dst_ip: ip.dst_addr(),
            src_port: tcp.src_port(),
            dst_port: tcp.dst_port(),
            proto: PROTO_TCP,
        },
        tcp.flags(),
    ))
}

/// The inbound key of flow `i` (client `i` → VIP:80/TCP).
fn key(i: u32) -> FlowKey {
    let (cip, cport) = client(i);
    FlowKey {
        src_ip: u32::from_be_bytes(cip),
        dst_ip: VIP,
        src_port: cport,
        dst_port: 80,
        proto: PROTO_TCP,
    }
}

fn bench_parse(c: &mut Criterion) {
    const N: u32 = 1024;
    let frames: Vec<Vec<u8>> = (0..N).map(|i| client_frame(i, false)).collect();
    for (i, f) in frames.iter().enumerate() {
        let (k, _) = parse(f).expect("every generated frame parses");
        assert_eq!(k, key(i as u32), "frame {i} parses to its flow's key");
    }
    let id = "parse/eth_ipv4_tcp_64B";
    let reps = reps(id);
    let mut k = 0usize;
    c.bench_function(id, |b| {
        b.iter(|| {
            k = (k + 1) & (N as usize - 1);
            for _ in 0..reps {
                black_box(parse(black_box(&frames[k])));
            }
        })
    });
}

/// A worker core with `live` NAT connections (flows 0..live) in a table made
/// by `ConnTable::new(capacity)`, created by `Core::process` on their SYNs.
fn core_with(live: u32, capacity: u32) -> Core {
    let snap = nat_snapshot(3, Method::Nat);
    let mut core = Core::new(0, 1, capacity);
    core.sync(&snap);
    for i in 0..live {
        let mut syn = client_frame(i, true);
        let v = core.process(&snap, &mut syn, 0, 0, false);
        assert_eq!(v, Verdict::Tx(0), "SYN of flow {i} creates its connection");
    }
    assert_eq!(core.conns.len(), live as usize);
    core
}

fn bench_lookup(c: &mut Criterion) {
    // (name, live connections, ConnTable::new capacity)
    let cases = [
        ("1k_in_1k", 1_000u32, 1_024u32),
        ("1k_in_1M", 1_000, 1 << 20),
        ("1M_in_1M", 1_000_000, 1 << 20),
    ];
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let mut g = c.benchmark_group("lookup");
    for (name, live, capacity) in cases {
        let core = core_with(live, capacity);
        // Hits: every live flow once, shuffled. Misses: flows that were never
        // created (the same clients' next ports), shuffled too.
        let mut hits: Vec<FlowKey> = (0..live).map(key).collect();
        rng.shuffle(&mut hits);
        let mut misses: Vec<FlowKey> = (live..2 * live).map(key).collect();
        rng.shuffle(&mut misses);
        assert!(hits.iter().all(|k| core.conns.lookup(k).is_some()));
        assert!(misses.iter().all(|k| core.conns.lookup(k).is_none()));
        for (kind, keys) in [("hit", &hits), ("miss", &misses)] {
            let id = format!("lookup/{kind}/{name}");
            let reps = reps(&id);
            let mut k = 0usize;
            let n = keys.len();
            g.bench_function(format!("{kind}/{name}"), |b| {
                b.iter(|| {
                    k += 1;
                    if k == n {
                        k = 0;
                    }
                    for _ in 0..reps {
                        black_box(core.conns.lookup(black_box(&keys[k])));
                    }
                })
            });
        }
    }
    g.finish();
}

fn bench_schedule(c: &mut Criterion) {
    // 64 real servers with weights 1..=4 and uneven connection counts, so the
    // weighted and least-connection schedulers compare real values.
    let dests: Vec<Dest> = (0..64u32)
        .map(|i| Dest {
            weight: 1 + i % 4,
            active_conns: (i * 37) % 101,
            inactive_conns: (i * 11) % 23,
            id: (u64::from(0x0a01_000b + i) << 16) | 80,
        })
        .collect();
    let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
    let flows: Vec<FlowInfo> = (0..1024)
        .map(|_| {
            let x = rng.next();
            FlowInfo {
                src_ip: 0xac10_0000 | (x as u32 & 0x000f_ffff),
                src_port: 1024 + (x >> 40) as u16 % 60_000,
                dst_ip: VIP,
                dst_port: 80,
            }
        })
        .collect();
    let mut g = c.benchmark_group("schedule");
    for kind in [
        SchedKind::Rr,
        SchedKind::Wrr,
        SchedKind::Wlc,
        SchedKind::Sh,
        SchedKind::Mh,
    ] {
        let mut s = AnyScheduler::new(kind);
        // The first picks build sh's and mh's tables: not part of a pick.
        for f in &flows {
            assert!(
                s.pick(&dests, f).is_some(),
                "{} picks a server",
                kind.name()
            );
        }
        let id = format!("schedule/{}_64", kind.name());
        let reps = reps(&id);
        let mut k = 0usize;
        g.bench_function(format!("{}_64", kind.name()), |b| {
            b.iter(|| {
                k = (k + 1) & 1023;
                for _ in 0..reps {
                    black_box(s.pick(black_box(&dests), &flows[k]));
                }
            })
        });
    }
    g.finish();
}

fn bench_nat_rewrite(c: &mut Criterion) {
    let mut frame = client_frame(7, false);
    // Alternate between two real servers so that every rewrite changes the
    // address and port; a TTL of 64 would reach 0, so reset it with the
    // checksum-correct setter before each decrement (outside the view).
    let rips = [(0x0a01_000bu32, 8080u16), (0x0a01_000cu32, 8081u16)];
    {
        // Check once that the incremental updates leave both checksums right.
        let ip = &mut frame[ETHERNET_HEADER_LEN..];
        xmit::nat::rewrite_inbound(ip, rips[0].0, rips[0].1);
        xmit::decrement_ttl(ip);
        let h = etherparse::PacketHeaders::from_ethernet_slice(&frame).expect("parses");
        let Some(etherparse::NetHeaders::Ipv4(iph, _)) = h.net else {
            panic!("IPv4 after rewrite")
        };
        assert_eq!(iph.header_checksum, iph.calc_header_checksum());
        assert_eq!(iph.destination, rips[0].0.to_be_bytes());
        let Some(etherparse::TransportHeader::Tcp(t)) = h.transport else {
            panic!("TCP after rewrite")
        };
        assert_eq!(t.checksum, t.calc_checksum_ipv4(&iph, &[]).unwrap());
        assert_eq!(t.destination_port, rips[0].1);
    }
    let id = "nat_rewrite/inbound_64B";
    let reps = reps(id);
    let mut k = 0usize;
    c.bench_function(id, |b| {
        b.iter(|| {
            k ^= 1;
            let ip = &mut black_box(&mut frame[..])[ETHERNET_HEADER_LEN..];
            for _ in 0..reps {
                let (rip, rport) = rips[k];
                xmit::nat::rewrite_inbound(ip, rip, rport);
                Ipv4Packet::new_unchecked(&mut *ip).rewrite_ttl(64);
                xmit::decrement_ttl(ip);
            }
        })
    });
}

/// A client → VIP ACK carrying 1460 bytes: a 1500-byte IPv4 datagram.
fn segment_1500() -> Vec<u8> {
    let (cip, cport) = client(3);
    let mut v = Vec::new();
    etherparse::PacketBuilder::ethernet2(fulcrum_benches::GATEWAY_MAC, OUT_MAC)
        .ipv4(cip, VIP.to_be_bytes(), 64)
        .tcp(cport, 80, 1, 65535)
        .ack(1)
        .write(&mut v, &[0x5a; 1460])
        .expect("etherparse writes to a Vec");
    assert_eq!(v.len(), 14 + 1500);
    v
}

fn bench_validation_stages(c: &mut Criterion) {
    let snap = nat_snapshot(3, Method::Nat);
    let port = &snap.ports[0];
    let conns = ConnTable::new(1024);
    let frames = [
        ("syn_64B", client_frame(5, true)),
        ("seg_1500B", segment_1500()),
    ];
    for (name, f) in &frames {
        let p = stage_parse::parse(f, port, &conns).expect("the frame parses");
        validate::ipv4(f, &p, port).expect("the frame validates");
        validate::l4_checksum(f, &p).expect("its checksum is right");
        let id = format!("stage_parse/{name}");
        let n = reps(&id);
        c.bench_function(&id, |b| {
            b.iter(|| {
                for _ in 0..n {
                    black_box(stage_parse::parse(black_box(f), port, &conns)).ok();
                }
            })
        });
        let id = format!("stage_validate/{name}");
        let n = reps(&id);
        c.bench_function(&id, |b| {
            b.iter(|| {
                for _ in 0..n {
                    black_box(validate::ipv4(black_box(f), black_box(&p), port)).ok();
                }
            })
        });
        let id = format!("stage_l4_checksum/{name}");
        let n = reps(&id);
        c.bench_function(&id, |b| {
            b.iter(|| {
                for _ in 0..n {
                    black_box(validate::l4_checksum(black_box(f), black_box(&p))).ok();
                }
            })
        });
    }
}

/// Elements of the calibration's pointer-chase ring: 4 Mi × 4 bytes = 16 MiB,
/// larger than this machine's L2 and half its L3, like the 1M-connection
/// table's index.
const CHASE_LEN: usize = 1 << 22;
/// Dependent loads per calibration iteration.
const CHASE_STEPS: usize = 4;
/// Multiply-xorshift rounds per calibration iteration (in registers).
const HASH_ROUNDS: usize = 512;

fn bench_calibration(c: &mut Criterion) {
    // One random cycle through all elements (Sattolo's algorithm), so the
    // chase never settles in a short, cached loop.
    let mut ring: Vec<u32> = (0..CHASE_LEN as u32).collect();
    let mut rng = XorShift(0x853c_49e6_748f_ea9b);
    for i in (1..CHASE_LEN).rev() {
        let j = (rng.next() % i as u64) as usize;
        ring.swap(i, j);
    }
    let mut at = 0u32;
    let mut h = 0x1234_5678_9abc_def0u64;
    c.bench_function("calibration/chase_hash", |b| {
        b.iter(|| {
            for _ in 0..CHASE_STEPS {
                at = ring[at as usize];
            }
            for _ in 0..HASH_ROUNDS {
                h = (h ^ u64::from(at)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
                h ^= h >> 29;
            }
            black_box((at, h))
        })
    });
}

criterion_group!(
    benches,
    bench_calibration,
    bench_parse,
    bench_validation_stages,
    bench_lookup,
    bench_schedule,
    bench_nat_rewrite
);
criterion_main!(benches);
