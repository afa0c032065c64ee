//! Ports: the traits through which the service reaches its stores.
//!
//! Layer rule: this crate depends only on `domain` and plain trait machinery. It names no driver,
//! framework or wire type; adapters translate their own errors into the enums here. Each
//! operation has its own error enum with its business variants plus [`StoreError`], so the HTTP
//! layer can map every variant to one status without a catch-all.
#![forbid(unsafe_code)]

use async_trait::async_trait;
use domain::bucket::{BucketQuery, SeriesChoice, SeriesStats};
use domain::{
    Acknowledgement, Actor, Alert, AlertCursor, AlertEvent, AlertKind, AlertState, Device,
    DeviceChanges, DeviceFilter, DeviceGroup, DeviceName, GroupChanges, GroupFilter, GroupName,
    GroupSlug, IdempotencyKey, ListQuery, MaintenanceWindow, NewDevice, NewDeviceGroup,
    NewMaintenanceWindow, Page, ReadingBatch, ReadingPoint, ReadingQuery, Severity, TenantId,
    ThresholdError, Timestamp, Unit, WindowChanges, WindowDefinition, WindowError, WindowSlug,
};
use thiserror::Error;
use uuid::Uuid;

pub mod commit;
pub mod events;
pub use events::{DeviceStateChange, EventLog, EventPage, EventSubject, LoggedEvent};
pub mod webhooks;
pub use webhooks::{
    AttemptOutcome, ClaimedDelivery, CreateWebhookError, Delivery, DeliveryAttempt, DeliveryState,
    EventPayloads, NewWebhook, UnwiredEventPayloads, Webhook, WebhookChanges, WebhookOutbox,
    WebhookRepository,
};
#[cfg(feature = "contract")]
pub mod contract;

