//! `xdpscan collect`: a job's results in any output format, each (address, port) once, after
//! every shard is done (or what is stored now, `--no-wait`).

use std::{
    collections::HashSet,
    ffi::OsString,
    net::IpAddr,
    time::{Duration, Instant, SystemTime},
};

use async_nats::jetstream::{self, consumer::pull};
use clap::Parser;
use futures_util::StreamExt;

use super::{
    args::{self, CollectCli},
    broker, broker_err, results_subject,
    submit::clap_usage,
    DistError, JobSpec, ShardState,
};
use crate::{
    output::{formats::Format, ndjson, RunEnd},
    probe::Proto,
};

/// Options `collect` takes besides the formats a job's results can be written in (the format
/// table's `from_job` rows, each with a file), and whether each takes a value.
const OUTPUT_OPTIONS: [(&str, bool); 7] = [
    ("-f", true),
    ("--fields", true),
    ("--show", true),
    ("--noshow", true),
    ("--open", false),
    ("-q", false),
    ("--quiet", false),
];

/// Whether `collect` takes option `head`, and whether a value follows it.
fn output_option(head: &str) -> Option<bool> {
    match Format::from_flag(head) {
        Some(f) => f.row().from_job.then_some(true),
        None => OUTPUT_OPTIONS
            .iter()
            .find(|(n, _)| *n == head)
            .map(|(_, v)| *v),
    }
}

pub fn run(argv: &[OsString]) -> Result<(), DistError> {
    let (cli, rest): (CollectCli, Vec<String>) =
        args::parse_split("xdpscan collect", argv, &["--no-wait", "--timeout"])?;
    super::check_job_name(&cli.job)?;
    check_output_options(&rest)?;
    let quiet = rest.iter().any(|a| a == "-q" || a == "--quiet");
    let rt = broker::runtime()?;
    rt.block_on(async {
        let client = broker::connect(&cli.nats.url, &cli.nats.auth).await?;
        let js = broker::jetstream(&client);
        let job = broker::job(&js, &cli.job).await?;
        let complete = wait_for_shards(&js, &job, &cli).await?;
        // The documents describe the whole job.
        let spec = job_spec(&job, &rest)?;
        let info = crate::scan::run_info(&spec);
        let mut sinks = crate::scan::open_sinks(&spec.outputs, &info, true, &Default::default())?;
        let started = Instant::now();
        let copied = copy_results(&js, &job, &spec, &mut sinks).await?;
        let (written, stored, dups, mut failed) = copied;
        let end = RunEnd {
            end: SystemTime::now(),
            elapsed: started.elapsed(),
            results: written,
            error: failed.is_some(),
            complete: true,
        };
        for (name, s) in sinks.iter_mut() {
            if let Err(e) = s.finish(&end) {
                failed.get_or_insert((name.clone(), e));
            }
        }
        if let Some((name, e)) = failed {
            return Err(DistError::Broker(format!("writing {name}: {e}")));
        }
        if !quiet {
            eprintln!(
                "xdpscan: job {}: {written} results written ({stored} stored, {dups} sent twice and dropped){}",
                job.job,
                if complete { "" } else { "; not every shard is done yet" }
            );
        }
        Ok(())
    })
}

/// Everything after the job's options must be an output option (the scan is the job's).
fn check_output_options(rest: &[String]) -> Result<(), DistError> {
    let mut it = rest.iter();
    while let Some(a) = it.next() {
        let head = a.split_once('=').map_or(a.as_str(), |(h, _)| h);
        match output_option(head) {
            Some(true) if !a.contains('=') => {
                it.next();
            }
            Some(_) => {}
            None => {
                return Err(DistError::Usage(format!(
                    "collect: {a} is not an output option (the scan is the job's)"
                )))
            }
        }
    }
    Ok(())
}

