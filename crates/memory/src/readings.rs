//! Reading pages and exports in the embedded store: ranges of the ordered readings map, merged
//! across a group's members newest first (ties by device id), and exports read in chunks, each
//! under a short hold of the tenant's read lock.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::ops::Bound;

use domain::{DeviceName, ReadingPoint, ReadingPosition, ReadingQuery, Timestamp, Unit};
use ports::{GroupReading, ReadingStream, StoreError};
use uuid::Uuid;

use crate::{SharedTenant, TenantData, END_OF_TIME};

/// Readings an export reads per hold of the tenant's lock.
const EXPORT_CHUNK: u32 = 2_000;

/// A member as the readings of a group show it.
#[derive(Clone)]
pub(crate) struct Shown {
    pub id: Uuid,
    pub name: DeviceName,
    pub unit: Unit,
}

/// The device's readings `query` selects (its range and position, not its offset or limit),
/// newest first.
fn newest_first<'a>(
    data: &'a TenantData,
    device: Uuid,
    query: &ReadingQuery,
) -> impl Iterator<Item = ReadingPoint> + use<'a> {
    // The tighter of the range's end and the position: (instant, whether it is included).
    let mut upper = query
        .until()
        .map_or((END_OF_TIME, true), |until| (until, false));
    if let Some(after) = query.after() {
        // Readings of a device ordered after the position's at the same instant come after it.
        let at = (after.timestamp, device > after.device_id);
        if at.0 < upper.0 || (at.0 == upper.0 && !at.1) {
            upper = at;
        }
    }
    let since = query.since();
    let empty = upper.0 < since;
    let range = if empty {
        // A start after the end would panic in `range`: an empty range of the same type.
        (
            Bound::Included((device, since)),
            Bound::Excluded((device, since)),
        )
    } else if upper.1 {
        (
            Bound::Included((device, since)),
            Bound::Included((device, upper.0)),
        )
    } else {
        (
            Bound::Included((device, since)),
            Bound::Excluded((device, upper.0)),
        )
    };
    data.readings
        .range(range)
        .rev()
        .map(|((_, timestamp), value)| ReadingPoint {
            timestamp: *timestamp,
            value: *value,
        })
}

/// The page `query` selects of one device's readings.
pub(crate) fn device_page(
    data: &TenantData,
    device: Uuid,
    query: &ReadingQuery,
) -> Vec<ReadingPoint> {
    newest_first(data, device, query)
        .skip(query.offset() as usize)
        .take(query.limit() as usize)
        .collect()
}

/// The head of one member's readings in the merge, ordered as the answer is.
struct Head {
    point: ReadingPoint,
    member: usize,
}

