//! The address space of a scan: which (address, port) pairs it covers, and the bijection between
//! those pairs and the indices `0..len` that the permutation walks. Both families: IPv4 ranges,
//! IPv6 ranges and IPv6 prefix windows.

pub mod blocklist;
pub(crate) mod parse;
pub(crate) mod ports;
pub(crate) mod ranges;
pub mod services;
pub(crate) mod space;

pub use parse::{
    parse_target, parse_target_list, read_target_file, PrefixWindow, Target, TargetError, Targets,
};
pub use ports::{PortList, PortParseError, PrefixedSpec, ProbePorts};
pub use ranges::{AddrBits, AddrRange, Ipv4Range, Ipv6Range, RangeSet};
pub use space::{Iid, SpaceError, TargetSpace, MAX_PROBES};
