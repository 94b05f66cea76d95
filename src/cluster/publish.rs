//! Results to a JetStream subject as they arrive: acknowledged, pipelined, retried until
//! stored, and never lost while the broker is away (docs/design.md, "Distributed scans").
//!
//! The output thread's [`NatsSink`] turns results into messages: batches of NDJSON lines
//! (workers: up to `BATCH_RESULTS` results or 100 ms, each batch with its own `Nats-Msg-Id`), or
//! one result per message with a `Nats-Msg-Id` made of the subject and the result's key
//! (`--publish`: a result sent again after a resume is stored once). Messages wait in a
//! bounded queue for [`pump`], which keeps up to `WINDOW_BATCHES` (single results:
//! `WINDOW_SINGLE`) of them in flight and publishes each
//! again, with the same id, until the broker acknowledges it. When the queue is full the
//! output thread waits, the engine's result queue fills, and the governor pauses the probes.
//!
//! The [`Ledger`] says up to when every result is stored: a checkpoint may cover a probe only
//! when the replies it could bring (within `--wait`) are all acknowledged.

use std::{
    collections::{BTreeMap, VecDeque},
    sync::{
        atomic::{AtomicBool, AtomicU64, Ordering::Relaxed},
        Arc, Condvar, Mutex,
    },
    time::{Duration, Instant, SystemTime},
};

use async_nats::jetstream::{self, context::Publish};
use bytes::Bytes;

use super::{args::NatsAuth, broker, broker_err, DistError};
use crate::output::{ndjson, Record, RunEnd, Sink};

/// Results per batch message.
pub(crate) const BATCH_RESULTS: usize = 1024;
/// Bytes per batch message (NATS' default payload limit is 1 MiB).
const BATCH_BYTES: usize = 256 << 10;
/// A batch leaves after this long even when not full.
const BATCH_AGE: Duration = Duration::from_millis(100);
/// Messages awaiting their acknowledgement at once: batches (up to 256 KiB each), and single
/// results (a few hundred bytes; the broker's per-message work is what bounds them).
const WINDOW_BATCHES: usize = 256;
const WINDOW_SINGLE: usize = 2048;

use crate::engine::watermark::unix_ms;

/// One message for the broker.
pub struct Batch {
    seq: u64,
    id: String,
    payload: Bytes,
    results: u64,
    /// One result with a key-made id (`--publish`).
    single: bool,
}

/// What is stored and what still waits, shared by the sink, the pump and the checkpointer.
#[derive(Debug, Default)]
pub struct Ledger {
    /// Messages not yet acknowledged: sequence → receive time (ms) of their oldest result.
    outstanding: Mutex<BTreeMap<u64, u64>>,
    /// Every result of a reply received before this time (ms) has been handed to the pump.
    handed_ms: AtomicU64,
    /// Results acknowledged by the broker.
    pub stored: AtomicU64,
    /// Results the broker already held (acknowledged as duplicates: sent again after a
    /// resume or a retried publish).
    pub(crate) duplicates: AtomicU64,
    /// Results handed to the sink.
    pub(crate) handed: AtomicU64,
    /// Publishes tried again (timeouts, broker away).
    pub(crate) retries: AtomicU64,
    /// The broker answers.
    pub(crate) connected: AtomicBool,
    /// The pump has stopped (every message acknowledged, or given up).
    done: Mutex<bool>,
    done_cv: Condvar,
}

impl Ledger {
    /// Every result received before this time (ms since the epoch) is stored.
    pub(crate) fn stored_until_ms(&self) -> u64 {
        let handed = self.handed_ms.load(Relaxed);
        let oldest = self
            .outstanding
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .copied()
            .min();
        oldest.map_or(handed, |o| o.min(handed))
    }

    /// Results handed over but not yet stored.
    pub(crate) fn waiting(&self) -> u64 {
        self.handed
            .load(Relaxed)
            .saturating_sub(self.stored.load(Relaxed) + self.duplicates.load(Relaxed))
    }

    fn finish(&self) {
        *self.done.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.done_cv.notify_all();
    }

