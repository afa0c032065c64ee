//! Rendered views of large groups, kept between requests while they still hold.
//!
//! A large group's detail is thousands of rows for the database and megabytes of JSON for the
//! service, and it changes only when the tenant's data does or when a maintenance window starts
//! or ends. So the rendered body is kept with the tenant's revision it was read at (see
//! [`ports::Revision`]) and the instant its windows next change; a request then costs one small
//! revision query instead of the whole read. The revision lives in the store, so a write through
//! any instance of the service makes every instance's copy stale at once.

use actix_web::web::Bytes;
use domain::{TenantId, Timestamp};
use ports::{DeviceGroupRepository, GroupDetail, GroupKey, LookupError, Revision, StoreError};

/// Below this many members, reading the group afresh costs about what the revision check does,
/// and keeping it would only take memory.
pub const MIN_MEMBERS: usize = 100;

/// Memory the kept bodies may take, in bytes.
pub const DEFAULT_CAPACITY: u64 = 32 * 1024 * 1024;

/// Which rendering of a group a body is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum View {
    /// `GET /api/groups/{id}`.
    Detail,
    /// `GET /api/groups/{id}/alerts`.
    Alerts,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    tenant: TenantId,
    group: GroupKey,
    view: View,
}

#[derive(Clone)]
struct Kept {
    revision: Revision,
    /// When a window of the group's tenant starts or ends, changing who is in maintenance.
    valid_until: Option<Timestamp>,
    body: Bytes,
}

#[derive(Clone)]
struct BodySize;

impl quick_cache::Weighter<Key, Kept> for BodySize {
    fn weight(&self, _key: &Key, kept: &Kept) -> u64 {
        // Never 0: quick_cache would then never evict the entry.
        kept.body.len().max(1) as u64
    }
}

/// The kept bodies, shared by all HTTP workers.
pub struct GroupViews {
    kept: quick_cache::sync::Cache<Key, Kept, BodySize>,
}

impl Default for GroupViews {
    fn default() -> Self {
        Self::with_capacity(DEFAULT_CAPACITY)
    }
}

impl GroupViews {
    /// Keeps at most `bytes` of bodies, the least used going first.
    #[must_use]
    pub fn with_capacity(bytes: u64) -> Self {
        // The estimate of entries only sizes the index: large groups are few.
        Self {
            kept: quick_cache::sync::Cache::with_weighter(64, bytes, BodySize),
        }
    }

    /// The body of `view` of the group: the kept one while the tenant's revision is the one it
    /// was rendered at and no window has started or ended since, else rendered by `render` from
    /// a fresh read (and kept, for a large group of a store that keeps revisions).
    ///
    /// # Errors
    /// The store's, and a failure to render as [`StoreError::Unknown`].
    pub async fn body(
        &self,
        groups: &dyn DeviceGroupRepository,
        tenant: &TenantId,
        group: &GroupKey,
        view: View,
        render: impl FnOnce(&GroupDetail, Timestamp) -> serde_json::Result<Vec<u8>>,
    ) -> Result<Bytes, LookupError> {
        let key = Key {
            tenant: tenant.clone(),
            group: group.clone(),
            view,
        };
        if let Some(kept) = self.kept.get(&key) {
            let timely = kept.valid_until.is_none_or(|t| Timestamp::now() < t);
            if timely && groups.revision(tenant).await? == Some(kept.revision) {
                return Ok(kept.body);
            }
        }
        let detail = groups.get_group(tenant, group).await?;
        let now = Timestamp::now();
        let body = Bytes::from(
            render(&detail, now).map_err(|e| StoreError::Unknown(anyhow::Error::new(e)))?,
        );
        match detail.revision {
            Some(revision) if detail.members.len() >= MIN_MEMBERS => {
                let valid_until = detail
                    .windows
                    .iter()
                    .filter_map(|w| w.definition.next_change(now))
                    .min();
                self.kept.insert(
                    key,
                    Kept {
                        revision,
                        valid_until,
                        body: body.clone(),
                    },
                );
            }
            // A small group (perhaps large before), or a store without revisions: what was
            // kept is stale and only takes memory.
            _ => {
                self.kept.remove(&key);
            }
        }
        Ok(body)
    }
}
