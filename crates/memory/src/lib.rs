//! The embedded store: every port implemented in process memory, for runs without PostgreSQL.
//!
//! Layer rule: an adapter like the Postgres one, and held to the same contract suite
//! (`ports::contract`), so the service behaves the same on either. Nothing is persisted: data
//! lives as long as the process.
//!
//! Each tenant's data has a lock of its own (readers share it), so one tenant's heavy operation
//! delays only that tenant's writes; the work runs on the blocking pool, never on the threads
//! that serve requests. The store as a whole is capped ([`Limits`]): past a cap, writes fail with
//! [`StoreError::Full`] and store nothing.
//!
//! A device's state (alert status, since, latest reading) is kept on the device and its alerts
//! with the tenant's other rows: every write that changes them does so under the same lock
//! hold, through the rules of `domain::alerting`, so no reader sees one without the other.
#![forbid(unsafe_code)]

mod alerts;
mod buckets;
mod events;
mod idempotency;
mod readings;
mod webhooks;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock as MapLock};

use async_trait::async_trait;
use domain::bucket::{BucketQuery, SeriesChoice, SeriesStats};
use domain::group::{Placement, GROUP_LEVELS_MAX};
use domain::{
    Actor, Device, DeviceChanges, DeviceFilter, DeviceGroup, DeviceSpec, GroupChanges, GroupFilter,
    GroupSlug, ListQuery, MaintenanceWindow, NewDevice, NewDeviceGroup, NewMaintenanceWindow, Page,
    ReadingBatch, ReadingPoint, ReadingQuery, TenantId, Timestamp, WindowChanges, WindowDefinition,
    WindowSlug,
};
use ports::{
    CreateDeviceError, CreateGroupError, CreateWindowError, DeviceGroupRepository,
    DeviceRepository, FilterPreview, GroupBucketsError, GroupDetail, GroupKey, GroupReading,
    HealthProbe, IngestError, LookupError, MaintenanceWindowRepository, Member, MembershipError,
    ReadingRepository, ReadingStream, ScopePreview, StoreError, UpdateDeviceError,
    UpdateGroupError, UpdateWindowError,
};
use tokio::sync::RwLock;
use uuid::Uuid;

/// The most the store holds, in all tenants together. Each bounds what an unbounded stream of
/// valid writes could otherwise grow without end. A reading takes about 80 bytes: at the default
/// readings cap the process held 420 MB (peak RSS, measured).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub readings: u64,
    pub devices: u64,
    pub groups: u64,
    /// Device-in-group memberships.
    pub memberships: u64,
    pub windows: u64,
}

impl Limits {
    /// Alert events kept (see [`MemoryStore::with_limits_and_alert_events`]). Every alert has
    /// its `opened` event and a resolved one at least two events, so this bounds alerts too
    /// (open ones are also at most two a device). An event is 88 bytes plus its window ids, an
    /// alert about 300 with its indexes (sizes, not a measured RSS): at this default, events
    /// and alerts together stay under about 150 MB.
    pub const DEFAULT_ALERT_EVENTS: u64 = 500_000;
    pub const DEFAULT_READINGS: u64 = 5_000_000;
    pub const DEFAULT_DEVICES: u64 = 100_000;
    pub const DEFAULT_GROUPS: u64 = 100_000;
    pub const DEFAULT_MEMBERSHIPS: u64 = 1_000_000;
    pub const DEFAULT_WINDOWS: u64 = 10_000;
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            readings: Self::DEFAULT_READINGS,
            devices: Self::DEFAULT_DEVICES,
            groups: Self::DEFAULT_GROUPS,
            memberships: Self::DEFAULT_MEMBERSHIPS,
            windows: Self::DEFAULT_WINDOWS,
        }
    }
}

/// How many rows of one kind the store holds, against their cap.
struct Gauge {
    used: AtomicU64,
    limit: u64,
    what: &'static str,
}

impl Gauge {
    fn new(limit: u64, what: &'static str) -> Self {
        Self {
            used: AtomicU64::new(0),
            limit,
            what,
        }
    }

    /// Counts `n` more rows if they fit under the cap, else none. Callers reserve under the
    /// tenant's write lock after every other check, just before the change that cannot fail.
    fn reserve(&self, n: u64) -> Result<(), StoreError> {
        if n == 0 {
            return Ok(());
        }
        self.used
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                used.checked_add(n).filter(|total| *total <= self.limit)
            })
            .map(|_| ())
            .map_err(|_| {
                StoreError::Full(format!(
                    "The embedded store is full ({} {}); set DATABASE_URL to use PostgreSQL",
                    self.limit, self.what
                ))
            })
    }

    fn release(&self, n: u64) {
        self.used.fetch_sub(n, Ordering::Relaxed);
    }

    #[cfg(test)]
    fn used(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }
}

/// What the whole store holds: shared by every tenant, changed only under a tenant's write lock.
struct Usage {
    readings: Gauge,
    devices: Gauge,
    groups: Gauge,
    memberships: Gauge,
    windows: Gauge,
    /// Every alert change is an event; alerts themselves are bounded by them.
    alert_events: Gauge,
}

impl Usage {
    fn new(limits: Limits, alert_events: u64) -> Self {
        Self {
            readings: Gauge::new(limits.readings, "readings"),
            devices: Gauge::new(limits.devices, "devices"),
            groups: Gauge::new(limits.groups, "groups"),
            memberships: Gauge::new(limits.memberships, "group memberships"),
            windows: Gauge::new(limits.windows, "maintenance windows"),
            alert_events: Gauge::new(alert_events, "alert events"),
        }
    }
}

/// Reserves on two gauges, both or neither.
fn reserve_both(first: (&Gauge, u64), second: (&Gauge, u64)) -> Result<(), StoreError> {
    first.0.reserve(first.1)?;
    second
        .0
        .reserve(second.1)
        .inspect_err(|_| first.0.release(first.1))
}

/// One tenant's rows. Each operation holds the tenant's lock throughout, so every operation is
/// atomic and sees one snapshot.
#[derive(Default)]
struct TenantData {
    /// `member_count` is not kept here; it is counted from `members` when read.
    groups: Vec<DeviceGroup>,
    windows: Vec<MaintenanceWindow>,
    /// By id: members, readings and scopes look devices up one by one.
    devices: HashMap<Uuid, Device>,
    /// (group id, device id)
    members: BTreeSet<(Uuid, Uuid)>,
    readings: BTreeMap<(Uuid, Timestamp), f64>,
    /// The latest reading of each device is in its `state`; its alerts are here.
    alerts: alerts::Alerts,
    /// The event log (issue 15), numbered by the alerts' counter.
    log: events::Log,
}

impl TenantData {
    fn group_index(&self, key: &GroupKey) -> Option<usize> {
        self.groups.iter().position(|g| match key {
            GroupKey::Id(id) => g.id == *id,
            GroupKey::Slug(slug) => g.group_id == *slug,
        })
    }

    fn device(&self, id: Uuid) -> Option<&Device> {
        self.devices.get(&id)
    }

