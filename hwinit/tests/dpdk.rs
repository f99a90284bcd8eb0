//! Integration tests of the DPDK binding against real PMDs.
//!
//! EAL can be initialised once per process, so every DPDK test lives in this
//! one binary and shares one `Eal` behind a `OnceLock`. It runs without
//! hugepages and PCI (`--no-huge -m 256 --no-pci --no-shconf`, a per-pid
//! file prefix so parallel runs do not collide) on two lcores, with two
//! vdevs: `net_ring0`, whose TX ring is its own RX ring (so a sent frame
//! comes back), `net_null0` and `net_null1`, which drop TX and make up RX
//! frames, and
//! `net_pcap0`, which replays a pcap file written here and records TX into
//! another (the daemon's golden-packet setup). Each test owns one port, so
//! the harness's parallel threads never share a queue.
#![cfg(feature = "dpdk")]

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use hwinit::dpdk::{
    CaptureStatus, Eal, Mbuf, PortSetup, TelCommand, TelValue, TelemetryProvider, LCORE_PANICKED,
};
use hwinit::{HwError, PacketBuf, PortQueue};

fn pcap_path(dir: &str) -> PathBuf {
    std::env::temp_dir().join(format!("hwinit-test-{}-{dir}.pcap", std::process::id()))
}

