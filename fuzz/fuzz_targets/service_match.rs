//! The service matcher on answers from the network: nmap's own database when installed (else a
//! small one), every TCP and UDP probe's match lines with fallbacks, and a detection step.
#![no_main]
use std::{sync::OnceLock, time::Duration};

use libfuzzer_sys::fuzz_target;
use xdpscan::service::{
    detect::{Detection, End},
    ServiceProbes,
};

const SMALL: &str = r#"Probe TCP NULL q||
match ssh m|^SSH-([\d.]+)-OpenSSH_([\w._-]+)| p/OpenSSH/ v/$2/ i/protocol $1/
softmatch ftp m|^220 |
Probe TCP GetRequest q|GET / HTTP/1.0\r\n\r\n|
ports 80
match http m|^HTTP/1\.[01] \d\d\d .*\r\nServer: ([^\r\n]+)|s p/$1/ i/$SUBST(1,"_"," ")/ v/$I(1,">")/
"#;

fn db() -> &'static ServiceProbes {
    static DB: OnceLock<ServiceProbes> = OnceLock::new();
    DB.get_or_init(|| {
        ServiceProbes::load(std::path::Path::new(xdpscan::service::probes::DEFAULT_PATH))
            .unwrap_or_else(|_| ServiceProbes::parse(SMALL.as_bytes(), "small").unwrap())
    })
}

fuzz_target!(|data: &[u8]| {
    let db = db();
    if data.is_empty() {
        return;
    }
    // The first byte picks the probe the answer came to; the rest is the answer.
    let probe = data[0] as usize % db.probes.len();
    let answer = &data[1..];
    let _ = db.first_match(probe, answer);
    let mut d = Detection::new(80, 7, true);
    d.start(db);
    let _ = d.answer(db, answer, End::Quiet, Duration::ZERO);
});