/// A failure of the store itself, not of the request.
#[derive(Debug, Error)]
pub enum StoreError {
    /// The store cannot be reached or has no capacity now (pool exhausted, connection refused,
    /// timeout). Worth retrying; the HTTP layer answers 503.
    #[error("the store is unavailable")]
    Unavailable(#[source] anyhow::Error),
    /// The store has no room for what the write would add (the embedded store's caps); nothing
    /// was stored. The text tells the client what is full and what to do; the HTTP layer
    /// answers 507 with it.
    #[error("{0}")]
    Full(String),
    /// Anything else. The HTTP layer logs the chain and answers an opaque 500.
    #[error(transparent)]
    Unknown(anyhow::Error),
}

/// Errors of [`DeviceGroupRepository::create_group`].
#[derive(Debug, Error)]
pub enum CreateGroupError {
    #[error("group id {} is taken", .0.as_str())]
    GroupIdTaken(GroupSlug),
    #[error("group name {} is taken", .0.as_str())]
    NameTaken(GroupName),
    /// The first listed member that the tenant has no device for.
    #[error("device {0} not found")]
    DeviceNotFound(Uuid),
    /// The tenant has as many dynamic groups as it may keep.
    #[error(
        "the tenant has {} dynamic groups, the most it may keep",
        domain::membership::DYNAMIC_GROUPS_MAX
    )]
    TooManyDynamic,
    /// The tenant has no group with the parent's id.
    #[error("parent group {0} not found")]
    ParentNotFound(Uuid),
    /// The group would nest too deep.
    #[error(transparent)]
    Placement(#[from] domain::group::PlacementError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Errors of [`DeviceGroupRepository::update_group`].
#[derive(Debug, Error)]
pub enum UpdateGroupError {
    #[error("group not found")]
    NotFound,
    #[error("group name {} is taken", .0.as_str())]
    NameTaken(GroupName),
    /// The first listed member that the tenant has no device for.
    #[error("device {0} not found")]
    DeviceNotFound(Uuid),
    /// New members for a dynamic group (whose members its filter selects).
    #[error("group membership is defined by its filter")]
    DefinedByFilter,
    /// A filter for a static group of a tenant with as many dynamic groups as it may keep.
    #[error(
        "the tenant has {} dynamic groups, the most it may keep",
        domain::membership::DYNAMIC_GROUPS_MAX
    )]
    TooManyDynamic,
    /// The tenant has no group with the new parent's id.
    #[error("parent group {0} not found")]
    ParentNotFound(Uuid),
    /// The new parent would make a cycle or nest the group's subtree too deep.
    #[error(transparent)]
    Placement(#[from] domain::group::PlacementError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Errors of adding a device to, or removing it from, a group.
#[derive(Debug, Error)]
pub enum MembershipError {
    #[error("group not found")]
    GroupNotFound,
    #[error("device not found")]
    DeviceNotFound,
    #[error("device not in group")]
    NotMember,
    /// The group is dynamic: its filter, not the client, decides its members.
    #[error("group membership is defined by its filter")]
    DefinedByFilter,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Errors of [`DeviceRepository::create_device`].
#[derive(Debug, Error)]
pub enum CreateDeviceError {
    #[error("device name {} is taken", .0.as_str())]
    NameTaken(DeviceName),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Errors of [`DeviceRepository::update_device`].
#[derive(Debug, Error)]
pub enum UpdateDeviceError {
    #[error("device not found")]
    NotFound,
    #[error("device name {} is taken", .0.as_str())]
    NameTaken(DeviceName),
    /// The changes, merged with the stored thresholds, put them out of order.
    #[error(transparent)]
    Invalid(#[from] ThresholdError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Errors of [`ReadingRepository::ingest`].
#[derive(Debug, Error)]
pub enum IngestError {
    /// The first reading, in batch order, whose device the tenant does not have.
    #[error("device {0} not found")]
    UnknownDevice(Uuid),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Errors of [`ReadingRepository::group_buckets`].
#[derive(Debug, Error)]
pub enum GroupBucketsError {
    #[error("group not found")]
    NotFound,
    /// The first device of the chosen ones, in the order given, that is no member of the group.
    #[error("device {0} is not a member of the group")]
    NotMember(Uuid),
    /// More members have readings in the range than one answer may hold (and no `top` bounds
    /// them).
    #[error("more than {} series", domain::bucket::MAX_SERIES)]
    TooManySeries,
    /// The series the choice allows times the buckets of each exceed
    /// [`domain::bucket::MAX_BUCKETS_PER_ANSWER`]; refused before anything is read.
    #[error("more than {} buckets", domain::bucket::MAX_BUCKETS_PER_ANSWER)]
    TooManyBuckets,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How a group is addressed: by UUID (Group API) or by slug (customer API).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum GroupKey {
    Id(Uuid),
    Slug(GroupSlug),
}

pub use domain::{GroupDetail, Member};

/// Where a tenant's data stands: a store that keeps revisions gives a different one after any
/// write of the tenant has committed, so a view derived from the data at one revision still
/// holds while the tenant's revision is the same (time aside).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Revision(pub i64);

/// A tenant's full and scope revisions, read together (see [`TenantRevisions`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Revisions {
    pub full: Revision,
    /// The scope revision of the [`StateMark`].
    pub scope: Revision,
}

/// Where a tenant's alert states stand, for a kept summary: the scope revision (moved by every
/// write of devices, groups, memberships or windows, and by a freshness change no event
/// records) and the last number of its event log. Between two marks of the same scope, every
/// change a summary counts is a change of a device that an event in between names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StateMark {
    pub scope: Revision,
    pub seq: i64,
}

/// What [`TenantRevisions::state_changes`] read, all in one snapshot.
#[derive(Debug, Clone, PartialEq)]
pub struct StateChanges {
    pub mark: StateMark,
    /// Each device the events after the kept mark name, with its state and alerts now (empty
    /// when no event came); `None` when they cannot bring a kept summary up to date: the scope
    /// moved, the log no longer holds all those events, or they name more devices than asked.
    pub changed: Option<Vec<(Uuid, domain::MemberPatch)>>,
}

/// What [`TenantRevisions::members_latest`] read, all in one snapshot.
#[derive(Debug, Clone, PartialEq)]
pub struct MembersLatest {
    pub revisions: Revisions,
    /// Each member's kept state (its latest reading and status) and alerts: read only when the
    /// full revision moved from the one given and the scope revision did not, else `None`.
    pub latest: Option<Vec<(Uuid, domain::MemberPatch)>>,
}

/// One reading of a group's member, with what a reader needs to show it.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupReading {
    pub device_id: Uuid,
    pub device_name: DeviceName,
    pub unit: Unit,
    pub timestamp: Timestamp,
    pub value: f64,
}

/// Readings streamed from the store as it reads them, in the order of the query: a long export
/// holds only what is in flight. An error ends it.
pub type ReadingStream<T> =
    std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<T, StoreError>> + Send>>;

/// Errors of reading or deleting one group or window.
#[derive(Debug, Error)]
pub enum LookupError {
    #[error("not found")]
    NotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Errors of [`MaintenanceWindowRepository::create_window`].
#[derive(Debug, Error)]
pub enum CreateWindowError {
    /// Only possible when two generated ids collide; the caller retries with a new one.
    #[error("window id {} is taken", .0.as_str())]
    WindowIdTaken(WindowSlug),
    /// The tenant already keeps this many windows, the most it may.
    #[error("a tenant may have at most {0} maintenance windows")]
    TooMany(usize),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Errors of [`MaintenanceWindowRepository::update_window`].
#[derive(Debug, Error)]
pub enum UpdateWindowError {
    #[error("window not found")]
    NotFound,
    /// The changes, merged with the stored window, do not make a valid window.
    #[error("invalid window: {0}")]
    Invalid(#[from] WindowError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Device groups of one tenant and their members.
///
/// Every method is scoped by `tenant`: a group or device of another tenant behaves as if it did
/// not exist.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait DeviceGroupRepository: Send + Sync {
    /// The page `query` selects of the tenant's groups whose name matches its filter, ordered by
    /// name (byte order), each with its member count; `total` counts all matches.
    ///
    /// # Errors
    /// [`StoreError`] only.
    async fn list_groups(
        &self,
        tenant: &TenantId,
        query: &ListQuery,
    ) -> Result<Page<DeviceGroup>, StoreError>;

    /// Stores a new group with its (de-duplicated) members, atomically.
    ///
    /// # Errors
    /// MUST return [`CreateGroupError::GroupIdTaken`] when the tenant has a group with that slug,
    /// [`CreateGroupError::NameTaken`] when it has one with that name,
    /// [`CreateGroupError::DeviceNotFound`] naming the first member it has no device for,
    /// [`CreateGroupError::ParentNotFound`] when it has no group `parent_id` and
    /// [`CreateGroupError::Placement`] when the group would be below level
    /// [`GROUP_LEVELS_MAX`](domain::group::GROUP_LEVELS_MAX); nothing is stored then.
    async fn create_group(
        &self,
        tenant: &TenantId,
        actor: &Actor,
        group: NewDeviceGroup,
    ) -> Result<GroupDetail, CreateGroupError>;

    /// The group's own row (with its member count), without reading its members.
    ///
    /// # Errors
    /// [`LookupError::NotFound`] for a group the tenant does not have.
    async fn get_group_row(
        &self,
        tenant: &TenantId,
        group: &GroupKey,
    ) -> Result<DeviceGroup, LookupError>;

    /// The page of the group's devices that `query` selects, ordered by name (byte order),
    /// with the number of all that match.
    ///
    /// # Errors
    /// [`LookupError::NotFound`] for a group the tenant does not have.
    async fn list_members(
        &self,
        tenant: &TenantId,
        group: &GroupKey,
        query: &ListQuery,
    ) -> Result<Page<Device>, LookupError>;

    /// The group with its members and their latest readings, read in one snapshot.
    ///
    /// # Errors
    /// MUST return [`LookupError::NotFound`] when the tenant has no such group.
    async fn get_group(
        &self,
        tenant: &TenantId,
        group: &GroupKey,
    ) -> Result<GroupDetail, LookupError>;

    /// Applies `changes` atomically and bumps `updated_at` when there were any. New `members`
    /// replace the whole member list; a new `parent_id` moves the group with its subtree
    /// (re-parentings of one tenant apply one after the other, so concurrent ones cannot make
    /// a cycle between them).
    ///
    /// # Errors
    /// MUST return [`UpdateGroupError::NotFound`] for an unknown group,
    /// [`UpdateGroupError::NameTaken`] when another group of the tenant has the new name,
    /// [`UpdateGroupError::DeviceNotFound`] naming the first new member it has no device for,
    /// [`UpdateGroupError::ParentNotFound`] for a parent the tenant does not have, and
    /// [`UpdateGroupError::Placement`] when the parent is the group or one of its descendants,
    /// or the subtree's deepest group would be below level
    /// [`GROUP_LEVELS_MAX`](domain::group::GROUP_LEVELS_MAX); nothing changes then.
    async fn update_group(
        &self,
        tenant: &TenantId,
        actor: &Actor,
        group: &GroupKey,
        changes: GroupChanges,
    ) -> Result<GroupDetail, UpdateGroupError>;

    /// Deletes the group and its memberships; the devices stay, and its children move to the
    /// top (their `parent_id` becomes `None`).
    ///
    /// # Errors
    /// MUST return [`LookupError::NotFound`] when the tenant has no such group.
    async fn delete_group(&self, tenant: &TenantId, group: &GroupKey) -> Result<(), LookupError>;

    /// Adds a device to a group; adding a member again changes nothing.
    ///
    /// # Errors
    /// MUST return [`MembershipError::GroupNotFound`] for an unknown group (checked first) and
    /// [`MembershipError::DeviceNotFound`] for an unknown device.
    async fn add_member(
        &self,
        tenant: &TenantId,
        actor: &Actor,
        group: &GroupKey,
        device: Uuid,
    ) -> Result<(), MembershipError>;

    /// Removes a device from a group.
    ///
    /// # Errors
    /// MUST return [`MembershipError::GroupNotFound`] for an unknown group and
    /// [`MembershipError::NotMember`] when the device is not a member.
    async fn remove_member(
        &self,
        tenant: &TenantId,
        actor: &Actor,
        group: &GroupKey,
        device: Uuid,
    ) -> Result<(), MembershipError>;

    /// Readings of all members within `query`, newest first (ties by device id), strictly after
    /// `query.after()` when set, skipping `query.offset()`, at most `query.limit()` in all.
    ///
    /// # Errors
    /// MUST return [`LookupError::NotFound`] when the tenant has no such group.
    async fn group_readings(
        &self,
        tenant: &TenantId,
        group: &GroupKey,
        query: ReadingQuery,
    ) -> Result<Vec<GroupReading>, LookupError>;

    /// What [`DeviceGroupRepository::group_readings`] answers, streamed as read, for exports of
    /// up to [`domain::reading::MAX_READINGS_PER_EXPORT`] readings: the store holds a bounded
    /// batch at a time, never the whole answer. The members are those of the moment it starts.
    ///
    /// # Errors
    /// MUST return [`LookupError::NotFound`] when the tenant has no such group (before any
    /// reading); [`StoreError::Unavailable`] when the store runs as many exports as it allows.
    async fn export_group_readings(
        &self,
        tenant: &TenantId,
        group: &GroupKey,
        query: ReadingQuery,
    ) -> Result<ReadingStream<GroupReading>, LookupError>;

    /// The slugs of those of `ids` the tenant has a group for (the customer API shows a parent
    /// by its slug).
    ///
    /// # Errors
    /// [`StoreError`] only.
    async fn group_slugs(
        &self,
        tenant: &TenantId,
        ids: &[Uuid],
    ) -> Result<std::collections::HashMap<Uuid, GroupSlug>, StoreError>;

    /// As [`get_group`](Self::get_group), over the group's tree: its members and those of all
    /// its descendants, each device once however many paths reach it (`group` is the group's
    /// own row).
    ///
    /// # Errors
    /// MUST return [`LookupError::NotFound`] when the tenant has no such group.
    async fn get_group_tree(
        &self,
        tenant: &TenantId,
        group: &GroupKey,
    ) -> Result<GroupDetail, LookupError>;

    /// As [`group_readings`](Self::group_readings), of the devices of the group's tree (see
    /// [`get_group_tree`](Self::get_group_tree)).
    ///
    /// # Errors
    /// MUST return [`LookupError::NotFound`] when the tenant has no such group.
    async fn tree_readings(
        &self,
        tenant: &TenantId,
        group: &GroupKey,
        query: ReadingQuery,
    ) -> Result<Vec<GroupReading>, LookupError>;

    /// As [`export_group_readings`](Self::export_group_readings), of the devices of the group's
    /// tree.
    ///
    /// # Errors
    /// As [`export_group_readings`](Self::export_group_readings).
    async fn export_tree_readings(
        &self,
        tenant: &TenantId,
        group: &GroupKey,
        query: ReadingQuery,
    ) -> Result<ReadingStream<GroupReading>, LookupError>;
    /// The devices a dynamic group with `filter` would hold now, storing nothing: how many,
    /// and the first `limit` by name (byte order).
    ///
    /// # Errors
    /// [`StoreError`] only.
    async fn preview_filter(
        &self,
        tenant: &TenantId,
        filter: &GroupFilter,
        limit: usize,
    ) -> Result<FilterPreview, StoreError>;
}

/// The devices a group filter selects (see [`DeviceGroupRepository::preview_filter`]).
#[derive(Debug, Clone, PartialEq)]
pub struct FilterPreview {
    /// How many devices match.
    pub count: u64,
    /// The first of them by name.
    pub devices: Vec<Device>,
}

/// Devices of one tenant.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait DeviceRepository: Send + Sync {
    /// The page `query` selects of the tenant's devices whose name matches its filter and that
    /// pass every condition of `filter` (labels included), ordered by name (byte order);
    /// `total` counts all matches.
    ///
    /// # Errors
    /// [`StoreError`] only.
    async fn list_devices(
        &self,
        tenant: &TenantId,
        filter: &DeviceFilter,
        query: &ListQuery,
    ) -> Result<Page<Device>, StoreError>;

    /// # Errors
    /// MUST return [`CreateDeviceError::NameTaken`] when the tenant has a device of that name.
    async fn create_device(
        &self,
        tenant: &TenantId,
        actor: &Actor,
        device: NewDevice,
    ) -> Result<Device, CreateDeviceError>;

    /// # Errors
    /// MUST return [`LookupError::NotFound`] when the tenant has no such device.
    async fn get_device(&self, tenant: &TenantId, id: Uuid) -> Result<Device, LookupError>;

    /// Merges `changes` into the stored device, re-checking its thresholds, atomically; new
    /// thresholds judge the latest reading again ([`domain::DeviceState::after_thresholds`]) and
    /// the alert changes that follow are recorded in the same transaction.
    ///
    /// # Errors
    /// MUST return [`UpdateDeviceError::NotFound`], [`UpdateDeviceError::NameTaken`] or
    /// [`UpdateDeviceError::Invalid`]; nothing changes then.
    async fn update_device(
        &self,
        tenant: &TenantId,
        actor: &Actor,
        id: Uuid,
        changes: DeviceChanges,
    ) -> Result<Device, UpdateDeviceError>;

    /// Deletes the device with its readings and memberships; its groups stay.
    ///
    /// # Errors
    /// MUST return [`LookupError::NotFound`] when the tenant has no such device.
    async fn delete_device(&self, tenant: &TenantId, id: Uuid) -> Result<(), LookupError>;

    /// The groups the device belongs to, ordered by name.
    ///
    /// # Errors
    /// MUST return [`LookupError::NotFound`] when the tenant has no such device.
    async fn groups_of_device(
        &self,
        tenant: &TenantId,
        id: Uuid,
    ) -> Result<Vec<DeviceGroup>, LookupError>;

    /// The slugs of every group whose tree holds the device: the groups it is a member of and
    /// all their ancestors, each once, in no set order (a window naming any of them covers it).
    ///
    /// # Errors
    /// MUST return [`LookupError::NotFound`] when the tenant has no such device.
    async fn groups_reaching_device(
        &self,
        tenant: &TenantId,
        id: Uuid,
    ) -> Result<Vec<GroupSlug>, LookupError>;
}

/// Readings of one tenant's devices.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait ReadingRepository: Send + Sync {
    /// Stores the whole batch or nothing. A reading for a device and instant already stored
    /// replaces its value. In the same transaction, keeps each device's state current (by
    /// [`domain::DeviceState::after_reading`], reading by reading in time order) and records
    /// what that does to its alerts ([`domain::alerting::on_status`] and
    /// [`domain::alerting::on_freshness`], with the windows covering the device now).
    /// Returns how many readings were stored.
    ///
    /// # Errors
    /// MUST return [`IngestError::UnknownDevice`] naming the first reading whose device the
    /// tenant does not have; nothing is stored then.
    async fn ingest(&self, tenant: &TenantId, batch: ReadingBatch) -> Result<u64, IngestError>;

    /// The device's readings within `query`, newest first, strictly after `query.after()` when
    /// set, skipping `query.offset()`, at most `query.limit()`.
    ///
    /// # Errors
    /// MUST return [`LookupError::NotFound`] when the tenant has no such device.
    async fn device_readings(
        &self,
        tenant: &TenantId,
        device: Uuid,
        query: ReadingQuery,
    ) -> Result<Vec<ReadingPoint>, LookupError>;

    /// What [`ReadingRepository::device_readings`] answers, streamed as read (see
    /// [`DeviceGroupRepository::export_group_readings`]).
    ///
    /// # Errors
    /// MUST return [`LookupError::NotFound`] when the tenant has no such device;
    /// [`StoreError::Unavailable`] when the store runs as many exports as it allows.
    async fn export_device_readings(
        &self,
        tenant: &TenantId,
        device: Uuid,
        query: ReadingQuery,
    ) -> Result<ReadingStream<ReadingPoint>, LookupError>;

    /// Deletes the device's readings in `[start, end)`, and returns how many. In the same
    /// transaction, when the device's latest reading was among them, the newest remaining one
    /// becomes its latest and its state is judged again as ingest judges it
    /// ([`domain::DeviceState::after_latest_removed`], then its threshold alert by
    /// [`domain::alerting::on_threshold_change`] and a stale alert resolved when it is no
    /// longer stale), recording the same events; anything kept from the readings is brought in
    /// line too.
    ///
    /// # Errors
    /// MUST return [`LookupError::NotFound`] when the tenant has no such device; nothing is
    /// deleted then.
    async fn delete_device_readings(
        &self,
        tenant: &TenantId,
        device: Uuid,
        start: Timestamp,
        end: Timestamp,
    ) -> Result<u64, LookupError>;
    /// The device's readings within `query.since..query.until` aggregated on `query.grid`
    /// (readings outside the grid are not counted): its non-empty buckets in index order,
    /// and, when [`BucketQuery::wants_before`], the value of its latest reading before
    /// `query.since`. Computed where the readings are: a store MUST NOT ship raw points out.
    ///
    /// # Errors
    /// MUST return [`LookupError::NotFound`] when the tenant has no such device.
    async fn device_buckets(
        &self,
        tenant: &TenantId,
        device: Uuid,
        query: &BucketQuery,
    ) -> Result<SeriesStats, LookupError>;

    /// As [`ReadingRepository::device_buckets`] for each member of the group chosen by
    /// `choice` that has readings counted: the members listed, if a list is given; of those,
    /// the [`SeriesChoice::cap`] with the most readings counted (ties by name in byte order,
    /// then id). Series in any order.
    ///
    /// # Errors
    /// MUST return [`GroupBucketsError::NotFound`] for an unknown group and
    /// [`GroupBucketsError::NotMember`] naming the first listed device that is no member.
    async fn group_buckets(
        &self,
        tenant: &TenantId,
        group: &GroupKey,
        choice: &SeriesChoice,
        query: &BucketQuery,
    ) -> Result<Vec<SeriesStats>, GroupBucketsError>;

    /// As [`ReadingRepository::group_buckets`] over the devices of the group's tree (the group
    /// and all its descendants, each device once); a listed device must be one of them.
    ///
    /// # Errors
    /// As [`ReadingRepository::group_buckets`].
    async fn tree_buckets(
        &self,
        tenant: &TenantId,
        group: &GroupKey,
        choice: &SeriesChoice,
        query: &BucketQuery,
    ) -> Result<Vec<SeriesStats>, GroupBucketsError>;
}

/// Maintenance windows of one tenant.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait MaintenanceWindowRepository: Send + Sync {
    /// The page `query` selects of the tenant's windows whose name matches its filter, latest
    /// `starts_at` first (ties by `window_id`); `total` counts all matches.
    ///
    /// # Errors
    /// [`StoreError`] only.
    async fn list_windows(
        &self,
        tenant: &TenantId,
        query: &ListQuery,
    ) -> Result<Page<MaintenanceWindow>, StoreError>;

    /// # Errors
    /// MUST return [`CreateWindowError::WindowIdTaken`] when the slug is in use, and
    /// [`CreateWindowError::TooMany`] when the tenant already keeps
    /// [`WINDOWS_PER_TENANT_MAX`](domain::window::WINDOWS_PER_TENANT_MAX) windows (counted in
    /// the same transaction, so concurrent creations cannot pass it); nothing is stored then.
    async fn create_window(
        &self,
        tenant: &TenantId,
        actor: &Actor,
        window: NewMaintenanceWindow,
    ) -> Result<MaintenanceWindow, CreateWindowError>;

    /// # Errors
    /// MUST return [`LookupError::NotFound`] when the tenant has no window with that slug.
    async fn get_window(
        &self,
        tenant: &TenantId,
        window_id: &WindowSlug,
    ) -> Result<MaintenanceWindow, LookupError>;

    /// Merges `changes` into the stored window and re-validates it, atomically.
    ///
    /// # Errors
    /// MUST return [`UpdateWindowError::NotFound`] for an unknown slug and
    /// [`UpdateWindowError::Invalid`] when the merged window is not valid; nothing changes then.
    async fn update_window(
        &self,
        tenant: &TenantId,
        actor: &Actor,
        window_id: &WindowSlug,
        changes: WindowChanges,
    ) -> Result<MaintenanceWindow, UpdateWindowError>;

    /// # Errors
    /// MUST return [`LookupError::NotFound`] when the tenant has no window with that slug.
    async fn delete_window(
        &self,
        tenant: &TenantId,
        window_id: &WindowSlug,
    ) -> Result<(), LookupError>;

    /// The active windows covering each of `devices` at `now` (ids in ascending order; empty:
    /// none). Devices the tenant does not have are left out.
    ///
    /// # Errors
    /// [`StoreError`] only.
    async fn covering_windows(
        &self,
        tenant: &TenantId,
        devices: &[Uuid],
        now: Timestamp,
    ) -> Result<std::collections::HashMap<Uuid, Vec<WindowSlug>>, StoreError>;

    /// The window and the devices in its scope (by site, type and group, whatever the time),
    /// ordered by name.
    ///
    /// # Errors
    /// MUST return [`LookupError::NotFound`] when the tenant has no window with that slug.
    async fn window_devices(
        &self,
        tenant: &TenantId,
        window_id: &WindowSlug,
    ) -> Result<(MaintenanceWindow, Vec<Device>), LookupError>;

    /// Those of `slugs` that name no group of the tenant, in the order given, each once.
    ///
    /// # Errors
    /// [`StoreError`] only.
    async fn unknown_groups(
        &self,
        tenant: &TenantId,
        slugs: &[GroupSlug],
    ) -> Result<Vec<GroupSlug>, StoreError>;

    /// What `definition`'s scope (by site, type and group, whatever the time, as
    /// [`window_devices`](Self::window_devices) judges it) holds now, without storing anything:
    /// the first `limit` devices in it by name, how many there are, how many devices the
    /// tenant has, and the groups it names that the tenant does not have.
    ///
    /// # Errors
    /// [`StoreError`] only.
    async fn preview_scope(
        &self,
        tenant: &TenantId,
        definition: &WindowDefinition,
        limit: usize,
    ) -> Result<ScopePreview, StoreError>;
}

/// What a window's scope would hold (see [`MaintenanceWindowRepository::preview_scope`]).
#[derive(Debug, Clone, PartialEq)]
pub struct ScopePreview {
    /// The first devices in scope, by name.
    pub devices: Vec<Device>,
    /// All devices in scope.
    pub in_scope: u64,
    /// All the tenant's devices.
    pub tenant_devices: u64,
    /// Slugs of `group_ids` that name no group, in the order given.
    pub unknown_groups: Vec<GroupSlug>,
}

/// Which alerts a list selects; `None` in a field does not narrow.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlertFilter {
    pub state: Option<AlertState>,
    pub severity: Option<Severity>,
    pub kind: Option<AlertKind>,
    /// Alerts of the group's members (as they are now).
    pub group: Option<GroupKey>,
    pub device_id: Option<Uuid>,
    /// Whether a window covers the device (as last recorded).
    pub suppressed: Option<bool>,
    pub acknowledged: Option<bool>,
}

/// A page of alerts: newest `opened_at` first, ties by greater id first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertQuery {
    pub filter: AlertFilter,
    /// 1 to [`domain::alerting::ALERT_PAGE_MAX`].
    pub limit: u32,
    /// Continue after this alert (exclusive).
    pub after: Option<AlertCursor>,
}

/// A page of alerts and where the next one starts (`None`: this was the last).
#[derive(Debug, Clone, PartialEq)]
pub struct AlertPage {
    pub alerts: Vec<Alert>,
    pub next: Option<AlertCursor>,
}

/// Errors of [`AlertRepository::list_alerts`].
#[derive(Debug, Error)]
pub enum AlertListError {
    /// The filter names a group the tenant does not have.
    #[error("group not found")]
    GroupNotFound,
    /// The filter (or the device history) names a device the tenant does not have.
    #[error("device not found")]
    DeviceNotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Errors of acknowledging an alert or withdrawing the acknowledgement.
#[derive(Debug, Error)]
pub enum AckAlertError {
    #[error("alert not found")]
    NotFound,
    #[error("Alert is resolved")]
    Resolved,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What one pass of [`AlertEvaluator::evaluate`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Evaluation {
    /// Tenants looked at.
    pub tenants: u64,
    /// Events recorded.
    pub events: u64,
}

/// Alerts of one tenant: reading them, and what people do with them. Alerts are opened,
/// changed and resolved by the writes that change a device's state (ingest, device updates),
/// in their own transactions, and by [`AlertEvaluator`] for what time alone changes.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait AlertRepository: Send + Sync {
    /// The page `query` selects.
    ///
    /// # Errors
    /// MUST return [`AlertListError::GroupNotFound`] / [`AlertListError::DeviceNotFound`] when
    /// the filter names a group or device the tenant does not have.
    async fn list_alerts(
        &self,
        tenant: &TenantId,
        query: &AlertQuery,
    ) -> Result<AlertPage, AlertListError>;

    /// The alert with all its events, oldest first.
    ///
    /// # Errors
    /// MUST return [`LookupError::NotFound`] when the tenant has no such alert.
    async fn get_alert(
        &self,
        tenant: &TenantId,
        id: Uuid,
    ) -> Result<(Alert, Vec<AlertEvent>), LookupError>;

    /// Acknowledges the open alert (a new acknowledgement replaces an older one) and records
    /// the `acknowledged` event, atomically.
    ///
    /// # Errors
    /// MUST return [`AckAlertError::NotFound`] and [`AckAlertError::Resolved`].
    async fn acknowledge(
        &self,
        tenant: &TenantId,
        id: Uuid,
        ack: Acknowledgement,
    ) -> Result<Alert, AckAlertError>;

    /// Withdraws the acknowledgement, recording `unacknowledged`; without one, changes nothing.
    ///
    /// # Errors
    /// MUST return [`AckAlertError::NotFound`] and [`AckAlertError::Resolved`].
    async fn unacknowledge(
        &self,
        tenant: &TenantId,
        id: Uuid,
        at: Timestamp,
    ) -> Result<Alert, AckAlertError>;

    /// The alerts with an event recorded as suppressed by the window at an instant within
    /// `[from, until)` (`until` `None`: up to now), oldest `opened_at` first.
    ///
    /// # Errors
    /// [`StoreError`] only; an unknown window simply muted nothing.
    async fn muted_by_window(
        &self,
        tenant: &TenantId,
        window_id: &WindowSlug,
        from: Timestamp,
        until: Option<Timestamp>,
    ) -> Result<Vec<Alert>, StoreError>;
}

/// Records what time alone changes, for every tenant: devices turning stale (and stale alerts
/// whose device is no longer stale), windows starting or stopping to cover devices with open
/// alerts (`suppressed` / `unsuppressed`), acknowledgements whose `until` has come.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait AlertEvaluator: Send + Sync {
    /// One pass at `now`. Several instances may run it at once on one store: each change is
    /// recorded once.
    ///
    /// # Errors
    /// [`StoreError`] only; a pass that failed part way leaves what it committed.
    async fn evaluate(&self, now: Timestamp) -> Result<Evaluation, StoreError>;
}

/// Where each tenant's data stands, for views kept between requests. The revision covers every
/// table of the tenant, so it is a port of its own; a store that keeps none (the embedded one)
/// does not implement it, and nothing is kept then.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait TenantRevisions: Send + Sync {
    /// The tenant's revision now: a different one after any write of the tenant has committed
    /// (see [`Revision`]).
    ///
    /// # Errors
    /// [`StoreError`] only.
    async fn revision(&self, tenant: &TenantId) -> Result<Revision, StoreError>;

    /// The tenant's alert-status revision: different after any committed write that may change
    /// an alert summary (devices, groups, memberships, windows, alerts and their events), but
    /// not after readings that change no device's status.
    ///
    /// # Errors
    /// [`StoreError`] only.
    async fn status_revision(&self, tenant: &TenantId) -> Result<Revision, StoreError>;

    /// The full and scope revisions, in one snapshot.
    ///
    /// # Errors
    /// [`StoreError`] only.
    async fn revisions(&self, tenant: &TenantId) -> Result<Revisions, StoreError>;

    /// The full and scope revisions and, when the full revision moved since `kept` and the scope
    /// did not (readings, statuses and alerts changed; no device, group, membership or window),
    /// the kept state and alerts of each member of group `group`: all in one snapshot, so they
    /// are exactly those of the revisions returned. A kept group detail is then brought up to
    /// date by its members' states alone.
    ///
    /// # Errors
    /// [`StoreError`] only.
    async fn members_latest(
        &self,
        tenant: &TenantId,
        group: Uuid,
        kept: Revisions,
    ) -> Result<MembersLatest, StoreError>;

    /// The tenant's [`StateMark`] now.
    ///
    /// # Errors
    /// [`StoreError`] only.
    async fn state_mark(&self, tenant: &TenantId) -> Result<StateMark, StoreError>;

    /// The mark now and what changed since `kept` (see [`StateChanges`]), naming at most
    /// `limit` devices: all in one snapshot.
    ///
    /// # Errors
    /// [`StoreError`] only.
    async fn state_changes(
        &self,
        tenant: &TenantId,
        kept: StateMark,
        limit: usize,
    ) -> Result<StateChanges, StoreError>;
}

/// The answer a create gave, kept so that a retry with its `Idempotency-Key` gets it again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAnswer {
    /// The HTTP status (a 2xx: only successes are kept).
    pub status: u16,
    /// The `Location` header, when the answer had one.
    pub location: Option<String>,
    /// The body's bytes (JSON).
    pub body: Vec<u8>,
}

/// What [`IdempotencyStore::claim`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// The key was free (new, its answer older than [`domain::idempotency::IDEMPOTENCY_TTL`], or
    /// its claim older than [`domain::idempotency::IDEMPOTENCY_LEASE`]): it is now held by the
    /// caller's token, which must [`IdempotencyStore::answer`] or
    /// [`IdempotencyStore::release`] it.
    Claimed,
    /// A request with the key was answered: its fingerprint and answer.
    Answered {
        fingerprint: Vec<u8>,
        answer: StoredAnswer,
    },
    /// Another request holds the key and has not answered yet: its fingerprint.
    InProgress { fingerprint: Vec<u8> },
}

