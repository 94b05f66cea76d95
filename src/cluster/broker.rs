//! The connection to NATS and the JetStream objects xdpscan keeps there.

use std::time::Duration;

use async_nats::jetstream::{self, kv, stream};

use super::{args::NatsAuth, broker_err, DistError};

/// How long a request to the broker may take before it is tried again (or reported).
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// The runtime every NATS conversation of a thread runs on: one thread, the caller's.
pub fn runtime() -> Result<tokio::runtime::Runtime, DistError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| broker_err("cannot start the NATS client", e))
}

/// Connects to `servers` (comma-separated URLs). The first connection must succeed; after it
/// the client reconnects on its own, as long as it takes.
pub async fn connect(servers: &str, auth: &NatsAuth) -> Result<async_nats::Client, DistError> {
    connect_patiently(servers, auth, 3).await
}

/// `connect`, trying `tries` times while the server only times out (a worker waits longer
/// than a command: it is a daemon, and busy scanners or a node restarting slow the handshake).
pub(crate) async fn connect_patiently(
    servers: &str,
    auth: &NatsAuth,
    tries: u32,
) -> Result<async_nats::Client, DistError> {
    let addrs: Vec<async_nats::ServerAddr> = servers
        .split(',')
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<async_nats::ServerAddr>()
                .map_err(|e| DistError::Usage(format!("--nats {s:?}: {e}")))
        })
        .collect::<Result<_, _>>()?;
    if addrs.is_empty() {
        return Err(DistError::Usage("--nats: no server URL".into()));
    }
    // A refused or unresolvable address fails at once; a server that is only slow to answer
    // (busy, or a cluster node restarting) is tried again.
    let mut tried = 1;
    loop {
        match options(auth).await?.connect(addrs.clone()).await {
            Ok(c) => return Ok(c),
            Err(e) if tried < tries && e.kind() == async_nats::ConnectErrorKind::TimedOut => {
                tried += 1;
            }
            Err(e) => {
                return Err(broker_err(
                    format!("cannot reach the NATS server at {servers}"),
                    e,
                ))
            }
        }
    }
}

async fn options(auth: &NatsAuth) -> Result<async_nats::ConnectOptions, DistError> {
    let mut o = async_nats::ConnectOptions::new()
        .name("xdpscan")
        .connection_timeout(Duration::from_secs(5))
        .request_timeout(Some(REQUEST_TIMEOUT))
        // Results wait in xdpscan's own bounded buffer, not in the client's.
        .client_capacity(65_536);
    if let Some(f) = &auth.creds {
        o = o
            .credentials_file(f)
            .await
            .map_err(|e| DistError::Usage(format!("--nats-creds {}: {e}", f.display())))?;
    }
    if let (Some(u), Some(p)) = (&auth.user, &auth.password) {
        o = o.user_and_password(u.clone(), p.clone());
    }
    if let Some(t) = &auth.token {
        o = o.token(t.clone());
    }
    if auth.tls || auth.tls_ca.is_some() || auth.tls_cert.is_some() {
        o = o.require_tls(true);
    }
    for f in [&auth.tls_ca, &auth.tls_cert, &auth.tls_key]
        .into_iter()
        .flatten()
    {
        if !f.is_file() {
            return Err(DistError::Usage(format!(
                "{}: no such file (NATS TLS)",
                f.display()
            )));
        }
    }
    if let Some(ca) = &auth.tls_ca {
        o = o.add_root_certificates(ca.clone());
    }
    if let (Some(c), Some(k)) = (&auth.tls_cert, &auth.tls_key) {
        o = o.add_client_certificate(c.clone(), k.clone());
    }
    Ok(o)
}

pub fn jetstream(client: &async_nats::Client) -> jetstream::Context {
    let mut js = jetstream::new(client.clone());
    js.set_timeout(REQUEST_TIMEOUT);
    js
}

/// The work queue (made by `submit`).
pub(crate) async fn work_stream(
    js: &jetstream::Context,
    replicas: usize,
) -> Result<stream::Stream, DistError> {
    js.get_or_create_stream(stream::Config {
        name: super::WORK_STREAM.into(),
        subjects: vec!["xdpscan.work.*".into()],
        retention: stream::RetentionPolicy::WorkQueue,
        storage: stream::StorageType::File,
        num_replicas: replicas,
        duplicate_window: Duration::from_secs(120),
        ..Default::default()
    })
    .await
    .map_err(|e| broker_err("cannot make the work queue", e))
}

