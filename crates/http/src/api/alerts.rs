//! Wire shapes of alerts, `/api/alerts` and `/api/devices/{id}/alerts`, of acknowledgements and
//! of a window's report, and their conversion to and from the domain.

use domain::alerting::ALERT_PAGE_DEFAULT;
use domain::{
    AckMode, AckNote, Acknowledgement, Alert, AlertCursor, AlertEvent, AlertKind, AlertState,
    EventType, GroupSlug, Severity, Timestamp, WindowReport,
};
use ports::{AlertFilter, GroupKey};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::customer_windows::OccurrenceView;
use super::params::instant;
use crate::error::ApiError;

/// How bad an alert is.
#[derive(Debug, Clone, Copy, Serialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
#[schema(as = Severity)]
pub enum SeverityDto {
    Warning,
    Critical,
}

impl From<Severity> for SeverityDto {
    fn from(s: Severity) -> Self {
        match s {
            Severity::Warning => Self::Warning,
            Severity::Critical => Self::Critical,
        }
    }
}

/// What an alert is about: a threshold crossed, or no reading for longer than `stale_after_s`.
#[derive(Debug, Clone, Copy, Serialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
#[schema(as = AlertKind)]
pub enum AlertKindDto {
    Threshold,
    Stale,
}

impl From<AlertKind> for AlertKindDto {
    fn from(k: AlertKind) -> Self {
        match k {
            AlertKind::Threshold => Self::Threshold,
            AlertKind::Stale => Self::Stale,
        }
    }
}

/// Whether an alert is still going on.
#[derive(Debug, Clone, Copy, Serialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
#[schema(as = AlertState)]
pub enum AlertStateDto {
    Open,
    Resolved,
}

impl From<AlertState> for AlertStateDto {
    fn from(s: AlertState) -> Self {
        match s {
            AlertState::Open => Self::Open,
            AlertState::Resolved => Self::Resolved,
        }
    }
}

/// Which alerts a list holds by state.
#[derive(Debug, Clone, Copy, Serialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
#[schema(as = AlertStateFilter)]
pub enum AlertStateFilterDto {
    Open,
    Resolved,
    All,
}

/// How long an acknowledgement holds: until the alert resolves, until it resolves or escalates,
/// or until an instant (`until`).
#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
#[schema(as = AckMode)]
pub enum AckModeDto {
    UntilResolved,
    UntilEscalated,
    Until,
}

impl From<AckModeDto> for AckMode {
    fn from(m: AckModeDto) -> Self {
        match m {
            AckModeDto::UntilResolved => Self::UntilResolved,
            AckModeDto::UntilEscalated => Self::UntilEscalated,
            AckModeDto::Until => Self::Until,
        }
    }
}

impl From<AckMode> for AckModeDto {
    fn from(m: AckMode) -> Self {
        match m {
            AckMode::UntilResolved => Self::UntilResolved,
            AckMode::UntilEscalated => Self::UntilEscalated,
            AckMode::Until => Self::Until,
        }
    }
}

/// What changed in an alert.
#[derive(Debug, Clone, Copy, Serialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
#[schema(as = AlertEventType)]
pub enum EventTypeDto {
    Opened,
    Escalated,
    Deescalated,
    Resolved,
    Suppressed,
    Unsuppressed,
    Acknowledged,
    Unacknowledged,
}

impl From<EventType> for EventTypeDto {
    fn from(t: EventType) -> Self {
        match t {
            EventType::Opened => Self::Opened,
            EventType::Escalated => Self::Escalated,
            EventType::Deescalated => Self::Deescalated,
            EventType::Resolved => Self::Resolved,
            EventType::Suppressed => Self::Suppressed,
            EventType::Unsuppressed => Self::Unsuppressed,
            EventType::Acknowledged => Self::Acknowledged,
            EventType::Unacknowledged => Self::Unacknowledged,
        }
    }
}

/// Someone said they are on it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = AlertAcknowledgement)]
pub struct AcknowledgementView {
    /// Subject (`sub` of the token) that acknowledged.
    pub by: String,
    /// When (RFC 3339, UTC).
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// How long it holds.
    pub mode: AckModeDto,
    /// For mode `until`: when it ends by itself (RFC 3339, UTC); else null.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(required = true)]
    pub until: Option<OffsetDateTime>,
    /// The note left with it, or null.
    #[schema(required = true)]
    pub note: Option<String>,
}

