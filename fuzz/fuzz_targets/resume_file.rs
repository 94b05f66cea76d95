//! Resume files (`--resume F`), as read back from disk.
#![no_main]
use libfuzzer_sys::fuzz_target;
use xdpscan::resume::ResumeFile;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = ResumeFile::parse(text, "fuzz");
    }
});
