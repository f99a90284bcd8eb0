//! FullNAT's client address methods, golden: PROXY protocol v2 and TOA
//! segments through one worker, each output compared byte for byte with a
//! frame built by scapy (tests' independent builder; the hex below was
//! generated with scapy 2.x `bytes(Ether()/IP()/TCP(...))`, full checksums
//! included), so the incremental checksum updates, the sequence and
//! acknowledgment shifts, the SACK edges, the MSS clamp and the inserted
//! bytes are all checked. Then the owner property with 2 workers: a
//! FullNAT reply lands on the worker that booked its lport.

use dataplane::frame::Frame;
use dataplane::owner::owner;
use dataplane::snapshot::*;
use dataplane::{Core, Verdict};

mod common;
use common::*;

/// (name, input frame, expected output frame), hex; scapy-built.
const ROWS: &[(&str, &str, &str)] = &[
    ("syn", "02000000000102cc0000000208004500002c00000000400666670a0000020a0000649c400050000003e8000000006002ffffe3480000020405b4", ""),
    ("pp_synack", "02000000010102aa0000000b08004500003000000000400666580a01000b0a0100641f90040000001388000003e97012ffff349f0000020405b404020000", "02cc00000002020000000001080045000030000000003f0667630a0000640a00000200509c4000001388000003e97012ffffbbc500000204059804020000"),
    ("pp_ack", "02000000000102cc00000002080045000028000000004006666b0a0000020a0000649c400050000003e9000013895010ffffe76c0000", "02aa0000000b020000000101080045000028000000003f0667600a0100640a01000b04001f90000003e9000013895010ffff60620000"),
    ("pp_first_data", "02000000000102cc0000000208004500003a00000000400666590a0000020a0000649c400050000003e9000013895018ffff08b30000474554202f20485454502f312e300d0a0d0a", "02aa0000000b020000000101080045000056000000003f0667320a0100640a01000b04001f90000003e9000013895018ffffe1b200000d0a0d0a000d0a515549540a2111000c0a0000020a0000649c400050474554202f20485454502f312e300d0a0d0a"),
    ("pp_second_data", "02000000000102cc0000000208004500002c00000000400666670a0000020a0000649c400050000003fb000013895018ffff077a00006d6f7265", "02aa0000000b02000000010108004500002c000000003f06675c0a0100640a01000b04001f9000000417000013895018ffff805300006d6f7265"),
    ("pp_rs_ack_sack", "02000000010102aa0000000b08004500003c000000004006664c0a01000b0a0100641f9004000000138900000417a010fffff9640000010105120000041b000004250000042f00000439", "02cc0000000202000000000108004500003c000000003f0667570a0000640a00000200509c4000001389000003fba010ffff80fb000001010512000003ff00000409000004130000041d"),
    ("pp_rs_ack_inside_header", "02000000010102aa0000000b08004500002800000000400666600a01000b0a0100641f90040000001389000003f25010ffff60590000", "02cc00000002020000000001080045000028000000003f06676b0a0000640a00000200509c4000001389000003e95010ffffe76c0000"),
    ("toa_synack", "02000000010102aa0000000b08004500002c000000004006665c0a01000b0a0100641f90040000001388000003e96012ffff48a50000020405b4", "02cc0000000202000000000108004500002c000000003f0667670a0000640a00000200509c4000001388000003e96012ffffcfb70000020405ac"),
    ("toa_ack", "02000000000102cc00000002080045000034000000004006665f0a0000020a0000649c400050000003e9000013898010ffffae4500000101080a0000000700000009", "02aa0000000b02000000010108004500003c000000003f06674c0a0100640a01000b04001f90000003e900001389a010ffff62e70000fe089c400a0000020101080a0000000700000009"),
    ("toa_first_data", "02000000000102cc0000000208004500003a00000000400666590a0000020a0000649c400050000003e9000013895018ffff08b30000474554202f20485454502f312e300d0a0d0a", "02aa0000000b020000000101080045000042000000003f0667460a0100640a01000b04001f90000003e9000013897018ffffbd540000fe089c400a000002474554202f20485454502f312e300d0a0d0a"),
    ("toa_second_data", "02000000000102cc0000000208004500002c00000000400666670a0000020a0000649c400050000003fb000013895018ffff077a00006d6f7265", "02aa0000000b02000000010108004500002c000000003f06675c0a0100640a01000b04001f90000003fb000013895018ffff806f00006d6f7265"),
    ("toa_full_options", "02000000000102cc0000000208004500005000000000400666430a0000020a0000649c400050000003e900001389f010ffff301b00000101080a000000070000000901010101010101010101010101010101010101010101010101010101", "02aa0000000b020000000101080045000050000000003f0667380a0100640a01000b04001f90000003e900001389f010ffffa91000000101080a000000070000000901010101010101010101010101010101010101010101010101010101"),

];

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn row(name: &str) -> (Vec<u8>, Vec<u8>) {
    let &(_, i, o) = ROWS.iter().find(|r| r.0 == name).expect(name);
    (hex(i), hex(o))
}