/// EAL leaves its runtime directory `/var/run/dpdk/<file-prefix>` behind
/// even with `--no-shconf`, and this binary never reaches `Eal::cleanup`;
/// remove the ones of earlier runs whose process is gone.
fn remove_stale_runtime_dirs() {
    let Ok(dir) = std::fs::read_dir("/var/run/dpdk") else {
        return;
    };
    for entry in dir.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_string_lossy()
            .strip_prefix("hwinit-test-")
            .map(str::to_string)
        else {
            continue;
        };
        if pid.parse::<u32>().is_ok() && !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

fn eal() -> &'static Eal {
    static EAL: OnceLock<Eal> = OnceLock::new();
    EAL.get_or_init(|| {
        remove_stale_runtime_dirs();
        let frames: Vec<Vec<u8>> = (0..PCAP_FRAMES)
            .map(|s| frame(PCAP_SEQ0 + s).to_vec())
            .collect();
        std::fs::write(pcap_path("in"), write_pcap(&frames)).unwrap();
        let pcap_vdev = format!(
            "--vdev=net_pcap0,rx_pcap={},tx_pcap={}",
            pcap_path("in").display(),
            pcap_path("out").display()
        );
        let args: Vec<String> = [
            "-l",
            "0-1",
            "--no-huge",
            "-m",
            "256",
            "--no-pci",
            "--no-shconf",
            &format!("--file-prefix=hwinit-test-{}", std::process::id()),
            "--vdev=net_ring0",
            "--vdev=net_null0",
            "--vdev=net_null1",
            &pcap_vdev,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        Eal::init(&args).expect("EAL init with --no-huge")
    })
}

const RING_MAC: [u8; 6] = [0x02, 0x00, 0x5e, 0x10, 0x00, 0x01];
const PEER_MAC: [u8; 6] = [0x02, 0x00, 0x5e, 0x10, 0x00, 0x02];
const PCAP_MAC: [u8; 6] = [0x02, 0x00, 0x5e, 0x10, 0x00, 0x03];
const PCAP_SEQ0: u32 = 1000;
const PCAP_FRAMES: u32 = 3;

/// A classic pcap file (microsecond timestamps, LINKTYPE_ETHERNET).
fn write_pcap(frames: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2_c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    for v in [0u32, 0, 65535, 1] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    for (i, f) in frames.iter().enumerate() {
        for v in [1_700_000_000u32, i as u32, f.len() as u32, f.len() as u32] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(f);
    }
    out
}

/// The frames of a little-endian pcap file (micro- or nanosecond magic).
fn read_pcap(bytes: &[u8]) -> Vec<Vec<u8>> {
    let u32_at = |o: usize| u32::from_le_bytes(bytes[o..o + 4].try_into().unwrap());
    assert!(matches!(u32_at(0), 0xa1b2_c3d4 | 0xa1b2_3c4d), "pcap magic");
    let mut frames = Vec::new();
    let mut o = 24;
    while o + 16 <= bytes.len() {
        let len = u32_at(o + 8) as usize;
        frames.push(bytes[o + 16..o + 16 + len].to_vec());
        o += 16 + len;
    }
    frames
}

/// A 60-byte Ethernet frame (minimum size without FCS) carrying `seq` as a
/// big-endian u32 right after the IPv4 ethertype, the rest a byte pattern.
fn frame(seq: u32) -> [u8; 60] {
    let mut f = [0u8; 60];
    f[0..6].copy_from_slice(&PEER_MAC);
    f[6..12].copy_from_slice(&RING_MAC);
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    f[14..18].copy_from_slice(&seq.to_be_bytes());
    for (i, b) in f[18..].iter_mut().enumerate() {
        *b = (i as u8).wrapping_mul(7).wrapping_add(seq as u8);
    }
    f
}

fn seq_of(m: &Mbuf) -> u32 {
    let d = m.data();
    u32::from_be_bytes([d[14], d[15], d[16], d[17]])
}

fn alloc_frame(q: &mut impl PortQueue<Buf = Mbuf>, seq: u32) -> Mbuf {
    let mut m = q.alloc().expect("pool has room");
    assert_eq!(m.data().len(), 0, "fresh mbuf has data length 0");
    assert!(m.set_data_len(60));
    m.data_mut().copy_from_slice(&frame(seq));
    m
}

#[test]
fn test_second_init_refused() {
    let _ = eal();
    let err = Eal::init(&["--no-huge".to_string()]).unwrap_err();
    assert_eq!(err, HwError::EalAlreadyInitialised);
}

#[test]
fn test_lcores() {
    let eal = eal();
    assert_eq!(eal.main_lcore(), 0);
    assert!(eal.lcore_enabled(0));
    assert!(eal.lcore_enabled(1));
    assert!(!eal.lcore_enabled(2));
    assert!(!eal.lcore_enabled(100_000));
    assert_eq!(eal.lcore_socket(100_000), u32::MAX);
    assert_eq!(
        eal.lcore_socket(100_000) as i32,
        -1,
        "out of range maps to SOCKET_ID_ANY"
    );
    assert!(eal.lcore_socket(0) < 8, "a real NUMA node id");
    assert!(hwinit::tsc_hz() > 1_000_000, "EAL measured the TSC");
}

#[test]
fn test_ports_by_name() {
    let eal = eal();
    let ring = eal.port_by_name("net_ring0").unwrap();
    let null = eal.port_by_name("net_null0").unwrap();
    assert_ne!(ring, null);
    let ports = eal.ports();
    assert!(
        ports.contains(&(ring, "net_ring0".to_string())),
        "{ports:?}"
    );
    assert!(
        ports.contains(&(null, "net_null0".to_string())),
        "{ports:?}"
    );
    // net_pcap0 may already be closed by test_pcap_replay_and_record.
    assert!(ports.len() == 3 || ports.len() == 4, "{ports:?}");
    assert!(
        ports.windows(2).all(|w| w[0].0 < w[1].0),
        "port-id order: {ports:?}"
    );
}

#[test]
fn test_port_not_found_text() {
    let eal = eal();
    let err = eal.port_by_name("net_pcap7").unwrap_err();
    match &err {
        HwError::PortNotFound { name, probed } => {
            assert_eq!(name, "net_pcap7");
            assert!(probed.contains(&"net_ring0".to_string()));
            assert!(probed.contains(&"net_null0".to_string()));
        }
        other => panic!("wrong error {other:?}"),
    }
    let text = err.to_string();
    assert!(
        text.starts_with("DPDK port 'net_pcap7' not found; probed ports: ["),
        "{text}"
    );
    assert!(text.contains("\"net_ring0\""), "{text}");
    assert!(
        text.ends_with("; add --vdev=net_pcap7,... or -a <PCI> to eal_args"),
        "{text}"
    );
    assert!(!text.contains('\n'));
    assert!(matches!(
        eal.setup_port(
            999,
            &PortSetup::default(),
            &eal.create_mempool("nf_pool", 63, -1).unwrap()
        ),
        Err(HwError::BadPortId { port_id: 999, .. })
    ));
}

#[test]
fn test_mempool_errors() {
    let eal = eal();
    let p = eal.create_mempool("dup_pool", 127, -1).unwrap();
    assert_eq!(p.in_use(), 0);
    assert_eq!(p.available(), 127);
    assert_eq!(p.data_room_bytes(), 2048);
    let e = eal
        .create_mempool("dup_pool", 127, -1)
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("mempool 'dup_pool' (127 mbufs, socket -1): "),
        "{e}"
    );
    assert!(eal
        .create_mempool("a_name_much_too_long_for_dpdk_pools", 127, -1)
        .is_err());
    assert!(eal.create_mempool("zero_pool", 0, -1).is_err());
    assert!(eal.create_mempool("nul\0pool", 127, -1).is_err());
}

