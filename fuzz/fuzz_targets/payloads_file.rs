//! The nmap-payloads parser (`--udp-payloads`) on any text.
#![no_main]
use libfuzzer_sys::fuzz_target;
use xdpscan::probe::udp_payloads::Payloads;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(p) = Payloads::parse(text, "fuzz") {
            let _ = p.for_port(53);
        }
    }
});