    fn member_range(group: Uuid) -> std::ops::RangeInclusive<(Uuid, Uuid)> {
        (group, Uuid::nil())..=(group, Uuid::max())
    }

    fn member_count(&self, group: Uuid) -> u64 {
        self.members.range(Self::member_range(group)).count() as u64
    }

    fn counted(&self, group: &DeviceGroup) -> DeviceGroup {
        DeviceGroup {
            member_count: self.member_count(group.id),
            ..group.clone()
        }
    }

    /// The group's members as its readings show them, by id.
    fn shown_members(&self, group: Uuid) -> Vec<readings::Shown> {
        self.shown(self.member_ids(group))
    }

    /// [`TenantData::shown_members`] of the group's tree, each device once.
    fn shown_tree(&self, group: Uuid) -> Vec<readings::Shown> {
        self.shown(self.tree_member_ids(group).into_iter())
    }

    fn shown(&self, ids: impl Iterator<Item = Uuid>) -> Vec<readings::Shown> {
        ids.filter_map(|id| self.device(id))
            .map(|device| readings::Shown {
                id: device.id,
                name: device.spec.name.clone(),
                unit: device.spec.unit.clone(),
            })
            .collect()
    }

    fn member_ids(&self, group: Uuid) -> impl Iterator<Item = Uuid> + '_ {
        self.members
            .range(Self::member_range(group))
            .map(|(_, d)| *d)
    }

    /// The devices of the group's tree (the group and all its descendants), each once, by id.
    fn tree_member_ids(&self, group: Uuid) -> BTreeSet<Uuid> {
        self.tree_of(group)
            .into_iter()
            .flat_map(|g| self.member_ids(g))
            .collect()
    }

    /// The parent of each group that has one, by child.
    fn children(&self) -> HashMap<Uuid, Vec<Uuid>> {
        let mut children: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
        for group in &self.groups {
            if let Some(parent) = group.parent_id {
                children.entry(parent).or_default().push(group.id);
            }
        }
        children
    }

    /// The group and all its descendants, level by level (at most [`GROUP_LEVELS_MAX`] levels,
    /// as the PostgreSQL walk).
    fn tree_of(&self, group: Uuid) -> Vec<Uuid> {
        self.tree_with(&self.children(), group)
    }

    fn tree_with(&self, children: &HashMap<Uuid, Vec<Uuid>>, group: Uuid) -> Vec<Uuid> {
        let mut tree = vec![group];
        let mut level = vec![group];
        for _ in 1..GROUP_LEVELS_MAX {
            level = level
                .iter()
                .filter_map(|g| children.get(g))
                .flatten()
                .copied()
                .collect();
            if level.is_empty() {
                break;
            }
            tree.extend(&level);
        }
        tree
    }

    /// Levels of the group's subtree (1: no children).
    fn subtree_levels(&self, group: Uuid) -> u32 {
        let children = self.children();
        let mut levels = 1;
        let mut level = vec![group];
        // Bounded past the limit, so a deeper tree is refused all the same.
        while levels <= 2 * GROUP_LEVELS_MAX {
            level = level
                .iter()
                .filter_map(|g| children.get(g))
                .flatten()
                .copied()
                .collect();
            if level.is_empty() {
                break;
            }
            levels += 1;
        }
        levels
    }

    /// The group and its ancestors, nearest first (bounded as [`TenantData::subtree_levels`]).
    fn ancestry(&self, group: Uuid) -> Vec<Uuid> {
        let mut chain = vec![group];
        let mut at = group;
        while let Some(parent) = self
            .groups
            .iter()
            .find(|g| g.id == at)
            .and_then(|g| g.parent_id)
        {
            if chain.len() as u32 > 2 * GROUP_LEVELS_MAX {
                break;
            }
            chain.push(parent);
            at = parent;
        }
        chain
    }

    /// Judges placing group `id` (`moving`: an existing one, whose subtree moves with it) under
    /// `parent`; `None` when the tenant has no group `parent`.
    fn placement(&self, id: Uuid, parent: Uuid, moving: bool) -> Option<Placement> {
        if !self.groups.iter().any(|g| g.id == parent) {
            return None;
        }
        let above = self.ancestry(parent);
        Some(Placement {
            parent_level: above.len() as u32,
            subtree_levels: if moving { self.subtree_levels(id) } else { 1 },
            parent_in_subtree: above.contains(&id),
        })
    }

    /// For the groups that `named` names, the group's tree and its slug: a window naming a group
    /// covers the members of its whole tree.
    fn named_trees<'a>(&'a self, named: &HashSet<&GroupSlug>) -> Vec<(Vec<Uuid>, &'a GroupSlug)> {
        let children = self.children();
        self.groups
            .iter()
            .filter(|g| named.contains(&g.group_id))
            .map(|g| (self.tree_with(&children, g.id), &g.group_id))
            .collect()
    }

    /// The slugs of `trees` (of [`TenantData::named_trees`]) the device is in.
    fn covering_slugs(&self, trees: &[(Vec<Uuid>, &GroupSlug)], device: Uuid) -> Vec<GroupSlug> {
        trees
            .iter()
            .filter(|(tree, _)| tree.iter().any(|g| self.members.contains(&(*g, device))))
            .map(|(_, slug)| (*slug).clone())
            .collect()
    }

    fn detail(&self, index: usize) -> GroupDetail {
        self.detail_over(index, false)
    }

    /// The group's detail; with `tree`, over the devices of its whole tree, each once.
    fn detail_over(&self, index: usize, tree: bool) -> GroupDetail {
        let group = self.counted(&self.groups[index]);
        let now = Timestamp::now();
        let windows: Vec<MaintenanceWindow> = self
            .windows
            .iter()
            .filter(|w| {
                w.definition.enabled && w.definition.schedule.ends_at().is_none_or(|end| end > now)
            })
            .cloned()
            .collect();
        let named: HashSet<&GroupSlug> = windows
            .iter()
            .filter_map(|w| w.definition.group_ids.as_ref())
            .flatten()
            .collect();
        // Only the groups some window names matter: each member is checked against those (and
        // their trees), not against every group of the tenant.
        let named_trees = self.named_trees(&named);
        let ids: Vec<Uuid> = if tree {
            self.tree_member_ids(group.id).into_iter().collect()
        } else {
            self.member_ids(group.id).collect()
        };
        let mut members: Vec<Member> = ids
            .into_iter()
            .filter_map(|id| self.device(id))
            .map(|device| Member {
                device: device.clone(),
                alerts: self.alerts.member_alerts(device.id),
                window_groups: self.covering_slugs(&named_trees, device.id),
            })
            .collect();
        members.sort_by(|a, b| a.device.spec.name.as_str().cmp(b.device.spec.name.as_str()));
        GroupDetail {
            group,
            members,
            windows,
        }
    }

    /// Slugs of the groups each device belongs to, directly or through a descendant (a window
    /// naming a group covers its whole tree), in the tenant's group order.
    fn groups_by_device(&self) -> HashMap<Uuid, Vec<GroupSlug>> {
        let children = self.children();
        let mut by_device: HashMap<Uuid, Vec<GroupSlug>> = HashMap::new();
        for group in &self.groups {
            for device in self.tree_member_ids_with(&children, group.id) {
                by_device
                    .entry(device)
                    .or_default()
                    .push(group.group_id.clone());
            }
        }
        by_device
    }

    fn tree_member_ids_with(
        &self,
        children: &HashMap<Uuid, Vec<Uuid>>,
        group: Uuid,
    ) -> BTreeSet<Uuid> {
        self.tree_with(children, group)
            .into_iter()
            .flat_map(|g| self.member_ids(g))
            .collect()
    }

    fn first_unknown_device(&self, ids: &[Uuid]) -> Option<Uuid> {
        ids.iter().copied().find(|id| self.device(*id).is_none())
    }

    /// Whether the tenant may have one more dynamic group than it has besides group `id`.
    fn room_for_dynamic(&self, id: Uuid) -> bool {
        self.groups
            .iter()
            .filter(|g| g.filter.is_some() && g.id != id)
            .count()
            < domain::membership::DYNAMIC_GROUPS_MAX
    }

    /// Puts device `id`, as `spec` describes it, in every dynamic group whose filter selects it
    /// and out of the other dynamic groups (as PostgreSQL does at every device write).
    fn refresh_device_memberships(
        &mut self,
        id: Uuid,
        spec: &DeviceSpec,
        usage: &Usage,
    ) -> Result<(), StoreError> {
        let (mut wanted, mut unwanted) = (Vec::new(), Vec::new());
        for group in &self.groups {
            let Some(filter) = &group.filter else {
                continue;
            };
            let member = self.members.contains(&(group.id, id));
            match (filter.matches(spec), member) {
                (true, false) => wanted.push(group.id),
                (false, true) => unwanted.push(group.id),
                _ => {}
            }
        }
        usage.memberships.reserve(wanted.len() as u64)?;
        usage.memberships.release(unwanted.len() as u64);
        for group in unwanted {
            self.members.remove(&(group, id));
        }
        self.members
            .extend(wanted.into_iter().map(|group| (group, id)));
        Ok(())
    }

    /// Makes group `group`'s members exactly the devices `filter` selects now.
    fn refresh_group_members(
        &mut self,
        group: Uuid,
        filter: &GroupFilter,
        usage: &Usage,
    ) -> Result<(), StoreError> {
        let selected: BTreeSet<(Uuid, Uuid)> = self
            .devices
            .values()
            .filter(|d| filter.matches(&d.spec))
            .map(|d| (group, d.id))
            .collect();
        let before = self.member_count(group);
        let after = selected.len() as u64;
        usage.memberships.reserve(after.saturating_sub(before))?;
        usage.memberships.release(before.saturating_sub(after));
        self.members.retain(|(g, _)| *g != group);
        self.members.extend(selected);
        Ok(())
    }
}