/// net_ring0 loops TX back to RX: frames must come back byte for byte, in
/// order, and every mbuf must return to the pool.
#[test]
fn test_ring_loopback() {
    let eal = eal();
    let port = eal.port_by_name("net_ring0").unwrap();
    let pool = eal
        .create_mempool("ring_pool", 2047, eal.lcore_socket(0) as i32)
        .unwrap();

    eal.set_mac(port, RING_MAC).unwrap();
    let cfg = PortSetup {
        n_rxq: 1,
        n_txq: 1,
        rx_desc: 512,
        tx_desc: 512,
        promiscuous: true,
        rss: true,
        mtu: None,
    };
    let info = eal.setup_port(port, &cfg, &pool).unwrap();
    assert_eq!(info.port_id, port);
    assert_eq!(info.driver, "net_ring");
    assert_eq!(
        info.mac, RING_MAC,
        "setup_port reports the MAC set before it"
    );
    assert!(
        info.downgraded
            .iter()
            .any(|n| n.contains("02:00:5e:10:00:01 is set in software only")),
        "net_ring cannot change its MAC: {:?}",
        info.downgraded
    );
    assert_eq!((info.n_rxq, info.n_txq), (1, 1));
    assert!(!info.rss_enabled, "one RX queue: no RSS");
    assert!(
        info.downgraded
            .iter()
            .any(|n| n.contains("RSS not enabled")),
        "{:?}",
        info.downgraded
    );

    let link = eal.link_status(port);
    assert!(link.up, "net_ring is up once started");
    assert!(link.speed_mbps > 0);

    let mut q = eal.queue(port, 0, &pool);
    assert_eq!(q.mac(), RING_MAC);
    assert_eq!((q.port_id(), q.queue_id()), (port, 0));

    // One owner per queue, and no reconfiguration under a live handle.
    let dup = std::panic::catch_unwind(|| eal.queue(port, 0, &pool));
    assert!(
        dup.is_err(),
        "second handle for a live queue must be refused"
    );
    assert!(
        std::panic::catch_unwind(|| eal.queue(port, 1, &pool)).is_err(),
        "no queue 1"
    );
    assert!(matches!(
        eal.setup_port(port, &cfg, &pool),
        Err(HwError::PortBusy { .. })
    ));
    assert!(matches!(
        eal.set_mac(port, PEER_MAC),
        Err(HwError::PortBusy { .. })
    ));

    let in_use_start = pool.in_use();

    // One frame there and back.
    let mut m = alloc_frame(&mut q, 7);
    let room = 2048;
    assert!(m.set_data_len(room), "data_off + 2048 == buf_len fits");
    assert_eq!(m.data().len(), room);
    assert!(
        !m.set_data_len(room + 1),
        "one past buf_len must be refused"
    );
    assert_eq!(m.data().len(), room, "a refused length changes nothing");
    assert!(m.set_data_len(60));
    assert_eq!(m.data(), &frame(7)[..], "shrinking keeps the bytes");
    assert_eq!(pool.in_use(), in_use_start + 1);

    let mut tx = Vec::with_capacity(64);
    tx.push(m);
    assert_eq!(q.tx_burst(&mut tx), 1);
    assert!(tx.is_empty());
    let mut rx = Vec::with_capacity(64);
    assert_eq!(q.rx_burst(&mut rx, 32), 1);
    assert_eq!(rx[0].data(), &frame(7)[..]);
    assert_eq!(rx[0].data().len(), 60);
    assert_eq!(rx[0].rss_hash(), None, "net_ring computes no RSS hash");
    assert_eq!(rx[0].n_segs(), 1);
    assert_eq!(q.rx_burst(&mut rx, 32), 0, "nothing else in the ring");
    q.free_bulk(&mut rx);
    assert!(rx.is_empty());
    assert_eq!(pool.in_use(), in_use_start, "free_bulk returned the mbuf");

    // 1100 frames: more than one 64-frame chunk per call and more than the
    // ring's 1024 slots, so TX stops early and keeps the rest in order.
    let mut tx: Vec<Mbuf> = (0..1100).map(|s| alloc_frame(&mut q, s)).collect();
    let n_sent = q.tx_burst(&mut tx);
    assert!(n_sent > 64 && n_sent < 1100, "sent {n_sent}");
    assert_eq!(tx.len(), 1100 - n_sent);
    assert_eq!(
        seq_of(&tx[0]),
        n_sent as u32,
        "unsent frames keep their order"
    );
    let mut got = Vec::with_capacity(1100);
    loop {
        let n = q.rx_burst(&mut got, 1000);
        assert!(n <= 64, "one burst is at most BURST_MAX");
        if n == 0 {
            break;
        }
    }
    assert_eq!(got.len(), n_sent);
    for (i, m) in got.iter().enumerate() {
        assert_eq!(m.data(), &frame(i as u32)[..], "frame {i}");
    }
    q.free_bulk(&mut got);
    q.free_bulk(&mut tx);
    assert!(got.is_empty() && tx.is_empty());
    assert_eq!(pool.in_use(), in_use_start, "every mbuf is back");

    // Dropping an Mbuf frees it too.
    let m = q.alloc().unwrap();
    assert_eq!(pool.in_use(), in_use_start + 1);
    drop(m);
    assert_eq!(pool.in_use(), in_use_start);

    // Releasing the handle makes the queue available again.
    drop(q);
    let q2 = eal.queue(port, 0, &pool);
    drop(q2);
}

