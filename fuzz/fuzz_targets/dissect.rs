//! The packet dissector (`xdpscan probe`, `--packet-trace`) on whole frames.
#![no_main]
use libfuzzer_sys::fuzz_target;
use xdpscan::wire::dissect;

fuzz_target!(|data: &[u8]| {
    let layers = dissect::frame_layers(data);
    let _ = dissect::show(&layers);
    let _ = dissect::summary(data);
    let _ = dissect::ip_summary(data);
    let _ = dissect::hexdump(data);
    let _ = dissect::tcp_options(data);
});
