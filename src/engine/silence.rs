//! `--report-silent`: one bit per probe index, set when its target answers, and after the
//! cooldown a record for every index of this shard whose bit stayed clear, with the state
//! silence means for the scan type. The bitmap is indexed like the permutation, so it works for
//! either family and any shard, and costs one bit per probe of the whole space.

use std::net::IpAddr;

use crate::{output::Record, target::TargetSpace};

use super::Plan;

/// Which probe indices were answered.
#[derive(Debug, Default)]
pub struct Silence {
    bits: Vec<u64>,
}

impl Silence {
    /// Room for a space of `len` probes (config caps it at `SILENT_MAX_TARGETS`).
    pub fn new(len: u64) -> Self {
        Self {
            bits: vec![0; len.div_ceil(64) as usize],
        }
    }

    /// `ip:port` answered.
    #[inline]
    pub fn answered(&mut self, space: &TargetSpace, ip: IpAddr, port: u16) {
        if let Some(i) = space.index_of(ip, port) {
            self.bits[(i / 64) as usize] |= 1 << (i % 64);
        }
    }

    fn is_answered(&self, i: u64) -> bool {
        self.bits[(i / 64) as usize] & (1 << (i % 64)) != 0
    }

    /// Hands a silent record for every unanswered index of this shard (all its `threads`
    /// walks) to `emit`, until `emit` returns false.
    pub fn report(&self, plan: &Plan, threads: u32, emit: &mut impl FnMut(Record) -> bool) {
        let module = plan.raw_module();
        let (state, _) = module.silence();
        let (name, proto) = (module.scan(), module.result_proto());
        for t in 0..threads {
            for i in plan.cycle.walker(plan.shard.0, plan.shard.1, t, threads) {
                if !self.is_answered(i) {
                    let (ip, port) = plan.space.get(i);
                    if !emit(Record::silent(ip, port, proto, state, name)) {
                        return;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::target::{Ipv4Range, PortList, RangeSet};

    #[test]
    fn marks_by_index_of_either_family() {
        let space = TargetSpace::new(
            RangeSet::from_ranges(vec![Ipv4Range::new(10, 12)]),
            PortList::parse("22,80").unwrap(),
        );
        let mut s = Silence::new(space.len());
        s.answered(&space, IpAddr::V4(11.into()), 80);
        s.answered(&space, IpAddr::V4(99.into()), 80); // not in the space: ignored
        let answered: Vec<u64> = (0..space.len()).filter(|&i| s.is_answered(i)).collect();
        assert_eq!(
            answered,
            vec![space.index_of(IpAddr::V4(11.into()), 80).unwrap()]
        );
    }
}
