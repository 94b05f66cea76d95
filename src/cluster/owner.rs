//! A shard's record, written only by the worker that owns it: every write is a compare-and-set
//! on the revision that worker last wrote or read (docs/design.md, "Distributed scans").
//!
//! Without it a shard redelivered while its first worker was stalled could end "running"
//! forever: the first worker writes Done, the second overwrites it with Running and dies, and
//! no message is left to redeliver. With it the second worker's write fails, it reads Done and
//! stands down; a Done is never overwritten.

use std::time::Duration;

use async_nats::jetstream::kv::{self, UpdateErrorKind};

use super::{broker_err, DistError, ShardRecord, ShardState};

/// The record as read: its value (if any) and the revision to write over (0: no record yet).
pub(crate) struct Read {
    pub(crate) record: Option<ShardRecord>,
    pub(crate) revision: u64,
}

/// Reads a shard's record. A broker error is an error, never "no record" (which would start the
/// shard again from scratch).
pub(crate) async fn read(kv: &kv::Store, key: &str) -> Result<Read, DistError> {
    let entry = kv
        .entry(key)
        .await
        .map_err(|e| broker_err(format!("reading shard {key}"), e))?;
    Ok(match entry {
        Some(e) if matches!(e.operation, kv::Operation::Put) => Read {
            record: serde_json::from_slice(&e.value).ok(),
            revision: e.revision,
        },
        Some(e) => Read {
            record: None,
            revision: e.revision,
        },
        None => Read {
            record: None,
            revision: 0,
        },
    })
}

/// What a write found.
#[derive(Debug, PartialEq)]
pub(crate) enum Wrote {
    Yes,
    /// Another worker wrote since: the shard is not ours any more (what it holds now).
    Lost(Option<ShardRecord>),
}

/// A worker's hold on one shard's record.
pub(crate) struct Owner {
    kv: kv::Store,
    key: String,
    revision: u64,
}

impl Owner {
    /// Claims the shard with `record` over the revision `read` saw. `Lost` when another worker
    /// wrote in between (or the shard is done).
    pub(crate) async fn claim(
        kv: kv::Store,
        key: String,
        read: &Read,
        record: &ShardRecord,
    ) -> Result<(Self, Wrote), DistError> {
        let mut me = Self {
            kv,
            key,
            revision: read.revision,
        };
        if read
            .record
            .as_ref()
            .is_some_and(|r| r.state == ShardState::Done)
        {
            return Ok((me, Wrote::Lost(read.record.clone())));
        }
        let wrote = me.save(record).await?;
        Ok((me, wrote))
    }

    /// Writes `record` if nobody else wrote since our last write.
    pub(crate) async fn save(&mut self, record: &ShardRecord) -> Result<Wrote, DistError> {
        let value: bytes::Bytes = serde_json::to_vec(record).unwrap_or_default().into();
        match self.kv.update(&self.key, value, self.revision).await {
            Ok(rev) => {
                self.revision = rev;
                Ok(Wrote::Yes)
            }
            Err(e) if e.kind() == UpdateErrorKind::WrongLastRevision => {
                let now = read(&self.kv, &self.key).await?;
                Ok(Wrote::Lost(now.record))
            }
            Err(e) => Err(broker_err(format!("writing shard {}", self.key), e)),
        }
    }

    /// Marks the shard done: every result of it is stored, so this holds even over another
    /// worker's Running (that worker stands down at its next write); a Done already there is
    /// left. Tried until the broker takes it; `alive` runs between tries (progress acks).
    pub(crate) async fn finish<F, Fut>(&mut self, record: &ShardRecord, mut alive: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        loop {
            match self.save(record).await {
                Ok(Wrote::Yes) => return,
                Ok(Wrote::Lost(Some(r))) if r.state == ShardState::Done => return,
                Ok(Wrote::Lost(_)) => {
                    // Someone else wrote Running: write over the revision they left.
                    if let Ok(now) = read(&self.kv, &self.key).await {
                        self.revision = now.revision;
                    }
                }
                Err(_) => {
                    alive().await;
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::{broker, test_broker::TestBroker, SHARDS_BUCKET};

    fn rec(state: ShardState, worker: &str) -> ShardRecord {
        ShardRecord {
            state,
            worker: worker.into(),
            checkpoint: None,
            probes: 1,
            walked: 0,
            total: 1,
            sent: 0,
            results: 0,
            rate_pps: 0.0,
            send_secs: 0.0,
            updated: String::new(),
        }
    }

    /// Issue 20, item 6: a shard redelivered while its first worker stalled. Whichever order
    /// the two workers write in, the record ends Done and the second worker learns it.
    #[test]
    fn a_done_shard_is_never_made_running_again() {
        let Some(b) = TestBroker::start() else { return };
        broker::runtime().unwrap().block_on(async {
            let js = b.js().await;
            let kv = broker::bucket(&js, SHARDS_BUCKET, 1, true).await.unwrap();
            let key = "j.0".to_string();
            let running = |w| rec(ShardState::Running, w);
            let first = read(&kv, &key).await.unwrap();
            assert_eq!((first.record.is_none(), first.revision), (true, 0));
            let (mut a, w) = Owner::claim(kv.clone(), key.clone(), &first, &running("a"))
                .await
                .unwrap();
            assert_eq!(w, Wrote::Yes);
            // B read A's Running before A finished; A writes Done; B's claim then fails.
            let seen_by_b = read(&kv, &key).await.unwrap();
            a.finish(&rec(ShardState::Done, "a"), || async {}).await;
            let (_, w) = Owner::claim(kv.clone(), key.clone(), &seen_by_b, &running("b"))
                .await
                .unwrap();
            assert_eq!(w, Wrote::Lost(Some(rec(ShardState::Done, "a"))));
            assert_eq!(
                read(&kv, &key).await.unwrap().record.unwrap().state,
                ShardState::Done
            );

            // The other order: B takes the shard over, then A finishes (Done over B's
            // Running), and B's next checkpoint finds Done.
            let key = "j.1".to_string();
            let r = read(&kv, &key).await.unwrap();
            let (mut a, _) = Owner::claim(kv.clone(), key.clone(), &r, &running("a"))
                .await
                .unwrap();
            let r = read(&kv, &key).await.unwrap();
            let (mut b2, w) = Owner::claim(kv.clone(), key.clone(), &r, &running("b"))
                .await
                .unwrap();
            assert_eq!(w, Wrote::Yes);
            // A's own checkpoint now fails: B has it.
            assert_eq!(
                a.save(&running("a")).await.unwrap(),
                Wrote::Lost(Some(running("b")))
            );
            a.finish(&rec(ShardState::Done, "a"), || async {}).await;
            assert_eq!(
                b2.save(&running("b")).await.unwrap(),
                Wrote::Lost(Some(rec(ShardState::Done, "a")))
            );
            // What a plain put did: B's Running over A's Done, and nothing left to redeliver.
            kv.put(&key, serde_json::to_vec(&running("b")).unwrap().into())
                .await
                .unwrap();
            assert_eq!(
                read(&kv, &key).await.unwrap().record.unwrap().state,
                ShardState::Running
            );
        });
    }
}
