//! `xdpscan status`: where a job stands: shards pending, running and done, results, rates.

use std::ffi::OsString;

use clap::Parser;

use super::{args::StatusCli, broker, submit::clap_usage, DistError, ShardState};

pub fn run(argv: &[OsString]) -> Result<(), DistError> {
    let cli = StatusCli::try_parse_from(
        std::iter::once(OsString::from("xdpscan status")).chain(argv.iter().cloned()),
    )
    .map_err(clap_usage)?;
    super::check_job_name(&cli.job)?;
    let rt = broker::runtime()?;
    rt.block_on(async {
        let client = broker::connect(&cli.nats.url, &cli.nats.auth).await?;
        let js = broker::jetstream(&client);
        let job = broker::job(&js, &cli.job).await?;
        let recs = broker::shard_records(&js, &job).await?;
        let (mut pending, mut running, mut done) = (0u32, 0u32, 0u32);
        let (mut results, mut sent, mut rate, mut walked, mut total) = (0u64, 0u64, 0f64, 0u64, 0u64);
        let mut shards = Vec::new();
        for (i, r) in recs.iter().enumerate() {
            let state = match r {
                None => {
                    pending += 1;
                    "pending"
                }
                Some(r) if r.state == ShardState::Done => {
                    done += 1;
                    "done"
                }
                Some(_) => {
                    running += 1;
                    "running"
                }
            };
            if let Some(r) = r {
                results += r.results;
                sent += r.sent;
                walked += if r.state == ShardState::Done { r.total } else { r.walked };
                total += r.total;
                if r.state == ShardState::Running {
                    rate += r.rate_pps;
                }
            }
            shards.push(serde_json::json!({
                "shard": i + 1,
                "state": state,
                "worker": r.as_ref().map(|r| r.worker.clone()),
                "results": r.as_ref().map_or(0, |r| r.results),
                "sent": r.as_ref().map_or(0, |r| r.sent),
                "rate_pps": r.as_ref().map_or(0.0, |r| r.rate_pps),
                "progress": r.as_ref().map_or(0.0, |r| if r.state == ShardState::Done { 1.0 } else if r.total == 0 { 0.0 } else { r.walked as f64 / r.total as f64 }),
                "updated": r.as_ref().map(|r| r.updated.clone()),
            }));
        }
        if cli.json {
            println!(
                "{}",
                serde_json::json!({
                    "job": job.job,
                    "shards": job.shards,
                    "pending": pending,
                    "running": running,
                    "done": done,
                    "results": results,
                    "sent": sent,
                    "rate_pps": rate,
                    "progress": if total == 0 { 0.0 } else { walked as f64 / total as f64 },
                    "seed": job.seed,
                    "submitted": job.submitted,
                    "per_shard": shards,
                })
            );
        } else {
            println!(
                "job {}: {} shards: {pending} pending, {running} running, {done} done; {results} results stored; {sent} probes sent, now {}; seed {}",
                job.job,
                job.shards,
                crate::engine::monitor::fmt_rate(rate),
                job.seed
            );
            for s in &shards {
                println!(
                    "  shard {:>3}: {:<7} {:>5.1}% {} results{}",
                    s["shard"],
                    s["state"].as_str().unwrap_or(""),
                    s["progress"].as_f64().unwrap_or(0.0) * 100.0,
                    s["results"],
                    s["worker"].as_str().map(|w| format!(" ({w})")).unwrap_or_default()
                );
            }
        }
        Ok(())
    })
}
