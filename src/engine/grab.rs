//! Banner grabbing (`--banners`, `-sV`) without kernel sockets: for each validated SYN-ACK the
//! receive thread completes the handshake itself (our sequence number is the cookie's, theirs is
//! in the SYN-ACK), waits for a greeting, sends the probe that fits the port when none comes,
//! acknowledges what arrives up to a byte limit, and closes with RST. Our XDP program steers the
//! whole source-port range, so the local kernel never sees these segments and never resets the
//! connection (masscan's problem with its own stack).
//!
//! The table holds open ports only, is bounded (`--max-connections`), and every entry expires.
//!
//! The grabber is a protocol machine with no I/O of its own, as quinn-proto's connections are:
//! it is handed segments, datagrams, the version worker's orders and the time, and hands back
//! records, frames to send (`drain_transmits`) and answers for the worker (`drain_answers`).
//! `grab_link.rs` carries those to the transmit threads (the AF_XDP transmit ring has one
//! producer) and the worker.
//!
//! With `-sV` the grabber only converses: each probe's answer goes to the version worker
//! (`engine::version`), which matches it and orders the next probe (on the same connection after
//! a silent NULL probe, else on a new one that the grabber opens with a SYN of its own), so
//! the receive thread never runs a pattern (docs/design.md, "Version detection").

use std::{
    collections::HashMap,
    net::IpAddr,
    sync::{
        atomic::{AtomicUsize, Ordering::Relaxed},
        Arc,
    },
    time::{Duration, Instant},
};

use super::watermark::Holds;
use crate::app::{TlsUse, Whole};
use crate::wire::repr::L4Repr;
use crate::{
    cookie::PortRange,
    output::Record,
    service::{self, detect::End, Grab, ServiceProbes},
    wire::{
        checksum, put_u16,
        repr::TcpRepr,
        template::{FrameParams, FrameTemplate, Frames},
        Family, IpPacket, TcpFlags, TcpSegment,
    },
};

/// What `--banners` is told.
#[derive(Debug, Clone)]
pub struct GrabOptions {
    /// How long an open port may stay silent before we send a probe.
    pub greeting_wait: Duration,
    /// How long after the handshake a connection may live in all.
    pub timeout: Duration,
    /// How long the port may stay quiet, once it has spoken, before the banner counts as whole.
    pub idle: Duration,
    /// Bytes kept per port.
    pub max_bytes: usize,
    /// Connections open at once; further open ports are reported without a banner.
    pub max_connections: usize,
    /// Where probes come from (`None`: the built-in HTTP and TLS ones).
    pub probes: Option<Arc<ServiceProbes>>,
    /// `--grab`: a connection whose answer ended quietly stays open for the next exchange
    /// (SSH's key exchange after its greeting, HTTP inside the TLS session just made).
    pub keep_open: bool,
    /// `-sU -sV`: open UDP ports go to the version worker (`--grab` is TCP only).
    pub udp: bool,
    /// `--sni`: the name our TLS sessions ask for (none: the address, which sends no SNI).
    pub sni: Option<String>,
}

/// Whether a conversation's answer is all there is to wait for: the bytes kept are full, the
/// TLS handshake alone was asked for and is done, or the exchange says its reply is whole.
fn answer_is_whole(c: &Conn, max_bytes: usize) -> bool {
    c.buf.len() >= max_bytes
        || (c.wants_tls == TlsUse::Handshake && c.tls.as_ref().is_some_and(|t| !t.handshaking()))
        || c.whole.reached(&c.buf)
}

/// The window we advertise: what we are willing to keep.
fn window(max_bytes: usize) -> u16 {
    max_bytes.clamp(536, 65535) as u16
}

#[derive(Debug)]
enum Phase {
    /// Waiting for the port to speak first.
    Greeting,
    /// Our probe is out; collecting the answer.
    Probed,
    /// Our SYN is out (`-sV`: a connection of our own for the next probe).
    SynSent {
        iss: u32,
        again_at: Instant,
        sent: u32,
        payload: Vec<u8>,
    },
    /// The NULL probe's answer (none) went to the version worker; the connection stays open
    /// for the probe it orders next.
    Waiting,
}

/// One probe's conversation, reported to the version worker (`-sV`).
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) key: (IpAddr, u16),
    pub(crate) record: Box<Record>,
    pub(crate) data: Vec<u8>,
    pub(crate) end: End,
    /// From the probe (or the handshake, for the NULL probe) to the end.
    pub(crate) elapsed: Duration,
    /// What the TLS session this conversation ran in told us (`--grab`).
    pub(crate) tls: Option<Box<crate::app::TlsFacts>>,
    /// A UDP port enters detection: nothing was sent yet (the worker orders the first probe).
    pub(crate) opening: bool,
}

/// What the version worker orders.
#[derive(Debug)]
pub enum Order {
    /// Send a probe: on the connection kept open after a silent NULL probe (`reuse`), else on a
    /// new connection. `wait`: how long its answer may take.
    Probe {
        key: (IpAddr, u16),
        record: Box<Record>,
        name: String,
        payload: Vec<u8>,
        wait: Duration,
        reuse: bool,
        /// Plain, inside TLS, or the TLS handshake alone.
        tls: TlsUse,
        /// When the answer is whole.
        whole: Whole,
    },
    /// Detection is over: close what is still open.
    Close { key: (IpAddr, u16) },
}

#[derive(Debug)]
struct Conn {
    /// `None` while the version worker holds it (a connection waiting for its order).
    record: Option<Record>,
    /// Our address in it (with a source pool, the one the probe left from).
    local: IpAddr,
    sport: u16,
    snd_nxt: u32,
    rcv_nxt: u32,
    buf: Vec<u8>,
    phase: Phase,
    probe: Option<String>,
    opened: Instant,
    /// When something must happen next (probe, or close).
    deadline: Instant,
    /// Our probe while unacknowledged and unanswered: its sequence number and bytes, when to
    /// send it again, and how many times it went out.
    unacked: Option<Unacked>,
    /// When this probe went out (`-sV`: the answer's elapsed time).
    started: Instant,
    /// How long this probe's answer may take (`-sV`).
    wait: Duration,
    /// The TLS session this conversation runs in (`-sV` on `ssl` ports).
    tls: Option<Box<super::tls::TlsLayer>>,
    /// Open TLS once the handshake is done (a connection of our own for a probe inside TLS),
    /// or only make the handshake.
    wants_tls: TlsUse,
    /// When the answer is whole.
    whole: Whole,
}

