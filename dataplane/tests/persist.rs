//! Persistence through `Core::process`: client SYNs in, rewritten frames
//! out, with the real server each one went to read from the bytes.
//!
//! Covers the IPVS `ip_vs_sched_persist()` behaviours fulcrum mirrors:
//! template reuse, netmask grouping, expiry and refresh, port-0 services,
//! quiesced and removed real servers, the full table, and the replication
//! between two workers' cores (the worker-loop version is in `worker.rs`).

use dataplane::persist::{Template, TemplateFact, TemplateKey, TemplateTable};
use dataplane::pipeline::{Core, Verdict};
use dataplane::snapshot::*;
use etherparse::PacketBuilder;

mod common;
use common::*;

/// TCP service 0 (VIP:80, rr over RIP1/RIP2 :8080, NAT) made persistent.
fn persistent(mask: u32, timeout_ms: u32) -> Snapshot {
    let mut s = snapshot(Method::Nat, true);
    s.services[0].persistence = Some(Persistence { timeout_ms, mask });
    s
}

fn core(s: &Snapshot) -> Core {
    let mut c = Core::new(0, 1, 1024);
    c.sync(s);
    c
}

/// A client SYN from `cip:cport` to the VIP's `dport`, as the client's
/// kernel would send it (checksums computed by etherparse).
fn syn(cip: [u8; 4], cport: u16, dport: u16) -> Vec<u8> {
    let mut v = Vec::new();
    PacketBuilder::ethernet2(CLIENT_MAC, OUT_MAC)
        .ipv4(cip, VIP, 64)
        .tcp(cport, dport, 7, 64240)
        .syn()
        .write(&mut v, &[])
        .unwrap();
    v
}

/// Sends a SYN through `c` and returns the real server it went to (RIP and
/// destination port, read from the forwarded frame).
fn send(
    c: &mut Core,
    s: &Snapshot,
    cip: [u8; 4],
    cport: u16,
    dport: u16,
    now: u64,
) -> ([u8; 4], u16) {
    let mut f = syn(cip, cport, dport);
    assert_eq!(
        c.process(s, &mut f, 0, now, false),
        Verdict::Tx(1),
        "SYN forwarded"
    );
    (
        [f[30], f[31], f[32], f[33]],
        u16::from_be_bytes([f[36], f[37]]),
    )
}

#[test]
fn test_template_reuse_byte_exact() {
    let s = persistent(u32::MAX, 300_000);
    let mut c = core(&s);
    // The first SYN is scheduled (rr: RIP1) and creates the template; the
    // rewritten frame is exactly a NAT'd SYN.
    let mut f = syn(CIP, 40000, 80);
    assert_eq!(c.process(&s, &mut f, 0, 0, false), Verdict::Tx(1));
    let mut want = Vec::new();
    PacketBuilder::ethernet2(IN_MAC, RS1_MAC)
        .ipv4(CIP, RIP1, 63)
        .tcp(40000, 8080, 7, 64240)
        .syn()
        .write(&mut want, &[])
        .unwrap();
    assert_eq!(f, want);
    assert_eq!(c.stats.persist_templates, 1);
    // Without persistence rr would alternate; with it, every new connection
    // of this client goes to RIP1.
    for p in 1..20 {
        assert_eq!(send(&mut c, &s, CIP, 40000 + p, 80, p as u64), (RIP1, 8080));
    }
    assert_eq!(c.stats.conns_created, 20);
    assert_eq!(c.reals[1].conns, 20);
    assert_eq!(c.reals[2].conns, 0);
    assert_eq!(c.stats.persist_templates, 1);
    // Another client is scheduled on its own: rr's next pick.
    assert_eq!(send(&mut c, &s, [10, 0, 0, 3], 40000, 80, 30), (RIP2, 8080));
    assert_eq!(c.stats.persist_templates, 2);
    assert_eq!(c.stats.persist_table_full, 0);
}

#[test]
fn test_netmask_groups_clients() {
    // /25: .2 and .60 share a template, .130 and .140 share another.
    let s = persistent(0xffff_ff80, 300_000);
    let mut c = core(&s);
    assert_eq!(send(&mut c, &s, [10, 0, 0, 2], 1000, 80, 0).0, RIP1);
    assert_eq!(send(&mut c, &s, [10, 0, 0, 130], 1000, 80, 1).0, RIP2);
    assert_eq!(send(&mut c, &s, [10, 0, 0, 60], 1001, 80, 2).0, RIP1);
    assert_eq!(send(&mut c, &s, [10, 0, 0, 140], 1001, 80, 3).0, RIP2);
    assert_eq!(send(&mut c, &s, [10, 0, 0, 127], 1002, 80, 4).0, RIP1);
    assert_eq!(c.stats.persist_templates, 2);
    let key = |cnet| TemplateKey {
        vip: ip(VIP),
        cnet,
        vport: 80,
        proto: 6,
    };
    assert_eq!(
        c.persist.lookup(&key(0x0a00_0000), 5).map(|t| t.rip),
        Some(ip(RIP1))
    );
    assert_eq!(
        c.persist.lookup(&key(0x0a00_0080), 5).map(|t| t.rip),
        Some(ip(RIP2))
    );
}

