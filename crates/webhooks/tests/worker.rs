//! The worker over the embedded store with a test-only [`EventPayloads`]: an event's payload is
//! rendered at the first attempt (`{"type", "timestamp", "data"}`), sent signed to a real
//! receiver on 127.0.0.1, and the outcome recorded; an event no longer retained fails; the
//! placeholder renderer leaves deliveries pending, never sent empty.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use domain::{TenantId, Timestamp};
use ports::{
    DeliveryState, EventPayloads, NewWebhook, StoreError, UnwiredEventPayloads, WebhookRepository,
};
use store_memory::MemoryStore;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use uuid::Uuid;

/// Renders event 7 only; the others are no longer retained.
struct TestPayloads;

#[async_trait]
impl EventPayloads for TestPayloads {
    async fn event_data(&self, _tenant: &TenantId, seq: i64) -> Result<Option<String>, StoreError> {
        Ok((seq == 7).then(|| r#"{"alert": {"id": "a-7"}, "group_ids": []}"#.to_owned()))
    }
}

/// Answers 200 to every request and keeps (headers, body) of each.
async fn receiver() -> (u16, Arc<Mutex<Vec<(String, String)>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("address").port();
    let got = Arc::new(Mutex::new(Vec::new()));
    let kept = got.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let kept = kept.clone();
            tokio::spawn(async move {
                let mut buffer = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let Ok(n) = socket.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    buffer.extend_from_slice(&chunk[..n]);
                    let text = String::from_utf8_lossy(&buffer).to_string();
                    let Some((head, body)) = text.split_once("\r\n\r\n") else {
                        continue;
                    };
                    let length: usize = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length:")
                                .map(|v| v.trim().parse().unwrap_or(0))
                        })
                        .unwrap_or(0);
                    if body.len() < length {
                        continue;
                    }
                    kept.lock()
                        .expect("lock")
                        .push((head.to_owned(), body.to_owned()));
                    let _ = socket
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                        .await;
                    buffer.clear();
                }
            });
        }
    });
    (port, got)
}

fn settings() -> webhooks::worker::Settings {
    webhooks::worker::Settings {
        poll: Duration::from_millis(20),
        allow_private: true,
        ..webhooks::worker::Settings::default()
    }
}

async fn subscribe(store: &MemoryStore, tenant: &TenantId, port: u16) -> Uuid {
    store
        .create_webhook(
            tenant,
            NewWebhook {
                id: Uuid::new_v4(),
                url: format!("http://127.0.0.1:{port}/hook"),
                event_types: vec!["alert.opened".to_owned()],
                description: String::new(),
                secret: webhooks::new_secret().expect("random"),
                created_at: Timestamp::now(),
            },
        )
        .await
        .expect("created")
        .id
}