/// net_null0 reports RSS hash types, so two RX queues get RSS; it makes up
/// 64-byte frames on RX and frees everything on TX.
#[test]
fn test_null_rss_mtu_and_bursts() {
    let eal = eal();
    let port = eal.port_by_name("net_null0").unwrap();
    let pool = eal.create_mempool("null_pool", 1023, -1).unwrap();

    let e = eal
        .setup_port(
            port,
            &PortSetup {
                mtu: Some(9000),
                ..PortSetup::default()
            },
            &pool,
        )
        .unwrap_err();
    assert!(matches!(e, HwError::BadMtu { mtu: 9000, .. }), "{e:?}");
    assert!(
        e.to_string()
            .starts_with("port 'net_null0': MTU 9000 bytes not usable"),
        "{e}"
    );

    let e = eal
        .setup_port(
            port,
            &PortSetup {
                n_rxq: 1025,
                n_txq: 1,
                ..PortSetup::default()
            },
            &pool,
        )
        .unwrap_err();
    assert!(
        matches!(&e, HwError::TooFewQueues { device, dir: "rx", requested: 1025, .. } if device == "net_null0"),
        "{e:?}"
    );
    let text = e.to_string();
    assert!(
        text.starts_with("port 'net_null0' supports at most "),
        "{text}"
    );
    assert!(
        text.contains(" rx queues but 1025 were requested"),
        "{text}"
    );

    let cfg = PortSetup {
        n_rxq: 2,
        n_txq: 2,
        rx_desc: 128,
        tx_desc: 128,
        promiscuous: false,
        rss: true,
        mtu: Some(1500),
    };
    let info = eal.setup_port(port, &cfg, &pool).unwrap();
    assert_eq!(info.driver, "net_null");
    assert_eq!((info.n_rxq, info.n_txq), (2, 2));
    assert!(
        info.rss_enabled,
        "net_null reports RSS hash types: {:?}",
        info.downgraded
    );
    assert!(
        !info.downgraded.iter().any(|n| n.contains("RSS not")),
        "{:?}",
        info.downgraded
    );
    let _ = eal.link_status(port);
    assert_eq!(
        eal.link_status(999),
        hwinit::dpdk::LinkStatus {
            up: false,
            speed_mbps: 0
        }
    );

    let in_use_start = pool.in_use();
    let mut q1 = eal.queue(port, 1, &pool);
    let mut rx = Vec::with_capacity(64);
    let n = q1.rx_burst(&mut rx, 32);
    assert_eq!(n, 32, "net_null fills every burst");
    assert_eq!(rx.len(), 32);
    assert!(
        rx.iter().all(|m| m.data().len() == 64),
        "net_null frames are 64 bytes"
    );
    assert_eq!(pool.in_use(), in_use_start + 32);
    assert_eq!(q1.tx_burst(&mut rx), 32, "net_null takes everything");
    assert!(rx.is_empty());
    assert_eq!(pool.in_use(), in_use_start, "net_null freed what it sent");
    q1.rx_burst(&mut rx, 64);
    q1.free_bulk(&mut rx);
    assert_eq!(pool.in_use(), in_use_start);

    // Stopped port: bursts return nothing instead of touching freed queues.
    drop(q1);
    eal.stop_port(port);
    assert!(!eal.link_status(port).up || eal.link_status(port).speed_mbps > 0);
    let mut q0 = eal.queue(port, 0, &pool);
    assert_eq!(q0.rx_burst(&mut rx, 32), 0, "stopped port receives nothing");
    drop(q0);
}

