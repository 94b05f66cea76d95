//! Counters shared by the engine's threads, read by the monitor once a second.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::probe::PortState;

#[derive(Debug, Default)]
pub(crate) struct Stats {
    /// Probes handed to the transport.
    pub(crate) sent: AtomicU64,
    /// Cycle positions walked (skipped ones included), for progress.
    pub(crate) walked: AtomicU64,
    /// Frames received by the receive thread.
    pub(crate) received: AtomicU64,
    /// Replies that validated against a cookie.
    pub(crate) validated: AtomicU64,
    /// Frames to our port range that failed validation, or that no scanned protocol reads.
    pub(crate) invalid: AtomicU64,
    /// IP frames that reached the receive thread but do not parse (truncated headers, lying
    /// lengths, bad IHL or checksum, later fragments).
    pub(crate) malformed: AtomicU64,
    /// Validated replies for an (address, port) already reported.
    pub(crate) duplicates: AtomicU64,
    /// Frames the kernel dropped before we could read them.
    pub(crate) drops: AtomicU64,
    /// Banners collected (`--banners`, `-sV`).
    pub(crate) banners: AtomicU64,
    /// Open ports reported without a banner: the connection table was full.
    pub(crate) banners_skipped: AtomicU64,
    /// Results per state, in `PortState::ALL` order.
    pub(crate) states: [AtomicU64; PortState::ALL.len()],
}

impl Stats {
    pub(crate) fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Relaxed);
    }
    pub(crate) fn get(c: &AtomicU64) -> u64 {
        c.load(Relaxed)
    }
    pub(crate) fn count_state(&self, s: PortState) {
        self.states[s.index()].fetch_add(1, Relaxed);
    }
    /// A result counted as `from` turned out `to` (a silent UDP port answered -sV's probe).
    pub(crate) fn recount_state(&self, from: PortState, to: PortState) {
        self.states[from.index()].fetch_sub(1, Relaxed);
        self.states[to.index()].fetch_add(1, Relaxed);
    }
    pub(crate) fn state(&self, s: PortState) -> u64 {
        self.states[s.index()].load(Relaxed)
    }
    /// Every counter, in a fixed order: what a worker's shard process reports to the worker.
    pub(crate) fn counts(&self) -> Vec<u64> {
        self.counters().map(|c| c.load(Relaxed)).collect()
    }
    /// Sets every counter from `counts` (made by [`Stats::counts`]).
    pub(crate) fn set_counts(&self, counts: &[u64]) {
        for (c, n) in self.counters().zip(counts) {
            c.store(*n, Relaxed);
        }
    }
    fn counters(&self) -> impl Iterator<Item = &AtomicU64> {
        // Destructured: a counter added to the struct and not here does not compile.
        let Stats {
            sent,
            walked,
            received,
            validated,
            invalid,
            malformed,
            duplicates,
            drops,
            banners,
            banners_skipped,
            states,
        } = self;
        [
            sent,
            walked,
            received,
            validated,
            invalid,
            malformed,
            duplicates,
            drops,
            banners,
            banners_skipped,
        ]
        .into_iter()
        .chain(states.iter())
    }
    pub(crate) fn results(&self) -> u64 {
        self.states.iter().map(|c| c.load(Relaxed)).sum()
    }
}
