//! The outbox worker: claims due deliveries (leased, so several instances share the work and a
//! crash loses none), renders an event's payload at its first attempt through
//! [`EventPayloads`], sends, and records each attempt and what follows it (delivered, retried
//! on the schedule with jitter, or failed for good), with at most `concurrency` attempts under
//! way. It also deletes finished deliveries older than [`FINISHED_KEPT`].

use std::sync::Arc;
use std::time::Duration;

use domain::webhook::{RetryPolicy, FINISHED_KEPT};
use domain::Timestamp;
use ports::{AttemptOutcome, ClaimedDelivery, DeliveryAttempt, EventPayloads, WebhookOutbox};
use tokio::sync::{watch, Semaphore};

use crate::send;

/// How the worker runs (the `IOT_WEBHOOK_*` settings).
#[derive(Debug, Clone)]
pub struct Settings {
    /// How often it looks for due deliveries when it found none.
    pub poll: Duration,
    /// Attempts under way at once, at most.
    pub concurrency: usize,
    /// The longest one attempt may take (connect, send, read the answer).
    pub timeout: Duration,
    pub retry: RetryPolicy,
    /// Deliver to private addresses too (tests, closed networks).
    pub allow_private: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            poll: Duration::from_millis(1000),
            concurrency: 16,
            timeout: Duration::from_secs(10),
            retry: RetryPolicy::default(),
            allow_private: false,
        }
    }
}

impl Settings {
    /// How long a claim holds a delivery: an attempt's timeout and ample time to render it
    /// and record its outcome. A claim held longer (the instance died) lapses, and the
    /// delivery is due again.
    #[must_use]
    pub fn lease(&self) -> Duration {
        self.timeout + Duration::from_secs(30)
    }
}

/// The running worker; [`WorkerTask::stop`] ends it.
pub struct WorkerTask {
    stop: watch::Sender<bool>,
    handle: tokio::task::JoinHandle<()>,
}

impl WorkerTask {
    /// Ends the worker: no new claims; attempts under way get one attempt's timeout to finish
    /// and be recorded, then are abandoned (their leases lapse and another instance, or the
    /// next start, sends them again).
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        if let Err(e) = self.handle.await {
            tracing::warn!(error = %e, "the webhook worker ended abnormally");
        }
    }
}

/// Starts the worker on the current runtime.
///
/// # Errors
/// When the HTTP client cannot be built.
pub fn spawn(
    outbox: Arc<dyn WebhookOutbox>,
    payloads: Arc<dyn EventPayloads>,
    settings: Settings,
) -> anyhow::Result<WorkerTask> {
    let client = send::client(settings.timeout, settings.allow_private)?;
    let (stop, stopped) = watch::channel(false);
    let worker = Worker {
        outbox,
        payloads,
        client,
        settings: Arc::new(settings),
    };
    let handle = tokio::spawn(worker.run(stopped));
    Ok(WorkerTask { stop, handle })
}

#[derive(Clone)]
struct Worker {
    outbox: Arc<dyn WebhookOutbox>,
    payloads: Arc<dyn EventPayloads>,
    client: reqwest::Client,
    settings: Arc<Settings>,
}

/// How often finished deliveries are purged, and how many per purge at most.
const PURGE_EVERY: Duration = Duration::from_secs(600);
const PURGE_BATCH: u32 = 10_000;

impl Worker {
    async fn run(self, mut stopped: watch::Receiver<bool>) {
        let slots = Arc::new(Semaphore::new(self.settings.concurrency.max(1)));
        let mut attempts = tokio::task::JoinSet::new();
        let mut last_purge: Option<tokio::time::Instant> = None;
        loop {
            if *stopped.borrow() {
                // Attempts under way may finish (an answer not recorded would be sent again),
                // within one attempt's timeout; the rest are abandoned, their leases lapse.
                let finish = async { while attempts.join_next().await.is_some() {} };
                let _ = tokio::time::timeout(self.settings.timeout, finish).await;
                attempts.abort_all();
                return;
            }
            if last_purge.is_none_or(|at| at.elapsed() >= PURGE_EVERY) {
                last_purge = Some(tokio::time::Instant::now());
                self.purge().await;
            }
            while attempts.try_join_next().is_some() {}
            let free = slots.available_permits();
            let mut claimed = 0;
            if free > 0 {
                let want = u32::try_from(free).unwrap_or(u32::MAX);
                match self
                    .outbox
                    .claim_due(Timestamp::now(), want, self.settings.lease())
                    .await
                {
                    Ok(due) => {
                        claimed = due.len();
                        for delivery in due {
                            let Ok(slot) = slots.clone().try_acquire_owned() else {
                                break; // cannot happen: at most `free` were claimed
                            };
                            let worker = self.clone();
                            attempts.spawn(async move {
                                worker.deliver(delivery).await;
                                drop(slot);
                            });
                        }
                    }
                    Err(e) => tracing::warn!(
                        error = %format_args!("{:#}", anyhow::Error::from(e)),
                        "claiming webhook deliveries failed; retrying"
                    ),
                }
            }
            // More may be due at once when every slot was filled; else wait for the poll, a
            // free slot, or the stop.
            if claimed > 0 && claimed == free {
                tokio::select! {
                    biased;
                    _ = stopped.changed() => {}
                    _ = attempts.join_next(), if !attempts.is_empty() => {}
                }
                continue;
            }
            tokio::select! {
                biased;
                _ = stopped.changed() => {}
                () = tokio::time::sleep(self.settings.poll) => {}
            }
        }
    }

