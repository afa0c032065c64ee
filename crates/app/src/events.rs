//! The live event stream (issue 15): per instance, one feed per tenant that has subscribers,
//! polling the event log and fanning its events out through a bounded broadcast channel; each
//! subscriber replays what it missed (`Last-Event-ID`), then follows the feed, in seq order and
//! without duplicates, narrowed by its filter.
//!
//! Why polling: every instance reads the log the stores write in the events' own transactions,
//! so a client connected to any instance sees every event, whichever instance (or evaluator)
//! caused it, with no broker between them. Why a broadcast channel with overflow: one slow
//! reader must cost a bounded amount of memory and never hold the others back; it loses its
//! place and its stream ends (the client reconnects with `Last-Event-ID` and replays).
//!
//! The runtime (spawning the feed, sleeping between polls) comes in through [`Runtime`]: this
//! crate names no framework.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_broadcast::{InactiveReceiver, Receiver, RecvError, Sender};
use domain::{StreamEventType, TenantId};
use futures_util::future::BoxFuture;
use futures_util::stream::{self, BoxStream};
use ports::events::{EventLog, EventPage, LoggedEvent};
use ports::{DeviceGroupRepository, GroupKey, LookupError, StoreError};
use uuid::Uuid;

/// Events read from the log at once (the port's most).
pub const PAGE: u32 = 1000;
/// `events_after` with this answers no event, only the log's bounds.
const BOUNDS_ONLY: i64 = i64::MAX;

/// How the stream runs on an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamSettings {
    /// Time between two reads of a tenant's log by its feed.
    pub poll: Duration,
    /// Events a subscriber may fall behind the feed before it is dropped.
    pub buffer: usize,
    /// Streams open at once on the instance; one more is refused.
    pub max_streams: usize,
}

impl Default for StreamSettings {
    fn default() -> Self {
        Self {
            poll: Duration::from_millis(250),
            buffer: 1024,
            max_streams: 1000,
        }
    }
}

/// What the feed needs of the async runtime.
pub trait Runtime: Send + Sync {
    /// Runs `task` in the background.
    fn spawn(&self, task: BoxFuture<'static, ()>);
    /// Completes after `duration`.
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()>;
}

/// Renders an event's `data` (the HTTP adapter's renderer, shared with webhooks).
pub type Renderer = Arc<dyn Fn(&LoggedEvent) -> String + Send + Sync>;

/// One event as streamed: its data rendered once for every subscriber.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamedEvent {
    pub seq: i64,
    pub event_type: StreamEventType,
    pub group_ids: Vec<Uuid>,
    /// The JSON of `data:`.
    pub data: String,
}

/// What a subscriber receives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamItem {
    /// Events after `after` (the client's `Last-Event-ID`) are no longer retained: the client
    /// must start over from the retained ones, which follow.
    Reset {
        after: i64,
    },
    Event(Arc<StreamedEvent>),
}

/// Which events a subscriber wants; `None` does not narrow.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamFilter {
    pub types: Option<Vec<StreamEventType>>,
    /// A group's UUID: events whose `group_ids` hold it.
    pub group: Option<Uuid>,
}

impl StreamFilter {
    /// Whether an event of `event_type` about `group_ids` passes.
    #[must_use]
    pub fn admits(&self, event_type: StreamEventType, group_ids: &[Uuid]) -> bool {
        self.types
            .as_ref()
            .is_none_or(|types| types.contains(&event_type))
            && self.group.is_none_or(|g| group_ids.contains(&g))
    }
}

/// What a client asks for when it opens a stream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamRequest {
    /// The last seq the client saw (`Last-Event-ID`): replay from there. `None`: live events
    /// from now on.
    pub last_event_id: Option<i64>,
    pub types: Option<Vec<StreamEventType>>,
    /// A group of either API family, by UUID or slug.
    pub group: Option<GroupKey>,
}

/// Why a stream was not opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenStreamError {
    /// The instance has `limit` streams open already.
    #[error("too many event streams open on this instance")]
    Busy { limit: usize },
    /// The instance is shutting down.
    #[error("the instance is shutting down")]
    Closed,
    /// The `group` filter names no group of the tenant.
    #[error("group not found")]
    GroupNotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The event streams of one instance: the feeds of the tenants with subscribers.
