//! Rendered views of groups, kept between requests while they still hold.
//!
//! A large group's detail is thousands of rows for the database and megabytes of JSON for the
//! service, and it changes only when the tenant's data does or when a maintenance window starts
//! or ends; a group's newest readings change only with the tenant's data or when the oldest of
//! them leaves the look-back. So a rendered body is kept with the tenant's revision it was read
//! at (see [`ports::Revision`]) and the instant time alone would change it; a request then costs
//! one small revision query instead of the whole read. The revision lives in the store, so a
//! write through any instance of the service makes every instance's copy stale at once.

use actix_web::web::Bytes;
use domain::{ReadingQuery, TenantId, Timestamp};
use ports::{DeviceGroupRepository, GroupDetail, GroupKey, LookupError, Revision, StoreError};
use time::Duration;

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

/// Which view of which group of which tenant a body is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Key {
    tenant: TenantId,
    group: GroupKey,
    view: ViewKind,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum ViewKind {
    Group(View),
    /// `GET /api/groups/{id}/readings` as JSON.
    Readings(ReadingsSelection),
}

/// What a readings query selects, parsed and normalised: how the client spelt it (parameter
/// order, padding, parameters it invented) makes no other key, and a key is a few bytes.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum ReadingsSelection {
    /// The last `look_back` before each request.
    LookBack { look_back: Duration, limit: u32 },
    /// Between instants the client named.
    Between {
        since: Timestamp,
        until: Option<Timestamp>,
        limit: u32,
    },
}

impl Key {
    /// The JSON readings of `group` that `query` selects.
    #[must_use]
    pub fn readings(tenant: &TenantId, group: &GroupKey, query: &ReadingQuery) -> Self {
        let limit = query.limit();
        let selection = match query.look_back() {
            Some(look_back) => ReadingsSelection::LookBack { look_back, limit },
            None => ReadingsSelection::Between {
                since: query.since(),
                until: query.until(),
                limit,
            },
        };
        Self {
            tenant: tenant.clone(),
            group: group.clone(),
            view: ViewKind::Readings(selection),
        }
    }

    /// Bytes the key takes in memory, its tenant's name included.
    fn size(&self) -> usize {
        std::mem::size_of::<Self>() + self.tenant.as_str().len()
    }
}

/// What [`GroupViews::lookup`] found.
pub enum Lookup {
    /// The kept body, still holding.
    Kept(Bytes),
    /// A body kept in time, but at another revision than the tenant's now, which was asked.
    Stale(Option<Revision>),
    /// Nothing kept, or kept past its time: the revision was not asked.
    Missing,
}

#[derive(Clone)]
struct Kept {
    revision: Revision,
    /// When time alone changes the body (a window starting or ending, a reading leaving the
    /// look-back).
    valid_until: Option<Timestamp>,
    body: Bytes,
}

#[derive(Clone)]
struct BodySize;

impl quick_cache::Weighter<Key, Kept> for BodySize {
    fn weight(&self, key: &Key, kept: &Kept) -> u64 {
        // Everything an entry holds counts against the capacity (never 0: quick_cache would
        // then never evict the entry).
        (key.size() + std::mem::size_of::<Kept>() + kept.body.len()) as u64
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
        render: impl FnOnce(&GroupDetail, Timestamp) -> serde_json::Result<Vec<u8>> + Send + 'static,
    ) -> Result<Bytes, LookupError> {
        let key = Key {
            tenant: tenant.clone(),
            group: group.clone(),
            view: ViewKind::Group(view),
        };
        if let Lookup::Kept(body) = self.lookup(groups, &key).await? {
            return Ok(body);
        }
        let detail = groups.get_group(tenant, group).await?;
        let now = Timestamp::now();
        let (detail, body) = off_io_thread(move || {
            let body = render(&detail, now);
            (detail, body)
        })
        .await?;
        let body = Bytes::from(body.map_err(|e| StoreError::Unknown(anyhow::Error::new(e)))?);
        let revision = detail
            .revision
            .filter(|_| detail.members.len() >= MIN_MEMBERS);
        let valid_until = detail
            .windows
            .iter()
            .filter_map(|w| w.definition.next_change(now))
            .min();
        self.keep(key, revision, valid_until, body.clone());
        Ok(body)
    }

