//! How far the results are written: the low-water mark that a checkpoint may not pass
//! (docs/design.md, "Checkpoints cover only what is stored").
//!
//! A result is somewhere between the receive ring and the sinks: in the results queue, in the
//! banner grabber or the version worker (seconds, while a service talks), in the traceroute
//! table or the silence record (until the end of the scan), or in a sink's own buffer. The
//! receive thread sends a mark through the results queue when it has emptied its ring: every
//! reply read before the mark is then either ahead of the mark in the queue or registered here
//! as held, under the time of its reply. The output thread, which writes in queue order and is
//! the only one that releases holds, tells the sinks the mark lowered to the oldest hold; a sink
//! lowers it again to the oldest result it buffers (`cluster::publish`).

use std::{
    collections::BTreeMap,
    sync::Mutex,
    time::{SystemTime, UNIX_EPOCH},
};

/// Milliseconds since the epoch.
pub(crate) fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() as u64
}

/// Results held off the results queue, by the time (ms) of the reply each came from.
#[derive(Debug, Default)]
pub(crate) struct Holds {
    held: Mutex<BTreeMap<u64, u32>>,
}

impl Holds {
    pub(crate) fn hold(&self, ms: u64) {
        *self.lock().entry(ms).or_default() += 1;
    }

    /// Ends one hold taken at `ms` (a release without a hold is ignored).
    pub(crate) fn release(&self, ms: u64) {
        let mut held = self.lock();
        if let Some(n) = held.get_mut(&ms) {
            *n -= 1;
            if *n == 0 {
                held.remove(&ms);
            }
        }
    }

    /// The oldest reply whose result is still held.
    pub(crate) fn oldest(&self) -> Option<u64> {
        self.lock().keys().next().copied()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, u32>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The output thread's view: the receive thread's latest mark and the holds.
#[derive(Debug, Default)]
pub(crate) struct Watermark {
    mark: u64,
}

impl Watermark {
    /// A mark from the results queue (marks only move forward).
    pub(crate) fn saw(&mut self, mark: u64) {
        self.mark = self.mark.max(mark);
    }

    /// Every result of a reply read before this time has been handed to the sinks.
    pub(crate) fn safe(&self, holds: &Holds) -> u64 {
        holds.oldest().map_or(self.mark, |h| h.min(self.mark))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_hold_keeps_the_mark_back_until_released() {
        let h = Holds::default();
        let mut w = Watermark::default();
        w.saw(5_000);
        assert_eq!(w.safe(&h), 5_000);
        h.hold(3_000);
        h.hold(3_000);
        h.hold(4_000);
        w.saw(4_500); // never backwards
        assert_eq!(w.safe(&h), 3_000);
        h.release(3_000);
        assert_eq!(w.safe(&h), 3_000, "two holds at 3 s, one left");
        h.release(3_000);
        assert_eq!(w.safe(&h), 4_000);
        h.release(9_999); // none there: no effect
        h.release(4_000);
        assert_eq!(w.safe(&h), 5_000);
    }
}
