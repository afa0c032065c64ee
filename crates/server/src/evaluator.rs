//! The evaluator loop: a pass over every tenant every `IOT_EVALUATOR_INTERVAL_MS`, recording
//! what time alone changes (devices turning stale, windows starting or ending, acknowledgements
//! running out). Several instances may run it on one database: the store records each change
//! once. A failed (or panicking) pass is logged and the next tick tries again; the service goes
//! on serving either way.

use std::sync::Arc;
use std::time::Duration;

use app::evaluator::LastPass;
use domain::Timestamp;
use ports::AlertEvaluator;
use tokio::sync::watch;
use tokio::time::MissedTickBehavior;

/// Shortest and longest interval accepted: a pass may be at most 10 s late (the bound).
pub const INTERVAL_MS: std::ops::RangeInclusive<u64> = 100..=10_000;
pub const DEFAULT_INTERVAL_MS: u64 = 2_000;

/// The running loop; [`EvaluatorTask::stop`] ends it.
pub struct EvaluatorTask {
    stop: watch::Sender<bool>,
    handle: tokio::task::JoinHandle<()>,
}

/// Starts the loop on the current (actix) runtime: the first pass at once, then one every
/// `every` (a pass that overruns delays the next tick rather than bunching them).
pub fn spawn(
    evaluator: Arc<dyn AlertEvaluator>,
    every: Duration,
    last: Arc<LastPass>,
) -> EvaluatorTask {
    let (stop, stopped) = watch::channel(false);
    let handle = actix_web::rt::spawn(run(evaluator, every, last, stopped));
    EvaluatorTask { stop, handle }
}

impl EvaluatorTask {
    /// Ends the loop: a pass under way is abandoned (its transaction rolls back; what earlier
    /// transactions committed stays), and no new one starts.
    pub async fn stop(self) {
        // Sending fails only when the loop has ended already.
        let _ = self.stop.send(true);
        if let Err(e) = self.handle.await {
            tracing::warn!(error = %e, "the evaluator loop ended abnormally");
        }
    }
}

async fn run(
    evaluator: Arc<dyn AlertEvaluator>,
    every: Duration,
    last: Arc<LastPass>,
    mut stopped: watch::Receiver<bool>,
) {
    let mut ticks = tokio::time::interval(every);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            _ = stopped.changed() => return,
            _ = ticks.tick() => {}
        }
        // A task of its own, so that a panic in the store's code ends this pass, not the loop.
        let pass = actix_web::rt::spawn({
            let (evaluator, last) = (evaluator.clone(), last.clone());
            async move { app::evaluator::pass(evaluator.as_ref(), &last, Timestamp::now()).await }
        });
        let abort = pass.abort_handle();
        tokio::select! {
            biased;
            _ = stopped.changed() => {
                abort.abort();
                return;
            }
            outcome = pass => match outcome {
                Ok(Ok(done)) => tracing::debug!(
                    tenants = done.tenants,
                    events = done.events,
                    "evaluator pass done"
                ),
                Ok(Err(e)) => tracing::warn!(
                    error = %format_args!("{:#}", anyhow::Error::from(e)),
                    "evaluator pass failed; retrying at the next tick"
                ),
                Err(e) => tracing::error!(
                    error = %e,
                    "evaluator pass panicked; retrying at the next tick"
                ),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use async_trait::async_trait;
    use ports::{Evaluation, StoreError};

    use super::*;

    /// Panics on its first pass, fails its second, then completes every one; or hangs.
    struct Evaluator {
        passes: AtomicUsize,
        hang: bool,
    }

    #[async_trait]
    impl AlertEvaluator for Evaluator {
        async fn evaluate(&self, _now: Timestamp) -> Result<Evaluation, StoreError> {
            let n = self.passes.fetch_add(1, Ordering::SeqCst);
            if self.hang {
                std::future::pending::<()>().await;
            }
            match n {
                0 => panic!("a bug in the store"),
                1 => Err(StoreError::Unavailable(anyhow::anyhow!("down"))),
                _ => Ok(Evaluation {
                    tenants: 1,
                    events: 0,
                }),
            }
        }
    }

    fn evaluator(hang: bool) -> Arc<Evaluator> {
        Arc::new(Evaluator {
            passes: AtomicUsize::new(0),
            hang,
        })
    }

    #[actix_web::test]
    async fn passes_go_on_after_a_panic_and_a_failure_and_stop_when_told() {
        let started = Timestamp::now();
        let last = Arc::new(LastPass::new(
            started
                .checked_add(time::Duration::hours(-1))
                .expect("in range"),
        ));
        let store = evaluator(false);
        let task = spawn(store.clone(), Duration::from_millis(10), last.clone());
        // Waited for rather than timed: the panic hook symbolises a backtrace, which takes
        // far longer than a tick on a loaded machine.
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while store.passes.load(Ordering::SeqCst) < 4 && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        task.stop().await;
        let passes = store.passes.load(Ordering::SeqCst);
        assert!(passes >= 4, "{passes} passes in 20 s");
        assert!(
            last.lag_seconds(Timestamp::now()) < 60.0,
            "a completed pass moved the lag"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert_eq!(
            store.passes.load(Ordering::SeqCst),
            passes,
            "no pass after the stop"
        );
    }

    #[actix_web::test]
    async fn a_stalled_pass_grows_the_lag_and_does_not_hold_up_the_stop() {
        let last = Arc::new(LastPass::new(Timestamp::now()));
        let store = evaluator(true);
        let task = spawn(store.clone(), Duration::from_millis(10), last.clone());
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert_eq!(store.passes.load(Ordering::SeqCst), 1, "one pass, stalled");
        assert!(last.lag_seconds(Timestamp::now()) >= 0.1);
        tokio::time::timeout(Duration::from_secs(1), task.stop())
            .await
            .expect("stops at once");
    }
}
