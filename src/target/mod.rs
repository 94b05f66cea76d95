//! The address space of a scan: which (address, port) pairs it covers, and the bijection between
//! those pairs and the indices `0..len` that the permutation walks.

pub mod blocklist;
pub mod parse;
pub mod ports;
pub mod ranges;
pub mod space;

pub use parse::{parse_target, parse_target_list, read_target_file, TargetError};
pub use ports::{PortList, PortParseError};
pub use ranges::{Ipv4Range, RangeSet};
pub use space::TargetSpace;
