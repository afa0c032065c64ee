//! Rendered views of groups, kept between requests while they still hold.
//!
//! A large group's detail is thousands of rows for the database and megabytes of JSON for the
//! service, and it changes only when the tenant's data does or when a maintenance window starts
//! or ends; a group's newest readings change only with the tenant's data or when the oldest of
//! them leaves the look-back. So a rendered body is kept with the tenant's revision it was read
//! at (see [`ports::Revision`]) and the instant time alone would change it; a request then costs
//! one small revision query instead of the whole read. The revision lives in the store, so a
//! write through any instance of the service makes every instance's copy stale at once.
//!
//! A group's alert summary counts statuses, not readings. Its loaded structure is kept at the
//! tenant's [`StateMark`]: the *scope* revision, moved only by writes of devices, groups,
//! memberships and windows, and the last number of the tenant's event log. Under ingest the
//! statuses of a few devices change many times a second, and each such change is an event
//! naming the device; so a request reads the states of the devices named by the events since
//! the kept mark (one small statement) and counts the kept structure with them patched in,
//! instead of reading thousands of members again. Past [`MAX_PATCHES`] devices, or when the
//! scope moved, it reads the group afresh. The readings keep the full revision.
//!
//! The detail shows the latest readings, so under ingest its body is stale at every request. But
//! while the scope revision holds, the members' kept states (latest reading, status) and alerts
//! are all that changed: every device, window and membership is as it was. So the detail's
//! loaded structure is kept too (of any group, small ones included), and a request whose full
//! revision moved but whose scope revision did not reads only the members' states (one
//! statement, the same snapshot as both revisions), patches a copy of the structure and renders
//! it, instead of reading it all again.

use std::sync::Arc;

use actix_web::web::Bytes;
use domain::{AlertSummary, GroupDetail, MemberPatches, ReadingQuery, TenantId, Timestamp};
use ports::{GroupKey, Revision, Revisions, StateMark, StoreError, TenantRevisions};
use time::Duration;
use uuid::Uuid;

/// Below this many members, reading the group's alert summary afresh costs about what the
/// revision check does, and keeping it would only take memory. (Details are kept whatever their
/// size: a kept one is brought up to date by a small statement instead of six.)
pub const MIN_MEMBERS: usize = 100;

/// Members from which patching or rendering a detail is worth moving off the I/O thread; below,
/// the move costs more than the work.
pub const OFF_IO_MEMBERS: usize = 256;

/// Devices whose newer states a kept summary takes in before its group is read afresh. Under
/// ingest a tenant's changes name a few dozen devices a second, so a large group is read again
/// about once a minute; each patch costs a hash entry, and a request copies them all.
pub const MAX_PATCHES: usize = 1024;

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
    /// Whether the view covers the group's descendants too: a tree's answer is never served
    /// for the group's own, nor the other way round.
    descendants: bool,
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
    /// `view` of `group`.
    #[must_use]
    pub fn group(tenant: &TenantId, group: &GroupKey, view: View) -> Self {
        Self {
            tenant: tenant.clone(),
            group: group.clone(),
            descendants: false,
            view: ViewKind::Group(view),
        }
    }

    /// The key of the same view over the group's tree when `descendants`.
    #[must_use]
    pub fn descendants(self, descendants: bool) -> Self {
        Self {
            descendants,
            ..self
        }
    }

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
            descendants: false,
            view: ViewKind::Readings(selection),
        }
    }

    /// The revision a body is kept at by [`GroupViews::get_or_render`]: the full one (alert
    /// summaries are kept by [`GroupViews::summary`], at a [`StateMark`]).
    async fn revision(&self, revisions: &dyn TenantRevisions) -> Result<Revision, StoreError> {
        revisions.revision(&self.tenant).await
    }

    /// Bytes the key takes in memory, its tenant's name included.
    fn size(&self) -> usize {
        std::mem::size_of::<Self>() + self.tenant.as_str().len()
    }
}

/// A body rendered afresh, and how long it may be kept.
pub struct Rendered {
    pub body: Bytes,
    /// When time alone changes the body (a window starting or ending, a reading leaving the
    /// look-back); none: only a write of the tenant does.
    pub valid_until: Option<Timestamp>,
    /// Whether keeping it pays (a large group); a small one is as cheap to read again.
    pub worth_keeping: bool,
}