type SharedTenant = Arc<RwLock<TenantData>>;

/// The in-process store.
pub struct MemoryStore {
    /// Held only to find or add a tenant's entry, never while working on its data.
    tenants: MapLock<HashMap<TenantId, SharedTenant>>,
    usage: Arc<Usage>,
    idempotency: idempotency::Keys,
    webhooks: Arc<webhooks::Hooks>,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::with_limits(Limits::default())
    }
}

impl MemoryStore {
    /// A store with the default [`Limits`].
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    #[must_use]
    pub fn with_limits(limits: Limits) -> Self {
        Self::with_limits_and_alert_events(limits, Limits::DEFAULT_ALERT_EVENTS)
    }

    /// A store with these caps, keeping at most `alert_events` alert events in all tenants:
    /// past it, writes that would record one (ingest, device updates, acknowledgements) fail
    /// with [`StoreError::Full`] and store nothing, and the evaluator records nothing more.
    #[must_use]
    pub fn with_limits_and_alert_events(limits: Limits, alert_events: u64) -> Self {
        Self {
            tenants: MapLock::default(),
            usage: Arc::new(Usage::new(limits, alert_events)),
            idempotency: idempotency::Keys::new(Self::IDEMPOTENCY_KEYS_MAX),
            webhooks: Arc::new(webhooks::Hooks::new(Self::WEBHOOK_DELIVERIES_MAX)),
        }
    }

    /// `Idempotency-Key`s kept by default, in all tenants together (a key with its stored
    /// answer takes about the answer's size plus 200 bytes).
    pub const IDEMPOTENCY_KEYS_MAX: usize = 100_000;

    /// Webhook deliveries kept, in all tenants together (finished ones make room for new ones;
    /// pending ones never do).
    pub const WEBHOOK_DELIVERIES_MAX: usize = 100_000;

    /// Events kept in each tenant's log (issue 15): past it the oldest go, as pruning would
    /// take them. An event with its alert or window snapshot takes well under 1 KB, so a tenant's
    /// log stays under about 10 MB.
    pub const EVENTS_PER_TENANT_MAX: usize = 10_000;

    /// Keeps at most `keys` live `Idempotency-Key`s: at the cap, expired ones are dropped, and
    /// without any a create with a new key fails with [`StoreError::Full`] (creates without a
    /// key are not affected).
    #[must_use]
    pub fn with_idempotency_keys(self, keys: usize) -> Self {
        Self {
            idempotency: idempotency::Keys::new(keys),
            ..self
        }
    }

    /// Every tenant's data, for work across tenants (the evaluator).
    fn all_tenants(&self) -> Vec<(TenantId, SharedTenant)> {
        self.tenants
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(id, data)| (id.clone(), Arc::clone(data)))
            .collect()
    }

    fn tenant(&self, id: &TenantId) -> Option<SharedTenant> {
        // The map is only ever changed by one insert, which cannot half-happen: a poisoned lock
        // is safe to keep using.
        self.tenants
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(id)
            .cloned()
    }

    fn tenant_or_insert(&self, id: &TenantId) -> SharedTenant {
        if let Some(found) = self.tenant(id) {
            return found;
        }
        self.tenants
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(id.clone())
            .or_default()
            .clone()
    }

    /// Runs `read` on the tenant's data under its read lock (shared with other readers), or
    /// answers `None` when the tenant has nothing stored.
    async fn read<T, F>(&self, tenant: &TenantId, read: F) -> Result<Option<T>, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&TenantData) -> T + Send + 'static,
    {
        let Some(data) = self.tenant(tenant) else {
            return Ok(None);
        };
        let guard = data.read_owned().await;
        off_the_request_threads(move || read(&guard))
            .await
            .map(Some)
    }

    /// Runs `write` on the tenant's data under its write lock, or answers `None` when the tenant
    /// has nothing stored.
    async fn write<T, F>(&self, tenant: &TenantId, write: F) -> Result<Option<T>, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut TenantData, &Usage) -> T + Send + 'static,
    {
        let Some(data) = self.tenant(tenant) else {
            return Ok(None);
        };
        self.write_on(tenant, data, write).await.map(Some)
    }

    /// Runs `write` on the tenant's data under its write lock, adding the tenant first if new.
    async fn write_adding<T, F>(&self, tenant: &TenantId, write: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut TenantData, &Usage) -> T + Send + 'static,
    {
        self.write_on(tenant, self.tenant_or_insert(tenant), write)
            .await
    }

    /// Every mutation checks first and changes after (reserving room last), so a panic cannot
    /// leave a half-applied change behind. The events it logged are queued to the webhook
    /// outbox before the tenant's lock is released (in seq order).
    async fn write_on<T, F>(
        &self,
        tenant: &TenantId,
        data: SharedTenant,
        write: F,
    ) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut TenantData, &Usage) -> T + Send + 'static,
    {
        let mut guard = data.write_owned().await;
        let usage = Arc::clone(&self.usage);
        let hooks = Arc::clone(&self.webhooks);
        let tenant = tenant.clone();
        off_the_request_threads(move || {
            let answer = write(&mut guard, &usage);
            for (seq, event_type, at) in std::mem::take(&mut guard.log.unsent) {
                // The outbox is capped; a full one (receivers failing for long) loses the
                // delivery, never the event or the write.
                if let Err(e) = hooks.enqueue(&tenant, seq, event_type.as_str(), at) {
                    tracing::warn!(tenant = %tenant, seq, error = %e, "webhook delivery not queued");
                }
            }
            answer
        })
        .await
    }
}