#[derive(Clone)]
pub struct EventHub {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for EventHub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventHub")
            .field("settings", &self.inner.settings)
            .field("open", &self.open_streams())
            .finish_non_exhaustive()
    }
}

struct Inner {
    log: Arc<dyn EventLog>,
    groups: Arc<dyn DeviceGroupRepository>,
    render: Renderer,
    runtime: Arc<dyn Runtime>,
    settings: StreamSettings,
    feeds: Mutex<HashMap<TenantId, Feed>>,
    /// Set by [`EventHub::close`]: no stream opens any more.
    closed: std::sync::atomic::AtomicBool,
    open: AtomicUsize,
    next_feed: AtomicU64,
}

/// A tenant's feed, as the hub holds it.
struct Feed {
    id: u64,
    sender: Sender<Arc<StreamedEvent>>,
    /// Keeps the channel open while no subscriber is (between the last one leaving and the
    /// feed noticing).
    _open: InactiveReceiver<Arc<StreamedEvent>>,
}

impl EventHub {
    #[must_use]
    pub fn new(
        log: Arc<dyn EventLog>,
        groups: Arc<dyn DeviceGroupRepository>,
        render: Renderer,
        runtime: Arc<dyn Runtime>,
        settings: StreamSettings,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                log,
                groups,
                render,
                runtime,
                settings,
                feeds: Mutex::default(),
                closed: std::sync::atomic::AtomicBool::new(false),
                open: AtomicUsize::new(0),
                next_feed: AtomicU64::new(0),
            }),
        }
    }

    #[must_use]
    pub fn settings(&self) -> StreamSettings {
        self.inner.settings
    }

    /// Streams open now on this instance.
    #[must_use]
    pub fn open_streams(&self) -> usize {
        self.inner.open.load(Ordering::Relaxed)
    }

    /// Tenants with a running feed.
    #[must_use]
    pub fn feeds(&self) -> usize {
        self.inner.feeds.lock().map_or(0, |f| f.len())
    }

    /// Ends every open stream and refuses new ones: the server is stopping, and its clients
    /// are to reconnect (to another instance) with their `Last-Event-ID` rather than hold the
    /// shutdown up.
    pub fn close(&self) {
        self.inner.closed.store(true, Ordering::Release);
        let mut feeds = self
            .inner
            .feeds
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for (_, feed) in feeds.drain() {
            feed.sender.close();
        }
    }

    /// Answers what [`EventHub::open`] would refuse for a reason of the request (an unknown
    /// group), without opening anything: a `HEAD` of the stream.
    ///
    /// # Errors
    /// [`OpenStreamError::Closed`]; [`OpenStreamError::GroupNotFound`];
    /// [`OpenStreamError::Store`].
    pub async fn check(
        &self,
        tenant: &TenantId,
        request: &StreamRequest,
    ) -> Result<(), OpenStreamError> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(OpenStreamError::Closed);
        }
        self.group_filter(tenant, request.group.as_ref()).await?;
        Ok(())
    }

    /// The id of the group a `group` filter names.
    async fn group_filter(
        &self,
        tenant: &TenantId,
        key: Option<&GroupKey>,
    ) -> Result<Option<Uuid>, OpenStreamError> {
        let Some(key) = key else { return Ok(None) };
        let row = self
            .inner
            .groups
            .get_group_row(tenant, key)
            .await
            .map_err(|e| match e {
                LookupError::NotFound => OpenStreamError::GroupNotFound,
                LookupError::Store(e) => OpenStreamError::Store(e),
            })?;
        Ok(Some(row.id))
    }

    /// Opens a stream of the tenant's events: first (with `last_event_id`) the retained ones
    /// after it, preceded by a [`StreamItem::Reset`] when some it missed are gone; then every
    /// new one. Each seq at most once, in order, filtered. The stream ends when the subscriber
    /// falls more than the buffer behind, or the log cannot be read while replaying.
    ///
    /// # Errors
    /// [`OpenStreamError::Busy`] at the instance's limit; [`OpenStreamError::GroupNotFound`];
    /// [`OpenStreamError::Store`].
    pub async fn open(
        &self,
        tenant: &TenantId,
        request: StreamRequest,
    ) -> Result<BoxStream<'static, StreamItem>, OpenStreamError> {
        if self.inner.closed.load(Ordering::Acquire) {
            return Err(OpenStreamError::Closed);
        }
        let slot = Slot::take(&self.inner)?;
        let group = self.group_filter(tenant, request.group.as_ref()).await?;
        let filter = StreamFilter {
            types: request.types,
            group,
        };
        // Read before subscribing: every event up to `now` is in the log before the feed can
        // have missed it, so the replay below finds it; every later one reaches the receiver.
        let now = self
            .inner
            .log
            .events_after(tenant, BOUNDS_ONLY, 1)
            .await?
            .last_seq;
        let receiver = self.inner.subscribe(tenant, now);
        if self.inner.closed.load(Ordering::Acquire) {
            // Closed meanwhile: the feed just started may have missed `close`.
            self.close();
            return Err(OpenStreamError::Closed);
        }
        let after = request.last_event_id.unwrap_or(now);
        let state = Subscriber {
            inner: self.inner.clone(),
            tenant: tenant.clone(),
            filter,
            receiver,
            last_seen: after,
            pending: VecDeque::new(),
            phase: Phase::Replay {
                after,
                first: request.last_event_id.is_some(),
            },
            _slot: slot,
        };
        Ok(Box::pin(stream::unfold(state, Subscriber::next)))
    }
}

