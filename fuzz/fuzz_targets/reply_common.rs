// Shared by reply_ipv4 and reply_ipv6: every probe module's reply path on one received frame.
use std::net::{Ipv4Addr, Ipv6Addr};

use xdpscan::{
    cookie::{CookieJar, PortRange},
    output::ReplyFacts,
    probe::{traceroute::TracerouteScan, udp_payloads::Payloads, ClassifyCtx, ScanType},
    wire::IpPacket,
};

pub fn classify_frame(ethertype: [u8; 2], data: &[u8]) {
    let mut frame = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, ethertype[0], ethertype[1]];
    frame.extend_from_slice(data);
    let ports = PortRange { lo: 61000, hi: 65535 };
    let ctx = ClassifyCtx {
        jar: CookieJar::new([7; 16], ports),
        src_v4: Some(Ipv4Addr::new(198, 18, 0, 1)),
        src_v6: Some(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1)),
    };
    let Some(ip) = IpPacket::from_frame(&frame) else {
        return;
    };
    let _ = ReplyFacts::of(&ip);
    // Every raw port scan in the scan-type table (the others have no module).
    for scan in ScanType::ALL {
        if let Some(m) = scan.module(None, &Payloads::builtin()) {
            let _ = m.classify(&ip, &ctx);
        }
    }
    for proto in [
        xdpscan::probe::traceroute::TraceProto::Tcp,
        xdpscan::probe::traceroute::TraceProto::Udp,
        xdpscan::probe::traceroute::TraceProto::Icmp,
    ] {
        let _ = TracerouteScan::new(proto, (1, 30), ports).classify(&ip, &ctx);
    }
}