fn snap(ca: ClientAddress) -> Snapshot {
    let mut s = snapshot(Method::FullNat, true);
    for svc in &mut s.services {
        svc.client_address = ca;
    }
    s
}

/// Runs row `name` through `core` with 128 bytes of tailroom; checks the
/// verdict and, when the row has one, the output bytes.
fn check(core: &mut Core, s: &Snapshot, name: &str) {
    let (input, want) = row(name);
    let in_port = if input[6..12] == RS1_MAC { 1 } else { 0 };
    let mut buf = input.clone();
    buf.resize(input.len() + 128, 0);
    let mut f = Frame::new(&mut buf, input.len());
    let v = core.process_frame(s, &mut f, in_port, 1, false);
    let len = f.len();
    assert_eq!(v, Verdict::Tx(1 - in_port), "{name}: verdict");
    if !want.is_empty() {
        assert_eq!(
            hex_of(&buf[..len]),
            hex_of(&want),
            "{name}: output bytes (got, want)"
        );
    }
}

fn hex_of(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn test_proxy_v2_golden() {
    let s = snap(ClientAddress::ProxyV2);
    let mut core = Core::new(0, 1, 1024);
    core.sync(&s);
    for name in [
        "syn",
        "pp_synack",
        "pp_ack",
        "pp_first_data",
        // A retransmission of the first segment carries the header again.
        "pp_first_data",
        "pp_second_data",
        "pp_rs_ack_sack",
        "pp_rs_ack_inside_header",
    ] {
        check(&mut core, &s, name);
    }
    assert_eq!(core.stats.fullnat_proxy_sent, 2);
    assert_eq!(core.stats.fullnat_toa_sent, 0);
}

#[test]
fn test_toa_golden() {
    let s = snap(ClientAddress::Toa);
    let mut core = Core::new(0, 1, 1024);
    core.sync(&s);
    for name in [
        "syn",
        "toa_synack",
        "toa_ack",
        "toa_first_data",
        "toa_second_data",
        "toa_full_options",
    ] {
        check(&mut core, &s, name);
    }
    assert_eq!(core.stats.fullnat_toa_sent, 2);
    assert_eq!(core.stats.fullnat_toa_no_space, 1);
    assert_eq!(core.stats.fullnat_proxy_sent, 0);
}

#[test]
fn test_no_client_address_leaves_segments_alone() {
    // Without a method the first data segment only gets its addresses
    // rewritten: the PROXY row's input, the plain rewrite's output.
    let s = snap(ClientAddress::None);
    let mut core = Core::new(0, 1, 1024);
    core.sync(&s);
    check(&mut core, &s, "syn");
    check(&mut core, &s, "toa_second_data");
    assert_eq!(
        core.stats.fullnat_proxy_sent + core.stats.fullnat_toa_sent,
        0
    );
}

/// Two workers: each books only lports it owns, so the real server's reply
/// (sharded by its destination LIP:lport) needs no redirect on the owner,
/// and another worker hands it straight to the owner.
#[test]
fn test_two_workers_reply_lands_on_owner() {
    let mut s = snap(ClientAddress::None);
    // One real server, so that every reply comes from RIP1:8080.
    s.services[0].reals = vec![1];
    let mut cores: Vec<Core> = (0..2).map(|w| Core::new(w, 2, 1024)).collect();
    for c in &mut cores {
        c.sync(&s);
    }
    let (syn, _) = row("syn");
    let (reply, _) = row("pp_rs_ack_inside_header");
    for cport in 40000u16..40040 {
        let w = owner(ip(CIP), cport, 2);
        let mut f = syn.clone();
        f[34..36].copy_from_slice(&cport.to_be_bytes());
        // The TCP checksum follows the port change (RFC 1624 by hand).
        let c = u16::from_be_bytes([f[50], f[51]]);
        let sum = u32::from(!c) + u32::from(!40000u16) + u32::from(cport);
        let sum = (sum & 0xffff) + (sum >> 16);
        let sum = (sum & 0xffff) + (sum >> 16);
        f[50..52].copy_from_slice(&(!(sum as u16)).to_be_bytes());
        let v = cores[usize::from(w)].process(&s, &mut f, 0, 0, false);
        assert_eq!(v, Verdict::Tx(1), "SYN from {cport}");
        let lport = u16::from_be_bytes([f[34], f[35]]);
        assert_eq!(owner(ip(LIP), lport, 2), w, "lport {lport} of worker {w}");
        // The reply to that lport (only ports and the checksum field are
        // read before the lookup; established traffic is not verified).
        let mut r = reply.clone();
        r[36..38].copy_from_slice(&lport.to_be_bytes());
        let mut other = r.clone();
        assert_eq!(
            cores[usize::from(1 - w)].process(&s, &mut other, 1, 0, false),
            Verdict::Redirect(w)
        );
        assert_eq!(
            cores[usize::from(w)].process(&s, &mut r, 1, 0, false),
            Verdict::Tx(0)
        );
        assert_eq!(u16::from_be_bytes([r[36], r[37]]), cport);
    }
    assert!(
        cores.iter().all(|c| c.conns.len() > 5),
        "both workers took connections"
    );
}
