//! The banner grabber's TCP on hostile segments: a connection opened by a SYN-ACK, then
//! whatever the network sends (split from the input at 0xff 0xfe marks), with timers ticking.
#![no_main]
use std::{
    net::{IpAddr, Ipv4Addr},
    time::{Duration, Instant},
};

use libfuzzer_sys::fuzz_target;
use xdpscan::{
    engine::grab::{GrabOptions, Grabber},
    output::Record,
    probe::{PortState, Proto, Reason, ScanType},
    wire::{
        template::{FrameParams, Frames},
        IpPacket, MacAddr,
    },
};

const US: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const THEM: Ipv4Addr = Ipv4Addr::new(198, 19, 0, 5);

/// An IPv4 packet from THEM to US carrying `tcp` (whatever bytes it is).
fn packet(tcp: &[u8]) -> Vec<u8> {
    let len = 20 + tcp.len();
    let mut p = vec![0x45, 0, (len >> 8) as u8, len as u8, 0, 0, 0x40, 0, 64, 6, 0, 0];
    p.extend_from_slice(&THEM.octets());
    p.extend_from_slice(&US.octets());
    p.extend_from_slice(tcp);
    p
}

fuzz_target!(|data: &[u8]| {
    let opts = GrabOptions {
        greeting_wait: Duration::from_millis(10),
        timeout: Duration::from_millis(50),
        idle: Duration::from_millis(5),
        max_bytes: 256,
        max_connections: 4,
        probes: None,
        keep_open: false,
        udp: true,
        sni: None,
    };
    let params = FrameParams {
        src_mac: MacAddr([2, 0, 0, 0, 0, 1]),
        dst_mac: MacAddr([2, 0, 0, 0, 0, 2]),
        src: IpAddr::V4(US),
        ttl: 64,
    };
    let t0 = Instant::now();
    let mut g = Grabber::new(opts, Frames::single(params), t0, 1);
    // SYN-ACK from port 80 to our 61000: seq 1000, ack 5001.
    let synack = [
        0, 80, 0xee, 0x48, 0, 0, 0x03, 0xe8, 0, 0, 0x13, 0x89, 0x50, 0x12, 0xff, 0xff, 0, 0, 0, 0,
    ];
    let first = packet(&synack);
    let Ok(ip) = IpPacket::parse(&first) else { return };
    let record = Record::new(IpAddr::V4(THEM), 80, Proto::Tcp, PortState::Open, Reason::SynAck, ScanType::Syn);
    let _ = g.open(&ip, record, t0);
    for (n, seg) in data.split(|&b| b == 0xfe).enumerate() {
        let pkt = packet(seg);
        if let Ok(ip) = IpPacket::parse(&pkt) {
            let now = t0 + Duration::from_millis(n as u64 * 3);
            let _ = g.segment(&ip, now);
            g.repeat_synack(&ip);
            let _ = g.tick(now);
            g.drain_transmits().for_each(drop);
        }
    }
    let _ = g.tick(t0 + Duration::from_secs(10));
    let _ = g.close_all(t0 + Duration::from_secs(10), []);
    g.drain_transmits().for_each(drop);
});