impl Inner {
    /// A receiver of the tenant's feed, starting the feed (reading after `now`) if none runs.
    fn subscribe(self: &Arc<Self>, tenant: &TenantId, now: i64) -> Receiver<Arc<StreamedEvent>> {
        let mut feeds = self
            .feeds
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(feed) = feeds.get(tenant) {
            return feed.sender.new_receiver();
        }
        let (mut sender, receiver) = async_broadcast::broadcast(self.settings.buffer.max(1));
        sender.set_overflow(true);
        let id = self.next_feed.fetch_add(1, Ordering::Relaxed);
        feeds.insert(
            tenant.clone(),
            Feed {
                id,
                sender: sender.clone(),
                _open: receiver.clone().deactivate(),
            },
        );
        drop(feeds);
        let task = run_feed(self.clone(), tenant.clone(), id, sender, now);
        self.runtime.spawn(Box::pin(task));
        receiver
    }

    /// Removes feed `id` of `tenant` if it has no subscriber; whether it did.
    fn retire(&self, tenant: &TenantId, id: u64) -> bool {
        let mut feeds = self
            .feeds
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match feeds.get(tenant) {
            // Under the lock no subscriber can join meanwhile (they subscribe under it).
            Some(feed) if feed.id == id && feed.sender.receiver_count() == 0 => {
                feeds.remove(tenant);
                true
            }
            Some(feed) if feed.id == id => false,
            _ => true,
        }
    }

    fn streamed(&self, event: &LoggedEvent) -> Arc<StreamedEvent> {
        Arc::new(StreamedEvent {
            seq: event.seq,
            event_type: event.event_type,
            group_ids: event.group_ids.clone(),
            data: (self.render)(event),
        })
    }
}

/// Where a page leaves a reader that had read up to `after`, when events it never saw were
/// pruned: just before the oldest retained one.
fn restart_point(page: &EventPage) -> i64 {
    page.first_retained.map_or(page.last_seq, |first| first - 1)
}

/// A tenant's feed: reads the log after `cursor` every poll interval (at once again after a
/// full page) and broadcasts each event, until no subscriber is left.
async fn run_feed(
    inner: Arc<Inner>,
    tenant: TenantId,
    id: u64,
    sender: Sender<Arc<StreamedEvent>>,
    mut cursor: i64,
) {
    metrics::gauge!("iot_event_stream_feeds").increment(1.0);
    loop {
        if sender.receiver_count() == 0 && inner.retire(&tenant, id) {
            break;
        }
        let mut full = false;
        match inner.log.events_after(&tenant, cursor, PAGE).await {
            Ok(page) => {
                if page.lost_after(cursor) {
                    // Only after the feed fell a whole retention period behind: its
                    // subscribers lag even more and are dropped by the channel anyway.
                    tracing::warn!(
                        tenant = tenant.as_str(),
                        cursor,
                        "event feed fell behind retention; skipping ahead"
                    );
                    cursor = restart_point(&page).max(cursor);
                }
                full = page.events.len() >= PAGE as usize;
                for event in &page.events {
                    if event.seq <= cursor {
                        continue;
                    }
                    cursor = event.seq;
                    // Overflow mode: never full (the oldest message goes); no active
                    // receiver: nobody to tell.
                    let _ = sender.try_broadcast(inner.streamed(event));
                }
            }
            Err(e) => {
                tracing::warn!(tenant = tenant.as_str(), error = %e, "event feed cannot read the event log; retrying");
            }
        }
        if !full {
            inner.runtime.sleep(inner.settings.poll).await;
        }
    }
    metrics::gauge!("iot_event_stream_feeds").decrement(1.0);
}