    /// The body kept under `key`, if it still holds: its time has not run out and the tenant's
    /// revision is still the one it was read at.
    ///
    /// # Errors
    /// The store's, asked for the revision.
    pub async fn lookup(
        &self,
        groups: &dyn DeviceGroupRepository,
        key: &Key,
    ) -> Result<Lookup, StoreError> {
        let Some(kept) = self.kept.get(key) else {
            return Ok(Lookup::Missing);
        };
        if kept.valid_until.is_some_and(|t| Timestamp::now() >= t) {
            return Ok(Lookup::Missing);
        }
        let now = groups.revision(&key.tenant).await?;
        Ok(if now == Some(kept.revision) {
            Lookup::Kept(kept.body)
        } else {
            Lookup::Stale(now)
        })
    }

    /// Keeps `body`, read at `revision` (none: it is not to be kept) and holding until
    /// `valid_until` (none: until the revision moves).
    pub fn keep(
        &self,
        key: Key,
        revision: Option<Revision>,
        valid_until: Option<Timestamp>,
        body: Bytes,
    ) {
        match revision {
            Some(revision) => self.kept.insert(
                key,
                Kept {
                    revision,
                    valid_until,
                    body,
                },
            ),
            // What was kept (for a group large before, say) is stale and only takes memory.
            None => {
                self.kept.remove(&key);
            }
        }
    }
}

/// Runs CPU-heavy work (rendering a large group, judging its members) on the blocking pool, so
/// the I/O thread goes on serving other requests and the request's deadline can still fire.
///
/// # Errors
/// [`StoreError::Unknown`] when the work panicked.
pub async fn off_io_thread<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, StoreError> {
    actix_web::web::block(work)
        .await
        .map_err(|e| StoreError::Unknown(anyhow::anyhow!("rendering failed: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> Key {
        let query = ReadingQuery::last_hours(Timestamp::now(), 1, 1000).expect("valid");
        Key::readings(
            &TenantId::parse("t").expect("valid"),
            &GroupKey::Id(uuid::Uuid::nil()),
            &query,
        )
    }

    #[test]
    fn keys_are_the_selection_not_its_spelling_and_weigh_what_they_hold() {
        let tenant = TenantId::parse("t").expect("valid");
        let group = GroupKey::Id(uuid::Uuid::nil());
        let now = Timestamp::now();
        let later = now.checked_add(Duration::seconds(90)).expect("in range");
        let an_hour = |at| ReadingQuery::last_hours(at, 1, 1000).expect("valid");
        // The same look-back asked at two instants is one key.
        assert_eq!(
            Key::readings(&tenant, &group, &an_hour(now)),
            Key::readings(&tenant, &group, &an_hour(later))
        );
        let two_hours = ReadingQuery::last_hours(now, 2, 1000).expect("valid");
        assert_ne!(
            Key::readings(&tenant, &group, &an_hour(now)),
            Key::readings(&tenant, &group, &two_hours)
        );
        let kept = Kept {
            revision: Revision(1),
            valid_until: None,
            body: Bytes::from_static(b"{}"),
        };
        let weight = quick_cache::Weighter::weight(&BodySize, &key(), &kept);
        assert!(weight > 2 && weight < 512, "{weight}");
    }

    #[test]
    fn no_capacity_keeps_nothing_and_capacity_bounds_what_is_kept() {
        let none = GroupViews::with_capacity(0);
        none.keep(key(), Some(Revision(1)), None, Bytes::from_static(b"{}"));
        assert!(none.kept.get(&key()).is_none());

        let small = GroupViews::with_capacity(1024);
        small.keep(key(), Some(Revision(1)), None, Bytes::from_static(b"{}"));
        assert!(small.kept.get(&key()).is_some());
        small.keep(
            key(),
            Some(Revision(2)),
            None,
            Bytes::from(vec![b' '; 4096]),
        );
        assert!(small.kept.get(&key()).is_none(), "over capacity: not kept");
    }
}
