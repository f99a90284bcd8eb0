//! Fuzz `Core::process` with structured frames, on two workers, in every
//! forwarding method (NAT, DR, TUN, FullNAT).
//!
//! The input does not become the frame: it drives the generator of
//! `dataplane/tests/common/framegen.rs` (shared with the proptest in
//! `dataplane/tests/robustness.rs`), which builds one to three frames to
//! the arrival port's MAC with correct checksums unless the input breaks
//! them, so most inputs get past stage `parse` and many create and use a
//! connection. A redirected frame is processed again on its owner, as the
//! ring between workers would.
//!
//! The snapshots and the eight cores (4 methods × two workers) are built once
//! per process, not per input: a core's neighbour table alone is 256 KiB.
//! State therefore carries over between inputs (connections, learnt
//! neighbours); the clock advances 100 ms per input and the slow tick runs
//! after each, so connections expire and the table does not stay full. A
//! crash that needs earlier inputs' state may not reproduce alone: replay
//! the corpus in order (`-runs` over the directory) to find it.
//!
//! Properties (asserted in `framegen::check`): no panic; a frame's length
//! never changes; every `Drop` is counted once and nothing else is counted
//! as a drop; a parse refusal is final; `Tx` only to a configured port; at
//! most one connection per frame; a frame is redirected at most once.
#![no_main]

use std::cell::RefCell;
use std::sync::OnceLock;

use dataplane::snapshot::{Method, Snapshot};
use dataplane::Core;
use libfuzzer_sys::fuzz_target;

#[path = "../../dataplane/tests/common/mod.rs"]
mod common;
use common::framegen;

/// Connections per core: small, so a full table is reachable too.
const MAX_CONNS: u32 = 4096;

fn snapshots() -> &'static [Snapshot; 4] {
    static SNAPS: OnceLock<[Snapshot; 4]> = OnceLock::new();
    SNAPS.get_or_init(|| Method::ALL.map(framegen::snapshot))
}

struct State {
    cores: [[Core; 2]; 4],
    now_ms: u64,
}

thread_local! {
    static STATE: RefCell<State> = RefCell::new(State {
        cores: std::array::from_fn(|m| framegen::cores(&snapshots()[m], MAX_CONNS)),
        now_ms: 0,
    });
}

fuzz_target!(|data: &[u8]| {
    let mut case = framegen::case(data);
    let snap = &snapshots()[case.method];
    STATE.with(|s| {
        let mut s = s.borrow_mut();
        s.now_ms += 100;
        let now = s.now_ms;
        let cores = &mut s.cores[case.method];
        framegen::drive(cores, snap, &mut case, now, |_| {});
        for core in cores.iter_mut() {
            core.tick(snap, now, 256);
            core.arp_out.clear();
        }
    });
});
