//! What an interrupted run hands on to its resume so that the two runs add up to one scan
//! (docs/design.md, "Resume adds up"): where to resume when the cooldown was cut short (the
//! positions as they were `--wait` before the cut, so every probe counted done had its replies'
//! time), which probes past those positions already answered (the resumed run takes their
//! repeats for duplicates), and which of this shard's positions the silence report covers.

use std::{
    collections::VecDeque,
    time::{Duration, Instant},
};

use super::{dedup::Bitmap, Plan, Position};

/// Samples of the transmit threads' positions while they send.
#[derive(Debug, Default)]
pub(crate) struct PositionHistory {
    samples: VecDeque<(Instant, Vec<Position>)>,
}

impl PositionHistory {
    /// Keeps what a cut at any later moment could need: `wait` and a second more.
    pub(crate) fn sample(&mut self, at: Instant, positions: Vec<Position>, wait: Duration) {
        self.samples.push_back((at, positions));
        while self
            .samples
            .get(1)
            .is_some_and(|(t, _)| at.duration_since(*t) > wait + Duration::from_secs(1))
        {
            self.samples.pop_front();
        }
    }

    /// The newest positions sampled at least `wait` before `cut`; `None` when there is none
    /// (the resume then starts where this run started).
    pub(crate) fn safe_at(&self, cut: Instant, wait: Duration) -> Option<Vec<Position>> {
        self.samples
            .iter()
            .rev()
            .find(|(t, _)| *t + wait <= cut)
            .map(|(_, p)| p.clone())
    }
}

/// The range of thread `t`'s walk whose silence this run can tell: in the last pass only (a
/// probe is silent when no pass got an answer), from where the run started in it to where it
/// stopped, both as positions within the pass.
pub(crate) fn silent_range(plan: &Plan, from: Position, to: Position) -> (u64, u64) {
    let last = plan.retries;
    let start = if from.pass == last { from.walked } else { 0 };
    let end = if to.pass == last { to.walked } else { 0 };
    (start, end.max(start))
}

/// Indices thread `t` walked from `safe` to `stop` (the probes a cut cooldown gives back to the
/// resume) that were answered: the resumed run marks them answered before it starts.
pub(crate) fn answered_between(
    plan: &Plan,
    answered: &Bitmap,
    t: u32,
    threads: u32,
    safe: Position,
    stop: Position,
) -> Vec<u64> {
    let walk = |pass_from: u64, pass_to: u64| {
        let mut w = plan.cycle.walker(plan.shard.0, plan.shard.1, t, threads);
        w.advance(pass_from);
        w.stop_at(pass_to)
            .filter(|&i| answered.get(i))
            .collect::<Vec<u64>>()
    };
    if (safe.pass, safe.walked) >= (stop.pass, stop.walked) {
        return Vec::new();
    }
    let per_pass = plan
        .cycle
        .walker(plan.shard.0, plan.shard.1, t, threads)
        .positions();
    let mut out = if safe.pass == stop.pass {
        walk(safe.walked, stop.walked)
    } else {
        // Across a pass boundary: the rest of the safe pass, then the new one up to the stop
        // (passes past one more cover the whole walk).
        let mut v = walk(safe.walked, per_pass);
        v.extend(walk(
            0,
            if stop.pass == safe.pass + 1 {
                stop.walked
            } else {
                per_pass
            },
        ));
        v
    };
    out.sort_unstable();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(pass: u32, walked: u64) -> Vec<Position> {
        vec![Position { pass, walked }]
    }

    #[test]
    fn the_safe_positions_are_a_wait_before_the_cut() {
        let mut h = PositionHistory::default();
        let t0 = Instant::now();
        let wait = Duration::from_secs(2);
        for k in 0..100u64 {
            h.sample(t0 + Duration::from_millis(100 * k), p(0, k * 10), wait);
        }
        // Cut at 9.9 s: the newest sample at or before 7.9 s is the one of 7.9 s (walked 790).
        assert_eq!(
            h.safe_at(t0 + Duration::from_millis(9_900), wait),
            Some(p(0, 790))
        );
        // Only `wait` and a second are kept: nothing that old.
        assert_eq!(h.safe_at(t0 + Duration::from_millis(1_000), wait), None);
        assert!(h.samples.len() <= 32);
    }
}
