//! The event log's vocabulary (issue 15): what the live stream and webhooks deliver.

use crate::alerting::EventType as AlertEventType;

/// The type of one logged event, as the stream's `event:` field and a webhook's `type` name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StreamEventType {
    /// A change of an alert (`alert.opened`, `alert.resolved`, ...).
    Alert(AlertEventType),
    /// An occurrence of a window began.
    WindowStarted,
    /// An occurrence of a window ended.
    WindowEnded,
    /// A device's `alert_status` or `freshness` changed.
    DeviceState,
}

impl StreamEventType {
    pub const ALL: [Self; 11] = [
        Self::Alert(AlertEventType::Opened),
        Self::Alert(AlertEventType::Escalated),
        Self::Alert(AlertEventType::Deescalated),
        Self::Alert(AlertEventType::Resolved),
        Self::Alert(AlertEventType::Suppressed),
        Self::Alert(AlertEventType::Unsuppressed),
        Self::Alert(AlertEventType::Acknowledged),
        Self::Alert(AlertEventType::Unacknowledged),
        Self::WindowStarted,
        Self::WindowEnded,
        Self::DeviceState,
    ];

    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Alert(AlertEventType::Opened) => "alert.opened",
            Self::Alert(AlertEventType::Escalated) => "alert.escalated",
            Self::Alert(AlertEventType::Deescalated) => "alert.deescalated",
            Self::Alert(AlertEventType::Resolved) => "alert.resolved",
            Self::Alert(AlertEventType::Suppressed) => "alert.suppressed",
            Self::Alert(AlertEventType::Unsuppressed) => "alert.unsuppressed",
            Self::Alert(AlertEventType::Acknowledged) => "alert.acknowledged",
            Self::Alert(AlertEventType::Unacknowledged) => "alert.unacknowledged",
            Self::WindowStarted => "window.started",
            Self::WindowEnded => "window.ended",
            Self::DeviceState => "device.state",
        }
    }

    #[must_use]
    pub fn parse(value: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_match_the_webhook_vocabulary() {
        for t in StreamEventType::ALL {
            assert_eq!(StreamEventType::parse(t.as_str()), Some(t));
            assert!(crate::webhook::is_event_type(t.as_str()), "{}", t.as_str());
        }
        assert_eq!(
            crate::webhook::EVENT_TYPES.len(),
            StreamEventType::ALL.len()
        );
        assert_eq!(StreamEventType::parse("alert.bogus"), None);
    }
}