async fn until(limit: Duration, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < limit, "not within {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn an_events_payload_is_rendered_at_its_first_attempt_and_sent() {
    let (port, got) = receiver().await;
    let store = Arc::new(MemoryStore::new());
    let tenant = TenantId::parse("worker-render").expect("tenant");
    let hook = subscribe(&store, &tenant, port).await;
    let at = Timestamp::now();
    assert_eq!(
        store
            .enqueue_webhook_event(&tenant, 7, "alert.opened", at)
            .expect("queued"),
        1
    );
    assert_eq!(
        store
            .enqueue_webhook_event(&tenant, 7, "alert.opened", at)
            .expect("once"),
        0
    );
    assert_eq!(
        store
            .enqueue_webhook_event(&tenant, 8, "alert.opened", at)
            .expect("queued"),
        1
    );
    assert_eq!(
        store
            .enqueue_webhook_event(&tenant, 9, "window.started", at)
            .expect("not subscribed"),
        0
    );
    let worker = webhooks::worker::spawn(store.clone(), Arc::new(TestPayloads), settings())
        .expect("started");
    until(Duration::from_secs(10), || {
        !got.lock().expect("lock").is_empty()
    })
    .await;
    let (head, body) = got.lock().expect("lock")[0].clone();
    let expected = webhooks::payload(
        "alert.opened",
        at,
        serde_json::json!({"alert": {"id": "a-7"}, "group_ids": []}),
    );
    assert_eq!(body, expected);
    assert!(head.to_ascii_lowercase().contains("webhook-signature: v1,"));
    let store_ref = store.clone();
    let mut states = Vec::new();
    for _ in 0..250 {
        let list = store_ref
            .list_deliveries(&tenant, hook, 10)
            .await
            .expect("list");
        states = list.iter().map(|d| (d.event_seq, d.state)).collect();
        states.sort_by_key(|s| s.0);
        if states.iter().all(|s| s.1 != DeliveryState::Pending) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        states,
        [
            (Some(7), DeliveryState::Delivered),
            (Some(8), DeliveryState::Failed)
        ]
    );
    let list = store
        .list_deliveries(&tenant, hook, 10)
        .await
        .expect("list");
    let gone = list
        .iter()
        .find(|d| d.event_seq == Some(8))
        .expect("listed");
    assert!(gone.attempts[0]
        .error
        .as_deref()
        .is_some_and(|e| e.contains("no longer retained")));
    worker.stop().await;
    assert_eq!(
        got.lock().expect("lock").len(),
        1,
        "only the rendered event was sent"
    );
}

