//! Traceroute replies gathered per target while they arrive (in any order, duplicates
//! included), and turned into one ordered path per target after the cooldown. Only targets that
//! answered something take room.

use std::{
    collections::{BTreeMap, HashMap},
    net::IpAddr,
    sync::Arc,
};

use crate::{
    output::{Record, Trace, TraceHop},
    probe::{
        traceroute::{Hop, HopKind, TracerouteScan},
        ProbeModule,
    },
    wire::template::Frames,
};

#[derive(Debug, Default)]
struct Path {
    /// Routers by probe TTL: first answer wins.
    transit: BTreeMap<u8, (IpAddr, Option<u32>)>,
    /// The lowest-TTL answer that ended the path.
    end: Option<(u8, Hop)>,
    /// TTLs whose probe has been answered, one bit each.
    answered: [u64; 4],
}

/// Paths by (target, port).
#[derive(Debug, Default)]
pub(crate) struct TraceTable {
    paths: HashMap<(IpAddr, u16), Path>,
}

impl TraceTable {
    /// Whether a hop may be kept: a UDP answer from an open port carries nothing of ours but
    /// the port pair, so its source must at least be a pair the scan probed; anything else
    /// would be a false path, and a table growing with every spoofed source.
    pub(crate) fn admits(space: &crate::targets::TargetSpace, h: &Hop) -> bool {
        match h.kind {
            HopKind::End(_, crate::probe::Reason::UdpResponse) => {
                space.index_of(h.target, 0, h.port).is_some()
            }
            _ => true,
        }
    }

    /// Records one reply; returns false for a duplicate (a second answer to the same TTL's
    /// probe). Answers from TTLs past the end of the path are expected, not duplicates.
    pub(crate) fn add(&mut self, h: &Hop) -> bool {
        let p = self.paths.entry((h.target, h.port)).or_default();
        let (word, bit) = ((h.probe_ttl / 64) as usize, 1u64 << (h.probe_ttl % 64));
        if p.answered[word] & bit != 0 {
            return false;
        }
        p.answered[word] |= bit;
        match h.kind {
            HopKind::Transit => {
                p.transit.insert(h.probe_ttl, (h.responder, h.rtt_us));
            }
            HopKind::End(..) => {
                if p.end.is_none_or(|(t, _)| h.probe_ttl < t) {
                    p.end = Some((h.probe_ttl, *h));
                }
            }
        }
        true
    }

