//! The pipeline's entry points: one frame ([`Core::process`],
//! [`Core::process_frame`]), one packet buffer ([`Core::process_buf`]) or a
//! burst of them ([`Core::process_burst`]), and the counting that brackets
//! the stages (`rx_*`, one drop reason per dropped frame).
//!
//! Layer: dataplane pipeline, called by the worker loop and by tests with
//! byte arrays. A packet buffer's frame is handed to the stages with the
//! buffer's tailroom ([`PacketBuf::room_mut`]), so a method that grows the
//! frame (a tunnel's outer header, PROXY v2, an ICMP error) can; the
//! buffer's data length then follows the frame's.

use hwinit::PacketBuf;

use crate::frame::Frame;
use crate::snapshot::Snapshot;
use crate::stats::DropReason;

use super::parse::{self, Parsed};
use super::{Core, Ctx, Verdict, MAX_BURST};

impl Core {
    /// Processes one frame that arrived on port `in_port`, in place, when
    /// its buffer has no room to grow: a rewrite that must change the
    /// length (a tunnel's outer header, an ICMP error) is refused as it
    /// would be on a full mbuf. Use [`Core::process_frame`] to see length
    /// changes.
    ///
    /// `frame` is the whole Ethernet frame (no FCS). `now_ms` is the worker's
    /// monotonic clock in milliseconds. `redirected` is true when another
    /// worker already classified the frame and moved it here; such a frame is
    /// never redirected again. Counts `rx_*` only for frames from a port
    /// (`redirected == false`); `tx_*` are counted by the loop that sends.
    pub fn process(
        &mut self,
        snap: &Snapshot,
        frame: &mut [u8],
        in_port: u8,
        now_ms: u64,
        redirected: bool,
    ) -> Verdict {
        self.process_frame(snap, &mut Frame::fixed(frame), in_port, now_ms, redirected)
    }

    /// [`Core::process`] on a [`Frame`] whose buffer may have tailroom: the
    /// frame's final length (grown, shrunk or unchanged) is `frame.len()`
    /// when this returns.
    pub fn process_frame(
        &mut self,
        snap: &Snapshot,
        frame: &mut Frame<'_>,
        in_port: u8,
        now_ms: u64,
        redirected: bool,
    ) -> Verdict {
        let parsed = self.parse(snap, frame.bytes(), in_port);
        self.act(
            snap,
            frame,
            parsed.as_ref().map_err(|&r| r),
            in_port,
            now_ms,
            redirected,
        )
    }

    /// [`Core::process_frame`] on a packet buffer: the buffer's length
    /// follows the frame's.
    pub fn process_buf<B: PacketBuf>(
        &mut self,
        snap: &Snapshot,
        buf: &mut B,
        in_port: u8,
        now_ms: u64,
        redirected: bool,
    ) -> Verdict {
        let parsed = self.parse(snap, buf.data(), in_port);
        self.act_buf(
            snap,
            buf,
            parsed.as_ref().map_err(|&r| r),
            in_port,
            now_ms,
            redirected,
        )
    }

    /// Processes a burst of frames from port `in_port` in stages: `parse`
    /// for every frame, then the connection table's index and entry lines of
    /// every TCP/UDP frame are prefetched, then each frame goes through the
    /// remaining stages in order. `verdicts[i]` receives frame `i`'s verdict.
    /// Processes `min(bufs.len(), verdicts.len(), MAX_BURST)` frames; the
    /// same results as calling [`Core::process_buf`] on each in turn (so a
    /// method that grows the frame can use the buffer's tailroom, which
    /// [`Core::process`] refuses).
    pub fn process_burst<B: PacketBuf>(
        &mut self,
        snap: &Snapshot,
        bufs: &mut [B],
        in_port: u8,
        now_ms: u64,
        redirected: bool,
        verdicts: &mut [Verdict],
    ) -> usize {
        let n = bufs.len().min(verdicts.len()).min(MAX_BURST);
        let port = snap.ports.get(usize::from(in_port));
        // Never None between bursts; the fallback allocates once if it were.
        let mut burst = self
            .burst
            .take()
            .unwrap_or_else(|| Box::new([Parsed::EMPTY; MAX_BURST]));
        for ((p, refused), buf) in burst
            .iter_mut()
            .zip(self.refused.iter_mut())
            .zip(&bufs[..n])
        {
            *refused = match port {
                Some(port) => parse::parse_into(buf.data(), port, &self.conns, p).err(),
                None => Some(DropReason::BadPort),
            };
            if refused.is_none() && p.has_ports() {
                self.conns.prefetch_index(p.hash);
            }
        }
        for (p, refused) in burst[..n].iter().zip(&self.refused[..n]) {
            if refused.is_none() && p.has_ports() {
                self.conns.prefetch_entry(p.hash);
            }
        }
        for i in 0..n {
            let parsed = match self.refused[i] {
                None => Ok(&burst[i]),
                Some(r) => Err(r),
            };
            verdicts[i] = self.act_buf(snap, &mut bufs[i], parsed, in_port, now_ms, redirected);
        }
        self.burst = Some(burst);
        n
    }

    /// [`Core::act`] on a packet buffer, parsed as `parsed`: the stages see
    /// the buffer's tailroom, and the buffer's length follows the frame's.
    #[inline]
    fn act_buf<B: PacketBuf>(
        &mut self,
        snap: &Snapshot,
        buf: &mut B,
        parsed: Result<&Parsed, DropReason>,
        in_port: u8,
        now_ms: u64,
        redirected: bool,
    ) -> Verdict {
        let len = buf.data().len();
        let mut frame = Frame::new(buf.room_mut(), len);
        let v = self.act(snap, &mut frame, parsed, in_port, now_ms, redirected);
        let new_len = frame.len();
        if new_len != len {
            // Within the room by Frame's contract, so this cannot fail.
            buf.set_data_len(new_len);
        }
        v
    }

    /// Every stage after `parse`, with the counting that brackets them.
    #[inline]
    fn act(
        &mut self,
        snap: &Snapshot,
        frame: &mut Frame<'_>,
        parsed: Result<&Parsed, DropReason>,
        in_port: u8,
        now_ms: u64,
        redirected: bool,
    ) -> Verdict {
        if !redirected {
            self.stats.rx_pkts += 1;
            self.stats.rx_bytes += frame.len() as u64;
        }
        let v = match (parsed, snap.ports.get(usize::from(in_port))) {
            (Ok(p), Some(port)) => {
                let ctx = Ctx {
                    snap,
                    port,
                    in_port,
                    now_ms,
                    redirected,
                };
                self.stages(&ctx, frame, p).unwrap_or_else(Verdict::Drop)
            }
            (Err(r), _) => Verdict::Drop(r),
            (Ok(_), None) => Verdict::Drop(DropReason::BadPort),
        };
        if let Verdict::Drop(r) = v {
            if r == DropReason::L4ChecksumPartial {
                self.stats.partial_csum_ports |= 1u64 << (in_port & 63);
            }
            self.stats.drop(r);
        }
        v
    }
}