#[derive(Debug)]
struct Unacked {
    seq: u32,
    data: Vec<u8>,
    again_at: Instant,
    sent: u32,
}

/// First retransmission timeout (RFC 6298's initial RTO), doubled each time.
const RTO: Duration = Duration::from_secs(1);
/// Transmissions of a probe at most.
const MAX_SENDS: u32 = 3;

/// The connection table and its frame builder.
pub struct Grabber {
    opts: GrabOptions,
    frames: Frames,
    conns: HashMap<(IpAddr, u16), Conn>,
    /// Frames to send, in order, until the caller takes them.
    transmits: Vec<Vec<u8>>,
    /// `-sV`: answers for the version worker, until the caller takes them.
    answers: Vec<Answer>,
    last_sweep: Instant,
    /// Open ports reported without a banner because the table was full.
    pub(crate) skipped: u64,
    /// `-sV`: ports in detection (the worker counts them down); bounds the table with the
    /// open connections.
    detecting: Option<Arc<AtomicUsize>>,
    /// Our source ports (connections of our own take the next one each time).
    ports: PortRange,
    next_port: u32,
    /// xorshift state for our initial sequence numbers.
    rng: u64,
    /// UDP probes out (`-sU -sV`), by target: one at a time per port.
    udp: HashMap<(IpAddr, u16), UdpProbe>,
    /// Every record taken is held here until the output thread writes it (`watermark.rs`).
    holds: Arc<Holds>,
}

/// A UDP probe of `-sU -sV` waiting for its answer.
#[derive(Debug)]
struct UdpProbe {
    record: Record,
    sport: u16,
    started: Instant,
    deadline: Instant,
}

impl Grabber {
    /// A grabber starting at `now`; `seed` makes the initial sequence numbers of its own
    /// connections.
    pub fn new(opts: GrabOptions, frames: Frames, now: Instant, seed: u64) -> Self {
        Self {
            opts,
            frames,
            conns: HashMap::new(),
            transmits: Vec::new(),
            answers: Vec::new(),
            last_sweep: now,
            skipped: 0,
            detecting: None,
            ports: PortRange {
                lo: 61000,
                hi: 65535,
            },
            next_port: 0,
            // xorshift never leaves 0.
            rng: seed | 1,
            udp: HashMap::new(),
            holds: Arc::default(),
        }
    }

    /// Where the records it takes are held (the engine's; a private one otherwise).
    pub(crate) fn with_holds(mut self, holds: Arc<Holds>) -> Self {
        self.holds = holds;
        self
    }

    fn hold(&self, record: &Record) {
        self.holds.hold(super::watermark::unix_ms(record.ts));
    }

    /// Whether a version worker names what ports say (`-sV`).
    pub(crate) fn versioned(&self) -> bool {
        self.detecting.is_some()
    }