    async fn purge(&self) {
        let Some(before) = Timestamp::now()
            .checked_add(-time::Duration::try_from(FINISHED_KEPT).unwrap_or(time::Duration::WEEK))
        else {
            return;
        };
        match self.outbox.purge_finished(before, PURGE_BATCH).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(deleted = n, "finished webhook deliveries purged"),
            Err(e) => tracing::warn!(error = %e, "purging finished webhook deliveries failed"),
        }
    }

    /// One attempt of a claimed delivery, recorded.
    async fn deliver(&self, delivery: ClaimedDelivery) {
        let at = Timestamp::now();
        let body = match self.body(&delivery).await {
            Ok(Some(body)) => body,
            Ok(None) => return, // the lease was lost: another claim has it
            Err((error, retry)) => {
                let attempt = DeliveryAttempt {
                    at,
                    status: None,
                    duration_ms: 0,
                    error: Some(error),
                };
                let outcome = if retry {
                    self.after_failure(&delivery, at)
                } else {
                    AttemptOutcome::Failed
                };
                self.record(&delivery, &attempt, outcome).await;
                return;
            }
        };
        let answer = send::attempt(
            &self.client,
            self.settings.allow_private,
            &delivery.url,
            &delivery.secret,
            &send::message_id(delivery.id),
            &body,
        )
        .await;
        let attempt = DeliveryAttempt {
            at,
            status: answer.status,
            duration_ms: u64::try_from(answer.duration.as_millis()).unwrap_or(u64::MAX),
            error: answer.error.clone(),
        };
        let outcome = if answer.delivered() {
            AttemptOutcome::Delivered
        } else {
            self.after_failure(&delivery, at)
        };
        tracing::debug!(
            delivery = %delivery.id,
            status = ?answer.status,
            outcome = ?outcome,
            "webhook attempt"
        );
        self.record(&delivery, &attempt, outcome).await;
    }

    fn after_failure(&self, delivery: &ClaimedDelivery, now: Timestamp) -> AttemptOutcome {
        // Every earlier attempt of a pending delivery failed.
        let failures = delivery.attempts.saturating_add(1);
        let first = delivery.first_failure_at.unwrap_or(now);
        match self
            .settings
            .retry
            .next_attempt(first, now, failures, jitter())
        {
            Some(at) => AttemptOutcome::RetryAt(at),
            None => AttemptOutcome::Failed,
        }
    }

    /// The exact body to send: the stored one, or the event's rendered now and stored (so every
    /// retry sends the same bytes). `Ok(None)`: the lease was lost. `Err((why, retry))`: no body.
    async fn body(&self, delivery: &ClaimedDelivery) -> Result<Option<String>, (String, bool)> {
        if let Some(body) = &delivery.payload {
            return Ok(Some(body.clone()));
        }
        let Some(seq) = delivery.event_seq else {
            return Err(("the delivery has no payload".to_owned(), false));
        };
        let data = match self.payloads.event_data(&delivery.tenant, seq).await {
            Ok(Some(data)) => data,
            Ok(None) => {
                return Err((format!("event {seq} is no longer retained"), false));
            }
            Err(e) => {
                return Err((
                    format!("rendering event {seq} failed: {:#}", anyhow::Error::from(e)),
                    true,
                ))
            }
        };
        let data: serde_json::Value = serde_json::from_str(&data)
            .map_err(|e| (format!("event {seq} rendered invalid JSON: {e}"), false))?;
        let body = crate::payload(&delivery.event_type, delivery.event_at, data);
        self.outbox
            .store_payload(delivery, &body)
            .await
            .map_err(|e| (format!("storing the payload failed: {e}"), true))
    }

    /// Records the attempt, trying a few times: an outcome not recorded leaves the delivery
    /// to be sent again when its lease lapses (at least once, never lost).
    async fn record(
        &self,
        delivery: &ClaimedDelivery,
        attempt: &DeliveryAttempt,
        outcome: AttemptOutcome,
    ) {
        let mut wait = Duration::from_millis(200);
        for _ in 0..5 {
            match self
                .outbox
                .record_attempt(
                    delivery,
                    attempt,
                    outcome,
                    self.settings.retry.disable_after,
                )
                .await
            {
                Ok(()) => {
                    count_attempt(attempt, outcome);
                    return;
                }
                Err(e) => {
                    tracing::warn!(delivery = %delivery.id, error = %e, "recording a webhook attempt failed");
                    tokio::time::sleep(wait).await;
                    wait *= 2;
                }
            }
        }
    }
}

/// `iot_webhook_attempts_total{outcome}` and `iot_webhook_attempt_duration_seconds`, counted once
/// an attempt is recorded: `delivered`, `retry` (failed, to be tried again) or `failed` (for good).
fn count_attempt(attempt: &DeliveryAttempt, outcome: AttemptOutcome) {
    let outcome = match outcome {
        AttemptOutcome::Delivered => "delivered",
        AttemptOutcome::RetryAt(_) => "retry",
        AttemptOutcome::Failed => "failed",
    };
    metrics::counter!("iot_webhook_attempts_total", "outcome" => outcome).increment(1);
    #[allow(clippy::cast_precision_loss)] // milliseconds far below 2^52
    metrics::histogram!("iot_webhook_attempt_duration_seconds")
        .record(attempt.duration_ms as f64 / 1000.0);
}

/// A uniform draw in `[0, 1)` for the retry jitter.
fn jitter() -> f64 {
    let bits = getrandom::u64().unwrap_or(u64::MAX / 2) >> 11;
    #[allow(clippy::cast_precision_loss)]
    let unit = bits as f64 / (1u64 << 53) as f64;
    unit
}
