//! `xdpscan submit`: the whole scan, seed included, as one work-queue message per shard.

use std::{ffi::OsString, time::Duration};

use async_nats::jetstream::{self, consumer::pull, context::Publish};
use clap::Parser;

use crate::output::formats::Format;

use super::{
    args::{self, SubmitCli},
    broker, broker_err, consumer_name, work_subject, DistError, JobSpec, ShardTask,
};

/// Options a job cannot carry besides the output formats' (the format table's): where results
/// go and which shard runs are the workers' and `collect`'s business.
const NOT_IN_A_JOB: [&str; 9] = [
    "--shard",
    "--resume",
    "--resume-file",
    "-m",
    "--metadata",
    "--publish",
    "--dry-run",
    "--pcap",
    "--status-file",
];

/// `args`: everything after `submit`. Prints one line naming the job.
pub fn run(argv: &[OsString]) -> Result<(), DistError> {
    let (cli, rest): (SubmitCli, _) =
        args::parse_split("xdpscan submit", argv, &["--shards", "--replicas"])?;
    super::check_job_name(&cli.job)?;
    for a in &rest {
        let head = a.split_once('=').map_or(a.as_str(), |(h, _)| h);
        if NOT_IN_A_JOB.contains(&head) || Format::from_flag(head).is_some() {
            return Err(DistError::Usage(format!(
                "submit: {head} is not part of a job (results go to the broker: read them with xdpscan collect)"
            )));
        }
    }
    // The scan is checked here, as a single scan would be, before anything is stored.
    let scan_args: Vec<OsString> = crate::cli::normalize_args(
        std::iter::once(OsString::from("xdpscan")).chain(rest.iter().map(OsString::from)),
    );
    let mut request = crate::cli::Cli::try_parse_from(&scan_args).map_err(clap_usage)?;
    let spec = crate::config::ScanSpec::from_cli(&request)?;
    request.pacing.seed = Some(spec.pacing.seed);
    let job = JobSpec {
        version: super::JOB_VERSION,
        job: cli.job.clone(),
        shards: cli.shards,
        seed: spec.pacing.seed,
        args: strip_seed(&rest),
        request: Some(Box::new(request)),
        submitted: crate::output::rfc3339(std::time::SystemTime::now()),
        queued: false,
    };
    let replicas = cli.replicas as usize;
    let seed_given = rest
        .iter()
        .any(|a| a == "--seed" || a.starts_with("--seed="));
    let rt = broker::runtime()?;
    let job = rt.block_on(async {
        let client = broker::connect(&cli.nats.url, &cli.nats.auth).await?;
        let js = broker::jetstream(&client);
        let job = store(&js, job, seed_given, replicas).await?;
        let _ = client.flush().await;
        Ok::<_, DistError>(job)
    })?;
    eprintln!(
        "xdpscan: job {} submitted: {} shards of {} probes in all; seed {}",
        job.job,
        job.shards,
        spec.targets.space.len(),
        job.seed
    );
    Ok(())
}

/// Stores the job and queues its shards. The job is stored first marked not yet queued, and
/// marked queued once every shard is: a submit that failed half-way is finished by the same
/// submit run again (the same scan: it keeps the stored seed; shard messages already queued
/// are dropped by their ids), or replaced by a different one.
pub(crate) async fn store(
    js: &jetstream::Context,
    mut job: JobSpec,
    seed_given: bool,
    replicas: usize,
) -> Result<JobSpec, DistError> {
    let work = broker::work_stream(js, replicas).await?;
    broker::results_stream(js, replicas).await?;
    let jobs = broker::bucket(js, super::JOBS_BUCKET, replicas, true).await?;
    let shards = broker::bucket(js, super::SHARDS_BUCKET, replicas, true).await?;
    job.queued = false;
    let value = serde_json::to_vec(&job).map_err(|e| broker_err("job", e))?;
    let revision = match jobs.create(&job.job, value.clone().into()).await {
        Ok(rev) => rev,
        Err(e) => {
            let Ok(Some(entry)) = jobs.entry(&job.job).await else {
                return Err(broker_err(format!("cannot store job {:?}", job.job), e));
            };
            let old: Option<JobSpec> = serde_json::from_slice(&entry.value).ok();
            match old {
                Some(old) if old.queued => {
                    return Err(DistError::Broker(format!(
                        "job {:?} was already submitted (choose another --job name)",
                        job.job
                    )))
                }
                // The same scan: finish queueing it, with the seed it was stored with.
                Some(old)
                    if old.args == job.args
                        && old.shards == job.shards
                        && (!seed_given || old.seed == job.seed) =>
                {
                    job = old;
                    entry.revision
                }
                // Another scan under the name of one that never got queued: replace it.
                _ => {
                    let _ = work.purge().filter(work_subject(&job.job)).await;
                    for i in 0..job.shards.max(old_shards(&entry.value)) {
                        let _ = shards.purge(super::shard_key(&job.job, i)).await;
                    }
                    jobs.update(&job.job, value.into(), entry.revision)
                        .await
                        .map_err(|e| broker_err(format!("cannot replace job {:?}", job.job), e))?
                }
            }
        }
    };
    work.get_or_create_consumer(
        &consumer_name(&job.job),
        pull::Config {
            durable_name: Some(consumer_name(&job.job)),
            filter_subject: work_subject(&job.job),
            ack_policy: async_nats::jetstream::consumer::AckPolicy::Explicit,
            ack_wait: super::worker::ACK_WAIT,
            max_deliver: -1,
            num_replicas: replicas,
            ..Default::default()
        },
    )
    .await
    .map_err(|e| broker_err("cannot make the job's consumer", e))?;
    for index in 0..job.shards {
        queue_shard(js, &job, index).await?;
    }
    job.queued = true;
    let value = serde_json::to_vec(&job).map_err(|e| broker_err("job", e))?;
    jobs.update(&job.job, value.into(), revision)
        .await
        .map_err(|e| broker_err(format!("cannot mark job {:?} queued", job.job), e))?;
    Ok(job)
}