/// Runs store work on the blocking pool: a tenant's large operation then keeps no request
/// thread busy, so other tenants, and `/health/live`, are served meanwhile.
async fn off_the_request_threads<T, F>(work: F) -> Result<T, StoreError>
where
    T: Send + 'static,
    F: FnOnce() -> T + Send + 'static,
{
    tokio::task::spawn_blocking(work).await.map_err(|e| {
        StoreError::Unknown(anyhow::Error::new(e).context("embedded store work failed"))
    })
}

/// The last instant a `Timestamp` can hold, as an inclusive upper bound of reading ranges.
const END_OF_TIME: Timestamp = Timestamp::MAX;

/// A clock that never goes backwards for one row, so `updated_at` only grows.
fn now_after(previous: Timestamp) -> Timestamp {
    Timestamp::now().max(previous)
}

fn by_name(groups: &mut [DeviceGroup]) {
    // Byte order, as PostgreSQL's "C" collation sorts.
    groups.sort_by(|a, b| a.name.as_str().cmp(b.name.as_str()));
}

/// Which devices of a group its readings show: its own members, or its whole tree's.
type Reach = fn(&TenantData, Uuid) -> Vec<readings::Shown>;

impl MemoryStore {
    /// A page of the readings of the devices `reach` shows of `group`.
    async fn readings_of(
        &self,
        tenant: &TenantId,
        group: &GroupKey,
        query: ReadingQuery,
        reach: Reach,
    ) -> Result<Vec<GroupReading>, LookupError> {
        let group = group.clone();
        self.read(tenant, move |data| {
            let index = data.group_index(&group)?;
            let members = reach(data, data.groups[index].id);
            Some(readings::group_page(data, &members, &query))
        })
        .await?
        .flatten()
        .ok_or(LookupError::NotFound)
    }

    /// The export of the readings of the devices `reach` shows of `group`.
    async fn export_of(
        &self,
        tenant: &TenantId,
        group: &GroupKey,
        query: ReadingQuery,
        reach: Reach,
    ) -> Result<ReadingStream<GroupReading>, LookupError> {
        let data = self.tenant(tenant).ok_or(LookupError::NotFound)?;
        let group = group.clone();
        let members = self
            .read(tenant, move |data| {
                let index = data.group_index(&group)?;
                Some(reach(data, data.groups[index].id))
            })
            .await?
            .flatten()
            .ok_or(LookupError::NotFound)?;
        Ok(readings::export_group(data, members, query))
    }
}

#[async_trait]
impl DeviceGroupRepository for MemoryStore {
    async fn list_groups(
        &self,
        tenant: &TenantId,
        query: &ListQuery,
    ) -> Result<Page<DeviceGroup>, StoreError> {
        let query = query.clone();
        let page = self
            .read(tenant, move |data| {
                let mut groups: Vec<DeviceGroup> =
                    data.groups.iter().map(|g| data.counted(g)).collect();
                by_name(&mut groups);
                query.page(groups, |g| g.name.as_str())
            })
            .await?;
        Ok(page.unwrap_or(Page {
            items: Vec::new(),
            total: 0,
        }))
    }

    async fn create_group(
        &self,
        tenant: &TenantId,
        actor: &Actor,
        group: NewDeviceGroup,
    ) -> Result<GroupDetail, CreateGroupError> {
        let actor = actor.clone();
        self.write_adding(tenant, move |data, usage| {
            if data.groups.iter().any(|g| g.group_id == group.group_id) {
                return Err(CreateGroupError::GroupIdTaken(group.group_id));
            }
            if data.groups.iter().any(|g| g.name == group.name) {
                return Err(CreateGroupError::NameTaken(group.name));
            }
            if let Some(missing) = data.first_unknown_device(&group.members) {
                return Err(CreateGroupError::DeviceNotFound(missing));
            }
            if group.filter.is_some() && !data.room_for_dynamic(group.id) {
                return Err(CreateGroupError::TooManyDynamic);
            }
            if let Some(parent) = group.parent_id {
                data.placement(group.id, parent, false)
                    .ok_or(CreateGroupError::ParentNotFound(parent))?
                    .check()?;
            }
            let mut members: BTreeSet<(Uuid, Uuid)> =
                group.members.iter().map(|d| (group.id, *d)).collect();
            if let Some(filter) = &group.filter {
                members.extend(
                    data.devices
                        .values()
                        .filter(|d| filter.matches(&d.spec))
                        .map(|d| (group.id, d.id)),
                );
            }
            reserve_both(
                (&usage.groups, 1),
                (&usage.memberships, members.len() as u64),
            )?;
            let now = Timestamp::now();
            data.groups.push(DeviceGroup {
                filter: group.filter,
                id: group.id,
                group_id: group.group_id,
                name: group.name,
                description: group.description,
                member_count: 0,
                created_at: now,
                updated_at: now,
                created_by: actor.clone(),
                updated_by: actor,
                parent_id: group.parent_id,
            });
            data.members.extend(members);
            Ok(data.detail(data.groups.len() - 1))
        })
        .await?
    }

    async fn get_group(
        &self,
        tenant: &TenantId,
        group: &GroupKey,
    ) -> Result<GroupDetail, LookupError> {
        let group = group.clone();
        self.read(tenant, move |data| {
            data.group_index(&group).map(|index| data.detail(index))
        })
        .await?
        .flatten()
        .ok_or(LookupError::NotFound)
    }

    async fn get_group_row(
        &self,
        tenant: &TenantId,
        group: &GroupKey,
    ) -> Result<DeviceGroup, LookupError> {
        let group = group.clone();
        self.read(tenant, move |data| {
            data.group_index(&group)
                .map(|index| data.counted(&data.groups[index]))
        })
        .await?
        .flatten()
        .ok_or(LookupError::NotFound)
    }