/// `Idempotency-Key`s of one tenant's creates and the answers they got, kept for
/// [`domain::idempotency::IDEMPOTENCY_TTL`]. Keys of different tenants never meet. `now` is the
/// caller's clock; every instance of the service shares the store, so a retry on another
/// instance finds the key.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait IdempotencyStore: Send + Sync {
    /// Claims `key` for a request whose `fingerprint` (opaque bytes the caller derives from the
    /// request) it records, under `token`, unless the key is answered or held (see [`Claim`]).
    /// Atomic: of concurrent claims of a free key, exactly one gets [`Claim::Claimed`].
    ///
    /// # Errors
    /// [`StoreError`] only ([`StoreError::Full`] when a bounded store has no room).
    async fn claim(
        &self,
        tenant: &TenantId,
        key: &IdempotencyKey,
        fingerprint: &[u8],
        token: Uuid,
        now: Timestamp,
    ) -> Result<Claim, StoreError>;

    /// Stores `answer` for the key held by `token`, from `now` on; a key no longer held by
    /// `token` (its lease lapsed and another request claimed it) is left as it is. May delete a
    /// bounded number of the tenant's expired keys on the way.
    ///
    /// # Errors
    /// [`StoreError`] only.
    async fn answer(
        &self,
        tenant: &TenantId,
        key: &IdempotencyKey,
        token: Uuid,
        answer: &StoredAnswer,
        now: Timestamp,
    ) -> Result<(), StoreError>;

    /// Frees the key held by `token`, so that a retry runs anew; a key no longer held by
    /// `token` is left as it is.
    ///
    /// # Errors
    /// [`StoreError`] only.
    async fn release(
        &self,
        tenant: &TenantId,
        key: &IdempotencyKey,
        token: Uuid,
    ) -> Result<(), StoreError>;
}

/// Whether the store answers, for `/health/ready`.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait HealthProbe: Send + Sync {
    /// # Errors
    /// [`StoreError::Unavailable`] when the store does not answer.
    async fn check(&self) -> Result<(), StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_port_has_a_mock() {
        let _groups = MockDeviceGroupRepository::new();
        let _windows = MockMaintenanceWindowRepository::new();
        let _health = MockHealthProbe::new();
        let _devices = MockDeviceRepository::new();
        let _readings = MockReadingRepository::new();
        let _alerts = MockAlertRepository::new();
        let _evaluator = MockAlertEvaluator::new();
        let _idempotency = MockIdempotencyStore::new();
        let _revisions = MockTenantRevisions::new();
        let _webhooks = webhooks::MockWebhookRepository::new();
        let _outbox = webhooks::MockWebhookOutbox::new();
        let _payloads = webhooks::MockEventPayloads::new();
    }
}