    /// Waits until the pump has stopped; false on `timeout`.
    fn wait_done(&self, timeout: Option<Duration>) -> bool {
        let deadline = timeout.map(|t| Instant::now() + t);
        let mut done = self.done.lock().unwrap_or_else(|e| e.into_inner());
        while !*done {
            let step = match deadline {
                Some(d) => match d.checked_duration_since(Instant::now()) {
                    Some(left) => left.min(Duration::from_millis(200)),
                    None => return false,
                },
                None => Duration::from_millis(200),
            };
            done = self
                .done_cv
                .wait_timeout(done, step)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        true
    }
}

/// How the sink names its messages.
#[derive(Debug, Clone)]
pub enum Naming {
    /// Batches, ids `PREFIX.SEQ` (one prefix per shard attempt).
    Batches { prefix: String },
    /// One result per message, id `SUBJECT:SCAN:proto:ip:port`: a result sent again after a
    /// resume is stored once, while another scan's (another run, another scan type) is not
    /// taken for a repeat.
    PerResult { scan: u64 },
}

/// The output sink that sends results to NATS.
pub struct NatsSink {
    subject: String,
    naming: Naming,
    tx: Option<tokio::sync::mpsc::Sender<Batch>>,
    ledger: Arc<Ledger>,
    buf: Vec<u8>,
    count: u64,
    /// The oldest result in `buf` (results come out of order: a banner's waits seconds).
    oldest_ms: u64,
    started: Instant,
    seq: u64,
    /// `--publish`: the thread that runs the pump, started at the first result (after the
    /// privilege drop), and how long `finish` waits for the broker.
    lazy: Option<LazyPump>,
    finish_timeout: Option<Duration>,
}

/// What a single scan's sink needs to start its own pump.
struct LazyPump {
    url: PublishUrl,
    rx: Option<tokio::sync::mpsc::Receiver<Batch>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl NatsSink {
    /// A sink whose messages `pump` (running elsewhere) takes from the returned receiver.
    /// `capacity`: results that may wait before the output thread does.
    pub fn new(
        subject: String,
        naming: Naming,
        capacity: u64,
        ledger: Arc<Ledger>,
    ) -> (Self, tokio::sync::mpsc::Receiver<Batch>) {
        let per = match naming {
            Naming::Batches { .. } => BATCH_RESULTS as u64,
            Naming::PerResult { .. } => 1,
        };
        let (tx, rx) = tokio::sync::mpsc::channel((capacity / per).max(16) as usize);
        ledger.handed_ms.store(unix_ms(SystemTime::now()), Relaxed);
        ledger.connected.store(true, Relaxed);
        (
            Self {
                subject,
                naming,
                tx: Some(tx),
                ledger,
                buf: Vec::new(),
                count: 0,
                oldest_ms: u64::MAX,
                started: Instant::now(),
                seq: 0,
                lazy: None,
                finish_timeout: None,
            },
            rx,
        )
    }

    /// `--publish URL`: checks now (before the privilege drop, with no thread left behind)
    /// that the broker answers and a stream holds the subject (making one if none does), and
    /// publishes from a thread of its own once results come.
    pub fn single_scan(url: &PublishUrl, scan_id: u64) -> Result<Self, DistError> {
        let rt = broker::runtime()?;
        rt.block_on(async {
            let client = broker::connect(&url.server, &url.auth).await?;
            ensure_stream(&broker::jetstream(&client), &url.subject).await?;
            client.flush().await.map_err(|e| broker_err("NATS", e))?;
            drop(client);
            Ok::<_, DistError>(())
        })?;
        drop(rt);
        let (mut sink, rx) = Self::new(
            url.subject.clone(),
            Naming::PerResult { scan: scan_id },
            1_000_000,
            Arc::new(Ledger::default()),
        );
        sink.lazy = Some(LazyPump {
            url: url.clone(),
            rx: Some(rx),
            thread: None,
        });
        sink.finish_timeout = Some(Duration::from_secs(60));
        Ok(sink)
    }

    #[cfg(test)]
    pub(crate) fn ledger(&self) -> Arc<Ledger> {
        self.ledger.clone()
    }

    fn start_lazy_pump(&mut self) {
        let Some(l) = self.lazy.as_mut() else { return };
        let Some(rx) = l.rx.take() else { return };
        let url = l.url.clone();
        let ledger = self.ledger.clone();
        let subject = self.subject.clone();
        l.thread = Some(std::thread::spawn(move || {
            let Ok(rt) = broker::runtime() else {
                ledger.finish();
                return;
            };
            rt.block_on(async move {
                // The first connection was made before the drop; from here on keep trying.
                let client = loop {
                    match broker::connect(&url.server, &url.auth).await {
                        Ok(c) => break c,
                        Err(_) => tokio::time::sleep(Duration::from_secs(1)).await,
                    }
                };
                pump(broker::jetstream(&client), subject, rx, ledger).await;
                let _ = client.flush().await;
            });
        }));
    }

    fn send(&mut self, batch: Batch) -> std::io::Result<()> {
        self.start_lazy_pump();
        self.ledger
            .outstanding
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(batch.seq, self.oldest_ms);
        let tx = self
            .tx
            .as_ref()
            .ok_or_else(|| std::io::Error::other("results sink closed"))?;
        // Blocks while the queue is full: the broker is behind or away.
        tx.blocking_send(batch)
            .map_err(|_| std::io::Error::other("the NATS publisher stopped"))
    }

    fn flush_batch(&mut self) -> std::io::Result<()> {
        if self.count == 0 {
            return Ok(());
        }
        let Naming::Batches { prefix } = &self.naming else {
            return Ok(());
        };
        self.seq += 1;
        let batch = Batch {
            seq: self.seq,
            id: format!("{prefix}.{}", self.seq),
            payload: Bytes::from(std::mem::take(&mut self.buf)),
            results: self.count,
            single: false,
        };
        // In the outstanding map (by `send`) before it leaves the batch.
        let sent = self.send(batch);
        self.count = 0;
        self.oldest_ms = u64::MAX;
        sent
    }
}

impl Sink for NatsSink {
    fn write(&mut self, r: &Record) -> std::io::Result<()> {
        let ts = unix_ms(r.ts);
        self.ledger.handed.fetch_add(1, Relaxed);
        match self.naming.clone() {
            Naming::PerResult { scan } => {
                self.seq += 1;
                self.oldest_ms = ts;
                let line = ndjson::to_wire_line(r);
                let batch = Batch {
                    seq: self.seq,
                    id: per_result_id(&self.subject, scan, r),
                    payload: Bytes::from(line.into_bytes()),
                    results: 1,
                    single: true,
                };
                self.send(batch)?;
            }
            Naming::Batches { .. } => {
                if self.count == 0 {
                    self.started = Instant::now();
                }
                self.oldest_ms = self.oldest_ms.min(ts);
                self.buf
                    .extend_from_slice(ndjson::to_wire_line(r).as_bytes());
                self.buf.push(b'\n');
                self.count += 1;
                if self.count as usize >= BATCH_RESULTS
                    || self.buf.len() >= BATCH_BYTES
                    || self.started.elapsed() >= BATCH_AGE
                {
                    self.flush_batch()?;
                }
            }
        }
        Ok(())
    }

