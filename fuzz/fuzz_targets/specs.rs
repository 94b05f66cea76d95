//! Target, port and exclude specs as typed on the command line (and read from -iL files).
#![no_main]
use libfuzzer_sys::fuzz_target;
use xdpscan::targets::{parse_target_list, PortList, PrefixedSpec};

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let _ = parse_target_list(s);
    let _ = PortList::parse(s);
    let _ = PortList::parse_with(s, &mut |name| {
        if name.len() < 8 {
            Ok(vec![name.len() as u16])
        } else {
            Err("no such service".into())
        }
    });
    if let Ok(p) = PrefixedSpec::parse(s) {
        let _ = p.for_proto(&p.tcp);
    }
    let _ = xdpscan::targets::services::ServiceDb::parse(s);
});