impl From<&Acknowledgement> for AcknowledgementView {
    fn from(a: &Acknowledgement) -> Self {
        Self {
            by: a.by.as_str().to_owned(),
            at: a.at.get(),
            mode: a.mode.into(),
            until: a.until.map(Timestamp::get),
            note: a.note.as_ref().map(|n| n.as_str().to_owned()),
        }
    }
}

/// An alert: one episode of a device out of the ordinary.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Alert)]
pub struct AlertView {
    /// Alert UUID.
    pub id: Uuid,
    /// The device's UUID.
    pub device_id: Uuid,
    /// The device's name.
    pub device_name: String,
    /// `threshold` (the status left normal) or `stale` (no reading for longer than
    /// `stale_after_s`).
    pub kind: AlertKindDto,
    /// How bad it is now (stale alerts: `warning`).
    pub severity: SeverityDto,
    /// The worst it has been.
    pub peak_severity: SeverityDto,
    /// `open` or `resolved`.
    pub state: AlertStateDto,
    /// When it opened (RFC 3339, UTC).
    #[serde(with = "time::serde::rfc3339")]
    pub opened_at: OffsetDateTime,
    /// When it resolved (RFC 3339, UTC), or null while open.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(required = true)]
    pub resolved_at: Option<OffsetDateTime>,
    /// The latest reading's value seen while open, or null (stale alerts).
    #[schema(required = true)]
    pub last_value: Option<f64>,
    /// Whether an active maintenance window covers the device (as last recorded).
    pub suppressed: bool,
    /// The ids of those windows; empty when not suppressed.
    pub suppressed_by: Vec<String>,
    /// The acknowledgement, or null.
    #[schema(required = true)]
    pub acknowledgement: Option<AcknowledgementView>,
}

impl From<&Alert> for AlertView {
    fn from(a: &Alert) -> Self {
        let r = &a.record;
        Self {
            id: r.id,
            device_id: r.device_id,
            device_name: a.device_name.as_str().to_owned(),
            kind: r.kind.into(),
            severity: r.severity.into(),
            peak_severity: r.peak_severity.into(),
            state: r.state.into(),
            opened_at: r.opened_at.get(),
            resolved_at: r.resolved_at.map(Timestamp::get),
            last_value: r.last_value,
            suppressed: r.suppressed(),
            suppressed_by: r
                .suppressed_by
                .iter()
                .map(|w| w.as_str().to_owned())
                .collect(),
            acknowledgement: r.acknowledgement.as_ref().map(AcknowledgementView::from),
        }
    }
}

/// One change of an alert.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = AlertEvent)]
pub struct AlertEventView {
    /// Its place in the tenant's events: increasing in the order they were recorded.
    pub seq: i64,
    /// What changed.
    #[serde(rename = "type")]
    pub event_type: EventTypeDto,
    /// When (RFC 3339, UTC).
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// The alert's severity after the change.
    pub severity: SeverityDto,
    /// The reading that caused it, or null when no reading did.
    #[schema(required = true)]
    pub value: Option<f64>,
    /// Whether an active window covered the device when it happened.
    pub suppressed: bool,
    /// The ids of those windows; empty when not suppressed.
    pub window_ids: Vec<String>,
}

impl From<&AlertEvent> for AlertEventView {
    fn from(e: &AlertEvent) -> Self {
        let event = &e.event;
        Self {
            seq: e.seq,
            event_type: event.event_type.into(),
            at: event.at.get(),
            severity: event.severity.into(),
            value: event.value,
            suppressed: event.suppressed(),
            window_ids: event
                .window_ids
                .iter()
                .map(|w| w.as_str().to_owned())
                .collect(),
        }
    }
}

/// `GET /api/alerts/{id}`: the alert and its events, oldest first.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = AlertDetail)]
pub struct AlertDetailView {
    #[serde(flatten)]
    pub alert: AlertView,
    /// Every change of the alert, oldest first.
    pub events: Vec<AlertEventView>,
}