/// One open stream's place on the instance's bound.
struct Slot(Arc<Inner>);

impl Slot {
    fn take(inner: &Arc<Inner>) -> Result<Self, OpenStreamError> {
        let limit = inner.settings.max_streams;
        inner
            .open
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| {
                (open < limit).then_some(open + 1)
            })
            .map_err(|_| OpenStreamError::Busy { limit })?;
        metrics::gauge!("iot_event_streams_open").increment(1.0);
        Ok(Self(inner.clone()))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::AcqRel);
        metrics::gauge!("iot_event_streams_open").decrement(1.0);
    }
}

enum Phase {
    /// Reading the log after `after`; `first`: the first page of a reconnect (which may have
    /// to say reset).
    Replay {
        after: i64,
        first: bool,
    },
    Live,
}

/// One stream's state.
struct Subscriber {
    inner: Arc<Inner>,
    tenant: TenantId,
    filter: StreamFilter,
    receiver: Receiver<Arc<StreamedEvent>>,
    /// The greatest seq seen (sent or filtered out): nothing at or below it is sent again.
    last_seen: i64,
    pending: VecDeque<StreamItem>,
    phase: Phase,
    _slot: Slot,
}

impl Subscriber {
    async fn next(mut self) -> Option<(StreamItem, Self)> {
        loop {
            if let Some(item) = self.pending.pop_front() {
                return Some((item, self));
            }
            match self.phase {
                Phase::Replay { after, first } => self.replay(after, first).await?,
                Phase::Live => match self.receiver.recv_direct().await {
                    Ok(event) => {
                        if let Some(item) = self.admit(event) {
                            return Some((item, self));
                        }
                    }
                    Err(RecvError::Overflowed(missed)) => {
                        tracing::info!(
                            tenant = self.tenant.as_str(),
                            missed,
                            "event stream dropped: the client fell behind its buffer"
                        );
                        metrics::counter!("iot_event_streams_dropped_total").increment(1);
                        return None;
                    }
                    Err(RecvError::Closed) => return None,
                },
            }
        }
    }

    /// The event as an item if it is new and wanted; it counts as seen either way.
    fn admit(&mut self, event: Arc<StreamedEvent>) -> Option<StreamItem> {
        if event.seq <= self.last_seen {
            return None;
        }
        self.last_seen = event.seq;
        self.filter
            .admits(event.event_type, &event.group_ids)
            .then_some(StreamItem::Event(event))
    }