    async fn list_members(
        &self,
        tenant: &TenantId,
        group: &GroupKey,
        query: &ListQuery,
    ) -> Result<Page<Device>, LookupError> {
        let (group, query) = (group.clone(), query.clone());
        self.read(tenant, move |data| {
            data.group_index(&group).map(|index| {
                let mut members: Vec<Device> = data
                    .member_ids(data.groups[index].id)
                    .filter_map(|id| data.device(id).cloned())
                    .collect();
                // Byte order of the names, then id, as PostgreSQL's "C" collation sorts.
                members.sort_by(|a, b| {
                    (a.spec.name.as_str(), a.id).cmp(&(b.spec.name.as_str(), b.id))
                });
                query.page(members, |d| d.spec.name.as_str())
            })
        })
        .await?
        .flatten()
        .ok_or(LookupError::NotFound)
    }

    async fn update_group(
        &self,
        tenant: &TenantId,
        actor: &Actor,
        group: &GroupKey,
        changes: GroupChanges,
    ) -> Result<GroupDetail, UpdateGroupError> {
        let (actor, group) = (actor.clone(), group.clone());
        self.write(tenant, move |data, usage| {
            let index = data.group_index(&group).ok_or(UpdateGroupError::NotFound)?;
            let id = data.groups[index].id;
            let dynamic_after = match &changes.filter {
                Some(filter) => filter.is_some(),
                None => data.groups[index].filter.is_some(),
            };
            if dynamic_after && changes.members.is_some() {
                return Err(UpdateGroupError::DefinedByFilter);
            }
            if matches!(changes.filter, Some(Some(_)))
                && data.groups[index].filter.is_none()
                && !data.room_for_dynamic(id)
            {
                return Err(UpdateGroupError::TooManyDynamic);
            }
            if let Some(name) = &changes.name {
                if data.groups.iter().any(|g| &g.name == name && g.id != id) {
                    return Err(UpdateGroupError::NameTaken(name.clone()));
                }
            }
            if let Some(missing) = changes
                .members
                .as_deref()
                .and_then(|m| data.first_unknown_device(m))
            {
                return Err(UpdateGroupError::DeviceNotFound(missing));
            }
            if let Some(Some(parent)) = changes.parent_id {
                data.placement(id, parent, true)
                    .ok_or(UpdateGroupError::ParentNotFound(parent))?
                    .check()?;
            }
            if changes.is_empty() {
                return Ok(data.detail(index));
            }
            if let Some(members) = changes.members {
                let members: BTreeSet<(Uuid, Uuid)> =
                    members.into_iter().map(|d| (id, d)).collect();
                let before = data.member_count(id);
                let after = members.len() as u64;
                usage.memberships.reserve(after.saturating_sub(before))?;
                usage.memberships.release(before.saturating_sub(after));
                data.members.retain(|(g, _)| *g != id);
                data.members.extend(members);
            }
            if let Some(filter) = changes.filter {
                if let Some(filter) = &filter {
                    data.refresh_group_members(id, filter, usage)?;
                }
                data.groups[index].filter = filter;
            }
            let stored = &mut data.groups[index];
            if let Some(name) = changes.name {
                stored.name = name;
            }
            if let Some(description) = changes.description {
                stored.description = description;
            }
            if let Some(parent) = changes.parent_id {
                stored.parent_id = parent;
            }
            stored.updated_at = now_after(stored.updated_at);
            stored.updated_by = actor;
            Ok(data.detail(index))
        })
        .await?
        .unwrap_or(Err(UpdateGroupError::NotFound))
    }

    async fn delete_group(&self, tenant: &TenantId, group: &GroupKey) -> Result<(), LookupError> {
        let group = group.clone();
        self.write(tenant, move |data, usage| {
            let index = data.group_index(&group).ok_or(LookupError::NotFound)?;
            let removed = data.groups.remove(index);
            // Its children move to the top.
            for group in &mut data.groups {
                if group.parent_id == Some(removed.id) {
                    group.parent_id = None;
                }
            }
            let before = data.members.len();
            data.members.retain(|(g, _)| *g != removed.id);
            usage.groups.release(1);
            usage
                .memberships
                .release((before - data.members.len()) as u64);
            Ok(())
        })
        .await?
        .unwrap_or(Err(LookupError::NotFound))
    }

    async fn add_member(
        &self,
        tenant: &TenantId,
        actor: &Actor,
        group: &GroupKey,
        device: Uuid,
    ) -> Result<(), MembershipError> {
        let (actor, group) = (actor.clone(), group.clone());
        self.write(tenant, move |data, usage| {
            let index = data
                .group_index(&group)
                .ok_or(MembershipError::GroupNotFound)?;
            if data.groups[index].filter.is_some() {
                return Err(MembershipError::DefinedByFilter);
            }
            if data.device(device).is_none() {
                return Err(MembershipError::DeviceNotFound);
            }
            let id = data.groups[index].id;
            if data.members.contains(&(id, device)) {
                return Ok(());
            }
            usage.memberships.reserve(1)?;
            data.members.insert((id, device));
            let stored = &mut data.groups[index];
            stored.updated_at = now_after(stored.updated_at);
            stored.updated_by = actor;
            Ok(())
        })
        .await?
        .unwrap_or(Err(MembershipError::GroupNotFound))
    }

    async fn remove_member(
        &self,
        tenant: &TenantId,
        actor: &Actor,
        group: &GroupKey,
        device: Uuid,
    ) -> Result<(), MembershipError> {
        let (actor, group) = (actor.clone(), group.clone());
        self.write(tenant, move |data, usage| {
            let index = data
                .group_index(&group)
                .ok_or(MembershipError::GroupNotFound)?;
            if data.groups[index].filter.is_some() {
                return Err(MembershipError::DefinedByFilter);
            }
            let id = data.groups[index].id;
            if !data.members.remove(&(id, device)) {
                return Err(MembershipError::NotMember);
            }
            usage.memberships.release(1);
            let stored = &mut data.groups[index];
            stored.updated_at = now_after(stored.updated_at);
            stored.updated_by = actor;
            Ok(())
        })
        .await?
        .unwrap_or(Err(MembershipError::GroupNotFound))
    }

    async fn group_readings(
        &self,
        tenant: &TenantId,
        group: &GroupKey,
        query: ReadingQuery,
    ) -> Result<Vec<GroupReading>, LookupError> {
        self.readings_of(tenant, group, query, TenantData::shown_members)
            .await
    }

    async fn export_group_readings(
        &self,
        tenant: &TenantId,
        group: &GroupKey,
        query: ReadingQuery,
    ) -> Result<ReadingStream<GroupReading>, LookupError> {
        self.export_of(tenant, group, query, TenantData::shown_members)
            .await
    }

