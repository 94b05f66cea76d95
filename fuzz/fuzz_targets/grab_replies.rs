//! The application layer's readers (`--grab`) on hostile server bytes: an SSH server's
//! identification and packets, a TLS server's clear-text flight, an HTTP response, a
//! certificate's DER, each turned into its ZGrab2 result; a reply to a JARM hello, read and
//! hashed.
#![no_main]
use libfuzzer_sys::fuzz_target;
use xdpscan::app::{http, jarm, ssh, tls, x509};

fuzz_target!(|data: &[u8]| {
    let _ = ssh::zgrab(&ssh::read_server(data));
    if let Some(f) = tls::read_flight(data) {
        let _ = tls::zgrab(&f);
    }
    let _ = http::zgrab(data, "198.19.0.5", "/", None);
    let _ = x509::parse(data);
    let _ = jarm::fingerprint(&[jarm::read_reply(data)]);
});
