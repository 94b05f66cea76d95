//! Every probe module's reply path on an IPv4 packet from the network (after our Ethernet
//! header): no input may panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

#[path = "reply_common.rs"]
mod reply_common;

fuzz_target!(|data: &[u8]| reply_common::classify_frame([0x08, 0x00], data));
