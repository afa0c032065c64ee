//! Wire shapes of the live stream (`GET /api/events`, issue 15): its parameters and the `data`
//! of each event, rendered by [`event_data`] for the stream and webhooks alike.

use domain::{GroupSlug, StreamEventType};
use ports::events::{EventSubject, LoggedEvent};
use ports::GroupKey;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::alerts::{group_not_found, AlertView};
use super::customer_windows::MaintenanceWindowView;
use super::devices::FreshnessDto;
use super::group_api::AlertStatusDto;
use crate::error::ApiError;

/// The parameters of `GET /api/events`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventParams {
    /// Only events of these types, comma-separated: `alert.opened`, `alert.escalated`,
    /// `alert.deescalated`, `alert.resolved`, `alert.suppressed`, `alert.unsuppressed`,
    /// `alert.acknowledged`, `alert.unacknowledged`, `window.started`, `window.ended`,
    /// `device.state`. Default: all.
    #[param(value_type = Option<String>, min_length = 1, example = "alert.opened,alert.resolved")]
    types: Option<String>,
    /// Only events whose `group_ids` hold this group (of either API family): its UUID or its
    /// slug. An unknown group is 404.
    #[param(value_type = Option<String>, min_length = 1)]
    group_id: Option<String>,
    /// The bearer token, for clients that cannot set the `Authorization` header (a browser's
    /// `EventSource`). Accepted on this route only, and never logged; the header wins when both
    /// are given.
    #[param(value_type = Option<String>)]
    access_token: Option<String>,
}

impl EventParams {
    /// The `types` filter (`None`: all).
    ///
    /// # Errors
    /// 422 naming `types`.
    pub fn types(&self) -> Result<Option<Vec<StreamEventType>>, ApiError> {
        let Some(raw) = self.types.as_deref() else {
            return Ok(None);
        };
        let mut types = Vec::new();
        for name in raw.split(',').map(str::trim) {
            let Some(t) = StreamEventType::parse(name) else {
                let known: Vec<&str> = StreamEventType::ALL.iter().map(|t| t.as_str()).collect();
                let shown: String = name.chars().take(64).collect();
                return Err(ApiError::invalid(
                    "types",
                    format!(
                        "unknown event type '{shown}'; each must be one of {}",
                        known.join(", ")
                    ),
                ));
            };
            if !types.contains(&t) {
                types.push(t);
            }
        }
        Ok(Some(types))
    }

    /// The `group_id` filter as a key: a UUID or a slug; anything else names no group (404).
    ///
    /// # Errors
    /// 404 `Group … not found`, as the alerts list answers.
    pub fn group(&self) -> Result<Option<GroupKey>, ApiError> {
        self.group_id
            .as_deref()
            .map(|raw| match Uuid::parse_str(raw) {
                Ok(id) => Ok(GroupKey::Id(id)),
                Err(_) => GroupSlug::parse(raw)
                    .map(GroupKey::Slug)
                    .map_err(|_| group_not_found(raw)),
            })
            .transpose()
    }

    /// The `group_id` as the client wrote it.
    #[must_use]
    pub fn group_id(&self) -> Option<&str> {
        self.group_id.as_deref()
    }

    /// The `access_token`, if given.
    #[must_use]
    pub fn access_token(&self) -> Option<&str> {
        self.access_token.as_deref()
    }
}

/// The `Last-Event-ID` header: the seq of the last event the client saw.
///
/// # Errors
/// 422 naming `Last-Event-ID` when it is not an event id.
pub fn last_event_id(raw: Option<&[u8]>) -> Result<Option<i64>, ApiError> {
    let Some(raw) = raw else { return Ok(None) };
    let text = std::str::from_utf8(raw).unwrap_or_default().trim();
    // An empty one is what EventSource sends before it saw any id: no replay.
    if text.is_empty() {
        return Ok(None);
    }
    text.parse::<i64>()
        .ok()
        .filter(|seq| *seq >= 0)
        .map(Some)
        .ok_or_else(|| {
            ApiError::invalid(
                "Last-Event-ID",
                "must be the id of an event received (a non-negative integer)",
            )
        })
}

/// `data` of an `alert.*` event.
#[derive(Debug, Serialize, ToSchema)]
pub struct AlertEventData {
    /// The alert right after the event, as `GET /api/alerts/{id}` shows it.
    pub alert: AlertView,
    /// The groups (UUIDs, either API family) the device belonged to at the event.
    pub group_ids: Vec<Uuid>,
}

/// `data` of a `window.started` or `window.ended` event.
#[derive(Debug, Serialize, ToSchema)]
pub struct WindowEventData {
    /// The window as `GET /customer/maintenance-windows/{window_id}` shows it, its `status` as
    /// of the event.
    pub window: MaintenanceWindowView,
    /// The groups (UUIDs) the window names in its scope.
    pub group_ids: Vec<Uuid>,
}

/// `data` of a `device.state` event: the device's alert status or freshness changed.
#[derive(Debug, Serialize, ToSchema)]
pub struct DeviceStateData {
    /// Device UUID.
    pub device_id: Uuid,
    /// Device name.
    pub device_name: String,
    /// Alert status from the latest reading.
    pub alert_status: AlertStatusDto,
    /// How recent its data is.
    pub freshness: FreshnessDto,
    /// The groups (UUIDs, either API family) the device belonged to at the event.
    pub group_ids: Vec<Uuid>,
}

/// The JSON `data` of an event: the same on the stream and in a webhook's payload.
#[must_use]
pub fn event_data(event: &LoggedEvent) -> String {
    let group_ids = event.group_ids.clone();
    let json = match &event.subject {
        EventSubject::Alert(alert) => serde_json::to_string(&AlertEventData {
            alert: AlertView::from(alert),
            group_ids,
        }),
        EventSubject::Window(window) => serde_json::to_string(&WindowEventData {
            window: MaintenanceWindowView::at(window, event.at),
            group_ids,
        }),
        EventSubject::Device(device) => serde_json::to_string(&DeviceStateData {
            device_id: device.device_id,
            device_name: device.device_name.as_str().to_owned(),
            alert_status: device.alert_status.into(),
            freshness: device.freshness.into(),
            group_ids,
        }),
    };
    // Plain structs of strings, numbers and UUIDs: serialising cannot fail.
    json.unwrap_or_else(|_| "{}".to_owned())
}

/// The `data` of `event: reset`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ResetData {
    /// Why: the events after the client's `Last-Event-ID` are no longer all retained.
    pub detail: String,
    /// The `Last-Event-ID` the client sent.
    pub last_event_id: i64,
}

#[must_use]
pub fn reset_data(after: i64) -> String {
    serde_json::to_string(&ResetData {
        detail: format!(
            "Events after {after} are no longer all retained (or {after} is no event id of \
             this tenant); the retained events follow: reload the state they apply to"
        ),
        last_event_id: after,
    })
    .unwrap_or_else(|_| "{}".to_owned())
}
