//! Every probe module's reply path on an IPv6 packet from the network (after our Ethernet
//! header): extension headers, ICMPv6 quoting, anything.
#![no_main]
use libfuzzer_sys::fuzz_target;

#[path = "reply_common.rs"]
mod reply_common;

fuzz_target!(|data: &[u8]| reply_common::classify_frame([0x86, 0xdd], data));