/// The results of every job (made by `submit`).
pub async fn results_stream(
    js: &jetstream::Context,
    replicas: usize,
) -> Result<stream::Stream, DistError> {
    js.get_or_create_stream(stream::Config {
        name: super::RESULTS_STREAM.into(),
        subjects: vec!["xdpscan.results.*".into()],
        storage: stream::StorageType::File,
        num_replicas: replicas,
        // Long enough for a batch retried across a broker restart to be stored once.
        duplicate_window: Duration::from_secs(600),
        ..Default::default()
    })
    .await
    .map_err(|e| broker_err("cannot make the results stream", e))
}

/// A bucket, made when missing (with `replicas` copies) or opened.
pub(crate) async fn bucket(
    js: &jetstream::Context,
    name: &str,
    replicas: usize,
    create: bool,
) -> Result<kv::Store, DistError> {
    match js.get_key_value(name).await {
        Ok(b) => Ok(b),
        Err(_) if create => js
            .create_key_value(kv::Config {
                bucket: name.into(),
                history: 1,
                storage: stream::StorageType::File,
                num_replicas: replicas,
                ..Default::default()
            })
            .await
            .map_err(|e| broker_err(format!("cannot make bucket {name}"), e)),
        Err(e) => Err(broker_err(
            format!("no bucket {name} on the broker (submit a job first)"),
            e,
        )),
    }
}

/// The key-value bucket is not there at all (no job was ever submitted): the broker's own
/// error code, not its text.
fn no_bucket(e: &jetstream::context::KeyValueError) -> bool {
    use jetstream::context::{GetStreamError, GetStreamErrorKind};
    use std::error::Error;
    e.kind() == jetstream::context::KeyValueErrorKind::GetBucket
        && e.source()
            .and_then(|s| s.downcast_ref::<GetStreamError>())
            .is_some_and(|g| {
                matches!(g.kind(), GetStreamErrorKind::JetStream(j)
                    if j.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND)
            })
}

/// The job's spec, or a one-line error naming the job. A broker that does not answer for a
/// moment (a cluster electing a leader, a node restarting) is asked again for up to 15 s.
pub(crate) async fn job(js: &jetstream::Context, name: &str) -> Result<super::JobSpec, DistError> {
    let missing = || DistError::NoJob(name.to_string());
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let answer = match js.get_key_value(super::JOBS_BUCKET).await {
            Ok(jobs) => jobs.get(name).await.map_err(|e| e.to_string()),
            Err(e) if no_bucket(&e) => return Err(missing()),
            Err(e) => Err(e.to_string()),
        };
        match answer {
            Ok(Some(v)) => {
                return serde_json::from_slice(&v)
                    .map_err(|e| broker_err(format!("job {name:?} is unreadable"), e))
            }
            Ok(None) => return Err(missing()),
            Err(e) if std::time::Instant::now() > deadline => {
                return Err(broker_err(format!("reading job {name:?}"), e))
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}

/// Every shard's record of a job (`None`: no worker has taken it yet).
pub(crate) async fn shard_records(
    js: &jetstream::Context,
    job: &super::JobSpec,
) -> Result<Vec<Option<super::ShardRecord>>, DistError> {
    let b = bucket(js, super::SHARDS_BUCKET, 1, false).await?;
    let mut out = Vec::with_capacity(job.shards as usize);
    for i in 0..job.shards {
        let key = super::shard_key(&job.job, i);
        let v = b
            .get(&key)
            .await
            .map_err(|e| broker_err(format!("reading shard {key}"), e))?;
        out.push(v.and_then(|v| serde_json::from_slice(&v).ok()));
    }
    Ok(out)
}

/// Whether every shard of the job is done.
pub(crate) async fn job_done(
    js: &jetstream::Context,
    job: &super::JobSpec,
) -> Result<bool, DistError> {
    Ok(shard_records(js, job).await?.iter().all(|r| {
        r.as_ref()
            .is_some_and(|r| r.state == super::ShardState::Done)
    }))
}