    fn watermark(&mut self, safe_ms: u64) -> std::io::Result<()> {
        if self.count > 0 && self.started.elapsed() >= BATCH_AGE {
            self.flush_batch()?;
        }
        // The open batch's results are not stored yet either.
        let handed = if self.count > 0 {
            safe_ms.min(self.oldest_ms)
        } else {
            safe_ms
        };
        self.ledger.handed_ms.store(handed, Relaxed);
        Ok(())
    }

    /// Every result is sent and acknowledged before the scan ends (or, for `--publish`, until
    /// a minute passes with the broker away: then the scan fails with the count not stored).
    fn finish(&mut self, _end: &RunEnd) -> std::io::Result<()> {
        self.flush_batch()?;
        self.start_lazy_pump();
        drop(self.tx.take());
        let done = self.ledger.wait_done(self.finish_timeout);
        if let Some(t) = self.lazy.as_mut().and_then(|l| l.thread.take()) {
            if done {
                let _ = t.join();
            }
        }
        let waiting = self.ledger.waiting();
        if !done || waiting > 0 {
            return Err(std::io::Error::other(format!(
                "{waiting} results were not acknowledged by the NATS server"
            )));
        }
        Ok(())
    }
}

/// A `--publish` message id: the subject, the scan (stable across its resumes), the key.
fn per_result_id(subject: &str, scan: u64, r: &Record) -> String {
    format!(
        "{subject}:{scan:016x}:{}:{}:{}",
        r.proto.as_str(),
        r.ip,
        r.port
    )
}

/// Publishes every message `rx` brings, a window at a time, each until it is acknowledged;
/// returns when `rx` is closed and everything is stored.
pub async fn pump(
    js: jetstream::Context,
    subject: String,
    mut rx: tokio::sync::mpsc::Receiver<Batch>,
    ledger: Arc<Ledger>,
) {
    type Ack = jetstream::context::PublishAckFuture;
    async fn send(js: &jetstream::Context, subject: &str, b: &Batch, ledger: &Ledger) -> Ack {
        let mut wait = Duration::from_millis(50);
        loop {
            let p = Publish::build()
                .payload(b.payload.clone())
                .message_id(&b.id);
            match js.send_publish(subject.to_string(), p).await {
                Ok(ack) => return ack,
                Err(_) => {
                    ledger.connected.store(false, Relaxed);
                    ledger.retries.fetch_add(1, Relaxed);
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(1));
                }
            }
        }
    }
    let mut inflight: VecDeque<(Batch, Ack)> = VecDeque::new();
    let mut open = true;
    let mut window = WINDOW_BATCHES;
    loop {
        while open && inflight.len() < window {
            match rx.try_recv() {
                Ok(b) => {
                    if b.single {
                        window = WINDOW_SINGLE;
                    }
                    let a = send(&js, &subject, &b, &ledger).await;
                    inflight.push_back((b, a));
                }
                Err(tokio::sync::mpsc::error::TryRecvError::Empty) => break,
                Err(tokio::sync::mpsc::error::TryRecvError::Disconnected) => open = false,
            }
        }
        let Some((b, ack)) = inflight.pop_front() else {
            if !open {
                break;
            }
            match rx.recv().await {
                Some(b) => {
                    let a = send(&js, &subject, &b, &ledger).await;
                    inflight.push_back((b, a));
                }
                None => open = false,
            }
            continue;
        };
        match ack.await {
            Ok(ack) => {
                ledger.connected.store(true, Relaxed);
                let counter = if ack.duplicate {
                    &ledger.duplicates
                } else {
                    &ledger.stored
                };
                counter.fetch_add(b.results, Relaxed);
                ledger
                    .outstanding
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .remove(&b.seq);
            }
            Err(_) => {
                // Timed out or refused (the broker restarting): the same id again, so a copy
                // that did land is dropped by the stream.
                ledger.connected.store(false, Relaxed);
                ledger.retries.fetch_add(1, Relaxed);
                tokio::time::sleep(Duration::from_millis(200)).await;
                let a = send(&js, &subject, &b, &ledger).await;
                inflight.push_back((b, a));
            }
        }
    }
    ledger.finish();
}

/// A stream that holds `subject`: the one that already does, or a new one with file storage.
async fn ensure_stream(js: &jetstream::Context, subject: &str) -> Result<(), DistError> {
    if js.stream_by_subject(subject).await.is_ok() {
        return Ok(());
    }
    let name: String = format!("XDPSCAN_PUB_{subject}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    js.get_or_create_stream(async_nats::jetstream::stream::Config {
        name,
        subjects: vec![subject.to_string()],
        storage: async_nats::jetstream::stream::StorageType::File,
        duplicate_window: Duration::from_secs(600),
        ..Default::default()
    })
    .await
    .map_err(|e| broker_err(format!("cannot make a stream for {subject}"), e))?;
    Ok(())
}