    /// Reads one page of the replay into `pending`; `None` when the log cannot be read (the
    /// stream ends; the client reconnects with its `Last-Event-ID`).
    async fn replay(&mut self, after: i64, first: bool) -> Option<()> {
        let page = match self.inner.log.events_after(&self.tenant, after, PAGE).await {
            Ok(page) => page,
            Err(e) => {
                tracing::warn!(tenant = self.tenant.as_str(), error = %e, "event stream ended: cannot read the event log");
                return None;
            }
        };
        if first && page.lost_after(after) {
            self.pending.push_back(StreamItem::Reset { after });
            let restart = restart_point(&page);
            self.last_seen = restart;
            self.phase = Phase::Replay {
                after: restart,
                first: false,
            };
            return Some(());
        }
        let full = page.events.len() >= PAGE as usize;
        for event in &page.events {
            // Rendered only when wanted: a replay may be long and narrowly filtered.
            if event.seq <= self.last_seen {
                continue;
            }
            if !self.filter.admits(event.event_type, &event.group_ids) {
                self.last_seen = event.seq;
                continue;
            }
            if let Some(item) = self.admit(self.inner.streamed(event)) {
                self.pending.push_back(item);
            }
        }
        self.phase = if full {
            Phase::Replay {
                after: self.last_seen,
                first: false,
            }
        } else {
            Phase::Live
        };
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex as StdMutex;

    use domain::{
        Actor, AlertStatus, DeviceGroup, DeviceName, Freshness, GroupName, GroupSlug, Timestamp,
    };
    use futures_util::StreamExt as _;
    use ports::events::{DeviceStateChange, EventSubject, MockEventLog};
    use ports::MockDeviceGroupRepository;
    use tokio::sync::mpsc;

    use super::*;

    const GROUP: Uuid = Uuid::from_u128(77);

    fn tenant() -> TenantId {
        TenantId::parse("tenant-a").expect("valid")
    }

    /// The log the mock answers from: events, the oldest retained seq, the last given out.
    #[derive(Default)]
    struct Log {
        events: Vec<LoggedEvent>,
        last_seq: i64,
    }

    type Shared = Arc<StdMutex<Log>>;

    fn event(seq: i64, event_type: StreamEventType, group: bool) -> LoggedEvent {
        LoggedEvent {
            seq,
            event_type,
            at: Timestamp::now(),
            group_ids: if group { vec![GROUP] } else { Vec::new() },
            subject: EventSubject::Device(DeviceStateChange {
                device_id: Uuid::from_u128(1),
                device_name: DeviceName::parse("pump").expect("valid"),
                alert_status: AlertStatus::Critical,
                freshness: Freshness::Fresh,
            }),
        }
    }

    fn append(log: &Shared, n: usize) {
        let mut log = log.lock().expect("lock");
        for _ in 0..n {
            log.last_seq += 1;
            let seq = log.last_seq;
            log.events
                .push(event(seq, StreamEventType::DeviceState, seq % 2 == 0));
        }
    }

    /// A mocked log answering from `log`, as a store would (seq > after, oldest first).
    fn mock_log(log: &Shared) -> MockEventLog {
        let log = log.clone();
        let mut mock = MockEventLog::new();
        mock.expect_events_after()
            .returning(move |t, after, limit| {
                assert_eq!(t, &tenant(), "only the subscriber's tenant is read");
                assert!((1..=1000).contains(&limit));
                let log = log.lock().expect("lock");
                Ok(EventPage {
                    events: log
                        .events
                        .iter()
                        .filter(|e| e.seq > after)
                        .take(limit as usize)
                        .cloned()
                        .collect(),
                    first_retained: log.events.first().map(|e| e.seq),
                    last_seq: log.last_seq,
                })
            });
        mock
    }

    /// A runtime whose feed polls once per tick the test sends.
    struct Ticked {
        ticks: Arc<tokio::sync::Mutex<mpsc::UnboundedReceiver<()>>>,
    }

    impl Runtime for Ticked {
        fn spawn(&self, task: BoxFuture<'static, ()>) {
            tokio::spawn(task);
        }

        fn sleep(&self, _: Duration) -> BoxFuture<'static, ()> {
            let ticks = self.ticks.clone();
            Box::pin(async move {
                ticks.lock().await.recv().await;
            })
        }
    }

    struct Setup {
        hub: EventHub,
        log: Shared,
        tick: mpsc::UnboundedSender<()>,
    }

    fn setup(buffer: usize, max_streams: usize) -> Setup {
        let log = Shared::default();
        let mut groups = MockDeviceGroupRepository::new();
        groups.expect_get_group_row().returning(|_, key| match key {
            GroupKey::Slug(s) if s.as_str() == "grp-pumps" => Ok(DeviceGroup {
                filter: None,
                id: GROUP,
                group_id: GroupSlug::parse("grp-pumps").expect("valid"),
                name: GroupName::parse("Pumps").expect("valid"),
                description: None,
                member_count: 1,
                created_at: Timestamp::now(),
                updated_at: Timestamp::now(),
                created_by: Actor::parse("a").expect("valid"),
                updated_by: Actor::parse("a").expect("valid"),
                parent_id: None,
            }),
            _ => Err(LookupError::NotFound),
        });
        let (tick, ticks) = mpsc::unbounded_channel();
        let hub = EventHub::new(
            Arc::new(mock_log(&log)),
            Arc::new(groups),
            Arc::new(|e: &LoggedEvent| format!("{{\"seq\":{}}}", e.seq)),
            Arc::new(Ticked {
                ticks: Arc::new(tokio::sync::Mutex::new(ticks)),
            }),
            StreamSettings {
                poll: Duration::from_millis(1),
                buffer,
                max_streams,
            },
        );
        Setup { hub, log, tick }
    }

