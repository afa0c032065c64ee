//! The event log (issue 15): every event the live stream and webhooks deliver, numbered per
//! tenant. Alert events share their numbers with the alert history (`AlertEvent::seq`): an
//! alert event with seq N is stream event N; window and device-state events take the next
//! numbers of the same counter. A tenant's events become visible in seq order, with no gaps
//! (every number given out is one event), so a reader that has seen seq N misses nothing by
//! asking for seq > N.

use async_trait::async_trait;
use domain::{
    Alert, AlertStatus, DeviceName, Freshness, MaintenanceWindow, StreamEventType, TenantId,
    Timestamp,
};
use uuid::Uuid;

use crate::StoreError;

/// One event as logged.
#[derive(Debug, Clone, PartialEq)]
pub struct LoggedEvent {
    pub seq: i64,
    pub event_type: StreamEventType,
    pub at: Timestamp,
    /// Alert and device-state events: the groups the device belonged to when the event was
    /// recorded. Window events: the groups the window names in its scope. (Group UUIDs of
    /// either family.)
    pub group_ids: Vec<Uuid>,
    pub subject: EventSubject,
}

/// What an event is about, as it was right after the event.
#[derive(Debug, Clone, PartialEq)]
pub enum EventSubject {
    Alert(Alert),
    Window(MaintenanceWindow),
    Device(DeviceStateChange),
}

/// A device's new state, for `device.state`.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceStateChange {
    pub device_id: Uuid,
    pub device_name: DeviceName,
    pub alert_status: AlertStatus,
    pub freshness: Freshness,
}

/// A slice of a tenant's log.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EventPage {
    /// Events with seq above the one asked for, oldest first.
    pub events: Vec<LoggedEvent>,
    /// The lowest seq still retained; `None` when the tenant has no event retained.
    pub first_retained: Option<i64>,
    /// The last seq given out for the tenant (0: none ever), retained or not.
    pub last_seq: i64,
}

impl EventPage {
    /// Whether events after `after` were pruned before a reader could see them: the reader
    /// must be told to start over (the stream's `event: reset`). A seq above `last_seq` (from
    /// another tenant, or a log that was wiped) counts as lost too.
    #[must_use]
    pub fn lost_after(&self, after: i64) -> bool {
        if after > self.last_seq {
            return true;
        }
        match self.first_retained {
            Some(first) => after + 1 < first,
            None => after < self.last_seq,
        }
    }
}

/// Reading and pruning the log. Events are written by the transactions that cause them (the
/// stores' ingest, device, window, alert and evaluator writes), never through this port.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait EventLog: Send + Sync {
    /// The tenant's events with seq greater than `after`, oldest first, at most `limit` (1 to
    /// 1,000), with the log's bounds read in the same snapshot.
    ///
    /// # Errors
    /// [`StoreError`] only.
    async fn events_after(
        &self,
        tenant: &TenantId,
        after: i64,
        limit: u32,
    ) -> Result<EventPage, StoreError>;

    /// Deletes events recorded before `before`, every tenant's, at most `limit` of them per
    /// call; answers how many went. (The alert history, `alert_events`, is kept.)
    ///
    /// # Errors
    /// [`StoreError`] only.
    async fn prune(&self, before: Timestamp, limit: u32) -> Result<u64, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(first: Option<i64>, last: i64) -> EventPage {
        EventPage {
            events: Vec::new(),
            first_retained: first,
            last_seq: last,
        }
    }

    #[test]
    fn a_reader_is_told_to_start_over_only_when_it_missed_pruned_events() {
        assert!(!page(Some(5), 9).lost_after(4));
        assert!(!page(Some(5), 9).lost_after(9));
        assert!(page(Some(5), 9).lost_after(3));
        assert!(page(Some(5), 9).lost_after(10));
        assert!(!page(None, 0).lost_after(0));
        assert!(!page(None, 9).lost_after(9));
        assert!(page(None, 9).lost_after(8));
    }
}