#[tokio::test]
async fn the_unwired_placeholder_never_sends_an_event_and_keeps_it_pending() {
    let (port, got) = receiver().await;
    let store = Arc::new(MemoryStore::new());
    let tenant = TenantId::parse("worker-unwired").expect("tenant");
    let hook = subscribe(&store, &tenant, port).await;
    store
        .enqueue_webhook_event(&tenant, 1, "alert.opened", Timestamp::now())
        .expect("queued");
    let worker = webhooks::worker::spawn(store.clone(), Arc::new(UnwiredEventPayloads), settings())
        .expect("started");
    let mut shown = Vec::new();
    for _ in 0..250 {
        shown = store
            .list_deliveries(&tenant, hook, 10)
            .await
            .expect("list");
        if !shown[0].attempts.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    worker.stop().await;
    assert_eq!(shown[0].state, DeliveryState::Pending, "retried later");
    assert!(shown[0].attempts[0]
        .error
        .as_deref()
        .is_some_and(|e| e.contains("not wired")));
    assert!(got.lock().expect("lock").is_empty());
}

/// The guard holds at delivery time too: a stored URL whose name resolves to loopback (as after
/// a DNS change), or a loopback literal, is never connected to while private targets are off.
#[tokio::test]
async fn deliveries_never_connect_to_private_addresses_when_they_are_not_allowed() {
    let (port, got) = receiver().await;
    let store = Arc::new(MemoryStore::new());
    let tenant = TenantId::parse("worker-guard").expect("tenant");
    let mut hooks = Vec::new();
    for url in [
        format!("http://localhost:{port}/hook"),
        format!("http://127.0.0.1:{port}/hook"),
    ] {
        let hook = store
            .create_webhook(
                &tenant,
                NewWebhook {
                    id: Uuid::new_v4(),
                    url,
                    event_types: vec!["alert.opened".to_owned()],
                    description: String::new(),
                    secret: webhooks::new_secret().expect("random"),
                    created_at: Timestamp::now(),
                },
            )
            .await
            .expect("created")
            .id;
        store
            .enqueue_test(&tenant, hook, "{}", Timestamp::now())
            .await
            .expect("queued");
        hooks.push(hook);
    }
    let worker = webhooks::worker::spawn(
        store.clone(),
        Arc::new(TestPayloads),
        webhooks::worker::Settings {
            allow_private: false,
            ..settings()
        },
    )
    .expect("started");
    let mut errors = Vec::new();
    for _ in 0..250 {
        errors.clear();
        for hook in &hooks {
            let list = store
                .list_deliveries(&tenant, *hook, 10)
                .await
                .expect("list");
            if let Some(attempt) = list[0].attempts.first() {
                errors.push(attempt.error.clone().unwrap_or_default());
            }
        }
        if errors.len() == hooks.len() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    worker.stop().await;
    assert_eq!(errors.len(), 2, "both tried");
    assert!(errors[0].contains("resolves to"), "{}", errors[0]);
    assert!(errors[1].starts_with("url refused"), "{}", errors[1]);
    assert!(
        got.lock().expect("lock").is_empty(),
        "nothing reached the receiver"
    );
}

/// A receiver that accepts and never answers costs one timeout per attempt; one that answers
/// an endless body is read to 64 KiB and no further (the attempt ends well before the timeout).
#[tokio::test]
async fn silent_receivers_time_out_and_endless_answers_are_cut_at_64_kib() {
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let silent_port = silent.local_addr().expect("address").port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            held.push(socket); // never answered
        }
    });
    let endless = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let endless_port = endless.local_addr().expect("address").port();
    let sent = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = sent.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = endless.accept().await {
            let counted = counted.clone();
            tokio::spawn(async move {
                let mut chunk = [0u8; 4096];
                let _ = socket.read(&mut chunk).await;
                let _ = socket
                    .write_all(b"HTTP/1.1 500 Oops\r\ntransfer-encoding: chunked\r\n\r\n")
                    .await;
                let piece = format!("{:x}\r\n{}\r\n", 1024, "x".repeat(1024));
                // Stops when the client closes; 10 MiB at most.
                for _ in 0..10_240 {
                    if socket.write_all(piece.as_bytes()).await.is_err() {
                        return;
                    }
                    counted.fetch_add(1024, std::sync::atomic::Ordering::Relaxed);
                }
            });
        }
    });
    let store = Arc::new(MemoryStore::new());
    let tenant = TenantId::parse("worker-limits").expect("tenant");
    let quiet = subscribe(&store, &tenant, silent_port).await;
    let chatty = subscribe(&store, &tenant, endless_port).await;
    for hook in [quiet, chatty] {
        store
            .enqueue_test(&tenant, hook, "{}", Timestamp::now())
            .await
            .expect("queued");
    }
    let timeout = Duration::from_millis(1500);
    let worker = webhooks::worker::spawn(
        store.clone(),
        Arc::new(TestPayloads),
        webhooks::worker::Settings {
            timeout,
            ..settings()
        },
    )
    .expect("started");
    let mut attempts = Vec::new();
    for _ in 0..250 {
        attempts.clear();
        for hook in [quiet, chatty] {
            let list = store
                .list_deliveries(&tenant, hook, 10)
                .await
                .expect("list");
            if let Some(a) = list[0].attempts.first() {
                attempts.push(a.clone());
            }
        }
        if attempts.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    worker.stop().await;
    assert_eq!(attempts.len(), 2, "both tried");
    let (silent, chatty) = (&attempts[0], &attempts[1]);
    assert_eq!(silent.status, None);
    assert!(
        silent
            .error
            .as_deref()
            .is_some_and(|e| e.starts_with("timed out")),
        "{:?}",
        silent.error
    );
    assert!(silent.duration_ms >= 1400, "{} ms", silent.duration_ms);
    assert_eq!(chatty.status, Some(500));
    assert!(
        chatty.duration_ms < 1400,
        "{} ms: not read to the end",
        chatty.duration_ms
    );
    assert!(
        chatty
            .error
            .as_deref()
            .is_some_and(|e| e.starts_with("HTTP 500: xxx") && e.len() < 300),
        "{:?}",
        chatty.error
    );
    let written = sent.load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        written < 1024 * 1024,
        "{written} bytes written before the client stopped reading"
    );
}