    fn seq_of(item: &StreamItem) -> i64 {
        match item {
            StreamItem::Event(e) => e.seq,
            StreamItem::Reset { .. } => -1,
        }
    }

    /// The next `n` items' seqs (a reset as -1), failing after a second without one.
    async fn take(stream: &mut BoxStream<'static, StreamItem>, n: usize) -> Vec<i64> {
        let mut seqs = Vec::new();
        for _ in 0..n {
            let item = tokio::time::timeout(Duration::from_secs(1), stream.next())
                .await
                .unwrap_or_else(|_| panic!("no item after {seqs:?}"))
                .unwrap_or_else(|| panic!("stream ended after {seqs:?}"));
            seqs.push(seq_of(&item));
        }
        seqs
    }

    async fn nothing_more(stream: &mut BoxStream<'static, StreamItem>) {
        if let Ok(item) = tokio::time::timeout(Duration::from_millis(100), stream.next()).await {
            panic!("unexpected {item:?}");
        }
    }

    #[tokio::test]
    async fn without_a_last_event_id_only_events_from_now_on_come_in_order() {
        let s = setup(64, 10);
        append(&s.log, 3);
        let mut stream = s
            .hub
            .open(&tenant(), StreamRequest::default())
            .await
            .expect("open");
        append(&s.log, 2);
        s.tick.send(()).expect("tick");
        assert_eq!(take(&mut stream, 2).await, [4, 5]);
        nothing_more(&mut stream).await;
    }

    #[tokio::test]
    async fn a_reconnect_replays_what_it_missed_then_follows_live_without_duplicates() {
        let s = setup(64, 10);
        append(&s.log, 5);
        // A feed is running, at seq 5.
        let mut first = s
            .hub
            .open(&tenant(), StreamRequest::default())
            .await
            .expect("open");
        // Two events the feed has not read yet: the replay below reads them, then the feed
        // broadcasts them too.
        append(&s.log, 2);
        let request = StreamRequest {
            last_event_id: Some(2),
            ..StreamRequest::default()
        };
        let mut second = s.hub.open(&tenant(), request).await.expect("open");
        assert_eq!(take(&mut second, 5).await, [3, 4, 5, 6, 7]);
        s.tick.send(()).expect("tick");
        assert_eq!(take(&mut first, 2).await, [6, 7]);
        append(&s.log, 1);
        s.tick.send(()).expect("tick");
        assert_eq!(take(&mut first, 1).await, [8]);
        assert_eq!(
            take(&mut second, 1).await,
            [8],
            "6 and 7 are not sent twice"
        );
        nothing_more(&mut second).await;
    }

    #[tokio::test]
    async fn a_reconnect_past_retention_is_told_to_reset_then_gets_the_retained_events() {
        let s = setup(64, 10);
        append(&s.log, 12);
        s.log.lock().expect("lock").events.retain(|e| e.seq >= 10);
        let request = StreamRequest {
            last_event_id: Some(3),
            ..StreamRequest::default()
        };
        let mut stream = s.hub.open(&tenant(), request).await.expect("open");
        let first = tokio::time::timeout(Duration::from_secs(1), stream.next())
            .await
            .expect("in time")
            .expect("an item");
        assert_eq!(first, StreamItem::Reset { after: 3 });
        assert_eq!(take(&mut stream, 3).await, [10, 11, 12]);
        nothing_more(&mut stream).await;
        // One whose id is still retained gets no reset.
        let request = StreamRequest {
            last_event_id: Some(9),
            ..StreamRequest::default()
        };
        let mut stream = s.hub.open(&tenant(), request).await.expect("open");
        assert_eq!(take(&mut stream, 3).await, [10, 11, 12]);
    }