#[derive(Clone)]
enum Entry {
    /// A body read at `revision`, holding until `valid_until`.
    Kept {
        revision: Revision,
        valid_until: Option<Timestamp>,
        body: Bytes,
    },
    /// A group's detail: its structure, read at (or after) `revisions`, and its body rendered at
    /// `revisions.full`; both hold until `valid_until`.
    Detail {
        revisions: Revisions,
        valid_until: Option<Timestamp>,
        detail: Arc<GroupDetail>,
        /// Bytes `detail` takes, counted once.
        detail_size: usize,
        body: Bytes,
    },
    /// A group's alert summary: its structure as read at (or after) `mark`, the states of the
    /// devices changed since (up to the mark the body is of), and the body; holding until
    /// `valid_until`.
    Summary {
        mark: StateMark,
        valid_until: Option<Timestamp>,
        detail: Arc<GroupDetail>,
        detail_size: usize,
        patches: Arc<MemberPatches>,
        body: Bytes,
    },
    /// The view was worth keeping when last rendered, but without a revision to keep it at: the
    /// next request asks the revision before it renders.
    WorthKeeping,
}

#[derive(Clone)]
struct EntrySize;

impl quick_cache::Weighter<Key, Entry> for EntrySize {
    fn weight(&self, key: &Key, entry: &Entry) -> u64 {
        let body = match entry {
            Entry::Kept { body, .. } => body.len(),
            Entry::Detail {
                body, detail_size, ..
            } => body.len() + detail_size,
            Entry::Summary {
                body,
                detail_size,
                patches,
                ..
            } => {
                body.len()
                    + detail_size
                    + patches.capacity() * std::mem::size_of::<(Uuid, domain::MemberPatch)>()
            }
            Entry::WorthKeeping => 0,
        };
        // Everything an entry holds counts against the capacity (never 0: quick_cache would
        // then never evict the entry).
        (key.size() + std::mem::size_of::<Entry>() + body) as u64
    }
}

/// The kept bodies, shared by all HTTP workers. Its one operation is
/// [`GroupViews::get_or_render`]; without a [`TenantRevisions`] port (the embedded store) or
/// without capacity, it keeps nothing and every request renders.
pub struct GroupViews {
    kept: quick_cache::sync::Cache<Key, Entry, EntrySize>,
    revisions: Option<Arc<dyn TenantRevisions>>,
}

impl Default for GroupViews {
    /// Keeps nothing.
    fn default() -> Self {
        Self::new(None, 0)
    }
}

impl GroupViews {
    /// Keeps at most `bytes` of views (the least used going first) while `revisions` says the
    /// tenant's data is as it was.
    #[must_use]
    pub fn new(revisions: Option<Arc<dyn TenantRevisions>>, bytes: u64) -> Self {
        // The estimate of entries only sizes the index: large groups are few.
        Self {
            kept: quick_cache::sync::Cache::with_weighter(64, bytes, EntrySize),
            revisions: revisions.filter(|_| bytes > 0),
        }
    }

    /// The body of the view `key`: the kept one while the tenant's revision is the one it was
    /// rendered at and its time has not run out, else what `render` makes (kept when it is
    /// worth it). The revision is asked before rendering, so what is kept is at least as new
    /// as the revision it is kept at; a view never worth keeping costs no revision query.
    ///
    /// # Errors
    /// `render`'s, and the store's when asked for the revision.
    pub async fn get_or_render<E, F>(
        &self,
        key: Key,
        render: impl FnOnce() -> F,
    ) -> Result<Bytes, E>
    where
        F: std::future::Future<Output = Result<Rendered, E>>,
        E: From<StoreError>,
    {
        let Some(revisions) = &self.revisions else {
            return render().await.map(|r| r.body);
        };
        let revision = match self.kept.get(&key) {
            // Details and summaries are kept by their own methods.
            None | Some(Entry::Detail { .. } | Entry::Summary { .. }) => None,
            Some(Entry::Kept {
                valid_until: Some(until),
                ..
            }) if Timestamp::now() >= until => Some(key.revision(revisions.as_ref()).await?),
            Some(Entry::Kept { revision, body, .. }) => {
                let now = key.revision(revisions.as_ref()).await?;
                if now == revision {
                    return Ok(body);
                }
                Some(now)
            }
            Some(Entry::WorthKeeping) => Some(key.revision(revisions.as_ref()).await?),
        };
        let rendered = render().await?;
        match (rendered.worth_keeping, revision) {
            (true, Some(revision)) => self.kept.insert(
                key,
                Entry::Kept {
                    revision,
                    valid_until: rendered.valid_until,
                    body: rendered.body.clone(),
                },
            ),
            (true, None) => self.kept.insert(key, Entry::WorthKeeping),
            // What was kept (for a group large before, say) only takes memory now.
            (false, _) => {
                self.kept.remove(&key);
            }
        }
        Ok(rendered.body)
    }

