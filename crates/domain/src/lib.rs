//! The iot-api domain: types that are valid on construction, and the rules that act on them.
//!
//! Layer rule: this crate does no I/O and knows no framework, database or wire format
//! (no serde on validated types). Adapters convert into these types at their edge, through the
//! fallible constructors here, and every other layer can then rely on the invariants.
#![forbid(unsafe_code)]

pub mod actor;
pub mod alert;
pub mod alerting;
pub mod bucket;
pub mod detail;
pub mod device;
pub mod event;
pub mod group;
pub mod idempotency;
pub mod label;
pub mod list;
pub mod membership;
pub mod reading;
pub mod recurrence;
pub mod state;
pub mod tenant;
pub mod text;
pub mod timestamp;
pub mod webhook;
pub mod window;

pub use actor::{Actor, ActorError};
pub use alert::{alert_status, AlertStatus, AlertSummary, MemberState};
pub use alerting::{
    AckMode, AckNote, Acknowledgement, Alert, AlertCursor, AlertEvent, AlertKind, AlertRecord,
    AlertState, EventType, NewAlertEvent, Severity, Transition, WindowReport,
};
pub use detail::{GroupDetail, Member, MemberAlerts, MemberPatch, MemberPatches};
pub use device::{
    Device, DeviceChanges, DeviceName, DeviceSpec, DeviceStatus, NewDevice, ThresholdError,
    Thresholds, Unit,
};
pub use event::StreamEventType;
pub use group::{
    Description, DeviceGroup, GroupChanges, GroupName, GroupSlug, NewDeviceGroup, SlugError,
};
pub use idempotency::{IdempotencyKey, IdempotencyKeyError};
pub use label::{DeviceFilter, DeviceFilterError, Labels, LabelsError};
pub use list::{ListQuery, Page};
pub use membership::{GroupFilter, GroupFilterError, MemberConditions};
pub use reading::{
    MaxFutureSkew, Reading, ReadingBatch, ReadingPoint, ReadingPosition, ReadingQuery, ReadingValue,
};
pub use state::{DeviceState, Freshness, StaleAfter};
pub use tenant::{TenantId, TenantIdError};
pub use text::TextError;
pub use timestamp::{Timestamp, TimestampError};
pub use window::{
    DeviceCoverage, MaintenanceWindow, NewMaintenanceWindow, Occurrence, Recurrence,
    RecurrenceError, RecurrenceParts, ScopeLabel, ScopeWarning, WindowChanges, WindowDefinition,
    WindowError, WindowName, WindowSchedule, WindowSlug, WindowStatus,
};