#[test]
fn test_expiry_and_refresh() {
    let s = persistent(u32::MAX, 10_000);
    let mut c = core(&s);
    assert_eq!(send(&mut c, &s, CIP, 1000, 80, 0).0, RIP1);
    // Each new connection through the template pushes its expiry to
    // now + 10 s: 18 s after creation it is still alive.
    assert_eq!(send(&mut c, &s, CIP, 1001, 80, 9_000).0, RIP1);
    assert_eq!(send(&mut c, &s, CIP, 1002, 80, 18_000).0, RIP1);
    // 10 s after the last use it has expired: rescheduled (rr's next pick).
    assert_eq!(send(&mut c, &s, CIP, 1003, 80, 28_000).0, RIP2);
    assert_eq!(send(&mut c, &s, CIP, 1004, 80, 28_001).0, RIP2);
    assert_eq!(c.stats.persist_templates, 1);
    // The tick's sweep removes an expired template nobody looks up, within
    // one pass over the slots (2048 here, SWEEP_SLOTS_PER_TICK a tick).
    let ticks = 2048 / dataplane::persist::SWEEP_SLOTS_PER_TICK;
    for _ in 0..ticks {
        c.tick(&s, 38_000, 4096);
    }
    assert_eq!(c.stats.persist_templates, 1, "expires at 38_001");
    for _ in 0..ticks {
        c.tick(&s, 38_001, 4096);
    }
    assert_eq!(c.stats.persist_templates, 0);
    assert!(c.persist.is_empty());
}

#[test]
fn test_port_zero_service_sends_all_ports_to_one_real_server() {
    let mut s = persistent(u32::MAX, 300_000);
    let all = ServiceKey {
        vip: ip(VIP),
        vport: 0,
        proto: Proto::Tcp,
    };
    s.service_index.remove(&s.services[0].key);
    s.service_index.insert(all, 0);
    s.services[0].key = all;
    s.reals[1].port = 0;
    s.reals[2].port = 0;
    let mut c = core(&s);
    let ports = [80u16, 443, 22, 8443, 5432];
    for (i, &dport) in ports.iter().enumerate() {
        // Every port keeps its number and goes to RIP1.
        assert_eq!(
            send(&mut c, &s, CIP, 2000 + i as u16, dport, i as u64),
            (RIP1, dport)
        );
    }
    for (i, &dport) in ports.iter().enumerate() {
        assert_eq!(
            send(
                &mut c,
                &s,
                [10, 0, 0, 3],
                2000 + i as u16,
                dport,
                10 + i as u64
            ),
            (RIP2, dport)
        );
    }
    assert_eq!(
        c.stats.persist_templates, 2,
        "one template per client, vport 0"
    );
}

#[test]
fn test_quiesced_real_server_keeps_its_template() {
    let mut s = persistent(u32::MAX, 300_000);
    let mut c = core(&s);
    assert_eq!(send(&mut c, &s, CIP, 3000, 80, 0).0, RIP1);
    // RIP1 quiesced (weight 0) by a reload: the client stays on it, as IPVS
    // does with expire_quiescent_template = 0; new clients avoid it.
    s.generation += 1;
    s.reals[1].weight = 0;
    assert!(c.sync(&s));
    assert_eq!(send(&mut c, &s, CIP, 3001, 80, 1).0, RIP1);
    assert_eq!(send(&mut c, &s, [10, 0, 0, 3], 3000, 80, 2).0, RIP2);
    assert_eq!(send(&mut c, &s, [10, 0, 0, 4], 3000, 80, 3).0, RIP2);
}