#[test]
fn test_launch_and_wait() {
    let eal = eal();
    let ran_on = Arc::new(AtomicU64::new(0));
    let seen = Arc::clone(&ran_on);
    let caller = format!("{:?}", std::thread::current().id());
    eal.launch(1, move || {
        let me = format!("{:?}", std::thread::current().id());
        seen.store(if me != caller { 1 } else { 2 }, Ordering::SeqCst);
        42
    })
    .unwrap();
    assert_eq!(eal.wait_lcore(1), 42);
    assert_eq!(
        ran_on.load(Ordering::SeqCst),
        1,
        "closure ran on the lcore's own thread"
    );

    eal.launch(1, || panic!("worker bug")).unwrap();
    assert_eq!(eal.wait_lcore(1), LCORE_PANICKED);

    // The lcore is reusable after a panic.
    eal.launch(1, || 7).unwrap();
    assert_eq!(eal.wait_lcore(1), 7);

    // A busy lcore refuses a second closure, and the refused closure is
    // dropped on this thread: here it owns a Mempool, whose Drop takes the
    // control lock, so this also proves launch does not hold that lock then.
    let gate = Arc::new(AtomicU64::new(0));
    let g = Arc::clone(&gate);
    eal.launch(1, move || {
        while g.load(Ordering::SeqCst) == 0 {
            std::hint::spin_loop();
        }
        5
    })
    .unwrap();
    let pool = eal.create_mempool("launch_pool", 63, -1).unwrap();
    let e = eal
        .launch(1, move || i32::from(pool.in_use() == 0))
        .unwrap_err();
    assert!(matches!(&e, HwError::Launch { lcore: 1, .. }), "{e:?}");
    assert!(e.to_string().contains("busy"), "{e}");
    gate.store(1, Ordering::SeqCst);
    assert_eq!(eal.wait_lcore(1), 5);

    assert!(matches!(
        eal.launch(0, || 0),
        Err(HwError::Launch { lcore: 0, .. })
    ));
    assert!(matches!(
        eal.launch(2, || 0),
        Err(HwError::Launch { lcore: 2, .. })
    ));
    assert_eq!(eal.wait_lcore(1), 5, "idle lcore: the last value, at once");
    assert_eq!(eal.wait_lcore(0), 0, "main lcore runs nothing launched");
    assert_eq!(eal.wait_lcore(9), 0, "disabled lcore");
}