impl PartialEq for Head {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Head {}
impl PartialOrd for Head {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Head {
    /// The greatest is the next to answer: the newest, then the lowest member index (members
    /// are sorted by id).
    fn cmp(&self, other: &Self) -> Ordering {
        self.point
            .timestamp
            .cmp(&other.point.timestamp)
            .then(other.member.cmp(&self.member))
    }
}

/// The page `query` selects of the readings of `members` (sorted by id), merged newest first:
/// each member's range is read only as far as the page needs.
pub(crate) fn group_page(
    data: &TenantData,
    members: &[Shown],
    query: &ReadingQuery,
) -> Vec<GroupReading> {
    let mut ranges: Vec<_> = members
        .iter()
        .map(|m| newest_first(data, m.id, query))
        .collect();
    let mut heads: BinaryHeap<Head> = ranges
        .iter_mut()
        .enumerate()
        .filter_map(|(member, range)| range.next().map(|point| Head { point, member }))
        .collect();
    let wanted = query.offset() as usize + query.limit() as usize;
    let mut page = Vec::new();
    let mut taken = 0;
    while taken < wanted {
        let Some(Head { point, member }) = heads.pop() else {
            break;
        };
        if let Some(next) = ranges[member].next() {
            heads.push(Head {
                point: next,
                member,
            });
        }
        taken += 1;
        if taken <= query.offset() as usize {
            continue;
        }
        let shown = &members[member];
        page.push(GroupReading {
            device_id: shown.id,
            device_name: shown.name.clone(),
            unit: shown.unit.clone(),
            timestamp: point.timestamp,
            value: point.value,
        });
    }
    page
}

/// Where the export stands between chunks.
struct Export<S> {
    data: SharedTenant,
    query: ReadingQuery,
    /// Readings still to send.
    left: u32,
    after: Option<ReadingPosition>,
    scope: std::sync::Arc<S>,
}

impl<S> Export<S> {
    /// The query of the next chunk: the export's, after what was sent, at most a chunk.
    fn chunk(&self) -> Option<ReadingQuery> {
        if self.left == 0 {
            return None;
        }
        let query = match self.after {
            Some(after) => self
                .query
                .resumed(self.query.since(), self.query.until(), after),
            None => self.query,
        };
        query.exporting(i64::from(self.left.min(EXPORT_CHUNK))).ok()
    }
}

/// The export of one device's readings, a chunk per hold of the lock.
pub(crate) fn export_device(
    data: SharedTenant,
    device: Uuid,
    query: ReadingQuery,
) -> ReadingStream<ReadingPoint> {
    let start = Export {
        data,
        query,
        left: query.limit(),
        after: None,
        scope: std::sync::Arc::new(device),
    };
    chunked(start, |data, device, query| {
        device_page(data, *device, query)
            .into_iter()
            .map(|p| {
                let position = ReadingPosition {
                    timestamp: p.timestamp,
                    device_id: *device,
                };
                (p, position)
            })
            .collect()
    })
}

/// The export of a group's readings (its members as they are now), a chunk per hold of the lock.
pub(crate) fn export_group(
    data: SharedTenant,
    members: Vec<Shown>,
    query: ReadingQuery,
) -> ReadingStream<GroupReading> {
    let start = Export {
        data,
        query,
        left: query.limit(),
        after: None,
        scope: std::sync::Arc::new(members),
    };
    chunked(start, |data, members, query| {
        group_page(data, members, query)
            .into_iter()
            .map(|r| {
                let position = ReadingPosition {
                    timestamp: r.timestamp,
                    device_id: r.device_id,
                };
                (r, position)
            })
            .collect()
    })
}

/// Reads `export` chunk by chunk with `read` (under the read lock, released between chunks) and
/// streams the readings. Only the first chunk skips the query's offset: later ones go on after
/// the position the previous one reached.
fn chunked<S, T>(
    export: Export<S>,
    read: fn(&TenantData, &S, &ReadingQuery) -> Vec<(T, ReadingPosition)>,
) -> ReadingStream<T>
where
    S: Send + Sync + 'static,
    T: Send + 'static,
{
    let deadline = tokio::time::Instant::now()
        + std::time::Duration::from_secs(domain::reading::EXPORT_DEADLINE_SECS);
    let stream = futures_util::stream::unfold(Some(export), move |state| async move {
        let mut export = state?;
        let query = export.chunk()?;
        if tokio::time::Instant::now() >= deadline {
            let late = StoreError::Unavailable(anyhow::anyhow!(
                "the export ran past its deadline of {} s",
                domain::reading::EXPORT_DEADLINE_SECS
            ));
            return Some((futures_util::stream::iter(vec![Err(late)]), None));
        }
        // On the blocking pool, as all of the store's work: a chunk of a large group merges
        // many members.
        let guard = std::sync::Arc::clone(&export.data).read_owned().await;
        let scope = std::sync::Arc::clone(&export.scope);
        let rows = match tokio::task::spawn_blocking(move || read(&guard, &scope, &query)).await {
            Ok(rows) => rows,
            Err(e) => {
                let failed = StoreError::Unknown(
                    anyhow::Error::new(e).context("embedded store export failed"),
                );
                return Some((futures_util::stream::iter(vec![Err(failed)]), None));
            }
        };
        let (_, last) = rows.last()?;
        export.after = Some(*last);
        let sent = u32::try_from(rows.len()).unwrap_or(u32::MAX);
        export.left = if sent < query.limit() {
            0
        } else {
            export.left.saturating_sub(sent)
        };
        let items: Vec<Result<T, StoreError>> = rows.into_iter().map(|(r, _)| Ok(r)).collect();
        Some((futures_util::stream::iter(items), Some(export)))
    });
    Box::pin(futures_util::StreamExt::flatten(stream))
}

/// The newest of the device's readings before `before`, if any.
pub(crate) fn newest_before(
    data: &TenantData,
    device: Uuid,
    before: Timestamp,
) -> Option<ReadingPoint> {
    data.readings
        .range((
            Bound::Included((device, Timestamp::MIN)),
            Bound::Excluded((device, before)),
        ))
        .next_back()
        .map(|((_, timestamp), value)| ReadingPoint {
            timestamp: *timestamp,
            value: *value,
        })
}