    /// The body of group `group`'s detail (`GET /api/groups/{id}`), from what is kept:
    /// - the full revision is the one the kept body is of (and its time holds): that body;
    /// - only the scope revision is the same: the kept structure with the members' states and
    ///   alerts, read in the same snapshot as the revisions, rendered by `render`;
    /// - else (or nothing kept, or its time ran out): what `load` reads, rendered by `render`.
    ///
    /// Then kept with the revisions it is of. When a full read is due, the revisions are asked
    /// before `load` reads, so what is kept is at least as new as the revisions it is kept at.
    ///
    /// # Errors
    /// `load`'s, `render`'s, and the store's when asked for the revisions or readings.
    pub async fn detail<E, L, R>(
        &self,
        tenant: &TenantId,
        group: Uuid,
        load: impl FnOnce() -> L,
        render: impl FnOnce(Arc<GroupDetail>, Timestamp) -> R,
    ) -> Result<Bytes, E>
    where
        L: std::future::Future<Output = Result<GroupDetail, E>>,
        R: std::future::Future<Output = Result<Bytes, E>>,
        E: From<StoreError>,
    {
        let Some(revisions) = &self.revisions else {
            let detail = Arc::new(load().await?);
            return render(detail, Timestamp::now()).await;
        };
        let key = Key::group(tenant, &GroupKey::Id(group), View::Detail);
        let kept = match self.kept.get(&key) {
            Some(Entry::Detail {
                revisions,
                valid_until,
                detail,
                detail_size,
                body,
            }) if valid_until.is_none_or(|until| Timestamp::now() < until) => {
                Some((revisions, valid_until, detail, detail_size, body))
            }
            _ => None,
        };
        let (at, detail, detail_size) = match kept {
            None => {
                let at = revisions.revisions(tenant).await?;
                let (detail, size) = loaded(load).await?;
                (at, detail, size)
            }
            Some((kept_at, valid_until, detail, size, body)) => {
                let now = revisions.members_latest(tenant, group, kept_at).await?;
                if now.revisions.full == kept_at.full {
                    return Ok(body);
                }
                match now.latest {
                    Some(latest) => match patched(Arc::clone(&detail), latest).await? {
                        Some(detail) => (now.revisions, detail, size),
                        // None of the members' readings moved: the body holds at the new revision.
                        None => {
                            self.kept.insert(
                                key,
                                Entry::Detail {
                                    revisions: now.revisions,
                                    valid_until,
                                    detail,
                                    detail_size: size,
                                    body: body.clone(),
                                },
                            );
                            return Ok(body);
                        }
                    },
                    None => {
                        let (detail, size) = loaded(load).await?;
                        (now.revisions, detail, size)
                    }
                }
            }
        };
        let now = Timestamp::now();
        // Computed again after a patch: when a member turns stale depends on its latest reading.
        let valid_until = detail.next_change(now);
        let body = render(Arc::clone(&detail), now).await?;
        self.kept.insert(
            key,
            Entry::Detail {
                revisions: at,
                valid_until,
                detail,
                detail_size,
                body: body.clone(),
            },
        );
        Ok(body)
    }
}

