//! `--report-silent`: after the cooldown, a record for every probe index of this shard that the
//! duplicate filter's bitmap (one bit per probe index, see `dedup.rs`) never marked answered,
//! with the state silence means for the scan type. The bitmap is indexed like the permutation,
//! so this works for either family and any shard.

use crate::output::Record;

use super::{dedup::Bitmap, Plan};

/// Hands a silent record for every unanswered index of this shard's walks, thread `t` from
/// position `ranges[t].0` to `ranges[t].1` of its last pass (what this run can tell: see
/// `carry::silent_range`), to `emit`, until `emit` returns false.
/// `skip_udp`: silent UDP ports were handed to version detection (`SilentUdp`), which reports
/// them.
pub(crate) fn report(
    answered: &Bitmap,
    plan: &Plan,
    ranges: &[(u64, u64)],
    skip_udp: bool,
    emit: &mut impl FnMut(Record) -> bool,
) {
    let threads = ranges.len() as u32;
    // Per slot of the space's ports (one per protocol scanned): what silence means, and who.
    let slots: Vec<_> = plan
        .raw()
        .senders()
        .iter()
        .map(|m| (m.silence().0, m.scan(), m.result_proto()))
        .collect();
    let ports = plan.space.ports();
    for (t, &(from, to)) in ranges.iter().enumerate() {
        let mut walk = plan
            .cycle
            .walker(plan.shard.0, plan.shard.1, t as u32, threads);
        walk.advance(from);
        for i in walk.stop_at(to) {
            if !answered.get(i) {
                let (ip, port, pi) = plan.space.get_indexed(i);
                let (state, name, proto) = slots[ports.slot_of(pi)];
                if skip_udp && proto == crate::probe::Proto::Udp {
                    continue;
                }
                if !emit(Record::silent(ip, port, proto, state, name)) {
                    return;
                }
            }
        }
    }
}

/// `-sU -sV --report-silent`: after the cooldown, the receive thread hands this shard's silent
/// UDP ports to version detection (nmap probes open|filtered ports too), as many at a time as
/// the grabber's table takes; an answer makes a port open, silence leaves it open|filtered.
pub(crate) struct SilentUdp<'a> {
    /// Set by the engine when the cooldown is over.
    pub(crate) go: &'a std::sync::atomic::AtomicBool,
    /// Set here when every silent port has been handed over.
    pub(crate) done: &'a std::sync::atomic::AtomicBool,
    pub(crate) thread: u32,
    pub(crate) threads: u32,
    pub(crate) walker: Option<crate::permute::Walker>,
    /// A port the full table could not take yet.
    pub(crate) held: Option<Record>,
}

impl SilentUdp<'_> {
    pub(crate) fn feed(
        &mut self,
        plan: &Plan,
        answered: &Bitmap,
        grabber: &mut super::grab::Grabber,
        stats: &super::stats::Stats,
    ) {
        use std::sync::atomic::Ordering::Relaxed;
        if !self.go.load(Relaxed) || self.done.load(Relaxed) {
            return;
        }
        let senders = plan.raw().senders();
        let ports = plan.space.ports();
        loop {
            if let Some(r) = self.held.take() {
                if let Some(r) = grabber.open_udp(r) {
                    self.held = Some(r); // the table is full: later
                    return;
                }
            }
            if self.walker.is_none() {
                if self.thread >= self.threads {
                    self.done.store(true, Relaxed);
                    return;
                }
                // A resumed run tells only the silence of what it walked (`carry.rs`).
                let mut walk =
                    plan.cycle
                        .walker(plan.shard.0, plan.shard.1, self.thread, self.threads);
                let start = plan
                    .resume
                    .as_ref()
                    .and_then(|r| r.get(self.thread as usize))
                    .copied()
                    .unwrap_or(super::Position { pass: 0, walked: 0 });
                walk.advance(super::carry::silent_range(plan, start, start).0);
                self.walker = Some(walk);
                self.thread += 1;
            }
            let Some(i) = self.walker.as_mut().and_then(|w| w.next()) else {
                self.walker = None;
                continue;
            };
            if answered.get(i) {
                continue;
            }
            let (ip, port, pi) = plan.space.get_indexed(i);
            let m = senders[ports.slot_of(pi)];
            if m.result_proto() != crate::probe::Proto::Udp {
                continue;
            }
            stats.count_state(m.silence().0);
            self.held = Some(Record::silent(
                ip,
                port,
                crate::probe::Proto::Udp,
                m.silence().0,
                m.scan(),
            ));
        }
    }
}