    /// The frames to send, oldest first.
    pub fn drain_transmits(&mut self) -> std::vec::Drain<'_, Vec<u8>> {
        self.transmits.drain(..)
    }

    /// The answers for the version worker (`-sV`), oldest first.
    pub(crate) fn drain_answers(&mut self) -> std::vec::Drain<'_, Answer> {
        self.answers.drain(..)
    }

    /// An open UDP port (`-sU -sV`): hands it to the version worker, which orders its probes.
    /// Returns the record when the table is full (reported as it is).
    pub(crate) fn open_udp(&mut self, record: Record) -> Option<Record> {
        let Some(detecting) = self.detecting.as_ref().filter(|_| self.opts.udp) else {
            return Some(record);
        };
        let key = (record.ip, record.port);
        if self.active() >= self.opts.max_connections || self.udp.contains_key(&key) {
            self.skipped += 1;
            return Some(record);
        }
        detecting.fetch_add(1, Relaxed);
        self.hold(&record);
        self.answers.push(Answer {
            key,
            record: Box::new(record),
            data: Vec::new(),
            end: End::Quiet,
            elapsed: Duration::ZERO,
            opening: true,
            tls: None,
        });
        None
    }

    /// A datagram answering one of our UDP probes (`-sU -sV`): goes to the worker. False when
    /// it is no such answer (the scan's business).
    pub(crate) fn datagram(&mut self, ip: &IpPacket, now: Instant) -> bool {
        let Ok(d) = crate::wire::UdpDatagram::new_checked(ip.payload()) else {
            return false;
        };
        let key = (ip.src(), d.src_port());
        if self.udp.get(&key).is_none_or(|p| p.sport != d.dst_port()) {
            return false;
        }
        let p = self.udp.remove(&key).expect("present");
        let data = d.payload().to_vec();
        self.answer(
            key,
            Box::new(p.record),
            data,
            End::Quiet,
            now.duration_since(p.started),
            None,
        );
        true
    }

    /// Sends the unacknowledged probe of `key` again, backing off; gives up after MAX_SENDS.
    fn retransmit(&mut self, key: (IpAddr, u16), now: Instant) {
        let Some(c) = self.conns.get_mut(&key) else {
            return;
        };
        let Some(u) = c.unacked.as_mut() else {
            return;
        };
        u.sent += 1;
        u.again_at = now + RTO * (1 << u.sent.min(8));
        let (seq, data) = (u.seq, u.data.clone());
        if u.sent >= MAX_SENDS {
            c.unacked = None;
        }
        let (sport, rcv) = (c.sport, c.rcv_nxt);
        self.send(
            key.0,
            sport,
            key.1,
            seq,
            rcv,
            TcpFlags::PSH | TcpFlags::ACK,
            &data,
        );
    }

    /// The next source port of ours for a connection or datagram of the grabber's own.
    fn next_source_port(&mut self) -> u16 {
        let span = (self.ports.hi - self.ports.lo) as u32 + 1;
        self.next_port = (self.next_port + 1) % span;
        self.ports.lo + self.next_port as u16
    }

    /// Sends one UDP probe of the worker's (`-sU -sV`).
    fn send_udp(
        &mut self,
        key: (IpAddr, u16),
        record: Record,
        payload: &[u8],
        wait: Duration,
        now: Instant,
    ) {
        let sport = self.next_source_port();
        let Some(p) = self.frames.for_addr(key.0) else {
            self.answer(
                key,
                Box::new(record),
                Vec::new(),
                End::Failed,
                Duration::ZERO,
                None,
            );
            return;
        };
        let tpl = crate::probe::udp::template(p, payload);
        let mut frame = vec![0u8; tpl.len()];
        let n = crate::probe::udp::write(&mut frame, &tpl, key.0, sport, key.1, self.next_port);
        frame.truncate(n);
        self.transmits.push(frame);
        self.udp.insert(
            key,
            UdpProbe {
                record,
                sport,
                started: now,
                deadline: now + wait,
            },
        );
    }

    /// Version detection (`-sV`): answers go to the worker, orders come from it; `detecting`
    /// counts the ports in detection (up here, down by the worker); connections of our own use
    /// source ports from `ports`.
    pub(crate) fn with_version(mut self, detecting: Arc<AtomicUsize>, ports: PortRange) -> Self {
        self.detecting = Some(detecting);
        self.ports = ports;
        self
    }

    /// Ports being worked on: open connections, or (`-sV`) ports in detection.
    pub(crate) fn active(&self) -> usize {
        match &self.detecting {
            Some(d) => d.load(Relaxed),
            None => self.conns.len(),
        }
    }

    /// A first SYN-ACK for `record`'s target: starts a connection and keeps the record until the
    /// banner is in. Returns the record when the table is full (reported at once, after a RST).
    pub fn open(&mut self, ip: &IpPacket, record: Record, now: Instant) -> Option<Record> {
        let seg = TcpSegment::new_checked(ip.payload()).ok()?;
        let (peer, port, sport) = (ip.src(), seg.src_port(), seg.dst_port());
        let snd_nxt = seg.ack();
        let rcv_nxt = seg.seq().wrapping_add(1);
        if self.active().max(self.conns.len()) >= self.opts.max_connections
            || self.conns.contains_key(&(peer, port))
        {
            self.skipped += 1;
            let local = Some(ip.dst());
            self.send_from(local, peer, sport, port, snd_nxt, 0, TcpFlags::RST, &[]);
            return Some(record);
        }
        if let Some(d) = &self.detecting {
            d.fetch_add(1, Relaxed);
        }
        let local = ip.dst();
        self.send_from(
            Some(local),
            peer,
            sport,
            port,
            snd_nxt,
            rcv_nxt,
            TcpFlags::ACK,
            &[],
        );
        self.hold(&record);
        self.conns.insert(
            (peer, port),
            Conn {
                record: Some(record),
                local,
                sport,
                snd_nxt,
                rcv_nxt,
                buf: Vec::new(),
                phase: Phase::Greeting,
                probe: None,
                opened: now,
                deadline: now + self.opts.greeting_wait,
                unacked: None,
                started: now,
                wait: self.opts.greeting_wait,
                tls: None,
                wants_tls: TlsUse::No,
                whole: Whole::Quiet,
            },
        );
        None
    }

    /// A repeated SYN-ACK: our ACK was lost, so acknowledge again; or the conversation is over
    /// (a retry pass, a late retransmit), so reset the server's half-open connection.
    pub fn repeat_synack(&mut self, ip: &IpPacket) {
        let Ok(seg) = TcpSegment::new_checked(ip.payload()) else {
            return;
        };
        let (peer, port) = (ip.src(), seg.src_port());
        match self
            .conns
            .get(&(peer, port))
            .filter(|c| c.sport == seg.dst_port())
        {
            Some(c) => {
                let (sport, snd, rcv) = (c.sport, c.snd_nxt, c.rcv_nxt);
                self.send(peer, sport, port, snd, rcv, TcpFlags::ACK, &[]);
            }
            None => {
                let (sport, ack) = (seg.dst_port(), seg.ack());
                self.send_from(
                    Some(ip.dst()),
                    peer,
                    sport,
                    port,
                    ack,
                    0,
                    TcpFlags::RST,
                    &[],
                );
            }
        }
    }

    /// A segment from a port we are talking to. Returns `None` when it belongs to no
    /// connection, else the finished record if this segment ended the conversation.
    pub fn segment(&mut self, ip: &IpPacket, now: Instant) -> Option<Option<Record>> {
        let seg = TcpSegment::new_checked(ip.payload()).ok()?;
        let key = (ip.src(), seg.src_port());
        let versioned = self.detecting.is_some();
        let c = self.conns.get_mut(&key)?;
        if seg.dst_port() != c.sport {
            return None;
        }
        let f = seg.flags();
        if matches!(c.phase, Phase::SynSent { .. }) {
            return self.handshake(key, &seg, now);
        }
        if f.has(TcpFlags::SYN) {
            return None; // a SYN-ACK: the scan's business (see repeat_synack)
        }
        if f.has(TcpFlags::RST) {
            if versioned {
                return Some(self.end_version(key, End::Closed, false, now));
            }
            return Some(Some(self.finish(key, false)));
        }
        let data = seg.payload();
        // Our probe arrived once they acknowledge it, or answer.
        if let Some(u) = &c.unacked {
            let end = u.seq.wrapping_add(u.data.len() as u32);
            let acked = f.has(TcpFlags::ACK) && (seg.ack().wrapping_sub(end) as i32) >= 0;
            if acked || !data.is_empty() {
                c.unacked = None;
            }
        }
        let mut done = false;
        let (mut tls_out, mut tls_failed) = (Vec::new(), false);
        if seg.seq() == c.rcv_nxt {
            c.rcv_nxt = c.rcv_nxt.wrapping_add(data.len() as u32);
            // Inside TLS the conversation is the plaintext; the records stay on the wire.
            let app: std::borrow::Cow<[u8]> = match c.tls.as_mut() {
                Some(t) if !data.is_empty() => match t.incoming(data) {
                    Ok(p) => {
                        tls_out = t.outgoing();
                        p.into()
                    }
                    Err(super::tls::TlsEnded) => {
                        t.refused(data);
                        tls_failed = true;
                        Vec::new().into()
                    }
                },
                _ => data.into(),
            };
            let room = self.opts.max_bytes.saturating_sub(c.buf.len());
            c.buf.extend_from_slice(&app[..app.len().min(room)]);
            if f.has(TcpFlags::FIN) {
                c.rcv_nxt = c.rcv_nxt.wrapping_add(1);
                done = true;
            }
            done |= answer_is_whole(c, self.opts.max_bytes);
            if !app.is_empty() {
                // Once the port has spoken, a quiet spell ends the banner.
                let quiet = now + self.opts.idle;
                let hard = if versioned {
                    c.started + c.wait
                } else {
                    c.opened + self.opts.timeout
                };
                c.deadline = quiet.min(hard);
                if matches!(c.phase, Phase::Greeting) {
                    c.phase = Phase::Probed; // a greeting counts as the answer: no probe
                }
            }
        }
        if tls_failed {
            return Some(self.end_version(key, End::Closed, true, now));
        }
        if data.is_empty() && !f.has(TcpFlags::FIN) {
            return Some(None); // a bare ACK of our probe
        }
        // Acknowledge in order data (and re-acknowledge anything out of order); TLS records
        // of ours (handshake, the probe) carry the acknowledgement.
        let (sport, snd, rcv) = (c.sport, c.snd_nxt, c.rcv_nxt);
        let fin = f.has(TcpFlags::FIN);
        if tls_out.is_empty() {
            self.send(key.0, sport, key.1, snd, rcv, TcpFlags::ACK, &[]);
        } else {
            self.send_probe(key, tls_out, now);
        }
        if versioned {
            if done {
                let end = if fin { End::Closed } else { End::Quiet };
                return Some(self.end_version(key, end, true, now));
            }
            return Some(None);
        }
        Some(done.then(|| self.finish(key, true)))
    }

    /// The answer to our SYN: the handshake completed (and the probe, or TLS's ClientHello,
    /// sent), or the port refused.
    fn handshake(
        &mut self,
        key: (IpAddr, u16),
        seg: &TcpSegment<&[u8]>,
        now: Instant,
    ) -> Option<Option<Record>> {
        let c = self.conns.get_mut(&key)?;
        let f = seg.flags();
        let Phase::SynSent { iss, .. } = &c.phase else {
            return None;
        };
        let iss = *iss;
        if f.has(TcpFlags::RST) {
            return Some(self.end_version(key, End::Failed, false, now));
        }
        if !(f.has(TcpFlags::SYN) && f.has(TcpFlags::ACK)) || seg.ack() != iss.wrapping_add(1) {
            return Some(None);
        }
        let Phase::SynSent { payload, .. } = std::mem::replace(&mut c.phase, Phase::Probed) else {
            unreachable!()
        };
        c.rcv_nxt = seg.seq().wrapping_add(1);
        c.snd_nxt = iss.wrapping_add(1);
        c.started = now;
        c.deadline = now + c.wait;
        if payload.is_empty() {
            // A NULL probe of our own (inside TLS): wait for a greeting.
            c.phase = Phase::Greeting;
        }
        // Inside TLS the first bytes are the ClientHello; the probe follows the handshake.
        let bytes = if c.wants_tls != TlsUse::No {
            match super::tls::TlsLayer::new(key.0, &payload, self.opts.sni.as_deref(), c.wants_tls)
            {
                Some(mut t) => {
                    let hello = t.outgoing();
                    c.tls = Some(Box::new(t));
                    hello
                }
                None => return Some(self.end_version(key, End::Failed, true, now)),
            }
        } else {
            payload
        };
        let (sport, snd, rcv) = (c.sport, c.snd_nxt, c.rcv_nxt);
        self.send(key.0, sport, key.1, snd, rcv, TcpFlags::ACK, &[]);
        if !bytes.is_empty() {
            self.send_probe(key, bytes, now);
        }
        Some(None)
    }

    /// Sends due probes and closes expired connections; returns the finished records. Cheap to
    /// call often: it looks at the table at most every 5 ms.
    pub fn tick(&mut self, now: Instant) -> Vec<Record> {
        if now.duration_since(self.last_sweep) < Duration::from_millis(5) {
            return Vec::new();
        }
        self.last_sweep = now;
        if self.versioned() {
            self.tick_version(now);
            return Vec::new();
        }
        let due: Vec<(IpAddr, u16)> = self
            .conns
            .iter()
            .filter(|(_, c)| {
                c.deadline <= now || c.unacked.as_ref().is_some_and(|u| u.again_at <= now)
            })
            .map(|(k, _)| *k)
            .collect();
        let mut out = Vec::new();
        for key in due {
            let Some(c) = self.conns.get_mut(&key) else {
                continue;
            };
            if c.deadline > now {
                // Only a retransmission is due: the probe (or its ACK) was lost.
                self.retransmit(key, now);
                continue;
            }
            if matches!(c.phase, Phase::Greeting) && c.buf.is_empty() {
                let probe = match &self.opts.probes {
                    Some(db) => db
                        .probe_for(key.1)
                        .map(|p| (p.name.clone(), p.payload.clone())),
                    None => {
                        let (n, p) = service::builtin_probe(key.1);
                        Some((n.to_string(), p.to_vec()))
                    }
                };
                if let Some((name, payload)) = probe {
                    c.phase = Phase::Probed;
                    c.probe = Some(name);
                    c.deadline = c.opened + self.opts.timeout;
                    self.send_probe(key, payload, now);
                    continue;
                }
            }
            out.push(self.finish(key, true));
        }
        out
    }

    /// Closes every connection (the scan is ending); returns their records. With `-sV` every
    /// conversation and every order not yet carried out goes back to the worker as aborted.
    /// `unserved`: the worker's orders not carried out yet.
    pub fn close_all(
        &mut self,
        now: Instant,
        unserved: impl IntoIterator<Item = Order>,
    ) -> Vec<Record> {
        let keys: Vec<_> = self.conns.keys().copied().collect();
        if self.versioned() {
            for k in keys {
                self.end_version(k, End::Aborted, true, now);
            }
            for (k, p) in std::mem::take(&mut self.udp) {
                self.answer(
                    k,
                    Box::new(p.record),
                    Vec::new(),
                    End::Aborted,
                    Duration::ZERO,
                    None,
                );
            }
            for o in unserved {
                if let Order::Probe { key, record, .. } = o {
                    self.answer(key, record, Vec::new(), End::Aborted, Duration::ZERO, None);
                }
            }
            return Vec::new();
        }
        keys.into_iter().map(|k| self.finish(k, true)).collect()
    }

    /// Carries out one of the version worker's orders.
    pub(crate) fn order(&mut self, o: Order, now: Instant) {
        match o {
            Order::Close { key } => {
                if let Some(c) = self.conns.get(&key) {
                    if c.record.is_none() {
                        self.close(key);
                    }
                }
            }
            Order::Probe {
                key,
                record,
                name,
                payload,
                wait,
                reuse,
                tls,
                whole,
            } => {
                if record.proto == crate::probe::Proto::Udp {
                    self.send_udp(key, *record, &payload, wait, now);
                    return;
                }
                let waiting = self
                    .conns
                    .get(&key)
                    .is_some_and(|c| matches!(c.phase, Phase::Waiting));
                if reuse && waiting {
                    let sni = self.opts.sni.clone();
                    let c = self.conns.get_mut(&key).expect("waiting");
                    c.record = Some(*record);
                    c.probe = Some(name);
                    // What came while it waited (a greeting's second part) stays.
                    c.started = now;
                    c.wait = wait;
                    c.deadline = now + wait;
                    c.phase = Phase::Probed;
                    c.whole = whole;
                    if c.tls.is_none() && tls != TlsUse::No {
                        // TLS begins on this connection (`--grab`: after a silent greeting).
                        match super::tls::TlsLayer::new(key.0, &payload, sni.as_deref(), tls) {
                            Some(t) => c.tls = Some(Box::new(t)),
                            None => {
                                self.end_version(key, End::Failed, true, now);
                                return;
                            }
                        }
                        c.wants_tls = tls;
                        let c = self.conns.get_mut(&key).expect("waiting");
                        let hello = c.tls.as_mut().map(|t| t.outgoing()).unwrap_or_default();
                        self.send_probe(key, hello, now);
                        return;
                    }
                    c.wants_tls = tls;
                    let bytes = match c.tls.as_mut() {
                        Some(t) => {
                            t.write(&payload);
                            t.outgoing()
                        }
                        None => payload,
                    };
                    if bytes.is_empty() {
                        c.phase = Phase::Greeting;
                    } else {
                        self.send_probe(key, bytes, now);
                    }
                } else {
                    if self.conns.contains_key(&key) {
                        self.close(key);
                    }
                    let c = self.connect(key, *record, name, payload, wait, tls, now);
                    c.whole = whole;
                }
            }
        }
    }

    /// Opens a connection of our own to `key` for a probe (`-sV`), inside TLS when `tls`.
    #[allow(clippy::too_many_arguments)]
    fn connect(
        &mut self,
        key: (IpAddr, u16),
        record: Record,
        name: String,
        payload: Vec<u8>,
        wait: Duration,
        tls: TlsUse,
        now: Instant,
    ) -> &mut Conn {
        let sport = self.next_source_port();
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let iss = self.rng as u32;
        self.send(key.0, sport, key.1, iss, 0, TcpFlags::SYN, &[]);
        let local = self.frames.for_addr(key.0).map_or(key.0, |p| p.src);
        self.conns.insert(
            key,
            Conn {
                record: Some(record),
                local,
                sport,
                snd_nxt: iss,
                rcv_nxt: 0,
                buf: Vec::new(),
                phase: Phase::SynSent {
                    iss,
                    again_at: now + RTO,
                    sent: 1,
                    payload,
                },
                probe: Some(name),
                opened: now,
                deadline: now + RTO * 7,
                unacked: None,
                started: now,
                wait,
                tls: None,
                wants_tls: tls,
                whole: Whole::Quiet,
            },
        );
        self.conns.get_mut(&key).expect("just inserted")
    }

    /// Sends `payload` on the established connection `key` (retransmitted until acknowledged).
    fn send_probe(&mut self, key: (IpAddr, u16), payload: Vec<u8>, now: Instant) {
        let Some(c) = self.conns.get_mut(&key) else {
            return;
        };
        let (sport, snd, rcv) = (c.sport, c.snd_nxt, c.rcv_nxt);
        c.snd_nxt = snd.wrapping_add(payload.len() as u32);
        c.unacked = Some(Unacked {
            seq: snd,
            data: payload.clone(),
            again_at: now + RTO,
            sent: 1,
        });
        self.send(
            key.0,
            sport,
            key.1,
            snd,
            rcv,
            TcpFlags::PSH | TcpFlags::ACK,
            &payload,
        );
    }

    /// Deadlines and retransmissions of `-sV` conversations.
    fn tick_version(&mut self, now: Instant) {
        let quiet: Vec<(IpAddr, u16)> = self
            .udp
            .iter()
            .filter(|(_, p)| p.deadline <= now)
            .map(|(k, _)| *k)
            .collect();
        for key in quiet {
            let p = self.udp.remove(&key).expect("present");
            self.answer(
                key,
                Box::new(p.record),
                Vec::new(),
                End::Quiet,
                now.duration_since(p.started),
                None,
            );
        }
        let due: Vec<(IpAddr, u16)> = self
            .conns
            .iter()
            .filter(|(_, c)| {
                c.deadline <= now
                    || c.unacked.as_ref().is_some_and(|u| u.again_at <= now)
                    || matches!(c.phase, Phase::SynSent { again_at, .. } if again_at <= now)
            })
            .map(|(k, _)| *k)
            .collect();
        for key in due {
            let Some(c) = self.conns.get_mut(&key) else {
                continue;
            };
            if let Phase::SynSent {
                iss,
                again_at,
                sent,
                ..
            } = &mut c.phase
            {
                if *again_at <= now {
                    if *sent >= MAX_SENDS {
                        self.end_version(key, End::Failed, false, now);
                        continue;
                    }
                    *sent += 1;
                    *again_at = now + RTO * (1 << *sent);
                    let (iss, sport) = (*iss, c.sport);
                    self.send(key.0, sport, key.1, iss, 0, TcpFlags::SYN, &[]);
                }
                continue;
            }
            if matches!(c.phase, Phase::Waiting) {
                if c.deadline <= now {
                    self.close(key); // the worker never ordered: it will have closed
                }
                continue;
            }
            if c.deadline > now {
                self.retransmit(key, now);
                continue;
            }
            self.end_version(key, End::Quiet, true, now);
        }
    }

    /// One probe's conversation is over (`-sV`): its answer goes to the worker. A silent NULL
    /// probe keeps the connection open for the next probe; any other ends it (`reset`: with our
    /// RST). Returns nothing (the worker reports the record).
    fn end_version(
        &mut self,
        key: (IpAddr, u16),
        end: End,
        reset: bool,
        now: Instant,
    ) -> Option<Record> {
        let c = self.conns.get_mut(&key)?;
        let record = c.record.take()?;
        let data = std::mem::take(&mut c.buf);
        let elapsed = now.duration_since(c.started);
        let silent_null = end == End::Quiet
            && data.is_empty()
            && c.probe.as_deref().is_none_or(|p| p == "NULL")
            && matches!(c.phase, Phase::Greeting);
        let tls = c.tls.as_ref().map(|t| Box::new(t.facts()));
        // --grab: a connection that ended quietly (and whose TLS, if any, is up) serves the
        // next exchange.
        let usable = tls.as_ref().is_none_or(|t| t.complete);
        if silent_null || (self.opts.keep_open && end == End::Quiet && usable) {
            c.phase = Phase::Waiting;
            c.deadline = now + Duration::from_secs(10);
        } else if reset {
            self.close(key);
        } else {
            self.conns.remove(&key);
        }
        self.answer(key, Box::new(record), data, end, elapsed, tls);
        None
    }

    fn answer(
        &mut self,
        key: (IpAddr, u16),
        record: Box<Record>,
        data: Vec<u8>,
        end: End,
        elapsed: Duration,
        tls: Option<Box<crate::app::TlsFacts>>,
    ) {
        if self.versioned() {
            self.answers.push(Answer {
                key,
                record,
                data,
                end,
                elapsed,
                opening: false,
                tls,
            });
        }
    }

    /// Resets and forgets connection `key`.
    fn close(&mut self, key: (IpAddr, u16)) {
        if let Some(c) = self.conns.remove(&key) {
            if !matches!(c.phase, Phase::SynSent { .. }) {
                self.send_from(
                    Some(c.local),
                    key.0,
                    c.sport,
                    key.1,
                    c.snd_nxt,
                    c.rcv_nxt,
                    TcpFlags::RST | TcpFlags::ACK,
                    &[],
                );
            }
        }
    }

    fn finish(&mut self, key: (IpAddr, u16), reset: bool) -> Record {
        let c = self
            .conns
            .remove(&key)
            .expect("finishing a live connection");
        if reset {
            self.send_from(
                Some(c.local),
                key.0,
                c.sport,
                key.1,
                c.snd_nxt,
                c.rcv_nxt,
                TcpFlags::RST | TcpFlags::ACK,
                &[],
            );
        }
        let mut r = c.record.expect("banner connections keep their record");
        r.grab = Some(Arc::new(Grab {
            banner: c.buf,
            probe: c.probe,
            service: None,
            app: Vec::new(),
        }));
        r
    }

    /// Sends on connection (`dst`, `dport`), from its local address.
    #[allow(clippy::too_many_arguments)]
    fn send(
        &mut self,
        dst: IpAddr,
        sport: u16,
        dport: u16,
        seq: u32,
        ack: u32,
        flags: u8,
        data: &[u8],
    ) {
        let local = self.conns.get(&(dst, dport)).map(|c| c.local);
        self.send_from(local, dst, sport, dport, seq, ack, flags, data);
    }

    /// Sends from `local` (the family's source address when `None`).
    #[allow(clippy::too_many_arguments)]
    fn send_from(
        &mut self,
        local: Option<IpAddr>,
        dst: IpAddr,
        sport: u16,
        dport: u16,
        seq: u32,
        ack: u32,
        flags: u8,
        data: &[u8],
    ) {
        let Some(p) = self.frames.for_addr(dst) else {
            return;
        };
        let p = match local {
            Some(src) if src != p.src && Family::of(&src) == p.family() => {
                FrameParams { src, ..*p }
            }
            _ => *p,
        };
        let frame = tcp_frame(
            &p,
            dst,
            sport,
            dport,
            seq,
            ack,
            flags,
            window(self.opts.max_bytes),
            data,
        );
        self.transmits.push(frame);
    }
}