/// A page of alerts, newest `opened_at` first.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = AlertList)]
pub struct AlertListView {
    /// The alerts.
    pub alerts: Vec<AlertView>,
    /// Pass it as `cursor` for the next page; null on the last one.
    #[schema(required = true)]
    pub next_cursor: Option<String>,
}

/// `GET /customer/maintenance-windows/{window_id}/report`: what the window's latest started
/// occurrence muted.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = WindowReport)]
pub struct WindowReportView {
    /// The window's slug.
    pub window_id: String,
    /// The occurrence; `ends_at` is null while it runs.
    pub occurrence: OccurrenceView,
    /// The alerts with an event recorded as suppressed by the window during the occurrence,
    /// oldest opened first.
    pub alerts: Vec<AlertView>,
    /// The ids of those alerts that were still open when the occurrence ended; empty while it
    /// runs.
    pub still_open_at_end: Vec<Uuid>,
}

impl From<&WindowReport> for WindowReportView {
    fn from(r: &WindowReport) -> Self {
        Self {
            window_id: r.window_id.as_str().to_owned(),
            occurrence: OccurrenceView {
                starts_at: r.occurrence.starts_at.get(),
                ends_at: r.occurrence.ends_at.map(Timestamp::get),
            },
            alerts: r.alerts.iter().map(AlertView::from).collect(),
            still_open_at_end: r.still_open_at_end.clone(),
        }
    }
}

/// Body of `POST /api/alerts/{id}/ack`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = AlertAck)]
pub struct AckBody {
    /// How long the acknowledgement holds. Default `until_resolved`.
    pub mode: Option<AckModeDto>,
    /// For mode `until` (and only then): when it ends by itself, in the future (RFC 3339;
    /// without offset: UTC).
    #[schema(format = DateTime)]
    pub until: Option<String>,
    /// A note, at most 500 characters.
    #[schema(max_length = 500, pattern = r"^[^\u0000]*$")]
    pub note: Option<String>,
}

impl AckBody {
    /// # Errors
    /// 422 naming `until` or `note`.
    pub fn try_into_request(self) -> Result<app::alerts::AckRequest, ApiError> {
        Ok(app::alerts::AckRequest {
            mode: self.mode.map_or(AckMode::UntilResolved, Into::into),
            until: self
                .until
                .as_deref()
                .map(|v| instant("until", v))
                .transpose()?,
            note: self
                .note
                .as_deref()
                .map(AckNote::parse)
                .transpose()
                .map_err(|e| ApiError::invalid("note", e))?,
        })
    }
}

/// The `state` an alert list holds.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AlertStateParams {
    /// `open`, `resolved` or `all`. Default: `open` for `/api/alerts`, `all` for a device's
    /// history.
    #[param(value_type = Option<AlertStateFilterDto>)]
    state: Option<String>,
}

impl AlertStateParams {
    /// The state asked for (`None`: all), `default` when none is.
    ///
    /// # Errors
    /// 422 naming `state`.
    pub fn parse(&self, default: Option<AlertState>) -> Result<Option<AlertState>, ApiError> {
        match self.state.as_deref() {
            None => Ok(default),
            Some("all") => Ok(None),
            Some(raw) => AlertState::parse(raw).map(Some).ok_or_else(|| {
                ApiError::invalid(
                    "state",
                    format!("must be one of open, resolved, all, got '{raw}'"),
                )
            }),
        }
    }
}

/// The filters of `GET /api/alerts`; each one given narrows the list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AlertFilterParams {
    /// Only alerts of this severity now.
    #[param(value_type = Option<SeverityDto>)]
    severity: Option<String>,
    /// Only alerts of this kind.
    #[param(value_type = Option<AlertKindDto>)]
    kind: Option<String>,
    /// Only alerts of the group's devices (as they are now): its UUID or its slug. An unknown
    /// group is 404.
    #[param(value_type = Option<String>, min_length = 1)]
    group_id: Option<String>,
    /// Only alerts of this device. An unknown device is 404.
    #[param(value_type = Option<Uuid>)]
    device_id: Option<String>,
    /// Only alerts whose device an active window covers (`true`), or does not (`false`).
    #[param(value_type = Option<bool>)]
    suppressed: Option<String>,
    /// Only acknowledged alerts (`true`), or those without an acknowledgement (`false`).
    #[param(value_type = Option<bool>)]
    acknowledged: Option<String>,
}

