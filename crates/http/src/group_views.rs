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
//! A group's alert summary counts statuses, not readings: it is kept at the tenant's *status*
//! revision ([`TenantRevisions::status_revision`]), which readings that change no device's
//! status leave alone, so a tenant ingesting all the time still has its summaries kept. The
//! detail (it shows the latest readings) and the readings keep the full revision.

use std::sync::Arc;

use actix_web::web::Bytes;
use domain::{ReadingQuery, TenantId, Timestamp};
use ports::{GroupKey, Revision, StoreError, TenantRevisions};
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
    /// `view` of `group`.
    #[must_use]
    pub fn group(tenant: &TenantId, group: &GroupKey, view: View) -> Self {
        Self {
            tenant: tenant.clone(),
            group: group.clone(),
            view: ViewKind::Group(view),
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
            view: ViewKind::Readings(selection),
        }
    }

    /// The revision the view is kept at: the status revision for an alert summary (it moves
    /// only with what may change one), the full one for anything showing readings.
    async fn revision(&self, revisions: &dyn TenantRevisions) -> Result<Revision, StoreError> {
        match self.view {
            ViewKind::Group(View::Alerts) => revisions.status_revision(&self.tenant).await,
            ViewKind::Group(View::Detail) | ViewKind::Readings(_) => {
                revisions.revision(&self.tenant).await
            }
        }
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
            None => None,
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
        let kept = Entry::Kept {
            revision: Revision(1),
            valid_until: None,
            body: Bytes::from_static(b"{}"),
        };
        let weight = quick_cache::Weighter::weight(&EntrySize, &key(), &kept);
        assert!(weight > 2 && weight < 512, "{weight}");
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
    async fn an_alert_summary_is_kept_at_the_status_revision_and_the_detail_at_the_full_one() {
        let mut mock = ports::MockTenantRevisions::new();
        // The full revision moves at every ask (readings keep arriving); the status one holds.
        let asked = std::sync::atomic::AtomicI64::new(0);
        mock.expect_revision().returning(move |_| {
            Ok(Revision(
                asked.fetch_add(1, std::sync::atomic::Ordering::SeqCst),
            ))
        });
        mock.expect_status_revision().returning(|_| Ok(Revision(7)));
        let views = GroupViews::new(Some(Arc::new(mock)), 1024 * 1024);
        let tenant = TenantId::parse("t").expect("valid");
        let group = GroupKey::Id(uuid::Uuid::nil());
        for view in [View::Alerts, View::Detail] {
            let mut renders = 0;
            for _ in 0..4 {
                views
                    .get_or_render::<StoreError, _>(Key::group(&tenant, &group, view), || {
                        renders += 1;
                        async { Ok(rendered("x", true)) }
                    })
                    .await
                    .expect("answered");
            }
            let expected = if view == View::Alerts { 2 } else { 4 };
            assert_eq!(renders, expected, "{view:?}");
        }
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
}
