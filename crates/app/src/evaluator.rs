//! The evaluator: one pass over every tenant of what time alone changes (devices turning stale,
//! windows starting or ending, acknowledgements expiring), and how late it runs.
//!
//! The binary drives [`pass`] on a timer; this module keeps what a pass is and what it records.

use std::sync::atomic::{AtomicI64, Ordering};

use domain::Timestamp;
use ports::{AlertEvaluator, Evaluation, StoreError};

/// When the last completed pass started: the evaluator's lag is the time since then, so it
/// grows while passes fail or stall.
#[derive(Debug)]
pub struct LastPass {
    /// Microseconds since the Unix epoch.
    started_us: AtomicI64,
}

fn micros(t: Timestamp) -> i64 {
    i64::try_from(t.get().unix_timestamp_nanos() / 1_000).unwrap_or(i64::MAX)
}

impl LastPass {
    /// As if a pass had completed at `since` (the service's start): until one does, the lag
    /// counts from then.
    #[must_use]
    pub fn new(since: Timestamp) -> Self {
        Self {
            started_us: AtomicI64::new(micros(since)),
        }
    }

    /// A pass started at `started` completed. An older start (a slower pass finishing late)
    /// does not move it back.
    pub fn completed(&self, started: Timestamp) {
        self.started_us
            .fetch_max(micros(started), Ordering::Relaxed);
    }

    /// Seconds from the start of the last completed pass to `now` (never below 0).
    #[must_use]
    pub fn lag_seconds(&self, now: Timestamp) -> f64 {
        let lag_us = micros(now).saturating_sub(self.started_us.load(Ordering::Relaxed));
        #[allow(clippy::cast_precision_loss)]
        let seconds = lag_us.max(0) as f64 / 1e6;
        seconds
    }
}

/// Runs one pass at `now`, records it in `last` when it completes, and counts passes, failures
/// and the events recorded (`iot_evaluator_passes_total`, `iot_evaluator_failures_total`,
/// `iot_evaluator_events_total`).
///
/// # Errors
/// The store's; what the pass committed before failing stays, and the next pass goes on.
pub async fn pass(
    evaluator: &dyn AlertEvaluator,
    last: &LastPass,
    now: Timestamp,
) -> Result<Evaluation, StoreError> {
    match evaluator.evaluate(now).await {
        Ok(evaluation) => {
            last.completed(now);
            metrics::counter!("iot_evaluator_passes_total").increment(1);
            metrics::counter!("iot_evaluator_events_total").increment(evaluation.events);
            Ok(evaluation)
        }
        Err(e) => {
            metrics::counter!("iot_evaluator_failures_total").increment(1);
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use ports::MockAlertEvaluator;
    use time::Duration;

    use super::*;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::new(time::macros::datetime!(2026-01-01 00:00 UTC) + Duration::seconds(seconds))
            .expect("in range")
    }

    #[tokio::test]
    async fn the_lag_counts_from_the_start_of_the_last_completed_pass_and_grows_while_passes_fail()
    {
        let last = LastPass::new(at(0));
        let mut evaluator = MockAlertEvaluator::new();
        let mut answers = vec![
            Err(StoreError::Unavailable(anyhow::anyhow!("down"))),
            Ok(Evaluation {
                tenants: 2,
                events: 3,
            }),
        ];
        evaluator
            .expect_evaluate()
            .withf(|now| *now == at(10) || *now == at(20))
            .times(2)
            .returning(move |_| answers.pop().expect("two passes"));
        assert_eq!(last.lag_seconds(at(5)), 5.0, "none yet: from the start");
        let done = pass(&evaluator, &last, at(10)).await.expect("completes");
        assert_eq!(done.events, 3);
        assert_eq!(last.lag_seconds(at(12)), 2.0);
        assert!(pass(&evaluator, &last, at(20)).await.is_err());
        assert_eq!(
            last.lag_seconds(at(25)),
            15.0,
            "a failed pass does not count as done"
        );
    }

    #[test]
    fn a_late_finishing_older_pass_does_not_move_the_lag_back_and_it_is_never_negative() {
        let last = LastPass::new(at(0));
        last.completed(at(30));
        last.completed(at(20));
        assert_eq!(last.lag_seconds(at(31)), 1.0);
        assert_eq!(last.lag_seconds(at(29)), 0.0);
    }
}
