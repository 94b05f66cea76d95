//! Counters shared by the engine's threads, read by the monitor once a second.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::probe::PortState;

#[derive(Debug, Default)]
pub struct Stats {
    /// Probes handed to the transport.
    pub sent: AtomicU64,
    /// Cycle positions walked (skipped ones included), for progress.
    pub walked: AtomicU64,
    /// Frames received by the receive thread.
    pub received: AtomicU64,
    /// Replies that validated against a cookie.
    pub validated: AtomicU64,
    /// Frames to our port range that failed validation, or that no scanned protocol reads.
    pub invalid: AtomicU64,
    /// IP frames that reached the receive thread but do not parse (truncated headers, lying
    /// lengths, bad IHL or checksum, later fragments).
    pub malformed: AtomicU64,
    /// Validated replies for an (address, port) already reported.
    pub duplicates: AtomicU64,
    /// Frames the kernel dropped before we could read them.
    pub drops: AtomicU64,
    /// Banners collected (`--banners`, `-sV`).
    pub banners: AtomicU64,
    /// Open ports reported without a banner: the connection table was full.
    pub banners_skipped: AtomicU64,
    /// Results per state, in `PortState::ALL` order.
    pub states: [AtomicU64; PortState::ALL.len()],
}

impl Stats {
    pub fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Relaxed);
    }
    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Relaxed)
    }
    pub fn count_state(&self, s: PortState) {
        self.states[s.index()].fetch_add(1, Relaxed);
    }
    /// A result counted as `from` turned out `to` (a silent UDP port answered -sV's probe).
    pub fn recount_state(&self, from: PortState, to: PortState) {
        self.states[from.index()].fetch_sub(1, Relaxed);
        self.states[to.index()].fetch_add(1, Relaxed);
    }
    pub fn state(&self, s: PortState) -> u64 {
        self.states[s.index()].load(Relaxed)
    }
    /// Every counter, in a fixed order: what a worker's shard process reports to the worker.
    pub fn counts(&self) -> Vec<u64> {
        self.counters().map(|c| c.load(Relaxed)).collect()
    }
    /// Sets every counter from `counts` (made by [`Stats::counts`]).
    pub fn set_counts(&self, counts: &[u64]) {
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
    pub fn results(&self) -> u64 {
        self.states.iter().map(|c| c.load(Relaxed)).sum()
    }
}