    async fn preview_filter(
        &self,
        tenant: &TenantId,
        filter: &GroupFilter,
        limit: usize,
    ) -> Result<FilterPreview, StoreError> {
        let filter = filter.clone();
        Ok(self
            .read(tenant, move |data| {
                let mut selected: Vec<Device> = data
                    .devices
                    .values()
                    .filter(|d| filter.matches(&d.spec))
                    .cloned()
                    .collect();
                // Byte order of the names, then id, as PostgreSQL's "C" collation sorts.
                selected.sort_by(|a, b| {
                    (a.spec.name.as_str(), a.id).cmp(&(b.spec.name.as_str(), b.id))
                });
                let count = selected.len() as u64;
                selected.truncate(limit);
                FilterPreview {
                    count,
                    devices: selected,
                }
            })
            .await?
            .unwrap_or(FilterPreview {
                count: 0,
                devices: Vec::new(),
            }))
    }

    async fn group_slugs(
        &self,
        tenant: &TenantId,
        ids: &[Uuid],
    ) -> Result<HashMap<Uuid, GroupSlug>, StoreError> {
        let ids: HashSet<Uuid> = ids.iter().copied().collect();
        let slugs = self
            .read(tenant, move |data| {
                data.groups
                    .iter()
                    .filter(|g| ids.contains(&g.id))
                    .map(|g| (g.id, g.group_id.clone()))
                    .collect()
            })
            .await?;
        Ok(slugs.unwrap_or_default())
    }

    async fn get_group_tree(
        &self,
        tenant: &TenantId,
        group: &GroupKey,
    ) -> Result<GroupDetail, LookupError> {
        let group = group.clone();
        self.read(tenant, move |data| {
            data.group_index(&group)
                .map(|index| data.detail_over(index, true))
        })
        .await?
        .flatten()
        .ok_or(LookupError::NotFound)
    }

    async fn tree_readings(
        &self,
        tenant: &TenantId,
        group: &GroupKey,
        query: ReadingQuery,
    ) -> Result<Vec<GroupReading>, LookupError> {
        self.readings_of(tenant, group, query, TenantData::shown_tree)
            .await
    }

    async fn export_tree_readings(
        &self,
        tenant: &TenantId,
        group: &GroupKey,
        query: ReadingQuery,
    ) -> Result<ReadingStream<GroupReading>, LookupError> {
        self.export_of(tenant, group, query, TenantData::shown_tree)
            .await
    }
}

#[async_trait]
impl DeviceRepository for MemoryStore {
    async fn list_devices(
        &self,
        tenant: &TenantId,
        filter: &DeviceFilter,
        query: &ListQuery,
    ) -> Result<Page<Device>, StoreError> {
        let query = query.clone();
        let filter = filter.clone();
        let page = self
            .read(tenant, move |data| {
                let mut devices: Vec<Device> = data
                    .devices
                    .values()
                    .filter(|d| filter.matches(d))
                    .cloned()
                    .collect();
                devices.sort_by(|a, b| a.spec.name.as_str().cmp(b.spec.name.as_str()));
                query.page(devices, |d| d.spec.name.as_str())
            })
            .await?;
        Ok(page.unwrap_or(Page {
            items: Vec::new(),
            total: 0,
        }))
    }

    async fn create_device(
        &self,
        tenant: &TenantId,
        actor: &Actor,
        device: NewDevice,
    ) -> Result<Device, CreateDeviceError> {
        let actor = actor.clone();
        self.write_adding(tenant, move |data, usage| {
            if data
                .devices
                .values()
                .any(|d| d.spec.name == device.spec.name)
            {
                return Err(CreateDeviceError::NameTaken(device.spec.name));
            }
            usage.devices.reserve(1)?;
            let now = Timestamp::now();
            let stored = Device {
                id: device.id,
                spec: device.spec,
                state: domain::DeviceState::default(),
                created_at: now,
                updated_at: now,
                created_by: actor.clone(),
                updated_by: actor,
            };
            data.refresh_device_memberships(stored.id, &stored.spec, usage)
                .inspect_err(|_| usage.devices.release(1))?;
            data.devices.insert(stored.id, stored.clone());
            Ok(stored)
        })
        .await?
    }

    async fn get_device(&self, tenant: &TenantId, id: Uuid) -> Result<Device, LookupError> {
        self.read(tenant, move |data| data.device(id).cloned())
            .await?
            .flatten()
            .ok_or(LookupError::NotFound)
    }

    async fn update_device(
        &self,
        tenant: &TenantId,
        actor: &Actor,
        id: Uuid,
        changes: DeviceChanges,
    ) -> Result<Device, UpdateDeviceError> {
        let actor = actor.clone();
        self.write(tenant, move |data, usage| {
            let Some(stored) = data.devices.get(&id) else {
                return Err(UpdateDeviceError::NotFound);
            };
            if let Some(name) = &changes.name {
                if data
                    .devices
                    .values()
                    .any(|d| &d.spec.name == name && d.id != id)
                {
                    return Err(UpdateDeviceError::NameTaken(name.clone()));
                }
            }
            let before = stored.spec.clone();
            let spec = before.apply(changes)?;
            let now = Timestamp::now();
            // Its dynamic groups follow the new values before the windows are judged by them.
            data.refresh_device_memberships(id, &spec, usage)?;
            let stored = data.devices.get(&id).ok_or(UpdateDeviceError::NotFound)?;
            let (state, transition) = data.judge_thresholds(stored, &spec, now);
            let transitions: Vec<_> = transition.into_iter().collect();
            if let Err(full) = usage
                .alert_events
                .reserve(alerts::event_count(&transitions))
            {
                data.refresh_device_memberships(id, &before, usage)?;
                return Err(full.into());
            }
            data.logging_device_states(&[id], now, |data| {
                let device = data
                    .devices
                    .get_mut(&id)
                    .ok_or(UpdateDeviceError::NotFound)?;
                device.spec = spec;
                device.state = state;
                device.updated_at = now_after(device.updated_at);
                device.updated_by = actor;
                let updated = device.clone();
                for transition in transitions {
                    data.record_alert(transition);
                }
                Ok(updated)
            })
        })
        .await?
        .unwrap_or(Err(UpdateDeviceError::NotFound))
    }

    async fn delete_device(&self, tenant: &TenantId, id: Uuid) -> Result<(), LookupError> {
        self.write(tenant, move |data, usage| {
            data.devices.remove(&id).ok_or(LookupError::NotFound)?;
            let members = data.members.len();
            data.members.retain(|(_, d)| *d != id);
            let readings = data.readings.len();
            data.readings.retain(|(d, _), _| *d != id);
            let events = data.alerts.remove_device(id);
            usage.devices.release(1);
            usage.alert_events.release(events);
            usage
                .memberships
                .release((members - data.members.len()) as u64);
            usage
                .readings
                .release((readings - data.readings.len()) as u64);
            Ok(())
        })
        .await?
        .unwrap_or(Err(LookupError::NotFound))
    }