/// `--publish nats://HOST:PORT/SUBJECT` (or `tls://`), with the `--nats-*` options.
#[derive(Debug, Clone)]
pub struct PublishUrl {
    pub(crate) server: String,
    pub(crate) subject: String,
    pub(crate) auth: NatsAuth,
}

impl PublishUrl {
    pub fn parse(s: &str, auth: NatsAuth) -> Result<Self, String> {
        let bad = |why: &str| format!("--publish {s:?}: {why} (nats://HOST:PORT/SUBJECT)");
        let (scheme, rest) = s.split_once("://").ok_or_else(|| bad("no scheme"))?;
        if !["nats", "tls"].contains(&scheme) {
            return Err(bad("the scheme is nats or tls"));
        }
        let (host, subject) = rest.split_once('/').ok_or_else(|| bad("no subject"))?;
        if host.is_empty() {
            return Err(bad("no host"));
        }
        let token_ok = |t: &str| {
            !t.is_empty()
                && t.bytes()
                    .all(|b| b.is_ascii_graphic() && !matches!(b, b'*' | b'>' | b'.'))
        };
        if !subject.split('.').all(token_ok) {
            return Err(bad("the subject is dot-separated tokens without wildcards"));
        }
        let mut auth = auth;
        if scheme == "tls" {
            auth.tls = true;
        }
        Ok(Self {
            server: format!("{scheme}://{host}"),
            subject: subject.to_string(),
            auth,
        })
    }
}