/// The daemon's golden-packet path: net_pcap0 replays a file, the frames
/// are rewritten in place and sent, and the TX file holds exactly the
/// rewritten bytes once the port is closed.
#[test]
fn test_pcap_replay_and_record() {
    let eal = eal();
    let port = eal.port_by_name("net_pcap0").unwrap();
    let pool = eal.create_mempool("pcap_pool", 511, -1).unwrap();
    eal.set_mac(port, PCAP_MAC).unwrap();
    assert!(
        eal.set_mac(port, [0x01, 0, 0x5e, 0, 0, 1]).is_err(),
        "multicast MAC refused"
    );
    let info = eal
        .setup_port(
            port,
            &PortSetup {
                rx_desc: 64,
                tx_desc: 64,
                ..PortSetup::default()
            },
            &pool,
        )
        .unwrap();
    assert_eq!(info.driver, "net_pcap");
    assert_eq!(info.mac, PCAP_MAC);
    let mut q = eal.queue(port, 0, &pool);
    assert_eq!(q.mac(), PCAP_MAC);

    let mut rx = Vec::with_capacity(64);
    for _ in 0..100 {
        q.rx_burst(&mut rx, 32);
        if rx.len() >= PCAP_FRAMES as usize {
            break;
        }
    }
    assert_eq!(
        rx.len(),
        PCAP_FRAMES as usize,
        "every frame of the file, once"
    );
    assert_eq!(
        q.rx_burst(&mut rx, 32),
        0,
        "no infinite_rx: the file is read once"
    );
    let mut expect = Vec::new();
    for (i, m) in rx.iter_mut().enumerate() {
        assert_eq!(m.data(), &frame(PCAP_SEQ0 + i as u32)[..]);
        // Rewrite like the dataplane does: swap the MACs in place.
        let d = m.data_mut();
        let (dst, src) = d.split_at_mut(6);
        dst.swap_with_slice(&mut src[..6]);
        expect.push(m.data().to_vec());
    }
    assert_eq!(
        expect[0][0..6],
        RING_MAC,
        "old source is the new destination"
    );
    assert_eq!(q.tx_burst(&mut rx), PCAP_FRAMES as usize);
    drop(q);
    eal.stop_port(port);
    eal.close_port(port);
    assert_eq!(pool.in_use(), 0, "closing the port returned every mbuf");
    assert!(
        eal.port_by_name("net_pcap0").is_err(),
        "closed ports are gone"
    );

    let out = std::fs::read(pcap_path("out")).unwrap();
    assert_eq!(read_pcap(&out), expect);
    let _ = std::fs::remove_file(pcap_path("in"));
    let _ = std::fs::remove_file(pcap_path("out"));
}

/// Device counters on net_null1: 32 frames in and out must show up exactly
/// in `rte_eth_stats` and in the PMD's xstats by name.
#[test]
fn test_port_stats_and_xstats() {
    let eal = eal();
    let port = eal.port_by_name("net_null1").unwrap();
    let pool = eal.create_mempool("stats_pool", 511, -1).unwrap();
    let cfg = PortSetup {
        rx_desc: 128,
        tx_desc: 128,
        ..PortSetup::default()
    };
    eal.setup_port(port, &cfg, &pool).unwrap();
    let before = eal.port_stats(port).unwrap();
    assert_eq!(before, hwinit::dpdk::PortStats::default(), "fresh port");

    let mut q = eal.queue(port, 0, &pool);
    let mut rx = Vec::with_capacity(64);
    assert_eq!(q.rx_burst(&mut rx, 32), 32);
    assert_eq!(q.tx_burst(&mut rx), 32);
    drop(q);

    let s = eal.port_stats(port).unwrap();
    // net_null counts packets, not bytes (DPDK 22.11 null PMD).
    assert_eq!((s.ipackets, s.opackets), (32, 32), "{s:?}");
    assert_eq!((s.imissed, s.ierrors, s.oerrors, s.rx_nombuf), (0, 0, 0, 0));

    let x = eal.port_xstats(port).unwrap();
    let get = |n: &str| x.iter().find(|(k, _)| k == n).map(|(_, v)| *v);
    assert_eq!(get("rx_good_packets"), Some(32), "{x:?}");
    assert_eq!(get("tx_good_packets"), Some(32), "{x:?}");
    assert_eq!(get("rx_good_bytes"), Some(s.ibytes), "{x:?}");
    assert_eq!(get("rx_missed_errors"), Some(0), "{x:?}");
    assert_eq!(get("rx_q0_packets"), Some(32), "per-queue xstats: {x:?}");
    assert!(x.iter().all(|(k, _)| !k.is_empty() && k.len() < 64));

    assert!(matches!(
        eal.port_stats(999),
        Err(HwError::BadPortId { port_id: 999, .. })
    ));
    assert!(matches!(
        eal.port_xstats(999),
        Err(HwError::BadPortId { port_id: 999, .. })
    ));
    eal.stop_port(port);
}