/// The 404 of a `group_id` filter naming no group of the tenant.
#[must_use]
pub fn group_not_found(raw: &str) -> ApiError {
    ApiError::not_found(format!("Group {raw} not found"))
}

impl AlertFilterParams {
    /// The filter (its `state` left to [`AlertStateParams`]).
    ///
    /// # Errors
    /// 422 naming `severity`, `kind`, `device_id`, `suppressed` or `acknowledged`; 404 for a
    /// `group_id` that can name no group (as for an unknown one).
    pub fn parse(&self) -> Result<AlertFilter, ApiError> {
        let severity = self
            .severity
            .as_deref()
            .map(|raw| {
                Severity::parse(raw).ok_or_else(|| {
                    ApiError::invalid(
                        "severity",
                        format!("must be one of warning, critical, got '{raw}'"),
                    )
                })
            })
            .transpose()?;
        let kind = self
            .kind
            .as_deref()
            .map(|raw| {
                AlertKind::parse(raw).ok_or_else(|| {
                    ApiError::invalid(
                        "kind",
                        format!("must be one of threshold, stale, got '{raw}'"),
                    )
                })
            })
            .transpose()?;
        let device_id = self
            .device_id
            .as_deref()
            .map(|raw| {
                Uuid::parse_str(raw).map_err(|_| {
                    ApiError::invalid("device_id", format!("must be a UUID, got '{raw}'"))
                })
            })
            .transpose()?;
        let suppressed = boolean("suppressed", self.suppressed.as_deref())?;
        let acknowledged = boolean("acknowledged", self.acknowledged.as_deref())?;
        let group = self
            .group_id
            .as_deref()
            .map(|raw| match Uuid::parse_str(raw) {
                Ok(id) => Ok(GroupKey::Id(id)),
                Err(_) => GroupSlug::parse(raw)
                    .map(GroupKey::Slug)
                    .map_err(|_| group_not_found(raw)),
            })
            .transpose()?;
        Ok(AlertFilter {
            state: None,
            severity,
            kind,
            group,
            device_id,
            suppressed,
            acknowledged,
        })
    }

    /// The `group_id` as the client wrote it.
    #[must_use]
    pub fn group_id(&self) -> Option<&str> {
        self.group_id.as_deref()
    }

    /// The `device_id` as the client wrote it.
    #[must_use]
    pub fn device_id(&self) -> Option<&str> {
        self.device_id.as_deref()
    }
}

fn boolean(field: &str, raw: Option<&str>) -> Result<Option<bool>, ApiError> {
    match raw {
        None => Ok(None),
        Some("true") => Ok(Some(true)),
        Some("false") => Ok(Some(false)),
        Some(other) => Err(ApiError::invalid(
            field,
            format!("must be true or false, got '{other}'"),
        )),
    }
}

/// The paging of an alert list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AlertPageParams {
    /// Most alerts to return, 1 to 1000. Default 100.
    #[param(value_type = Option<i64>, minimum = 1, maximum = 1000)]
    limit: Option<String>,
    /// Where the page starts: the `next_cursor` of the page before (opaque).
    #[param(value_type = Option<String>)]
    cursor: Option<String>,
}

impl AlertPageParams {
    /// The size of the page and where it starts.
    ///
    /// # Errors
    /// 422 naming `limit` or `cursor`.
    pub fn parse(&self) -> Result<(u32, Option<AlertCursor>), ApiError> {
        let max = domain::alerting::ALERT_PAGE_MAX;
        let limit = match self.limit.as_deref() {
            None => ALERT_PAGE_DEFAULT,
            Some(raw) => raw
                .parse::<u32>()
                .ok()
                .filter(|l| (1..=max).contains(l))
                .ok_or_else(|| {
                    ApiError::invalid(
                        "limit",
                        format!("must be an integer from 1 to {max}, got '{raw}'"),
                    )
                })?,
        };
        let after = self
            .cursor
            .as_deref()
            .map(|raw| {
                decode_cursor(raw).ok_or_else(|| {
                    ApiError::invalid("cursor", "is not a cursor this service gave out")
                })
            })
            .transpose()?;
        Ok((limit, after))
    }
}

