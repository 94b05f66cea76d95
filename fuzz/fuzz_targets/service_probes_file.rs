//! The nmap-service-probes parser on any file, then every probe's matching on a fixed answer.
#![no_main]
use libfuzzer_sys::fuzz_target;
use xdpscan::service::ServiceProbes;

fuzz_target!(|data: &[u8]| {
    if let Ok(db) = ServiceProbes::parse(data, "fuzz") {
        for i in 0..db.probes.len().min(8) {
            let _ = db.first_match(i, b"SSH-2.0-OpenSSH_9.2p1\r\n");
        }
    }
});