impl GroupViews {
    /// The body of a group's alert summary (`key`, an [`View::Alerts`] key): `load` reads the
    /// group (or its tree) and `render` writes the summary. Kept (from the second request of a
    /// group of [`MIN_MEMBERS`] or more) as its structure at the tenant's [`StateMark`] with the
    /// states of the devices changed since patched in: a request whose mark holds gets the kept
    /// body, one whose events moved counts the kept structure with the new states (one small
    /// statement), and one whose scope moved, or past [`MAX_PATCHES`] devices, or past the kept
    /// structure's time, reads afresh. The mark is asked before `load` reads, so what is kept is
    /// at least as new as its mark.
    ///
    /// # Errors
    /// `load`'s, `render`'s, and the store's when asked for the mark or the changes.
    pub async fn summary<E, L>(
        &self,
        key: Key,
        load: impl FnOnce() -> L,
        render: impl FnOnce(AlertSummary) -> Result<Vec<u8>, E> + Send + 'static,
    ) -> Result<Bytes, E>
    where
        L: std::future::Future<Output = Result<GroupDetail, E>>,
        E: From<StoreError> + Send + 'static,
    {
        let Some(revisions) = &self.revisions else {
            let detail = load().await?;
            return count(Arc::new(detail), Arc::default(), render)
                .await
                .map(|(body, _)| body);
        };
        let tenant = key.tenant.clone();
        let kept = self.kept.get(&key);
        let (mark, detail, detail_size, patches) = match kept {
            Some(Entry::Summary {
                mark,
                valid_until,
                detail,
                detail_size: size,
                patches,
                body,
            }) if valid_until.is_none_or(|until| Timestamp::now() < until) => {
                let now = revisions.state_changes(&tenant, mark, MAX_PATCHES).await?;
                if now.mark == mark {
                    return Ok(body);
                }
                match now.changed {
                    Some(changed) if patches.len() + changed.len() <= MAX_PATCHES => {
                        let mut more = MemberPatches::clone(&patches);
                        more.extend(changed);
                        (now.mark, detail, size, Arc::new(more))
                    }
                    _ => {
                        let (detail, size) = loaded(load).await?;
                        (now.mark, detail, size, Arc::default())
                    }
                }
            }
            Some(Entry::Summary { .. } | Entry::WorthKeeping) => {
                let mark = revisions.state_mark(&tenant).await?;
                let (detail, size) = loaded(load).await?;
                (mark, detail, size, Arc::default())
            }
            // A first request, or one of a group not worth keeping: no mark is asked.
            None | Some(Entry::Kept { .. } | Entry::Detail { .. }) => {
                let detail = load().await?;
                let worth_keeping = detail.members.len() >= MIN_MEMBERS;
                let (body, _) = count(Arc::new(detail), Arc::default(), render).await?;
                if worth_keeping {
                    self.kept.insert(key, Entry::WorthKeeping);
                } else {
                    self.kept.remove(&key);
                }
                return Ok(body);
            }
        };
        if detail.members.len() < MIN_MEMBERS {
            self.kept.remove(&key);
            return count(detail, patches, render).await.map(|(body, _)| body);
        }
        let (body, valid_until) = count(Arc::clone(&detail), Arc::clone(&patches), render).await?;
        self.kept.insert(
            key,
            Entry::Summary {
                mark,
                valid_until,
                detail,
                detail_size,
                patches,
                body: body.clone(),
            },
        );
        Ok(body)
    }
}

/// The group as `load` reads it, shared, with the bytes it will weigh when kept.
async fn loaded<E, L>(load: impl FnOnce() -> L) -> Result<(Arc<GroupDetail>, usize), E>
where
    L: std::future::Future<Output = Result<GroupDetail, E>>,
{
    let detail = load().await?;
    let size = detail_size(&detail);
    Ok((Arc::new(detail), size))
}

/// The summary of `detail` with `patches` applied, rendered, and when time alone changes it:
/// off the I/O thread for a large group.
async fn count<E>(
    detail: Arc<GroupDetail>,
    patches: Arc<MemberPatches>,
    render: impl FnOnce(AlertSummary) -> Result<Vec<u8>, E> + Send + 'static,
) -> Result<(Bytes, Option<Timestamp>), E>
where
    E: From<StoreError> + Send + 'static,
{
    let large = detail.members.len() >= OFF_IO_MEMBERS;
    off_io_thread_if(large, move || {
        let now = Timestamp::now();
        let summary = detail.summary_patched(now, &patches);
        let body = render(summary)?;
        Ok((Bytes::from(body), detail.next_change_patched(now, &patches)))
    })
    .await?
}

/// A copy of `detail` with its members' states and alerts as `states` says; `None` when none of
/// them moved (the detail's `members` of the group the states are of).
async fn patched(
    detail: Arc<GroupDetail>,
    states: Vec<(Uuid, domain::MemberPatch)>,
) -> Result<Option<Arc<GroupDetail>>, StoreError> {
    let members = detail.members.len();
    off_io_thread_if(members >= OFF_IO_MEMBERS, move || {
        let states: MemberPatches = states.into_iter().collect();
        let mut copy = GroupDetail::clone(&detail);
        copy.apply_states(&states).then(|| Arc::new(copy))
    })
    .await
}