/// The answer to a list: the page's alerts and the cursor of the next page.
#[must_use]
pub fn list_view(page: &ports::AlertPage) -> AlertListView {
    AlertListView {
        alerts: page.alerts.iter().map(AlertView::from).collect(),
        next_cursor: page.next.as_ref().map(encode_cursor),
    }
}

/// The cursor's layout version: a cursor of another layout is refused, not misread.
const CURSOR_VERSION: u8 = 1;

/// A cursor as clients see it: base64url (no padding) of a version byte, `opened_at` in
/// microseconds since the epoch (big-endian) and the alert's id.
#[must_use]
pub fn encode_cursor(cursor: &AlertCursor) -> String {
    let micros = i64::try_from(cursor.opened_at.get().unix_timestamp_nanos() / 1_000)
        .expect("years 1..=9999 fit in i64 microseconds");
    let mut bytes = Vec::with_capacity(25);
    bytes.push(CURSOR_VERSION);
    bytes.extend_from_slice(&micros.to_be_bytes());
    bytes.extend_from_slice(cursor.id.as_bytes());
    base64url(&bytes)
}

/// The cursor `text` encodes; `None` for anything [`encode_cursor`] did not write.
#[must_use]
pub fn decode_cursor(text: &str) -> Option<AlertCursor> {
    let bytes = from_base64url(text)?;
    let (&version, rest) = bytes.split_first()?;
    if version != CURSOR_VERSION || rest.len() != 24 {
        return None;
    }
    let micros = i64::from_be_bytes(rest[..8].try_into().ok()?);
    let opened_at = OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1_000).ok()?;
    let cursor = AlertCursor {
        opened_at: Timestamp::new(opened_at).ok()?,
        id: Uuid::from_slice(&rest[8..]).ok()?,
    };
    // Only the one spelling the service writes: no second text for the same place.
    (encode_cursor(&cursor) == text).then_some(cursor)
}

const BASE64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn base64url(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..=chunk.len() {
            out.push(char::from(BASE64URL[((n >> (18 - 6 * i)) & 63) as usize]));
        }
    }
    out
}

fn from_base64url(text: &str) -> Option<Vec<u8>> {
    if text.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    for chunk in text.as_bytes().chunks(4) {
        let mut n = 0u32;
        for (i, c) in chunk.iter().enumerate() {
            let value = BASE64URL.iter().position(|a| a == c)?;
            n |= u32::try_from(value).ok()? << (18 - 6 * i);
        }
        for i in 0..chunk.len() - 1 {
            out.push(u8::try_from((n >> (16 - 8 * i)) & 0xff).ok()?);
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cursor() -> AlertCursor {
        AlertCursor {
            opened_at: Timestamp::new(time::macros::datetime!(2026-01-02 03:04:05.678_901 UTC))
                .expect("in range"),
            id: Uuid::parse_str("aaaaaaaa-0000-4000-8000-000000000001").expect("valid"),
        }
    }

    #[test]
    fn a_cursor_round_trips_through_its_text() {
        let text = encode_cursor(&cursor());
        assert!(
            text.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
            "{text}"
        );
        assert_eq!(decode_cursor(&text), Some(cursor()));
        let earliest = AlertCursor {
            opened_at: Timestamp::new(time::macros::datetime!(0001-01-01 00:00 UTC))
                .expect("in range"),
            id: Uuid::nil(),
        };
        assert_eq!(decode_cursor(&encode_cursor(&earliest)), Some(earliest));
    }

    #[test]
    fn anything_else_is_no_cursor() {
        let text = encode_cursor(&cursor());
        let mut other_version = text.clone();
        other_version.replace_range(0..1, "B");
        for bad in [
            "",
            "x",
            "not a cursor",
            &text[..text.len() - 1],
            &format!("{text}A"),
            &format!("{text}="),
            &other_version,
            &text.replace('A', "+"),
        ] {
            assert_eq!(decode_cursor(bad), None, "{bad}");
        }
    }

    #[test]
    fn base64url_matches_the_rfc_4648_test_vectors() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg"),
            ("fo", "Zm8"),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg"),
            ("fooba", "Zm9vYmE"),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64url(plain.as_bytes()), encoded);
            assert_eq!(
                from_base64url(encoded).as_deref(),
                Some(plain.as_bytes()),
                "{encoded}"
            );
        }
        assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
    }
}