fn old_shards(value: &[u8]) -> u32 {
    serde_json::from_slice::<JobSpec>(value).map_or(0, |j| j.shards)
}

/// One shard's message, tried again while the broker is away for a moment; its id (the job,
/// a digest of its spec, the shard) makes a second copy of the same job's shard (a submit run
/// again) a no-op within the stream's duplicate window, but not a replacing job's.
async fn queue_shard(js: &jetstream::Context, job: &JobSpec, index: u32) -> Result<(), DistError> {
    let task = ShardTask {
        index,
        count: job.shards,
    };
    let body = serde_json::to_vec(&task).map_err(|e| broker_err("shard", e))?;
    let mut parts = vec![job.seed.to_string(), job.shards.to_string()];
    parts.extend(job.args.iter().cloned());
    let digest = crate::resume::fingerprint(&parts.iter().map(String::as_str).collect::<Vec<_>>());
    let mut tries = 0;
    loop {
        let p = Publish::build()
            .payload(body.clone().into())
            .message_id(format!("{}.{digest}.{index}", job.job));
        let sent = js.send_publish(work_subject(&job.job), p).await;
        let acked = match sent {
            Ok(ack) => ack.await.map(|_| ()).map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match acked {
            Ok(()) => return Ok(()),
            Err(e) if tries >= 10 => {
                return Err(broker_err(format!("cannot queue shard {}", index + 1), e))
            }
            Err(_) => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        }
    }
}

/// The scan's arguments without `--seed` (the job holds the seed).
fn strip_seed(args: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let mut skip = false;
    for a in args {
        if skip {
            skip = false;
        } else if a == "--seed" {
            skip = true;
        } else if !a.starts_with("--seed=") {
            out.push(a.clone());
        }
    }
    out
}

/// A clap error as one usage line; help and version are printed and end the command well.
pub(crate) fn clap_usage(e: clap::Error) -> DistError {
    use clap::error::ErrorKind;
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        let _ = e.print();
        return DistError::Shown;
    }
    DistError::Usage(crate::cli::clap_line(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_job_keeps_its_seed_apart() {
        let a: Vec<String> = ["-p", "80", "--seed", "5", "198.18.0.0/24", "--seed=6"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(strip_seed(&a), vec!["-p", "80", "198.18.0.0/24"]);
    }

    fn spec(args: &[&str], seed: u64) -> JobSpec {
        JobSpec {
            version: super::super::JOB_VERSION,
            job: "half".into(),
            shards: 4,
            seed,
            args: args.iter().map(|s| s.to_string()).collect(),
            request: None,
            submitted: String::new(),
            queued: false,
        }
    }

    async fn queued(js: &jetstream::Context) -> u64 {
        js.get_stream(super::super::WORK_STREAM)
            .await
            .unwrap()
            .info()
            .await
            .unwrap()
            .state
            .messages
    }

    /// Issue 20, item 8: a submit that stopped half-way (job stored, shards not all queued) is
    /// finished by the same submit run again, or replaced by another scan; a queued job is
    /// still refused.
    #[test]
    fn a_submit_that_failed_half_way_can_be_finished_or_replaced() {
        let Some(b) = crate::cluster::test_broker::TestBroker::start() else {
            return;
        };
        broker::runtime().unwrap().block_on(async {
            let js = b.js().await;
            let a = ["198.18.0.0/24", "-p", "80"];
            // What a submit that died after storing the job and queueing one shard left.
            broker::work_stream(&js, 1).await.unwrap();
            let jobs = broker::bucket(&js, super::super::JOBS_BUCKET, 1, true)
                .await
                .unwrap();
            jobs.create("half", serde_json::to_vec(&spec(&a, 7)).unwrap().into())
                .await
                .unwrap();
            queue_shard(&js, &spec(&a, 7), 0).await.unwrap();
            // The same submit again (a new random seed): finished, keeping the stored seed.
            let done = store(&js, spec(&a, 99), false, 1).await.unwrap();
            assert_eq!((done.seed, done.queued), (7, true));
            assert_eq!(queued(&js).await, 4, "shard 1 was queued once");
            let again = store(&js, spec(&a, 7), false, 1).await;
            assert!(again.unwrap_err().to_string().contains("already submitted"));

            // Half-way again, then another scan under the name: it replaces the old one.
            jobs.purge("half").await.unwrap();
            js.get_stream(super::super::WORK_STREAM)
                .await
                .unwrap()
                .purge()
                .await
                .unwrap();
            jobs.create("half", serde_json::to_vec(&spec(&a, 7)).unwrap().into())
                .await
                .unwrap();
            let other = store(&js, spec(&["198.18.1.0/24", "-p", "443"], 5), true, 1)
                .await
                .unwrap();
            assert_eq!((other.seed, other.args[0].as_str()), (5, "198.18.1.0/24"));
            assert_eq!(
                queued(&js).await,
                4,
                "the new job's shards, not taken for repeats"
            );
            let stored: JobSpec =
                serde_json::from_slice(&jobs.get("half").await.unwrap().unwrap()).unwrap();
            assert_eq!(stored, other);
        });
    }
}
