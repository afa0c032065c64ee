//! The live stream's wiring on this adapter (issue 15): the runtime its feeds run on, and the
//! renderer of event data as the port webhooks read payloads through.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use domain::TenantId;
use futures_util::future::BoxFuture;
use ports::events::{EventLog, EventPage};
use ports::{EventPayloads, StoreError};

use crate::api::events::event_data;

/// Settings of `GET /api/events` beyond the hub's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamResponse {
    /// Time between keep-alive comments.
    pub keep_alive: Duration,
}

impl Default for StreamResponse {
    fn default() -> Self {
        Self {
            keep_alive: Duration::from_secs(15),
        }
    }
}

/// The feeds run on the Tokio runtime the server (or test) runs on.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioRuntime;

impl app::events::Runtime for TokioRuntime {
    fn spawn(&self, task: BoxFuture<'static, ()>) {
        // On the worker's runtime; the feed outlives the request that started it.
        actix_web::rt::spawn(task);
    }

    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        Box::pin(actix_web::rt::time::sleep(duration))
    }
}

/// The renderer the hub uses: [`event_data`].
#[must_use]
pub fn renderer() -> app::events::Renderer {
    Arc::new(event_data)
}

/// Webhook payloads rendered from the event log exactly as the stream renders them.
#[derive(Clone)]
pub struct RenderedPayloads {
    log: Arc<dyn EventLog>,
}

impl RenderedPayloads {
    #[must_use]
    pub fn new(log: Arc<dyn EventLog>) -> Self {
        Self { log }
    }
}

#[async_trait]
impl EventPayloads for RenderedPayloads {
    async fn event_data(&self, tenant: &TenantId, seq: i64) -> Result<Option<String>, StoreError> {
        let page = self.log.events_after(tenant, seq - 1, 1).await?;
        Ok(page.events.first().filter(|e| e.seq == seq).map(event_data))
    }
}

/// An event log without events, for states built without one (handler tests of other routes).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoEvents;

#[async_trait]
impl EventLog for NoEvents {
    async fn events_after(
        &self,
        _tenant: &TenantId,
        _after: i64,
        _limit: u32,
    ) -> Result<EventPage, StoreError> {
        Ok(EventPage::default())
    }

    async fn prune(&self, _before: domain::Timestamp, _limit: u32) -> Result<u64, StoreError> {
        Ok(0)
    }
}