/// This binary runs EAL with --no-huge: dumpcap could not attach, and the
/// capture status must say so instead of pretending (rte_pdump_init itself
/// would succeed).
#[test]
fn test_capture_unavailable_without_hugepages() {
    let eal = eal();
    match eal.init_capture() {
        CaptureStatus::Unavailable { reason } => {
            assert!(reason.starts_with("EAL runs with --no-huge"), "{reason}");
        }
        other => panic!("capture cannot work with --no-huge: {other:?}"),
    }
}

/// Answers `/hwinit_test/counters` with fixed values and echoes `params`.
struct TestProvider;

impl TelemetryProvider for TestProvider {
    fn answer(&self, cmd: &str, params: &str) -> Option<Vec<(String, TelValue)>> {
        match cmd {
            "/hwinit_test/counters" => Some(vec![
                ("rx_pkts".into(), TelValue::U64(4242)),
                ("params".into(), TelValue::Str(params.into())),
                (
                    "worker".into(),
                    TelValue::Dict(vec![
                        ("lcore".into(), TelValue::U64(1)),
                        ("deeper".into(), TelValue::Dict(vec![])),
                    ]),
                ),
            ]),
            "/hwinit_test/panics" => panic!("provider bug"),
            _ => None,
        }
    }
}

/// The commands reach DPDK's telemetry socket: Debian's dpdk-telemetry.py
/// lists them under `/` and shows their values; a panicking provider is
/// answered with null and the socket keeps serving.
#[test]
fn test_telemetry_commands() {
    let eal = eal();
    let cmds = [
        TelCommand {
            name: "/hwinit_test/counters",
            help: "test counters",
        },
        TelCommand {
            name: "/hwinit_test/panics",
            help: "a provider that panics",
        },
    ];
    eal.register_telemetry(Box::new(TestProvider), &cmds)
        .unwrap();
    let again = eal.register_telemetry(Box::new(TestProvider), &cmds[..1]);
    assert!(
        matches!(&again, Err(HwError::Telemetry { reason, .. }) if reason.contains("already set")),
        "{again:?}"
    );

    let mut child = std::process::Command::new("/usr/bin/dpdk-telemetry.py")
        .args(["-f", &format!("hwinit-test-{}", std::process::id())])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("dpdk-telemetry.py (Debian dpdk-dev) runs");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin
            .write_all(
                b"/\n/hwinit_test/counters,abc\n/hwinit_test/panics\n/hwinit_test/counters\n",
            )
            .unwrap();
    }
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().filter(|l| l.starts_with('{')).collect();
    // One JSON line per command (no greeting: stdin is not a terminal).
    assert_eq!(
        lines.len(),
        4,
        "{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        lines[0].contains("\"/hwinit_test/counters\""),
        "{}",
        lines[0]
    );
    assert!(lines[0].contains("\"/hwinit_test/panics\""), "{}", lines[0]);
    assert!(
        lines[0].contains("\"/ethdev/stats\""),
        "DPDK's own: {}",
        lines[0]
    );
    assert_eq!(
        lines[1],
        r#"{"/hwinit_test/counters": {"rx_pkts": 4242, "params": "abc", "worker": {"lcore": 1}}}"#
    );
    assert_eq!(lines[2], r#"{"/hwinit_test/panics": null}"#);
    assert_eq!(
        lines[3],
        r#"{"/hwinit_test/counters": {"rx_pkts": 4242, "params": "", "worker": {"lcore": 1}}}"#
    );
}