#[test]
fn test_removed_real_server_reschedules() {
    let mut s = persistent(u32::MAX, 300_000);
    let mut c = core(&s);
    assert_eq!(send(&mut c, &s, CIP, 4000, 80, 0).0, RIP1);
    // A reload that renumbers RIP1 (id 1 → 5) keeps the template: it names
    // RIP:rport, not the dense id.
    s.generation += 1;
    let moved = s.reals[1].clone();
    s.reals.push(moved);
    s.services[0].reals = vec![5, 2];
    assert!(c.sync(&s));
    assert_eq!(send(&mut c, &s, CIP, 4001, 80, 1).0, RIP1);
    assert_eq!(c.reals[5].conns, 1);
    // A reload that removes RIP1 from the service: rescheduled to RIP2 and
    // the template now names RIP2.
    s.generation += 1;
    s.services[0].reals = vec![2];
    assert!(c.sync(&s));
    assert_eq!(send(&mut c, &s, CIP, 4002, 80, 2).0, RIP2);
    s.generation += 1;
    s.services[0].reals = vec![5, 2];
    assert!(c.sync(&s));
    assert_eq!(
        send(&mut c, &s, CIP, 4003, 80, 3).0,
        RIP2,
        "template moved to RIP2"
    );
    assert_eq!(c.stats.persist_templates, 1);
}

#[test]
fn test_table_full_is_counted_not_dropped() {
    let s = persistent(u32::MAX, 300_000);
    let mut c = core(&s);
    c.persist = TemplateTable::new(2);
    assert_eq!(send(&mut c, &s, [10, 0, 0, 2], 5000, 80, 0).0, RIP1);
    assert_eq!(send(&mut c, &s, [10, 0, 0, 3], 5000, 80, 1).0, RIP2);
    // No room for a third client's template: scheduled without one.
    assert_eq!(send(&mut c, &s, [10, 0, 0, 4], 5000, 80, 2).0, RIP1);
    assert_eq!(c.stats.persist_table_full, 1);
    assert_eq!(c.stats.persist_templates, 2);
    assert_eq!(c.stats.total_drops(), 0);
    // Its next connection is scheduled again (rr moves on), counted again.
    assert_eq!(send(&mut c, &s, [10, 0, 0, 4], 5001, 80, 3).0, RIP2);
    assert_eq!(c.stats.persist_table_full, 2);
    // The clients with templates are unaffected.
    assert_eq!(send(&mut c, &s, [10, 0, 0, 3], 5001, 80, 4).0, RIP2);
}

#[test]
fn test_non_persistent_service_makes_no_template() {
    let s = snapshot(Method::Nat, true);
    let mut c = core(&s);
    assert_eq!(send(&mut c, &s, CIP, 6000, 80, 0).0, RIP1);
    assert_eq!(send(&mut c, &s, CIP, 6001, 80, 1).0, RIP2);
    assert!(c.persist.is_empty());
    assert!(c.template_out.is_empty());
}

/// Two workers' cores, with the template facts carried by hand.
fn pair(s: &Snapshot) -> (Core, Core) {
    let mut a = Core::new(0, 2, 1024);
    let mut b = Core::new(1, 2, 1024);
    a.sync(s);
    b.sync(s);
    (a, b)
}

/// Moves every queued template fact from `from` to `to`.
fn carry(s: &Snapshot, from: &mut Core, to: &mut Core, now: u64) -> usize {
    let facts: Vec<TemplateFact> = from.template_out.drain(..).collect();
    for f in &facts {
        to.learn_template(s, f, now);
    }
    facts.len()
}

/// A port of client `cip`, `from` or above, owned by worker `w` of 2.
fn port_of(cip: [u8; 4], w: u16, from: u16) -> u16 {
    (from..u16::MAX)
        .find(|&p| dataplane::owner::owner(ip(cip), p, 2) == w)
        .unwrap()
}

#[test]
fn test_replicated_template_is_used_by_the_other_worker() {
    let s = persistent(u32::MAX, 300_000);
    let (mut a, mut b) = pair(&s);
    // Worker b's rr would pick RIP2 next, if it scheduled.
    let other = [10, 0, 0, 9];
    assert_eq!(
        send(&mut b, &s, other, port_of(other, 1, 100), 80, 0).0,
        RIP1
    );
    b.template_out.clear();
    assert_eq!(send(&mut a, &s, CIP, port_of(CIP, 0, 7000), 80, 1).0, RIP1);
    assert_eq!(carry(&s, &mut a, &mut b, 2), 1);
    assert_eq!(b.stats.persist_templates, 2);
    assert_eq!(send(&mut b, &s, CIP, port_of(CIP, 1, 7000), 80, 3).0, RIP1);
    assert!(
        b.template_out.is_empty(),
        "a reused template is not re-sent"
    );
}