    async fn groups_of_device(
        &self,
        tenant: &TenantId,
        id: Uuid,
    ) -> Result<Vec<DeviceGroup>, LookupError> {
        self.read(tenant, move |data| {
            data.device(id)?;
            let mut groups: Vec<DeviceGroup> = data
                .groups
                .iter()
                .filter(|g| data.members.contains(&(g.id, id)))
                .map(|g| data.counted(g))
                .collect();
            by_name(&mut groups);
            Some(groups)
        })
        .await?
        .flatten()
        .ok_or(LookupError::NotFound)
    }

    async fn groups_reaching_device(
        &self,
        tenant: &TenantId,
        id: Uuid,
    ) -> Result<Vec<GroupSlug>, LookupError> {
        self.read(tenant, move |data| {
            data.device(id)?;
            let reached: HashSet<Uuid> = data
                .groups
                .iter()
                .filter(|g| data.members.contains(&(g.id, id)))
                .flat_map(|g| data.ancestry(g.id))
                .collect();
            Some(
                data.groups
                    .iter()
                    .filter(|g| reached.contains(&g.id))
                    .map(|g| g.group_id.clone())
                    .collect(),
            )
        })
        .await?
        .flatten()
        .ok_or(LookupError::NotFound)
    }
}

#[async_trait]
impl ReadingRepository for MemoryStore {
    async fn device_buckets(
        &self,
        tenant: &TenantId,
        device: Uuid,
        query: &BucketQuery,
    ) -> Result<SeriesStats, LookupError> {
        let query = query.clone();
        self.read(tenant, move |data| {
            data.device(device)
                .map(|device| data.series_stats(device, &query))
        })
        .await?
        .flatten()
        .ok_or(LookupError::NotFound)
    }

    async fn group_buckets(
        &self,
        tenant: &TenantId,
        group: &GroupKey,
        choice: &SeriesChoice,
        query: &BucketQuery,
    ) -> Result<Vec<SeriesStats>, GroupBucketsError> {
        let (group, choice, query) = (group.clone(), choice.clone(), query.clone());
        self.read(tenant, move |data| {
            let index = data
                .group_index(&group)
                .ok_or(GroupBucketsError::NotFound)?;
            data.group_series(data.groups[index].id, &choice, &query, false)
        })
        .await?
        .unwrap_or(Err(GroupBucketsError::NotFound))
    }

    async fn tree_buckets(
        &self,
        tenant: &TenantId,
        group: &GroupKey,
        choice: &SeriesChoice,
        query: &BucketQuery,
    ) -> Result<Vec<SeriesStats>, GroupBucketsError> {
        let (group, choice, query) = (group.clone(), choice.clone(), query.clone());
        self.read(tenant, move |data| {
            let index = data
                .group_index(&group)
                .ok_or(GroupBucketsError::NotFound)?;
            data.group_series(data.groups[index].id, &choice, &query, true)
        })
        .await?
        .unwrap_or(Err(GroupBucketsError::NotFound))
    }

    async fn ingest(&self, tenant: &TenantId, batch: ReadingBatch) -> Result<u64, IngestError> {
        self.write_adding(tenant, move |data, usage| {
            let ids: Vec<Uuid> = batch.readings().iter().map(|r| r.device_id).collect();
            if let Some(missing) = data.first_unknown_device(&ids) {
                return Err(IngestError::UnknownDevice(missing));
            }
            // A reading that replaces a stored one (or an earlier one of the batch) takes no
            // more room.
            let added: HashSet<(Uuid, Timestamp)> = batch
                .readings()
                .iter()
                .map(|r| (r.device_id, r.timestamp))
                .filter(|key| !data.readings.contains_key(key))
                .collect();
            let now = Timestamp::now();
            let (states, transitions) = data.judge_readings(batch.readings(), now);
            reserve_both(
                (&usage.readings, added.len() as u64),
                (&usage.alert_events, alerts::event_count(&transitions)),
            )?;
            let count = batch.readings().len() as u64;
            for reading in batch.into_readings() {
                data.readings
                    .insert((reading.device_id, reading.timestamp), reading.value.get());
            }
            let changed: Vec<Uuid> = states.iter().map(|(id, _)| *id).collect();
            data.logging_device_states(&changed, now, |data| {
                for (id, state) in states {
                    if let Some(device) = data.devices.get_mut(&id) {
                        device.state = state;
                    }
                }
                for transition in transitions {
                    data.record_alert(transition);
                }
            });
            Ok(count)
        })
        .await?
    }

    async fn device_readings(
        &self,
        tenant: &TenantId,
        device: Uuid,
        query: ReadingQuery,
    ) -> Result<Vec<ReadingPoint>, LookupError> {
        self.read(tenant, move |data| {
            data.device(device)?;
            Some(readings::device_page(data, device, &query))
        })
        .await?
        .flatten()
        .ok_or(LookupError::NotFound)
    }

    async fn export_device_readings(
        &self,
        tenant: &TenantId,
        device: Uuid,
        query: ReadingQuery,
    ) -> Result<ReadingStream<ReadingPoint>, LookupError> {
        let data = self.tenant(tenant).ok_or(LookupError::NotFound)?;
        if !data.read().await.devices.contains_key(&device) {
            return Err(LookupError::NotFound);
        }
        Ok(readings::export_device(data, device, query))
    }

    async fn delete_device_readings(
        &self,
        tenant: &TenantId,
        device: Uuid,
        start: Timestamp,
        end: Timestamp,
    ) -> Result<u64, LookupError> {
        self.write(tenant, move |data, usage| {
            let stored = data.devices.get(&device).ok_or(LookupError::NotFound)?;
            if start >= end {
                return Ok(0);
            }
            let range = (device, start)..(device, end);
            let doomed: Vec<(Uuid, Timestamp)> =
                data.readings.range(range).map(|(key, _)| *key).collect();
            let latest_goes = stored
                .state
                .last_reading
                .is_some_and(|last| start <= last.timestamp && last.timestamp < end);
            // Judged before anything changes: the newest reading left is the newest before
            // the range (none after it, as the latest was in it).
            let now = Timestamp::now();
            let judged = latest_goes.then(|| {
                let remaining = readings::newest_before(data, device, start);
                data.judge_removal(stored, remaining, now)
            });
            if let Some((_, transitions)) = &judged {
                usage
                    .alert_events
                    .reserve(alerts::event_count(transitions))?;
            }
            for key in &doomed {
                data.readings.remove(key);
            }
            usage.readings.release(doomed.len() as u64);
            if let Some((state, transitions)) = judged {
                data.logging_device_states(&[device], now, |data| {
                    if let Some(d) = data.devices.get_mut(&device) {
                        d.state = state;
                    }
                    for transition in transitions {
                        data.record_alert(transition);
                    }
                });
            }
            Ok(doomed.len() as u64)
        })
        .await?
        .unwrap_or(Err(LookupError::NotFound))
    }
}

#[async_trait]
impl MaintenanceWindowRepository for MemoryStore {
    async fn covering_windows(
        &self,
        tenant: &TenantId,
        devices: &[Uuid],
        now: Timestamp,
    ) -> Result<std::collections::HashMap<Uuid, Vec<WindowSlug>>, StoreError> {
        let devices = devices.to_vec();
        let found = self
            .read(tenant, move |data| data.covering_windows(&devices, now))
            .await?;
        Ok(found.unwrap_or_default())
    }

