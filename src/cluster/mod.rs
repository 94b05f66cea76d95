//! Scans across machines on NATS JetStream (docs/design.md, "Distributed scans"): `submit`
//! puts one message per shard on a work queue, `worker`s take shards one at a time and publish
//! results as they come, saving a checkpoint about every second, `collect` writes a job's
//! results in any format, each key once, and `status` shows where a job stands. `--publish`
//! sends a single scan's results to a subject with the same guarantees.
//!
//! What lives on the broker (file storage, so it survives a restart):
//! - stream `XDPSCAN_WORK` (work queue, subjects `xdpscan.work.<job>`): one message per shard,
//!   taken through the job's durable pull consumer `job-<job>`;
//! - stream `XDPSCAN_RESULTS` (subjects `xdpscan.results.<job>`): results, batches of NDJSON
//!   lines (`output::ndjson::to_wire_line`);
//! - bucket `xdpscan_jobs`: the job's spec, created once (a second submit is refused);
//! - bucket `xdpscan_shards`: each shard's state and checkpoint (`<job>.<index>`).

pub mod args;
pub mod broker;
pub mod collect;
pub(crate) mod metrics;
pub(crate) mod owner;
pub mod publish;
pub(crate) mod shard_process;
pub mod status;
pub mod submit;
pub mod worker;

#[cfg(test)]
mod test_broker;

use serde::{Deserialize, Serialize};

pub(crate) const WORK_STREAM: &str = "XDPSCAN_WORK";
pub(crate) const RESULTS_STREAM: &str = "XDPSCAN_RESULTS";
pub(crate) const JOBS_BUCKET: &str = "xdpscan_jobs";
pub(crate) const SHARDS_BUCKET: &str = "xdpscan_shards";

pub(crate) fn work_subject(job: &str) -> String {
    format!("xdpscan.work.{job}")
}

pub(crate) fn results_subject(job: &str) -> String {
    format!("xdpscan.results.{job}")
}

pub(crate) fn consumer_name(job: &str) -> String {
    format!("job-{job}")
}

pub(crate) fn shard_key(job: &str, index: u32) -> String {
    format!("{job}.{index}")
}

/// Errors of the distributed commands; each is one line.
#[derive(Debug, thiserror::Error)]
pub enum DistError {
    /// Bad input (exit status 2).
    #[error("{0}")]
    Usage(String),
    /// The broker, or what it holds (exit status 1).
    #[error("{0}")]
    Broker(String),
    #[error(transparent)]
    Scan(#[from] crate::scan::ScanError),
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// No such job on the broker (exit status 1).
    #[error("no job {0:?} on the broker")]
    NoJob(String),
    /// A job stored by another layout.
    #[error("job {job:?} was stored in layout {version}; this xdpscan runs layout {JOB_VERSION}: submit it again")]
    JobVersion { job: String, version: u32 },
    /// `--help` or `--version` was printed: nothing more to do (exit status 0).
    #[error("help shown")]
    Shown,
}

impl DistError {
    pub fn exit_code(&self) -> u8 {
        match self {
            DistError::Usage(_) => 2,
            DistError::Shown => 0,
            DistError::Config(e) => e.exit_code(),
            _ => 1,
        }
    }
}

/// `msg: e` as a broker error.
pub(crate) fn broker_err(msg: impl std::fmt::Display, e: impl std::fmt::Display) -> DistError {
    DistError::Broker(format!("{msg}: {e}"))
}

/// A job name: a subject token and a key part.
pub(crate) fn check_job_name(name: &str) -> Result<(), DistError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(DistError::Usage(format!(
            "--job {name:?}: a job name is 1-64 letters, digits, '-' or '_'"
        )))
    }
}

/// The layout of [`JobSpec`] this build writes and reads: 2 carries the typed request.
pub(crate) const JOB_VERSION: u32 = 2;

/// What `submit` stores: the whole scan, seed included.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct JobSpec {
    /// [`JOB_VERSION`] when written (absent: 1, argv only).
    #[serde(default = "version_1")]
    pub(crate) version: u32,
    pub(crate) job: String,
    pub(crate) shards: u32,
    pub(crate) seed: u64,
    /// The scan's options and targets as typed (without `--seed`), for people and for
    /// recognising the same submit run again.
    pub(crate) args: Vec<String>,
    /// The scan as a typed request, seed included: what workers run (overriding their own
    /// interface, source, shard and resume position) and what `collect` plans its documents
    /// from.
    #[serde(default)]
    pub(crate) request: Option<Box<crate::cli::Cli>>,
    pub(crate) submitted: String,
    /// Every shard's message is queued (false while `submit` is at it, or after it failed
    /// half-way: see `submit::store`).
    #[serde(default = "yes")]
    pub(crate) queued: bool,
}

fn yes() -> bool {
    true
}

fn version_1() -> u32 {
    1
}

impl JobSpec {
    /// The typed request, or why this job cannot be run by this build.
    pub(crate) fn request(&self) -> Result<&crate::cli::Cli, DistError> {
        match (&self.request, self.version) {
            (Some(r), JOB_VERSION) => Ok(r),
            (_, v) => Err(DistError::JobVersion {
                job: self.job.clone(),
                version: v,
            }),
        }
    }
}

/// One work-queue message: which shard of which job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ShardTask {
    pub(crate) index: u32,
    pub(crate) count: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum ShardState {
    Running,
    Done,
}

/// A shard's record in `xdpscan_shards`: who has it, how far it is, and where to resume.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ShardRecord {
    pub(crate) state: ShardState,
    pub(crate) worker: String,
    /// The resume file a worker continues from (`resume::ResumeFile`, JSON); none before the
    /// first checkpoint.
    #[serde(default)]
    pub(crate) checkpoint: Option<serde_json::Value>,
    pub(crate) probes: u64,
    /// Cycle positions covered by the checkpoint, for progress.
    pub(crate) walked: u64,
    pub(crate) total: u64,
    pub(crate) sent: u64,
    pub(crate) results: u64,
    pub(crate) rate_pps: f64,
    /// Seconds spent sending, once the shard is done (its achieved rate is `sent` over this).
    #[serde(default)]
    pub(crate) send_secs: f64,
    pub(crate) updated: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn job_names_are_subject_tokens() {
        for ok in ["sweep-1", "a", "Web_2026"] {
            assert!(check_job_name(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a.b", "a b", "a*", "a>", &"x".repeat(65)] {
            assert!(check_job_name(bad).is_err(), "{bad}");
        }
        assert_eq!(results_subject("s1"), "xdpscan.results.s1");
        assert_eq!(shard_key("s1", 3), "s1.3");
    }
}