    #[tokio::test]
    async fn filters_narrow_by_type_and_group() {
        let s = setup(64, 10);
        {
            let mut log = s.log.lock().expect("lock");
            log.events = vec![
                event(1, StreamEventType::DeviceState, true),
                event(2, StreamEventType::WindowStarted, true),
                event(3, StreamEventType::DeviceState, false),
                event(4, StreamEventType::WindowEnded, true),
            ];
            log.last_seq = 4;
        }
        let by_type = StreamRequest {
            last_event_id: Some(0),
            types: Some(vec![StreamEventType::DeviceState]),
            group: None,
        };
        let mut stream = s.hub.open(&tenant(), by_type).await.expect("open");
        assert_eq!(take(&mut stream, 2).await, [1, 3]);
        let by_group = StreamRequest {
            last_event_id: Some(0),
            types: None,
            group: Some(GroupKey::Slug(
                GroupSlug::parse("grp-pumps").expect("valid"),
            )),
        };
        let mut stream = s.hub.open(&tenant(), by_group).await.expect("open");
        assert_eq!(take(&mut stream, 3).await, [1, 2, 4]);
        let unknown = StreamRequest {
            group: Some(GroupKey::Id(Uuid::from_u128(5))),
            ..StreamRequest::default()
        };
        assert!(matches!(
            s.hub.open(&tenant(), unknown).await,
            Err(OpenStreamError::GroupNotFound)
        ));
    }

    #[tokio::test]
    async fn a_client_that_falls_behind_its_buffer_is_dropped_and_the_others_go_on() {
        let s = setup(16, 10);
        let mut slow = s
            .hub
            .open(&tenant(), StreamRequest::default())
            .await
            .expect("open");
        let mut reader = s
            .hub
            .open(&tenant(), StreamRequest::default())
            .await
            .expect("open");
        nothing_more(&mut slow).await; // following the feed, then never read again
        for burst in 0..6 {
            append(&s.log, 5);
            s.tick.send(()).expect("tick");
            let expected: Vec<i64> = (burst * 5 + 1..=burst * 5 + 5).collect();
            assert_eq!(take(&mut reader, 5).await, expected);
        }
        let rest = tokio::time::timeout(Duration::from_secs(1), slow.collect::<Vec<_>>())
            .await
            .expect("the slow stream ends");
        assert!(rest.len() <= 16, "at most its buffer: {}", rest.len());
        append(&s.log, 1);
        s.tick.send(()).expect("tick");
        assert_eq!(take(&mut reader, 1).await, [31]);
    }

    #[tokio::test]
    async fn closing_the_hub_ends_every_stream_and_refuses_new_ones() {
        let s = setup(16, 10);
        append(&s.log, 2);
        let mut live = s
            .hub
            .open(&tenant(), StreamRequest::default())
            .await
            .expect("open");
        nothing_more(&mut live).await;
        s.hub.close();
        let rest = tokio::time::timeout(Duration::from_secs(1), live.collect::<Vec<_>>())
            .await
            .expect("the stream ends");
        assert!(rest.is_empty());
        assert!(matches!(
            s.hub.open(&tenant(), StreamRequest::default()).await,
            Err(OpenStreamError::Closed)
        ));
        assert_eq!(s.hub.open_streams(), 0);
    }

    #[tokio::test]
    async fn streams_are_bounded_per_instance_and_the_feed_stops_with_its_last_subscriber() {
        let s = setup(16, 2);
        let a = s
            .hub
            .open(&tenant(), StreamRequest::default())
            .await
            .expect("open");
        let b = s
            .hub
            .open(&tenant(), StreamRequest::default())
            .await
            .expect("open");
        assert!(matches!(
            s.hub.open(&tenant(), StreamRequest::default()).await,
            Err(OpenStreamError::Busy { limit: 2 })
        ));
        assert_eq!((s.hub.open_streams(), s.hub.feeds()), (2, 1));
        drop(a);
        let c = s
            .hub
            .open(&tenant(), StreamRequest::default())
            .await
            .expect("room again");
        drop((b, c));
        assert_eq!(s.hub.open_streams(), 0);
        for _ in 0..100 {
            if s.hub.feeds() == 0 {
                return;
            }
            let _ = s.tick.send(());
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("the feed still runs without subscribers");
    }
}