/// Bytes a kept detail structure takes, near enough to bound memory: its members and windows
/// with the text they own.
fn detail_size(detail: &GroupDetail) -> usize {
    use std::mem::size_of;
    let label = |l: Option<&domain::ScopeLabel>| l.map_or(0, |l| l.as_str().len());
    let labels = |ls: Option<&Vec<domain::ScopeLabel>>| {
        ls.map_or(0, |ls| {
            ls.iter()
                .map(|l| size_of::<domain::ScopeLabel>() + l.as_str().len())
                .sum()
        })
    };
    let slugs = |ss: &[domain::GroupSlug]| -> usize {
        ss.iter()
            .map(|s| size_of::<domain::GroupSlug>() + s.as_str().len())
            .sum()
    };
    let members: usize = detail
        .members
        .iter()
        .map(|m| {
            let d = &m.device;
            size_of::<domain::Member>()
                + d.spec.name.as_str().len()
                + d.spec.unit.as_str().len()
                + label(d.spec.site_id.as_ref())
                + label(d.spec.device_type.as_ref())
                + d.created_by.as_str().len()
                + d.updated_by.as_str().len()
                + slugs(&m.window_groups)
        })
        .sum();
    let windows: usize = detail
        .windows
        .iter()
        .map(|w| {
            let d = &w.definition;
            size_of::<domain::MaintenanceWindow>()
                + d.name.as_str().len()
                + labels(d.site_ids.as_ref())
                + labels(d.device_types.as_ref())
                + d.group_ids.as_deref().map_or(0, slugs)
        })
        .sum();
    size_of::<GroupDetail>() + members + windows
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

/// `work` on the blocking pool when `heavy`, else right here: for a small group the move costs
/// more than the work.
///
/// # Errors
/// [`StoreError::Unknown`] when the work panicked on the blocking pool.
pub async fn off_io_thread_if<T: Send + 'static>(
    heavy: bool,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, StoreError> {
    if heavy {
        off_io_thread(work).await
    } else {
        Ok(work())
    }
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
        let kept = Entry::Kept {
            revision: Revision(1),
            valid_until: None,
            body: Bytes::from_static(b"{}"),
        };
        let weight = quick_cache::Weighter::weight(&EntrySize, &key(), &kept);
        assert!(weight > 2 && weight < 512, "{weight}");
    }

    #[actix_web::test]
    async fn a_kept_view_of_the_group_is_never_served_for_its_tree_nor_back() {
        let tenant = TenantId::parse("t").expect("valid");
        let group = GroupKey::Id(uuid::Uuid::nil());
        let own = Key::group(&tenant, &group, View::Alerts);
        let tree = own.clone().descendants(true);
        assert_ne!(own, tree);
        assert_eq!(own, tree.clone().descendants(false));
        assert_ne!(key(), key().descendants(true));
        // The group's view is kept (rendered twice, then hit); the tree's is rendered apart.
        let mut mock = ports::MockTenantRevisions::new();
        mock.expect_revision().returning(|_| Ok(Revision(1)));
        let views = GroupViews::new(Some(Arc::new(mock)), 1024 * 1024);
        let answer = |key: Key, body: &'static str| {
            let views = &views;
            async move {
                views
                    .get_or_render::<StoreError, _>(key, || async { Ok(rendered(body, true)) })
                    .await
                    .expect("answered")
            }
        };
        answer(own.clone(), "own").await;
        answer(own.clone(), "own").await;
        assert_eq!(
            answer(own.clone(), "fresh").await,
            Bytes::from("own"),
            "kept"
        );
        assert_eq!(answer(tree.clone(), "tree").await, Bytes::from("tree"));
        answer(tree.clone(), "tree").await;
        assert_eq!(
            answer(tree, "fresh").await,
            Bytes::from("tree"),
            "kept apart"
        );
        assert_eq!(answer(own, "fresh").await, Bytes::from("own"));
    }

    /// A revision source answering `revisions[n]` on the n-th ask, counting the asks.
    fn revisions(revisions: &'static [i64]) -> Arc<dyn TenantRevisions> {
        let mut mock = ports::MockTenantRevisions::new();
        let asked = std::sync::atomic::AtomicUsize::new(0);
        mock.expect_revision()
            .times(revisions.len())
            .returning(move |_| {
                let n = asked.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                Ok(Revision(revisions[n]))
            });
        Arc::new(mock)
    }

    fn rendered(body: &'static str, worth_keeping: bool) -> Rendered {
        Rendered {
            body: Bytes::from_static(body.as_bytes()),
            valid_until: None,
            worth_keeping,
        }
    }

    async fn get(views: &GroupViews, answer: Rendered) -> (Bytes, bool) {
        let rendered = std::cell::Cell::new(false);
        let body = views
            .get_or_render::<StoreError, _>(key(), || async {
                rendered.set(true);
                Ok(answer)
            })
            .await
            .expect("answered");
        (body, rendered.get())
    }

    #[actix_web::test]
    async fn a_view_worth_keeping_is_rendered_twice_then_kept_while_the_revision_holds() {
        // Asks: none (first render), 1 (render and keep), 1 (hit), 2 (moved: render again).
        let views = GroupViews::new(Some(revisions(&[1, 1, 2])), 1024 * 1024);
        assert_eq!(
            get(&views, rendered("a", true)).await,
            (Bytes::from("a"), true)
        );
        assert_eq!(
            get(&views, rendered("b", true)).await,
            (Bytes::from("b"), true)
        );
        assert_eq!(
            get(&views, rendered("c", true)).await,
            (Bytes::from("b"), false)
        );
        assert_eq!(
            get(&views, rendered("d", true)).await,
            (Bytes::from("d"), true)
        );
    }

    #[actix_web::test]
    async fn a_view_not_worth_keeping_never_asks_the_revision() {
        let views = GroupViews::new(Some(revisions(&[])), 1024 * 1024);
        for body in ["a", "b", "c"] {
            assert_eq!(
                get(&views, rendered(body, false)).await,
                (Bytes::from(body), true)
            );
        }
    }

    #[actix_web::test]
    async fn a_kept_view_past_its_time_is_rendered_again() {
        let views = GroupViews::new(Some(revisions(&[1, 1])), 1024 * 1024);
        let expired = || Rendered {
            valid_until: Some(Timestamp::now()),
            ..rendered("a", true)
        };
        get(&views, expired()).await;
        get(&views, expired()).await;
        assert_eq!(
            get(&views, rendered("b", true)).await,
            (Bytes::from("b"), true)
        );
    }

    #[actix_web::test]
    async fn without_revisions_or_capacity_nothing_is_kept() {
        for views in [
            GroupViews::default(),
            GroupViews::new(Some(revisions(&[])), 0),
        ] {
            for body in ["a", "b", "c"] {
                assert_eq!(
                    get(&views, rendered(body, true)).await,
                    (Bytes::from(body), true)
                );
            }
        }
    }

    #[actix_web::test]
    async fn capacity_bounds_what_is_kept() {
        let mut mock = ports::MockTenantRevisions::new();
        mock.expect_revision()
            .times(0..=3)
            .returning(|_| Ok(Revision(1)));
        let views = GroupViews::new(Some(Arc::new(mock)), 1024);
        let big: &'static str = Box::leak(" ".repeat(4096).into_boxed_str());
        for _ in 0..3 {
            let (_, rendered_again) = get(&views, rendered(big, true)).await;
            assert!(rendered_again, "over capacity: never kept");
        }
    }

    // -----------------------------------------------------------------------------------------
    // Kept details

    const GROUP: Uuid = Uuid::from_u128(9);

    /// A group whose i-th member's latest reading is `values[i]` at `at` (warning above 30).
    fn detail_of(values: &[Option<f64>], at: Timestamp) -> GroupDetail {
        let actor = domain::Actor::parse("a").expect("valid");
        let thresholds =
            domain::Thresholds::new(None, None, Some(30.0), Some(40.0)).expect("ordered");
        let members = values
            .iter()
            .enumerate()
            .map(|(i, value)| {
                let state = value.map_or_else(domain::DeviceState::default, |value| {
                    domain::DeviceState::default()
                        .after_reading(
                            &thresholds,
                            domain::ReadingPoint {
                                timestamp: at,
                                value,
                            },
                        )
                        .expect("first reading")
                });
                domain::Member {
                    device: domain::Device {
                        id: Uuid::from_u128(i as u128 + 1),
                        spec: domain::DeviceSpec {
                            name: domain::DeviceName::parse(&format!("d{i:05}")).expect("valid"),
                            unit: domain::Unit::parse("C").expect("valid"),
                            status: domain::DeviceStatus::Connected,
                            site_id: None,
                            device_type: None,
                            thresholds,
                            stale_after: None,
                            labels: domain::Labels::none(),
                        },
                        state,
                        created_at: at,
                        updated_at: at,
                        created_by: actor.clone(),
                        updated_by: actor.clone(),
                    },
                    alerts: domain::MemberAlerts::default(),
                    window_groups: Vec::new(),
                }
            })
            .collect::<Vec<_>>();
        GroupDetail {
            group: domain::DeviceGroup {
                filter: None,
                id: GROUP,
                group_id: domain::GroupSlug::parse("grp-test").expect("valid"),
                name: domain::GroupName::parse("Test").expect("valid"),
                description: None,
                member_count: members.len() as u64,
                created_at: at,
                updated_at: at,
                created_by: actor.clone(),
                updated_by: actor,
                parent_id: None,
            },
            members,
            windows: Vec::new(),
        }
    }

    /// The summary of the kept [`detail_of`] group (`values`) as `GroupViews::summary` answers.
    async fn summary_of(views: &GroupViews, values: &[Option<f64>], reads: &mut u32) -> u64 {
        let key = Key::group(
            &TenantId::parse("t").expect("valid"),
            &GroupKey::Id(GROUP),
            View::Alerts,
        );
        let values = values.to_vec();
        let body = views
            .summary::<StoreError, _>(
                key,
                || {
                    *reads += 1;
                    async move { Ok(detail_of(&values, Timestamp::now())) }
                },
                |summary| Ok(summary.critical.to_string().into_bytes()),
            )
            .await
            .expect("answered");
        std::str::from_utf8(&body)
            .expect("utf-8")
            .parse()
            .expect("a count")
    }

    #[actix_web::test]
    async fn a_kept_summary_takes_at_most_max_patches_then_reads_the_group_again() {
        let critical = domain::MemberPatch {
            state: detail_of(&[Some(45.0)], Timestamp::now()).members[0]
                .device
                .state,
            alerts: domain::MemberAlerts::default(),
        };
        // Member i has id i + 1 (see detail_of).
        let patches = |from: u128, n: usize| -> Vec<(Uuid, domain::MemberPatch)> {
            (0..n as u128)
                .map(|i| (Uuid::from_u128(from + i), critical))
                .collect()
        };
        let mut mock = ports::MockTenantRevisions::new();
        mock.expect_state_mark().times(1).returning(|_| {
            Ok(StateMark {
                scope: Revision(1),
                seq: 1,
            })
        });
        let answers = std::sync::Mutex::new(
            vec![
                // 10 members turn critical, then MAX_PATCHES - 10 more: exactly full.
                patches(1, 10),
                patches(11, MAX_PATCHES - 10),
                // One more does not fit: the group is read again.
                patches(MAX_PATCHES as u128 + 1, 1),
            ]
            .into_iter()
            .enumerate(),
        );
        mock.expect_state_changes()
            .times(3)
            .returning(move |_, kept, _| {
                let (n, changed) = answers.lock().expect("not poisoned").next().expect("asked");
                Ok(ports::StateChanges {
                    mark: StateMark {
                        seq: kept.seq + 1 + n as i64,
                        ..kept
                    },
                    changed: Some(changed),
                })
            });
        let views = GroupViews::new(Some(Arc::new(mock)), 64 * 1024 * 1024);
        let normal = vec![Some(1.0); MAX_PATCHES + 100];
        let mut reads = 0;
        assert_eq!(summary_of(&views, &normal, &mut reads).await, 0);
        assert_eq!(summary_of(&views, &normal, &mut reads).await, 0);
        assert_eq!(reads, 2, "worth keeping, then kept");
        assert_eq!(summary_of(&views, &normal, &mut reads).await, 10);
        assert_eq!(
            summary_of(&views, &normal, &mut reads).await,
            MAX_PATCHES as u64
        );
        assert_eq!(reads, 2, "patched, not read");
        // The read finds them all normal again (the store's truth): what it reads is served.
        assert_eq!(summary_of(&views, &normal, &mut reads).await, 0);
        assert_eq!(reads, 3);
    }

    fn revs(full: i64, scope: i64) -> Revisions {
        Revisions {
            full: Revision(full),
            scope: Revision(scope),
        }
    }

    /// What one request for the detail did: its body (the members' latest values, as the test
    /// renderer writes them) and whether it read the whole detail.
    async fn get_detail(views: &GroupViews, loaded: GroupDetail) -> (String, bool) {
        let tenant = TenantId::parse("t").expect("valid");
        let read = std::cell::Cell::new(false);
        let body = views
            .detail::<StoreError, _, _>(
                &tenant,
                GROUP,
                || {
                    read.set(true);
                    async { Ok(loaded) }
                },
                |detail, _| async move {
                    let values: Vec<String> = detail
                        .members
                        .iter()
                        .map(|m| {
                            m.device
                                .state
                                .last_reading
                                .map_or("-".to_owned(), |r| r.value.to_string())
                        })
                        .collect();
                    Ok(Bytes::from(values.join(",")))
                },
            )
            .await
            .expect("answered");
        (String::from_utf8(body.to_vec()).expect("utf-8"), read.get())
    }

    /// A store at revisions (1, 1) when the detail is first read, whose `members_latest`
    /// answers `answers` in turn (checking it is asked with the revisions of what is kept).
    /// The revisions `members_latest` is asked with, those it answers, and the members' values
    /// (each the latest reading of a member's state).
    type Answer = (Revisions, Revisions, Option<Vec<(Uuid, f64)>>);

    fn store(answers: Vec<Answer>) -> GroupViews {
        let mut mock = ports::MockTenantRevisions::new();
        mock.expect_revisions()
            .times(1)
            .returning(|_| Ok(revs(1, 1)));
        let mut sequence = mockall::Sequence::new();
        for (kept, now, latest) in answers {
            mock.expect_members_latest()
                .withf(move |_, group, asked| *group == GROUP && *asked == kept)
                .times(1)
                .in_sequence(&mut sequence)
                .returning(move |_, _, _| {
                    Ok(ports::MembersLatest {
                        revisions: now,
                        latest: latest.clone().map(|l| {
                            l.into_iter()
                                .map(|(id, value)| {
                                    let state = detail_of(&[Some(value)], Timestamp::now()).members
                                        [0]
                                    .device
                                    .state;
                                    (
                                        id,
                                        domain::MemberPatch {
                                            state,
                                            alerts: domain::MemberAlerts::default(),
                                        },
                                    )
                                })
                                .collect()
                        }),
                    })
                });
        }
        GroupViews::new(Some(Arc::new(mock)), 1024 * 1024)
    }

    #[actix_web::test]
    async fn a_kept_detail_is_served_while_the_full_revision_holds() {
        let views = store(vec![(revs(1, 1), revs(1, 1), None)]);
        let now = Timestamp::now();
        let first = get_detail(&views, detail_of(&[Some(1.0), None], now)).await;
        assert_eq!(first, ("1,-".to_owned(), true));
        let second = get_detail(&views, detail_of(&[Some(9.0), None], now)).await;
        assert_eq!(second, ("1,-".to_owned(), false), "kept, not read");
    }

    #[actix_web::test]
    async fn only_readings_moved_the_kept_detail_is_patched_not_read_again() {
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let views = store(vec![
            (revs(1, 1), revs(2, 1), Some(vec![(a, 5.0), (b, 7.0)])),
            // Readings of other devices only: nothing to render, kept at the new revision.
            (revs(2, 1), revs(3, 1), Some(vec![(a, 5.0), (b, 7.0)])),
            (revs(3, 1), revs(3, 1), None),
        ]);
        let now = Timestamp::now();
        assert_eq!(
            get_detail(&views, detail_of(&[Some(1.0), None], now)).await,
            ("1,-".to_owned(), true)
        );
        for _ in 0..3 {
            assert_eq!(
                get_detail(&views, detail_of(&[Some(9.0), Some(9.0)], now)).await,
                ("5,7".to_owned(), false),
                "the members' readings, without reading the rest"
            );
        }
    }

    #[actix_web::test]
    async fn a_moved_scope_revision_reads_the_detail_again() {
        let views = store(vec![
            (revs(1, 1), revs(2, 2), None),
            (revs(2, 2), revs(2, 2), None),
        ]);
        let now = Timestamp::now();
        get_detail(&views, detail_of(&[Some(1.0)], now)).await;
        assert_eq!(
            get_detail(&views, detail_of(&[Some(35.0)], now)).await,
            ("35".to_owned(), true)
        );
        assert_eq!(
            get_detail(&views, detail_of(&[Some(1.0)], now)).await,
            ("35".to_owned(), false),
            "kept at the revisions read before it"
        );
    }

    #[actix_web::test]
    async fn a_kept_detail_past_its_time_is_read_again() {
        let mut mock = ports::MockTenantRevisions::new();
        // Asked before each full read; never for readings: the time ran out first.
        mock.expect_revisions()
            .times(2)
            .returning(|_| Ok(revs(1, 1)));
        mock.expect_members_latest().never();
        let views = GroupViews::new(Some(Arc::new(mock)), 1024 * 1024);
        // Stale from a microsecond after its reading: time alone changes it at once.
        let mut detail = detail_of(&[Some(1.0)], Timestamp::now());
        detail.members[0].device.spec.stale_after =
            Some(domain::StaleAfter::from_secs(1).expect("valid"));
        get_detail(&views, detail.clone()).await;
        tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
        let (_, read) = get_detail(&views, detail).await;
        assert!(read, "read again once its time ran out");
    }

    #[actix_web::test]
    async fn a_kept_details_structure_counts_against_the_capacity() {
        let mut mock = ports::MockTenantRevisions::new();
        mock.expect_revisions().returning(|_| Ok(revs(1, 1)));
        mock.expect_members_latest().never();
        // Room for the small body the test renders, not for 1,000 members' structure.
        let views = GroupViews::new(Some(Arc::new(mock)), 64 * 1024);
        let values = vec![None; 1000];
        let now = Timestamp::now();
        let big = detail_of(&values, now);
        assert!(detail_size(&big) > 64 * 1024, "{}", detail_size(&big));
        for _ in 0..2 {
            let (_, read) = get_detail(&views, big.clone()).await;
            assert!(read, "over capacity: never kept");
        }
    }
}