    /// One record per target, in address order: the state where the path ended (the target's
    /// answer, a router's unreachable, or `silence` when nothing ended it) and the hops from
    /// `first_ttl` up to the end, `*` where nobody answered.
    pub(crate) fn into_records(
        self,
        module: &TracerouteScan,
        first_ttl: u8,
        frames: &Frames,
    ) -> Vec<Record> {
        let (proto, silence, scan) = (module.result_proto(), module.silence(), module.scan());
        let mut keys: Vec<_> = self.paths.keys().copied().collect();
        keys.sort_unstable();
        let mut paths = self.paths;
        keys.into_iter()
            .filter_map(|k| paths.remove(&k).map(|p| (k, p)))
            .map(|((target, port), p)| {
                let last = match p.end {
                    Some((t, _)) => t,
                    None => p.transit.keys().next_back().copied().unwrap_or(first_ttl),
                };
                let mut hops: Vec<TraceHop> = (first_ttl..last)
                    .map(|ttl| {
                        let h = p.transit.get(&ttl);
                        TraceHop {
                            ttl,
                            ip: h.map(|(ip, _)| *ip),
                            rtt_us: h.and_then(|(_, r)| *r),
                        }
                    })
                    .collect();
                let (state, reason, ttl, responder) = match &p.end {
                    Some((t, h)) => {
                        hops.push(TraceHop {
                            ttl: *t,
                            ip: Some(h.responder),
                            rtt_us: h.rtt_us,
                        });
                        let HopKind::End(s, r) = h.kind else {
                            unreachable!("only ends are kept as the end")
                        };
                        (s, r, h.reply_ttl, h.responder)
                    }
                    None => {
                        if let Some((ip, rtt)) = p.transit.get(&last) {
                            hops.push(TraceHop {
                                ttl: last,
                                ip: Some(*ip),
                                rtt_us: *rtt,
                            });
                        }
                        (silence.0, silence.1, 0, target)
                    }
                };
                let reached = p.end.is_some_and(|(_, h)| h.responder == target);
                let mut r = Record::new(target, port, proto, state, reason, scan);
                r.ttl = ttl;
                r.responder = (responder != target).then_some(responder);
                r.local = frames.for_addr(target).unwrap_or(frames.primary()).src;
                r.cooldown = true;
                r.trace = Some(Arc::new(Trace {
                    proto,
                    port,
                    hops,
                    reached,
                }));
                r
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        cookie::PortRange,
        probe::{
            traceroute::{TraceProto, TracerouteScan},
            PortState, Reason,
        },
    };

    /// A TCP traceroute: silence means filtered, no-response.
    fn tcp_trace() -> TracerouteScan {
        TracerouteScan::new(
            TraceProto::Tcp,
            (1, 30),
            PortRange {
                lo: 61000,
                hi: 65535,
            },
        )
    }

    fn frames() -> Frames {
        Frames::single(crate::probe::testutil::params())
    }

    fn a(n: u32) -> IpAddr {
        IpAddr::V4(n.into())
    }

    fn hop(ttl: u8, from: u32, kind: HopKind) -> Hop {
        Hop {
            target: a(100),
            port: 80,
            probe_ttl: ttl,
            responder: a(from),
            rtt_us: Some(ttl as u32 * 100),
            kind,
            reply_ttl: 60,
        }
    }

    /// Issue 20, item 11: a UDP answer from a pair no probe went to is refused.
    #[test]
    fn udp_answers_only_from_probed_pairs() {
        let space = crate::targets::TargetSpace::new(
            crate::targets::RangeSet::from_ranges(vec![crate::targets::Ipv4Range::new(100, 100)]),
            crate::targets::PortList::parse("53").unwrap(),
        );
        let udp = HopKind::End(PortState::Open, Reason::UdpResponse);
        let mut h = hop(3, 100, udp);
        h.port = 53;
        assert!(TraceTable::admits(&space, &h));
        for (target, port) in [(a(101), 53), (a(100), 54), (a(7), 9)] {
            let h = Hop { target, port, ..h };
            assert!(!TraceTable::admits(&space, &h), "{target}:{port}");
        }
        // Hops whose reply carries our mark are checked by it, not here.
        assert!(TraceTable::admits(&space, &hop(3, 3, HopKind::Transit)));
    }

    #[test]
    fn ordered_path_with_gaps_ending_at_the_lowest_ttl() {
        let mut t = TraceTable::default();
        let open = HopKind::End(PortState::Open, Reason::SynAck);
        // Arrival order is not TTL order; higher TTLs also reach the target.
        assert!(t.add(&hop(5, 100, open)));
        assert!(t.add(&hop(3, 3, HopKind::Transit)));
        assert!(t.add(&hop(1, 1, HopKind::Transit)));
        assert!(t.add(&hop(4, 100, open)));
        // Past the end: expected, not a duplicate; the same TTL again: a duplicate.
        assert!(t.add(&hop(6, 100, open)));
        assert!(!t.add(&hop(6, 100, open)));
        assert!(!t.add(&hop(1, 1, HopKind::Transit)));
        let r = t.into_records(&tcp_trace(), 1, &frames());
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].state, PortState::Open);
        let tr = r[0].trace.as_ref().unwrap();
        assert!(tr.reached);
        let ips: Vec<Option<IpAddr>> = tr.hops.iter().map(|h| h.ip).collect();
        assert_eq!(ips, [Some(a(1)), None, Some(a(3)), Some(a(100))]);
        assert_eq!(tr.hops[3].ttl, 4);
    }

    #[test]
    fn unreached_path_ends_at_its_last_router() {
        let mut t = TraceTable::default();
        t.add(&hop(1, 1, HopKind::Transit));
        t.add(&hop(2, 2, HopKind::Transit));
        let r = t.into_records(&tcp_trace(), 1, &frames());
        let tr = r[0].trace.as_ref().unwrap();
        assert!(!tr.reached);
        assert_eq!(tr.hops.len(), 2);
        assert_eq!(
            (r[0].state, r[0].reason),
            (PortState::Filtered, Reason::NoResponse)
        );
    }
}