/// Two workers that both scheduled the client's first connection before
/// either template crossed: `a` picked RIP1 at t=10, `b` (whose rr had
/// already served another client) RIP2 at t=11.
fn conflict(s: &Snapshot) -> (Core, Core) {
    let (mut a, mut b) = pair(s);
    let other = [10, 0, 0, 9];
    assert_eq!(
        send(&mut b, s, other, port_of(other, 1, 100), 80, 0).0,
        RIP1
    );
    b.template_out.clear();
    assert_eq!(send(&mut a, s, CIP, port_of(CIP, 0, 8000), 80, 10).0, RIP1);
    assert_eq!(send(&mut b, s, CIP, port_of(CIP, 1, 8000), 80, 11).0, RIP2);
    (a, b)
}

#[test]
fn test_conflicting_templates_converge_on_the_older() {
    let s = persistent(u32::MAX, 300_000);
    let (mut a, mut b) = conflict(&s);
    // b's fact first: a keeps its older template and defends it.
    assert_eq!(carry(&s, &mut b, &mut a, 12), 1);
    assert_eq!(a.template_out.len(), 2, "its own fact, then the defence");
    assert_eq!(a.template_out[1].template.created_ms, 10);
    assert_eq!(carry(&s, &mut a, &mut b, 13), 2);
    assert!(b.template_out.is_empty(), "the winner needs no defence");
    for (w, core) in [(0u16, &mut a), (1, &mut b)] {
        let p = port_of(CIP, w, 9000);
        assert_eq!(send(core, &s, CIP, p, 80, 20).0, RIP1, "worker {w}");
    }
}

#[test]
fn test_conflicting_templates_converge_in_either_order() {
    let s = persistent(u32::MAX, 300_000);
    let (mut a, mut b) = conflict(&s);
    // a's fact first: b adopts it and has nothing to defend.
    assert_eq!(carry(&s, &mut a, &mut b, 12), 1);
    assert_eq!(b.template_out.len(), 1, "b's own fact only");
    // a still defends against b's stale fact; b already holds the winner.
    carry(&s, &mut b, &mut a, 13);
    assert_eq!(a.template_out.len(), 1);
    carry(&s, &mut a, &mut b, 14);
    assert!(b.template_out.is_empty());
    assert_eq!(send(&mut b, &s, CIP, port_of(CIP, 1, 9000), 80, 20).0, RIP1);
    assert_eq!(send(&mut a, &s, CIP, port_of(CIP, 0, 9000), 80, 20).0, RIP1);
}

#[test]
fn test_learn_ignores_unknown_service_and_real_server() {
    let s = persistent(u32::MAX, 300_000);
    let mut c = Core::new(1, 2, 1024);
    c.sync(&s);
    let t = Template {
        key: TemplateKey {
            vip: ip(VIP),
            cnet: ip(CIP),
            vport: 80,
            proto: 6,
        },
        rip: ip(RIP2),
        rport: 8080,
        creator: 0,
        created_ms: 5,
        expires_ms: 0,
    };
    let fact = |template| TemplateFact {
        template,
        timeout_ms: 1000,
    };
    // A real server this snapshot does not have, a service without
    // persistence (UDP :53), and a protocol fulcrum does not balance.
    c.learn_template(
        &s,
        &fact(Template {
            rip: ip([10, 1, 0, 99]),
            ..t
        }),
        0,
    );
    let mut udp = t;
    udp.key.vport = 53;
    udp.key.proto = 17;
    udp.rport = 5353;
    c.learn_template(&s, &fact(udp), 0);
    let mut junk = t;
    junk.key.proto = 1;
    c.learn_template(&s, &fact(junk), 0);
    assert!(c.persist.is_empty());
    // A good one is installed with the local expiry now + timeout.
    c.learn_template(&s, &fact(t), 100);
    assert_eq!(
        c.persist.lookup(&t.key, 100).map(|x| x.expires_ms),
        Some(1100)
    );
    assert_eq!(c.stats.persist_templates, 1);
}

/// The template table costs nothing until a snapshot has a persistent
/// service; then it is allocated once at full size.
#[test]
fn test_template_table_allocated_only_for_persistent_snapshots() {
    let plain = snapshot(Method::Nat, true);
    let mut c = Core::new(0, 1, 1 << 20);
    c.sync(&plain);
    assert_eq!(
        c.persist.capacity(),
        1,
        "no persistent service: placeholder"
    );
    let mut s = persistent(u32::MAX, 300_000);
    s.generation = plain.generation + 1;
    c.sync(&s);
    assert_eq!(
        c.persist.capacity(),
        dataplane::persist::max_templates_for(1 << 20)
    );
    assert_eq!(send(&mut c, &s, [10, 0, 0, 2], 5000, 80, 0).0, RIP1);
    assert_eq!(c.persist.len(), 1);
}