    async fn list_windows(
        &self,
        tenant: &TenantId,
        query: &ListQuery,
    ) -> Result<Page<MaintenanceWindow>, StoreError> {
        let query = query.clone();
        let page = self
            .read(tenant, move |data| {
                let mut windows = data.windows.clone();
                windows.sort_by(|a, b| {
                    b.definition
                        .schedule
                        .starts_at()
                        .cmp(&a.definition.schedule.starts_at())
                        .then_with(|| a.window_id.as_str().cmp(b.window_id.as_str()))
                });
                query.page(windows, |w| w.definition.name.as_str())
            })
            .await?;
        Ok(page.unwrap_or(Page {
            items: Vec::new(),
            total: 0,
        }))
    }

    async fn create_window(
        &self,
        tenant: &TenantId,
        actor: &Actor,
        window: NewMaintenanceWindow,
    ) -> Result<MaintenanceWindow, CreateWindowError> {
        let actor = actor.clone();
        self.write_adding(tenant, move |data, usage| {
            if data.windows.iter().any(|w| w.window_id == window.window_id) {
                return Err(CreateWindowError::WindowIdTaken(window.window_id));
            }
            let limit = domain::window::WINDOWS_PER_TENANT_MAX;
            if data.windows.len() >= limit {
                return Err(CreateWindowError::TooMany(limit));
            }
            usage.windows.reserve(1)?;
            let now = Timestamp::now();
            let stored = MaintenanceWindow {
                window_id: window.window_id,
                definition: window.definition,
                created_at: now,
                updated_at: now,
                created_by: actor.clone(),
                updated_by: actor,
            };
            data.windows.push(stored.clone());
            Ok(stored)
        })
        .await?
    }

    async fn get_window(
        &self,
        tenant: &TenantId,
        window_id: &WindowSlug,
    ) -> Result<MaintenanceWindow, LookupError> {
        let window_id = window_id.clone();
        self.read(tenant, move |data| {
            data.windows
                .iter()
                .find(|w| w.window_id == window_id)
                .cloned()
        })
        .await?
        .flatten()
        .ok_or(LookupError::NotFound)
    }

    async fn update_window(
        &self,
        tenant: &TenantId,
        actor: &Actor,
        window_id: &WindowSlug,
        changes: WindowChanges,
    ) -> Result<MaintenanceWindow, UpdateWindowError> {
        let (actor, window_id) = (actor.clone(), window_id.clone());
        self.write(tenant, move |data, _| {
            let window = data
                .windows
                .iter_mut()
                .find(|w| w.window_id == window_id)
                .ok_or(UpdateWindowError::NotFound)?;
            window.definition = window.definition.apply(changes)?;
            window.updated_at = now_after(window.updated_at);
            window.updated_by = actor;
            let updated = window.clone();
            // Disabled, enabled or rescheduled: its start or end is logged now.
            data.announce_windows(Some(&window_id), updated.updated_at.max(Timestamp::now()));
            Ok(updated)
        })
        .await?
        .unwrap_or(Err(UpdateWindowError::NotFound))
    }

    async fn delete_window(
        &self,
        tenant: &TenantId,
        window_id: &WindowSlug,
    ) -> Result<(), LookupError> {
        let window_id = window_id.clone();
        self.write(tenant, move |data, usage| {
            let index = data
                .windows
                .iter()
                .position(|w| w.window_id == window_id)
                .ok_or(LookupError::NotFound)?;
            let window = data.windows.remove(index);
            data.window_deleted(&window, Timestamp::now());
            usage.windows.release(1);
            Ok(())
        })
        .await?
        .unwrap_or(Err(LookupError::NotFound))
    }

    async fn window_devices(
        &self,
        tenant: &TenantId,
        window_id: &WindowSlug,
    ) -> Result<(MaintenanceWindow, Vec<Device>), LookupError> {
        let window_id = window_id.clone();
        self.read(tenant, move |data| {
            let window = data.windows.iter().find(|w| w.window_id == window_id)?;
            Some((window.clone(), scope_of(data, &window.definition)))
        })
        .await?
        .flatten()
        .ok_or(LookupError::NotFound)
    }

    async fn unknown_groups(
        &self,
        tenant: &TenantId,
        slugs: &[GroupSlug],
    ) -> Result<Vec<GroupSlug>, StoreError> {
        let asked = slugs.to_vec();
        let known = self
            .read(tenant, move |data| unknown_of(data, &asked))
            .await?;
        Ok(known.unwrap_or_else(|| distinct(slugs)))
    }

    async fn preview_scope(
        &self,
        tenant: &TenantId,
        definition: &WindowDefinition,
        limit: usize,
    ) -> Result<ScopePreview, StoreError> {
        let asked = definition.clone();
        let preview = self
            .read(tenant, move |data| {
                let devices = scope_of(data, &asked);
                ScopePreview {
                    in_scope: devices.len() as u64,
                    devices: devices.into_iter().take(limit).collect(),
                    tenant_devices: data.devices.len() as u64,
                    unknown_groups: unknown_of(
                        data,
                        asked.group_ids.as_deref().unwrap_or_default(),
                    ),
                }
            })
            .await?;
        Ok(preview.unwrap_or_else(|| ScopePreview {
            devices: Vec::new(),
            in_scope: 0,
            tenant_devices: 0,
            unknown_groups: distinct(definition.group_ids.as_deref().unwrap_or_default()),
        }))
    }
}

/// `slugs` without repeats, in the order given.
fn distinct(slugs: &[GroupSlug]) -> Vec<GroupSlug> {
    let mut seen = HashSet::new();
    slugs.iter().filter(|s| seen.insert(*s)).cloned().collect()
}

/// Those of `slugs` that name no group of the tenant, each once.
fn unknown_of(data: &TenantData, slugs: &[GroupSlug]) -> Vec<GroupSlug> {
    distinct(slugs)
        .into_iter()
        .filter(|s| !data.groups.iter().any(|g| &g.group_id == s))
        .collect()
}

fn scope_of(data: &TenantData, d: &WindowDefinition) -> Vec<Device> {
    let groups = data.groups_by_device();
    let mut devices: Vec<Device> = data
        .devices
        .values()
        .filter(|device| {
            d.in_scope(
                device.spec.site_id.as_ref(),
                device.spec.device_type.as_ref(),
                &device.spec.labels,
                groups.get(&device.id).map_or(&[], Vec::as_slice),
            )
        })
        .cloned()
        .collect();
    devices.sort_by(|a, b| a.spec.name.as_str().cmp(b.spec.name.as_str()));
    devices
}

#[async_trait]
impl HealthProbe for MemoryStore {
    /// Nothing to reach, and no lock taken: a tenant's long operation never makes the store
    /// look unready.
    async fn check(&self) -> Result<(), StoreError> {
        Ok(())
    }
}

#[cfg(test)]
mod tests;
