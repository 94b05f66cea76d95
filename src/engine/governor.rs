//! `--rate 0`: as fast as the receive side keeps up without loss (docs/design.md, "Rate
//! governor"). The receive thread watches what only it can see, the kernel's drop counter for its
//! ring and how full the ring was when it read it, and sets a send limit the transmit threads
//! obey. Silence never slows the scan: only loss or a filling ring does, so a dark network (or
//! the sink lab) gets the full transmit rate.
//!
//! Whatever the rate, results never wait in memory without bound: when the writer falls behind
//! (a slow disk, a pipe nobody reads), the receive thread pauses the senders until the writer has
//! caught up, so the replies already in flight fit in what is left of the queue.
//!
//! The control is AIMD on the measured send rate: a tick with drops cuts the limit to 3/4 of what
//! was actually sent; a tick with a ring more than half full holds it; a clean tick raises it by
//! 1/16; a limit far above what the transmit side reaches is lifted altogether.

use std::{
    sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed},
    time::{Duration, Instant},
};

/// How often the receive thread reconsiders the limit.
pub(crate) const TICK: Duration = Duration::from_millis(20);
/// The lowest limit a cut can reach (probes per second, all threads).
const FLOOR_PPS: u64 = 10_000;

/// Shared by the receive thread (which decides) and the transmit threads (which obey).
#[derive(Debug, Default)]
pub(crate) struct Governor {
    /// Whether the governor runs at all (only at `--rate 0`).
    pub(crate) active: bool,
    /// Probes per second over all threads; 0 = no limit.
    limit: AtomicU64,
    /// How many times it cut the rate.
    cuts: AtomicU64,
    /// The lowest limit it set (0 = never limited).
    lowest: AtomicU64,
    /// The senders wait: the writer is behind (any rate, see the module's doc).
    paused: AtomicBool,
    pauses: AtomicU64,
}

/// What the governor decided: the metadata's plain record of it.
pub(crate) use crate::output::metadata::GovernorReport;

impl Governor {
    pub(crate) fn new(active: bool) -> Self {
        Self {
            active,
            ..Self::default()
        }
    }

    /// The current limit over all threads (0 = none).
    #[inline]
    pub(crate) fn limit(&self) -> u64 {
        self.limit.load(Relaxed)
    }

    pub(crate) fn report(&self) -> GovernorReport {
        GovernorReport {
            final_limit_pps: self.limit(),
            lowest_limit_pps: self.lowest.load(Relaxed),
            cuts: self.cuts.load(Relaxed),
            pauses: self.pauses.load(Relaxed),
        }
    }

    /// Whether the senders must wait for the writer.
    #[inline]
    pub(crate) fn paused(&self) -> bool {
        self.paused.load(Relaxed)
    }

    /// Pauses the senders when `queued` results reach 3/4 of `capacity`, lets them go again
    /// below 1/2.
    #[inline]
    pub(crate) fn backpressure(&self, queued: usize, capacity: usize) {
        let paused = self.paused();
        if !paused && queued >= capacity / 4 * 3 {
            self.paused.store(true, Relaxed);
            self.pauses.fetch_add(1, Relaxed);
        } else if paused && queued < capacity / 2 {
            self.paused.store(false, Relaxed);
        }
    }

    fn set(&self, pps: u64) {
        self.limit.store(pps, Relaxed);
        if pps > 0 {
            let low = self.lowest.load(Relaxed);
            if low == 0 || pps < low {
                self.lowest.store(pps, Relaxed);
            }
        }
    }
}

/// The receive thread's side: measures a tick and moves the limit.
#[derive(Debug)]
pub(crate) struct Controller {
    last: Instant,
    sent: u64,
    drops: u64,
    /// The fullest the ring was seen this tick, as a fraction of its size.
    fullest: f64,
    /// The highest send rate measured while limited: a limit well above it is not binding.
    peak: f64,
}

impl Controller {
    pub(crate) fn new(sent: u64, drops: u64) -> Self {
        Self {
            last: Instant::now(),
            sent,
            drops,
            fullest: 0.0,
            peak: 0.0,
        }
    }