/// A whole Ethernet frame holding one TCP segment.
#[allow(clippy::too_many_arguments)]
pub(crate) fn tcp_frame(
    p: &FrameParams,
    dst: IpAddr,
    sport: u16,
    dport: u16,
    seq: u32,
    ack: u32,
    flags: u8,
    window: u16,
    data: &[u8],
) -> Vec<u8> {
    let repr = TcpRepr {
        src_port: sport,
        dst_port: dport,
        seq,
        ack: if flags & TcpFlags::ACK != 0 { ack } else { 0 },
        flags: TcpFlags(flags),
        window,
        urgent: 0,
        options: &[],
        payload: data,
    };
    let tpl = FrameTemplate::new(p, &L4Repr::Tcp(repr));
    let mut frame = vec![0u8; tpl.len()];
    // The IP id (or flow label) is free here: these segments are matched by their ports.
    tpl.stamp(&mut frame, dst, seq & 0xffff);
    let sum = checksum::finish(tpl.l4_sum() + tpl.dst_sum(dst));
    put_u16(
        &mut frame,
        tpl.l4_offset() + crate::wire::tcp::CHECKSUM_OFFSET,
        sum,
    );
    frame
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        probe::testutil::{params, tcp_reply, DST},
        probe::{PortState, Proto, Reason},
        wire::template::{IP_OFFSET, L4_OFFSET},
    };

    /// The first frame the grabber made and nobody took yet.
    fn next(g: &mut Grabber) -> Result<Vec<u8>, ()> {
        match g.transmits.is_empty() {
            true => Err(()),
            false => Ok(g.transmits.remove(0)),
        }
    }

    fn opts() -> GrabOptions {
        GrabOptions {
            greeting_wait: Duration::from_millis(100),
            timeout: Duration::from_secs(2),
            idle: Duration::from_millis(50),
            max_bytes: 16,
            max_connections: 2,
            probes: None,
            keep_open: false,
            udp: true,
            sni: None,
        }
    }

    fn record() -> Record {
        Record::new(
            DST,
            80,
            Proto::Tcp,
            PortState::Open,
            Reason::SynAck,
            crate::probe::ScanType::Syn,
        )
    }

    fn seg(f: &[u8]) -> TcpSegment<&[u8]> {
        TcpSegment::new_checked(&f[L4_OFFSET..]).unwrap()
    }

    fn ip(pkt: &[u8]) -> IpPacket<'_> {
        IpPacket::parse(pkt).unwrap()
    }

    #[test]
    fn handshake_probe_collect_and_reset() {
        let mut g = Grabber::new(opts(), Frames::single(params()), Instant::now(), 1);
        let t0 = Instant::now();
        // SYN-ACK: their ISN 1000, acknowledging our ISN 5000.
        let synack = tcp_reply(DST, 80, 61000, 1000, 5001, "SA", 64240);
        assert!(g.open(&ip(&synack), record(), t0).is_none());
        let ack = next(&mut g).unwrap();
        let s = seg(&ack);
        assert_eq!((s.seq(), s.ack(), s.flags().0), (5001, 1001, TcpFlags::ACK));
        assert!(s.verify_checksum(0xc612_0001, 0xc613_0105));
        assert!(crate::wire::Ipv4Packet::new_checked(&ack[IP_OFFSET..])
            .unwrap()
            .verify_checksum());

        // Silence past the greeting wait: the HTTP probe goes out.
        assert!(g.tick(t0 + Duration::from_millis(150)).is_empty());
        let probe = next(&mut g).unwrap();
        let s = seg(&probe);
        assert_eq!(s.payload(), b"GET / HTTP/1.0\r\n\r\n");
        assert_eq!((s.seq(), s.ack()), (5001, 1001));

        // The answer, in two segments, one out of order first (re-acknowledged, not kept).
        let mut ooo = Vec::new();
        etherparse::PacketBuilder::ipv4([198, 19, 1, 5], [198, 18, 0, 1], 64)
            .tcp(80, 61000, 1009, 64240)
            .ack(5019)
            .write(&mut ooo, b"late")
            .unwrap();
        assert_eq!(g.segment(&ip(&ooo), t0), Some(None));
        assert_eq!(seg(&next(&mut g).unwrap()).ack(), 1001);
        let mut first = Vec::new();
        etherparse::PacketBuilder::ipv4([198, 19, 1, 5], [198, 18, 0, 1], 64)
            .tcp(80, 61000, 1001, 64240)
            .ack(5019)
            .psh()
            .write(&mut first, b"HTTP/1.0 200 OK\r\nServer: x\r\n")
            .unwrap();
        // 16 bytes kept: the limit ends it, with a RST after the ACK.
        let done = g.segment(&ip(&first), t0).unwrap().unwrap();
        let grab = done.grab.as_ref().unwrap();
        assert_eq!(grab.banner, b"HTTP/1.0 200 OK\r");
        assert_eq!(grab.probe.as_deref(), Some("GetRequest"));
        let _ack = next(&mut g).unwrap();
        let rst = next(&mut g).unwrap();
        assert!(seg(&rst).flags().has(TcpFlags::RST));
        assert_eq!(seg(&rst).seq(), 5019);
        assert_eq!(g.active(), 0);
    }

    #[test]
    fn a_lost_probe_goes_out_again_until_acknowledged() {
        let o = GrabOptions {
            timeout: Duration::from_secs(30),
            ..opts()
        };
        let mut g = Grabber::new(o, Frames::single(params()), Instant::now(), 1);
        let t0 = Instant::now();
        g.open(
            &ip(&tcp_reply(DST, 80, 61000, 1000, 5001, "SA", 1)),
            record(),
            t0,
        );
        g.tick(t0 + Duration::from_millis(150)); // the probe
        g.transmits.clear();
        // No ACK for a second: sent again, same bytes, same sequence number.
        assert!(g.tick(t0 + Duration::from_millis(1200)).is_empty());
        let again = next(&mut g).unwrap();
        assert_eq!(
            (seg(&again).seq(), seg(&again).payload()),
            (5001, &b"GET / HTTP/1.0\r\n\r\n"[..])
        );
        // Acknowledged: no more copies.
        let ack = tcp_reply(DST, 80, 61000, 1001, 5019, "A", 1);
        assert_eq!(g.segment(&ip(&ack), t0), Some(None));
        g.tick(t0 + Duration::from_secs(10));
        assert!(next(&mut g).is_err(), "nothing sent once acknowledged");
    }

    #[test]
    fn greeting_then_quiet_and_a_bounded_table() {
        let mut g = Grabber::new(opts(), Frames::single(params()), Instant::now(), 1);
        let t0 = Instant::now();
        let synack = tcp_reply(DST, 22, 61001, 7, 9, "SA", 64240);
        g.open(&ip(&synack), record(), t0);
        let mut greet = Vec::new();
        etherparse::PacketBuilder::ipv4([198, 19, 1, 5], [198, 18, 0, 1], 64)
            .tcp(22, 61001, 8, 64240)
            .ack(9)
            .write(&mut greet, b"SSH-2.0-x\r\n")
            .unwrap();
        assert_eq!(g.segment(&ip(&greet), t0), Some(None));
        // Quiet past the idle time: finished with the greeting, no probe sent.
        let done = g.tick(t0 + Duration::from_millis(60));
        assert_eq!(done.len(), 1);
        let grab = done[0].grab.as_ref().unwrap();
        assert_eq!(
            (grab.banner.as_slice(), grab.probe.as_deref()),
            (&b"SSH-2.0-x\r\n"[..], None)
        );
        g.transmits.clear();

        // Two fit; the third open port is reported at once, and reset.
        for p in [1u16, 2] {
            let s = tcp_reply(
                crate::probe::testutil::plus(DST, p as u32),
                80,
                61000,
                1,
                2,
                "SA",
                1,
            );
            assert!(g.open(&ip(&s), record(), t0).is_none());
        }
        let s = tcp_reply(
            crate::probe::testutil::plus(DST, 3),
            80,
            61000,
            1,
            2,
            "SA",
            1,
        );
        assert!(g.open(&ip(&s), record(), t0).is_some());
        assert_eq!(g.skipped, 1);
        assert_eq!(g.close_all(t0, []).len(), 2);
        // A SYN-ACK for a finished conversation (a retry pass) is reset.
        g.transmits.clear();
        g.repeat_synack(&ip(&s));
        let rst = next(&mut g).unwrap();
        assert_eq!(seg(&rst).flags().0, TcpFlags::RST);
        assert_eq!(seg(&rst).seq(), 2);
    }

    #[test]
    fn version_conversation_by_orders_and_answers_without_io() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let detecting = Arc::new(AtomicUsize::new(0));
        let ports = PortRange {
            lo: 62000,
            hi: 62010,
        };
        let mut g = Grabber::new(opts(), Frames::single(params()), t0, 7)
            .with_version(detecting.clone(), ports);
        let synack = tcp_reply(DST, 80, 61000, 1000, 5001, "SA", 64240);
        assert!(g.open(&ip(&synack), record(), t0).is_none());
        assert_eq!(detecting.load(Relaxed), 1, "in detection");
        assert_eq!(seg(&next(&mut g).unwrap()).flags().0, TcpFlags::ACK);
        // Silent past the greeting wait: the NULL probe's empty answer goes to the worker and
        // the connection waits for its order.
        assert!(g.tick(t0 + ms(150)).is_empty());
        let answers: Vec<Answer> = g.drain_answers().collect();
        assert_eq!(answers.len(), 1);
        assert!(answers[0].data.is_empty() && answers[0].end == End::Quiet);
        // The worker orders a probe on that connection: it goes out at once.
        let probe = |reuse| Order::Probe {
            key: (DST, 80),
            record: answers[0].record.clone(),
            name: "GetRequest".into(),
            payload: b"GET / HTTP/1.0\r\n\r\n".to_vec(),
            wait: Duration::from_secs(1),
            reuse,
            tls: crate::app::TlsUse::No,
            whole: Whole::Quiet,
        };
        g.order(probe(true), t0 + ms(160));
        let sent = next(&mut g).unwrap();
        assert_eq!(seg(&sent).payload(), b"GET / HTTP/1.0\r\n\r\n");
        assert_eq!(seg(&sent).seq(), 5001);
        // The end: the conversation and an order never carried out go back as aborted.
        assert!(g.close_all(t0 + ms(170), [probe(false)]).is_empty());
        let ends: Vec<End> = g.drain_answers().map(|a| a.end).collect();
        assert_eq!(ends, [End::Aborted, End::Aborted]);
        assert!(seg(&next(&mut g).unwrap()).flags().has(TcpFlags::RST));
    }

    /// An exchange that says when its reply is whole (JARM's first record) ends at once; one
    /// that does not waits for the quiet spell.
    #[test]
    fn a_whole_reply_ends_its_exchange_without_the_quiet_spell() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        for whole in [Whole::FirstRecord, Whole::Quiet] {
            let detecting = Arc::new(AtomicUsize::new(0));
            let ports = PortRange {
                lo: 62000,
                hi: 62010,
            };
            let mut g = Grabber::new(opts(), Frames::single(params()), t0, 7)
                .with_version(detecting, ports);
            let synack = tcp_reply(DST, 443, 61000, 1000, 5001, "SA", 64240);
            assert!(g.open(&ip(&synack), record(), t0).is_none());
            assert!(g.tick(t0 + ms(150)).is_empty());
            let greeting: Vec<Answer> = g.drain_answers().collect();
            g.order(
                Order::Probe {
                    key: (DST, 443),
                    record: greeting[0].record.clone(),
                    name: "jarm".into(),
                    payload: b"hello".to_vec(),
                    wait: Duration::from_secs(1),
                    reuse: true,
                    tls: crate::app::TlsUse::No,
                    whole,
                },
                t0 + ms(160),
            );
            let alert = [21, 3, 3, 0, 2, 2, 40];
            let mut data = Vec::new();
            etherparse::PacketBuilder::ipv4([198, 19, 1, 5], [198, 18, 0, 1], 64)
                .tcp(443, 61000, 1001, 64240)
                .ack(5006)
                .psh()
                .write(&mut data, &alert)
                .unwrap();
            assert_eq!(g.segment(&ip(&data), t0 + ms(170)), Some(None));
            let answers: Vec<Answer> = g.drain_answers().collect();
            match whole {
                Whole::FirstRecord => {
                    assert_eq!(answers.len(), 1);
                    assert_eq!(answers[0].data, alert);
                }
                Whole::Quiet => assert!(answers.is_empty(), "waits for the quiet spell"),
            }
        }
    }
}
