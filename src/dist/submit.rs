//! `xdpscan submit`: the whole scan, seed included, as one work-queue message per shard.

use std::{ffi::OsString, time::Duration};

use async_nats::jetstream::{consumer::pull, context::Publish};
use clap::Parser;

use super::{
    args::{self, SubmitCli},
    broker, broker_err, consumer_name, work_subject, DistError, JobSpec, ShardTask,
};

/// Options a job cannot carry: where results go and which shard runs are the workers' and
/// `collect`'s business.
const NOT_IN_A_JOB: [&str; 17] = [
    "--shard",
    "--resume",
    "--resume-file",
    "-o",
    "--output-json",
    "--output-xml",
    "--output-grepable",
    "--output-list",
    "-oJ",
    "-oX",
    "-oG",
    "-oL",
    "--csv",
    "-m",
    "--metadata",
    "--publish",
    "--dry-run",
];

/// `args`: everything after `submit`. Prints one line naming the job.
pub fn run(argv: &[OsString]) -> Result<(), DistError> {
    let (cli, rest): (SubmitCli, _) =
        args::parse_split("xdpscan submit", argv, &["--shards", "--replicas"])?;
    super::check_job_name(&cli.job)?;
    for a in &rest {
        let head = a.split_once('=').map_or(a.as_str(), |(h, _)| h);
        if NOT_IN_A_JOB.contains(&head)
            || ["--pcap", "--pcap-replies", "--status-file"].contains(&head)
        {
            return Err(DistError::Usage(format!(
                "submit: {head} is not part of a job (results go to the broker: read them with xdpscan collect)"
            )));
        }
    }
    // The scan is checked here, as a single scan would be, before anything is stored.
    let scan_args: Vec<OsString> = crate::cli::normalize_args(
        std::iter::once(OsString::from("xdpscan")).chain(rest.iter().map(OsString::from)),
    );
    let scan_cli = crate::cli::Cli::try_parse_from(&scan_args).map_err(clap_usage)?;
    let spec = crate::config::ScanSpec::from_cli(&scan_cli)?;
    let job = JobSpec {
        job: cli.job.clone(),
        shards: cli.shards,
        seed: spec.seed,
        args: strip_seed(&rest),
        submitted: crate::output::rfc3339(std::time::SystemTime::now()),
    };
    let replicas = cli.replicas as usize;
    let rt = broker::runtime()?;
    rt.block_on(async {
        let client = broker::connect(&cli.nats.url, &cli.nats.auth).await?;
        let js = broker::jetstream(&client);
        let work = broker::work_stream(&js, replicas).await?;
        broker::results_stream(&js, replicas).await?;
        let jobs = broker::bucket(&js, super::JOBS_BUCKET, replicas, true).await?;
        broker::bucket(&js, super::SHARDS_BUCKET, replicas, true).await?;
        let value = serde_json::to_vec(&job).map_err(|e| broker_err("job", e))?;
        if let Err(e) = jobs.create(&job.job, value.into()).await {
            return Err(match jobs.get(&job.job).await {
                Ok(Some(_)) => DistError::Broker(format!(
                    "job {:?} was already submitted (choose another --job name)",
                    job.job
                )),
                _ => broker_err(format!("cannot store job {:?}", job.job), e),
            });
        }
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
            let task = ShardTask {
                index,
                count: job.shards,
            };
            let body = serde_json::to_vec(&task).map_err(|e| broker_err("shard", e))?;
            let mut tries = 0;
            loop {
                let p = Publish::build()
                    .payload(body.clone().into())
                    .message_id(format!("{}.{index}", job.job));
                let sent = js.send_publish(work_subject(&job.job), p).await;
                let acked = match sent {
                    Ok(ack) => ack.await.map(|_| ()).map_err(|e| e.to_string()),
                    Err(e) => Err(e.to_string()),
                };
                match acked {
                    Ok(()) => break,
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
        let _ = client.flush().await;
        Ok(())
    })?;
    eprintln!(
        "xdpscan: job {} submitted: {} shards of {} probes in all; seed {}",
        job.job,
        job.shards,
        spec.space.len(),
        job.seed
    );
    Ok(())
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

/// A clap error as one usage line.
pub fn clap_usage(e: clap::Error) -> DistError {
    use clap::error::ErrorKind;
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        let _ = e.print();
        std::process::exit(0);
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
}