/// Waits for every shard to be done (a dead worker's shard goes to another on its own); false
/// at once with `--no-wait` when some are not.
async fn wait_for_shards(
    js: &jetstream::Context,
    job: &JobSpec,
    cli: &CollectCli,
) -> Result<bool, DistError> {
    let deadline = cli
        .timeout
        .map(|s| Instant::now() + Duration::from_secs_f64(s));
    loop {
        let recs = broker::shard_records(js, job).await?;
        let done = recs
            .iter()
            .filter(|r| r.as_ref().is_some_and(|r| r.state == ShardState::Done))
            .count();
        if done == recs.len() {
            return Ok(true);
        }
        if cli.no_wait {
            return Ok(false);
        }
        if deadline.is_some_and(|d| Instant::now() > d) {
            return Err(DistError::Broker(format!(
                "job {}: {done} of {} shards done when --timeout ran out",
                job.job, job.shards
            )));
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// The job's scan with `rest`'s outputs, as the documents describe it: planned from the job's
/// typed request, with none of this machine's facts (its cores, users, ephemeral ports).
fn job_spec(job: &JobSpec, rest: &[String]) -> Result<crate::config::ScanSpec, DistError> {
    let mut request = job.request()?.clone();
    request.outputs = with_outputs(&request.outputs, rest)?;
    let machine = crate::config::Machine::for_documents(&request)?;
    Ok(crate::config::ScanSpec::resolve(&request, &machine)?)
}

/// The job's output options with those given to `collect` over them (a flag set or a value
/// given wins), as if appended to the job's command line.
fn with_outputs(
    job: &crate::cli::OutputArgs,
    rest: &[String],
) -> Result<crate::cli::OutputArgs, DistError> {
    let args: Vec<OsString> = crate::cli::normalize_args(
        std::iter::once("xdpscan".to_string())
            .chain(rest.iter().cloned())
            .map(OsString::from),
    );
    let asked = crate::cli::Cli::try_parse_from(&args).map_err(clap_usage)?;
    let to_json =
        |o: &crate::cli::OutputArgs| serde_json::to_value(o).map_err(|e| broker_err("outputs", e));
    let (mut merged, given) = (to_json(job)?, to_json(&asked.outputs)?);
    if let (Some(m), Some(g)) = (merged.as_object_mut(), given.as_object()) {
        for (k, v) in g {
            if !(v.is_null() || *v == serde_json::Value::Bool(false)) {
                m.insert(k.clone(), v.clone());
            }
        }
    }
    serde_json::from_value(merged).map_err(|e| broker_err("outputs", e))
}

/// What copying a job's results gave: written, stored, repeats dropped, and the first sink
/// that failed.
type Copied = (u64, u64, u64, Option<(String, std::io::Error)>);

/// Each stored result of the job, once, to every sink.
async fn copy_results(
    js: &jetstream::Context,
    job: &JobSpec,
    spec: &crate::config::ScanSpec,
    sinks: &mut [crate::engine::NamedSink],
) -> Result<Copied, DistError> {
    let slots = Proto::ALL.map(|p| crate::scan::slot_of(spec, p));
    let slot = |p: Proto| slots[p.index()];
    let mut seen = Seen::new(spec.targets.space.len());
    let subject = results_subject(&job.job);
    let stream = js
        .get_stream(super::RESULTS_STREAM)
        .await
        .map_err(|e| broker_err("no results stream", e))?;
    let last = last_sequence(&stream, &subject, 15).await?;
    let (mut written, mut dups, mut stored) = (0u64, 0u64, 0u64);
    if last == 0 {
        return Ok((0, 0, 0, None));
    }
    let consumer = stream
        .create_consumer(pull::OrderedConfig {
            filter_subject: subject.clone(),
            ..Default::default()
        })
        .await
        .map_err(|e| broker_err("cannot read the results", e))?;
    let mut msgs = consumer
        .messages()
        .await
        .map_err(|e| broker_err("cannot read the results", e))?;
    while let Some(m) = msgs.next().await {
        let m = m.map_err(|e| broker_err("reading the results", e))?;
        let seq = m.info().map(|i| i.stream_sequence).unwrap_or(last);
        for line in m.payload.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            stored += 1;
            let Ok(r) = std::str::from_utf8(line)
                .map_err(|e| e.to_string())
                .and_then(ndjson::from_line)
            else {
                continue;
            };
            if !seen.first(&spec.targets.space, slot(r.proto), r.ip, r.port, r.proto) {
                dups += 1;
                continue;
            }
            if !spec.pacing.limits.show.contains(r.state) {
                continue;
            }
            for (name, s) in sinks.iter_mut() {
                if let Err(e) = s.write(&r) {
                    return Ok((written, stored, dups, Some((name.clone(), e))));
                }
            }
            written += 1;
        }
        if seq >= last {
            break;
        }
    }
    Ok((written, stored, dups, None))
}

/// The stream sequence of the job's last result; 0 when it has none. Any other answer is an
/// error, never "no results": empty documents with exit 0 would read as a scan that found
/// nothing.
async fn last_sequence(
    stream: &async_nats::jetstream::stream::Stream,
    subject: &str,
    retries: u32,
) -> Result<u64, DistError> {
    use async_nats::jetstream::stream::LastRawMessageErrorKind as Kind;
    let mut tries = 0;
    loop {
        match stream.get_last_raw_message_by_subject(subject).await {
            Ok(m) => return Ok(m.sequence),
            Err(e) if e.kind() == Kind::NoMessageFound => return Ok(0),
            // A cluster electing a leader answers errors for a moment.
            Err(_) if tries < retries => {
                tries += 1;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            Err(e) => return Err(broker_err("cannot read the job's results", e)),
        }
    }
}

/// Results seen: one bit per probe of the job's space while it fits the engine's bitmap bound
/// (zeroed, so only the pages results touch are mapped), else an exact set of the results
/// themselves (memory by results, not probes); a set for anything outside the space.
struct Seen {
    bits: Option<Vec<u64>>,
    other: HashSet<(IpAddr, u16, Proto)>,
}

impl Seen {
    fn new(len: u64) -> Self {
        Self {
            bits: (len <= crate::engine::dedup::BITMAP_MAX_PROBES)
                .then(|| vec![0; len.div_ceil(64) as usize]),
            other: HashSet::new(),
        }
    }

    fn first(
        &mut self,
        space: &crate::targets::TargetSpace,
        slot: usize,
        ip: IpAddr,
        port: u16,
        proto: Proto,
    ) -> bool {
        match (space.index_of(ip, slot, port), self.bits.as_mut()) {
            (Some(i), Some(bits)) => {
                let (w, b) = ((i / 64) as usize, 1u64 << (i % 64));
                let new = bits[w] & b == 0;
                bits[w] |= b;
                new
            }
            _ => self.other.insert((ip, port, proto)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::test_broker::TestBroker;

    /// Issue 21, item 3: the documents are planned from the job's typed request, not from this
    /// machine: a job for cores 8-15, a user and a transmit thread count this machine does not
    /// have still collects, with collect's outputs over the job's.
    #[test]
    fn a_job_collects_on_a_machine_unlike_the_workers() {
        let request = crate::cli::Cli::try_parse_from([
            "xdpscan",
            "198.18.0.0/24",
            "-p",
            "22,80",
            "--cores",
            "8-15",
            "--tx-threads",
            "8",
            "--user",
            "no-such-user-here",
            "--seed",
            "9",
            "--open",
        ])
        .unwrap();
        let job = JobSpec {
            version: super::super::JOB_VERSION,
            job: "far".into(),
            shards: 2,
            seed: 9,
            args: Vec::new(),
            request: Some(Box::new(request)),
            submitted: String::new(),
            queued: true,
        };
        let spec = job_spec(&job, &["-oX".into(), "/tmp/far.xml".into()]).expect("plans");
        assert_eq!((spec.targets.space.len(), spec.pacing.seed), (512, 9));
        assert_eq!(
            spec.outputs.files,
            vec![(Format::Xml, std::path::PathBuf::from("/tmp/far.xml"))]
        );
        assert!(spec.run_as.is_none());
        // --open stays the job's.
        assert!(!spec
            .pacing
            .limits
            .show
            .contains(crate::probe::PortState::Closed));
        let old = JobSpec {
            version: 1,
            request: None,
            ..job
        };
        assert!(matches!(
            job_spec(&old, &[]),
            Err(DistError::JobVersion { version: 1, .. })
        ));
    }

    /// Issue 20, item 7: a broker error on the last-message lookup is an error; only "no
    /// message" means no results.
    #[test]
    fn a_broker_error_is_not_no_results() {
        let Some(b) = TestBroker::start() else { return };
        broker::runtime().unwrap().block_on(async {
            let js = b.js().await;
            let stream = broker::results_stream(&js, 1).await.unwrap();
            assert_eq!(
                last_sequence(&stream, "xdpscan.results.none", 0)
                    .await
                    .unwrap(),
                0
            );
            js.publish("xdpscan.results.j", "x".into())
                .await
                .unwrap()
                .await
                .unwrap();
            assert_eq!(
                last_sequence(&stream, "xdpscan.results.j", 0)
                    .await
                    .unwrap(),
                1
            );
            js.delete_stream(crate::cluster::RESULTS_STREAM)
                .await
                .unwrap();
            let gone = last_sequence(&stream, "xdpscan.results.j", 0).await;
            assert!(gone.is_err(), "{gone:?}");
        });
    }

    /// Issue 20, item 4: a job past the bitmap's bound is collected with memory by results.
    #[test]
    fn a_huge_job_allocates_no_bitmap() {
        let mut seen = Seen::new(1 << 40);
        assert!(seen.bits.is_none());
        let space = crate::targets::TargetSpace::new(
            crate::targets::RangeSet::from_ranges(vec![crate::targets::Ipv4Range::new(1, 1)]),
            crate::targets::PortList::parse("80").unwrap(),
        );
        let ip = IpAddr::V4(1.into());
        assert!(seen.first(&space, 0, ip, 80, Proto::Tcp));
        assert!(!seen.first(&space, 0, ip, 80, Proto::Tcp));
        let mut small = Seen::new(space.len());
        assert!(small.first(&space, 0, ip, 80, Proto::Tcp));
        assert!(!small.first(&space, 0, ip, 80, Proto::Tcp));
    }
}