    /// Records how full the ring was at one read (`taken` of `ring` descriptors).
    #[inline]
    pub(crate) fn saw_ring(&mut self, taken: usize, ring: usize) {
        let f = taken as f64 / ring.max(1) as f64;
        if f > self.fullest {
            self.fullest = f;
        }
    }

    /// Whether a tick is due.
    #[inline]
    pub(crate) fn due(&self) -> bool {
        self.last.elapsed() >= TICK
    }

    /// Ends a tick with the counters as they stand now.
    pub(crate) fn tick(&mut self, g: &Governor, sent: u64, drops: u64) {
        let dt = self.last.elapsed().as_secs_f64().max(1e-6);
        let rate = sent.saturating_sub(self.sent) as f64 / dt;
        let dropped = drops > self.drops;
        let full = self.fullest > 0.5;
        (self.last, self.sent, self.drops, self.fullest) = (Instant::now(), sent, drops, 0.0);
        if !g.active {
            return;
        }
        let limit = g.limit();
        if dropped {
            // Cut below what was really sent: the limit may have been far above it.
            let base = if limit == 0 {
                rate
            } else {
                rate.min(limit as f64)
            };
            g.set(((base * 0.75) as u64).max(FLOOR_PPS));
            g.cuts.fetch_add(1, Relaxed);
            return;
        }
        if limit == 0 || full {
            return;
        }
        self.peak = self.peak.max(rate);
        let raised = limit + (limit / 16).max(1);
        // A limit twice what the senders reached binds nothing: lift it.
        if self.peak > 0.0 && raised as f64 > 2.0 * self.peak && rate < 0.6 * limit as f64 {
            g.set(0);
            self.peak = 0.0;
        } else {
            g.set(raised);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tick(c: &mut Controller, g: &Governor, sent: &mut u64, pps: u64, drops: u64) {
        c.last = Instant::now() - Duration::from_millis(100);
        *sent += pps / 10;
        c.tick(g, *sent, drops);
    }

    #[test]
    fn silence_never_slows_and_drops_cut_below_the_sent_rate() {
        let g = Governor::new(true);
        let mut c = Controller::new(0, 0);
        let mut sent = 0;
        // A dark network: nothing received, nothing dropped: no limit.
        for _ in 0..10 {
            tick(&mut c, &g, &mut sent, 2_000_000, 0);
        }
        assert_eq!(g.limit(), 0);
        // Drops at 2 Mpps: the limit goes to 3/4 of what was sent.
        tick(&mut c, &g, &mut sent, 2_000_000, 100);
        let l = g.limit();
        assert!((1_400_000..=1_600_000).contains(&l), "{l}");
        // Clean ticks raise it again, a full ring holds it.
        tick(&mut c, &g, &mut sent, l, 100);
        assert!(g.limit() > l);
        let held = g.limit();
        c.saw_ring(3000, 4096);
        tick(&mut c, &g, &mut sent, held, 100);
        assert_eq!(g.limit(), held);
        assert_eq!(g.report().cuts, 1);
        assert_eq!(g.report().lowest_limit_pps, l);
    }

    #[test]
    fn a_limit_the_senders_never_reach_is_lifted() {
        let g = Governor::new(true);
        let mut c = Controller::new(0, 0);
        let mut sent = 0;
        tick(&mut c, &g, &mut sent, 1_000_000, 1);
        assert!(g.limit() > 0);
        // The senders stay near 700 kpps while the limit climbs: once it is twice that, it goes.
        for _ in 0..40 {
            tick(&mut c, &g, &mut sent, 700_000, 1);
        }
        assert_eq!(g.limit(), 0);
    }

    #[test]
    fn a_lagging_writer_pauses_the_senders_with_hysteresis() {
        let g = Governor::new(false);
        g.backpressure(100, 1000);
        assert!(!g.paused());
        g.backpressure(750, 1000);
        assert!(g.paused());
        g.backpressure(600, 1000);
        assert!(g.paused(), "still above half");
        g.backpressure(499, 1000);
        assert!(!g.paused());
        assert_eq!(g.report().pauses, 1);
    }

    #[test]
    fn inactive_never_limits() {
        let g = Governor::new(false);
        let mut c = Controller::new(0, 0);
        let mut sent = 0;
        tick(&mut c, &g, &mut sent, 1_000_000, 1_000);
        assert_eq!(g.limit(), 0);
    }
}