impl std::fmt::Display for PublishUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.server, self.subject)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::UNIX_EPOCH;

    #[test]
    fn publish_urls() {
        let u = PublishUrl::parse("nats://127.0.0.1:4222/scans.web", NatsAuth::default()).unwrap();
        assert_eq!(
            (u.server.as_str(), u.subject.as_str(), u.auth.tls),
            ("nats://127.0.0.1:4222", "scans.web", false)
        );
        assert!(
            PublishUrl::parse("tls://h:4222/a", NatsAuth::default())
                .unwrap()
                .auth
                .tls
        );
        for bad in [
            "127.0.0.1:4222/x",
            "http://h/x",
            "nats://h:4222",
            "nats:///x",
            "nats://h/a.*",
            "nats://h/a..b",
            "nats://h/a>",
        ] {
            assert!(
                PublishUrl::parse(bad, NatsAuth::default()).is_err(),
                "{bad}"
            );
        }
    }

    fn record_at(ms: u64) -> Record {
        let mut r = crate::output::testutil::record(
            [198, 19, 0, 1],
            80,
            crate::probe::PortState::Open,
            crate::probe::Reason::SynAck,
        );
        r.ts = UNIX_EPOCH + Duration::from_millis(ms);
        r
    }

    /// Results in the open batch hold the checkpoint back, however late the engine's mark:
    /// before, `write` and `idle` moved the ledger past them (issue 20, item 1), and a batch
    /// was keyed by its first result, not its oldest (item 2: a banner's record comes late).
    #[test]
    fn results_in_the_open_batch_hold_the_checkpoint_back() {
        let ledger = Arc::new(Ledger::default());
        let (mut sink, mut rx) = NatsSink::new(
            "s".into(),
            Naming::Batches {
                prefix: "j.0.1".into(),
            },
            1 << 20,
            ledger.clone(),
        );
        sink.write(&record_at(10_000)).unwrap();
        sink.write(&record_at(7_000)).unwrap(); // a banner's, held since its SYN-ACK
        sink.write(&record_at(10_050)).unwrap();
        sink.watermark(12_000).unwrap();
        assert_eq!(ledger.stored_until_ms(), 7_000);
        // Flushed: still not stored until the broker acknowledges the batch.
        sink.started -= BATCH_AGE;
        sink.watermark(13_000).unwrap();
        assert!(rx.try_recv().is_ok(), "the batch left on its age");
        assert_eq!(ledger.stored_until_ms(), 7_000);
        ledger.outstanding.lock().unwrap().remove(&1);
        assert_eq!(ledger.stored_until_ms(), 13_000);
    }

    /// Two scans publishing to one subject within the dedup window keep their own results
    /// (issue 20, item 5); a resumed scan (same id) repeats its own ids.
    #[test]
    fn message_ids_name_the_scan() {
        let r = record_at(1);
        let a = per_result_id("scans.web", 1, &r);
        assert_eq!(a, "scans.web:0000000000000001:tcp:198.19.0.1:80");
        assert_ne!(a, per_result_id("scans.web", 2, &r));
        assert_eq!(a, per_result_id("scans.web", 1, &record_at(99)));
    }

    /// Issue 20, item 5, against a real broker: `-sS` then `-sA` (or a rescan) to one subject
    /// within the dedup window both store their results; the broker's duplicate answer for a
    /// resumed scan's repeat is counted as such, not as stored.
    #[test]
    fn two_scans_to_one_subject_both_store_their_results() {
        let Some(b) = crate::cluster::test_broker::TestBroker::start() else {
            return;
        };
        let url = PublishUrl::parse(&format!("{}/scans.web", b.url), NatsAuth::default()).unwrap();
        let publish = |scan: u64| {
            let mut sink = NatsSink::single_scan(&url, scan).unwrap();
            let ledger = sink.ledger();
            sink.write(&record_at(1_000)).unwrap();
            sink.finish(&RunEnd {
                end: SystemTime::now(),
                elapsed: Duration::ZERO,
                results: 1,
                error: false,
                complete: true,
            })
            .unwrap();
            (ledger.stored.load(Relaxed), ledger.duplicates.load(Relaxed))
        };
        assert_eq!(publish(1), (1, 0));
        assert_eq!(publish(2), (1, 0), "another scan's result is its own");
        assert_eq!(publish(1), (0, 1), "the same scan resumed: stored once");
    }

    #[test]
    fn the_ledger_knows_up_to_when_results_are_stored() {
        let l = Ledger::default();
        l.handed_ms.store(5_000, Relaxed);
        assert_eq!(l.stored_until_ms(), 5_000);
        l.outstanding.lock().unwrap().insert(1, 3_000);
        l.outstanding.lock().unwrap().insert(2, 4_000);
        assert_eq!(l.stored_until_ms(), 3_000);
        l.outstanding.lock().unwrap().remove(&1);
        assert_eq!(l.stored_until_ms(), 4_000);
    }
}
