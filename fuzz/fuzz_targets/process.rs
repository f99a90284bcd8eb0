//! Fuzz `Core::process` with arbitrary frames on every port, in NAT and DR.
//!
//! The first byte picks the port, the forwarding method and whether the frame
//! counts as redirected; the rest is the frame. Any panic is a defect: every
//! byte pattern must end in a verdict, and every drop in a counter.
#![no_main]

use dataplane::process::{Core, Verdict};
use dataplane::snapshot::Method;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&ctl, rest)) = data.split_first() else {
        return;
    };
    let method = if ctl & 1 == 0 {
        Method::Nat
    } else {
        Method::Dr
    };
    let snap = fulcrum_benches::nat_snapshot(3, method);
    let mut core = Core::new(u16::from(ctl >> 7), 2, 64);
    core.sync(&snap);
    let mut frame = rest.to_vec();
    let port = (ctl >> 1) & 3;
    let before = core.stats.total_drops();
    let v = core.process(&snap, &mut frame, port, 0, ctl & 0x40 != 0);
    if let Verdict::Drop(_) = v {
        assert_eq!(core.stats.total_drops(), before + 1);
    }
    assert_eq!(
        frame.len(),
        rest.len(),
        "process never changes a frame's length"
    );
    core.tick(&snap, 1_000_000, 64);
});
