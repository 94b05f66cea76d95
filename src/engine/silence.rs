//! `--report-silent`: after the cooldown, a record for every probe index of this shard that the
//! duplicate filter's bitmap (one bit per probe index, see `dedup.rs`) never marked answered,
//! with the state silence means for the scan type. The bitmap is indexed like the permutation,
//! so this works for either family and any shard.

use crate::output::Record;

use super::{dedup::Bitmap, Plan};

/// Hands a silent record for every unanswered index of this shard (all its `threads` walks) to
/// `emit`, until `emit` returns false.
pub fn report(answered: &Bitmap, plan: &Plan, threads: u32, emit: &mut impl FnMut(Record) -> bool) {
    // Per slot of the space's ports (one per protocol scanned): what silence means, and who.
    let slots: Vec<_> = plan
        .raw()
        .senders()
        .iter()
        .map(|m| (m.silence().0, m.scan(), m.result_proto()))
        .collect();
    let ports = plan.space.ports();
    for t in 0..threads {
        for i in plan.cycle.walker(plan.shard.0, plan.shard.1, t, threads) {
            if !answered.get(i) {
                let (ip, port, pi) = plan.space.get_indexed(i);
                let (state, name, proto) = slots[ports.slot_of(pi)];
                if !emit(Record::silent(ip, port, proto, state, name)) {
                    return;
                }
            }
        }
    }
}
