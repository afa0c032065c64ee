//! The event log's retention (issue 15): every minute, the events recorded longer ago than
//! `IOT_EVENT_RETENTION_SECS` are deleted, in bounded batches (a short transaction each, so
//! writers of the log never wait long). A reader that reconnects with an id older than what is
//! retained is told to start over (the stream's `event: reset`). Several instances may run it on
//! one database: each batch deletes what is there. A failed batch is logged and the next minute
//! tries again.

use std::sync::Arc;
use std::time::Duration;

use domain::Timestamp;
use ports::EventLog;
use tokio::sync::watch;
use tokio::time::MissedTickBehavior;

/// Default and shortest retention accepted (the issue asks for at least 24 hours by default).
pub const DEFAULT_RETENTION_SECS: u64 = 86_400;
pub const MIN_RETENTION_SECS: u64 = 60;
/// How often old events are looked for.
const EVERY: Duration = Duration::from_secs(60);
/// Events deleted per batch, and batches per look at most: a backlog larger than that (a long
/// outage of the task) is worked off over the next looks.
const BATCH: u32 = 5_000;
const BATCHES_PER_LOOK: u32 = 100;

/// The running loop; [`PruningTask::stop`] ends it.
pub struct PruningTask {
    stop: watch::Sender<bool>,
    handle: tokio::task::JoinHandle<()>,
}

/// Starts the loop on the current (actix) runtime: a look at once, then one a minute.
pub fn spawn(log: Arc<dyn EventLog>, retention: Duration) -> PruningTask {
    let (stop, stopped) = watch::channel(false);
    let handle = actix_web::rt::spawn(run(log, retention, stopped));
    PruningTask { stop, handle }
}

impl PruningTask {
    /// Ends the loop; a batch under way is abandoned (its transaction rolls back).
    pub async fn stop(self) {
        // Sending fails only when the loop has ended already.
        let _ = self.stop.send(true);
        if let Err(e) = self.handle.await {
            tracing::warn!(error = %e, "the event pruning loop ended abnormally");
        }
    }
}

async fn run(log: Arc<dyn EventLog>, retention: Duration, mut stopped: watch::Receiver<bool>) {
    let mut ticks = tokio::time::interval(EVERY);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            _ = stopped.changed() => return,
            _ = ticks.tick() => {}
        }
        tokio::select! {
            biased;
            _ = stopped.changed() => return,
            gone = prune_once(log.as_ref(), retention, Timestamp::now()) => {
                if gone > 0 {
                    tracing::debug!(events = gone, "old events pruned");
                }
            }
        }
    }
}

/// One look: deletes events recorded before `now - retention`, batch after batch until a
/// batch finds fewer than it may take (or the look's bound); answers how many went.
pub async fn prune_once(log: &dyn EventLog, retention: Duration, now: Timestamp) -> u64 {
    let Some(before) = time::Duration::try_from(retention)
        .ok()
        .and_then(|span| now.checked_add(-span))
    else {
        return 0;
    };
    let mut total = 0;
    for _ in 0..BATCHES_PER_LOOK {
        match log.prune(before, BATCH).await {
            Ok(gone) => {
                total += gone;
                if gone < u64::from(BATCH) {
                    break;
                }
            }
            Err(e) => {
                tracing::warn!(
                    error = %format_args!("{:#}", anyhow::Error::from(e)),
                    "pruning old events failed; retrying at the next look"
                );
                break;
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use async_trait::async_trait;
    use ports::{EventPage, StoreError};

    use super::*;

    /// Answers full batches `full` times, then `rest`, then nothing; or fails.
    struct Log {
        calls: Mutex<Vec<(Timestamp, u32)>>,
        full: usize,
        rest: u64,
        fail: bool,
    }

    #[async_trait]
    impl EventLog for Log {
        async fn events_after(
            &self,
            _tenant: &domain::TenantId,
            _after: i64,
            _limit: u32,
        ) -> Result<EventPage, StoreError> {
            Ok(EventPage::default())
        }

        async fn prune(&self, before: Timestamp, limit: u32) -> Result<u64, StoreError> {
            let mut calls = self.calls.lock().expect("not poisoned");
            calls.push((before, limit));
            if self.fail {
                return Err(StoreError::Unavailable(anyhow::anyhow!("down")));
            }
            Ok(match calls.len() {
                n if n <= self.full => u64::from(limit),
                n if n == self.full + 1 => self.rest,
                _ => 0,
            })
        }
    }

    fn log(full: usize, rest: u64, fail: bool) -> Log {
        Log {
            calls: Mutex::new(Vec::new()),
            full,
            rest,
            fail,
        }
    }

    #[tokio::test]
    async fn a_look_prunes_batch_after_batch_before_the_retention() {
        let now = Timestamp::now();
        let retention = Duration::from_secs(86_400);
        let events = log(2, 7, false);
        let gone = prune_once(&events, retention, now).await;
        assert_eq!(gone, 2 * u64::from(BATCH) + 7);
        let calls = events.calls.lock().expect("not poisoned").clone();
        assert_eq!(calls.len(), 3, "stops at the first batch that is not full");
        let before = now
            .checked_add(time::Duration::seconds(-86_400))
            .expect("in range");
        assert!(calls.iter().all(|c| *c == (before, BATCH)));
    }

    #[tokio::test]
    async fn a_look_is_bounded_and_a_failure_waits_for_the_next() {
        let endless = log(usize::MAX, 0, false);
        let gone = prune_once(&endless, Duration::from_secs(60), Timestamp::now()).await;
        assert_eq!(gone, u64::from(BATCH) * u64::from(BATCHES_PER_LOOK));
        let failing = log(0, 0, true);
        assert_eq!(
            prune_once(&failing, Duration::from_secs(60), Timestamp::now()).await,
            0
        );
        assert_eq!(failing.calls.lock().expect("not poisoned").len(), 1);
    }
}
