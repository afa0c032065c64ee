//! One attempt of a delivery: a signed POST, its answer read to at most 64 KiB.

use std::time::{Duration, Instant};

use reqwest::header::{CONTENT_TYPE, USER_AGENT};
use uuid::Uuid;

use crate::target::{self, GuardedResolver};

/// Bytes of a receiver's answer read at most (the rest is not read).
pub const BODY_READ_MAX: usize = 64 * 1024;
/// Characters of a non-2xx answer's body kept in the attempt's `error`.
const ERROR_BODY_KEPT: usize = 200;

/// The `webhook-id` of a delivery: stable over its retries.
#[must_use]
pub fn message_id(delivery: Uuid) -> String {
    format!("msg_{}", delivery.simple())
}

/// What the receiver made of an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// `None` when no answer came.
    pub status: Option<u16>,
    pub duration: Duration,
    /// `None` for a 2xx.
    pub error: Option<String>,
}

impl Answer {
    #[must_use]
    pub fn delivered(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

/// The deliveries' HTTP client: `timeout` for a whole attempt, no redirects (a 3xx is a
/// failure: following it could lead anywhere), no proxy from the environment, and DNS through
/// the SSRF guard.
///
/// # Errors
/// When the TLS backend cannot start.
pub fn client(timeout: Duration, allow_private: bool) -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .dns_resolver(std::sync::Arc::new(GuardedResolver { allow_private }))
        .pool_idle_timeout(Duration::from_secs(30))
        .build()?)
}

/// Posts `body` to `url`, signed with `secret` as message `id` at the current time.
pub async fn attempt(
    client: &reqwest::Client,
    allow_private: bool,
    url: &str,
    secret: &str,
    id: &str,
    body: &str,
) -> Answer {
    let started = Instant::now();
    let failed = |error: String| Answer {
        status: None,
        duration: started.elapsed(),
        error: Some(error),
    };
    let url = match target::parse(url) {
        Ok(url) => url,
        Err(e) => return failed(format!("url refused: {e}")),
    };
    if let Err(e) = target::check_literal(&url, allow_private) {
        return failed(format!("url refused: {e}"));
    }
    // The attempt's own time: receivers refuse timestamps minutes old, so a retry is signed
    // anew (same id and body).
    let timestamp = time::OffsetDateTime::now_utc().unix_timestamp();
    let signature = match crate::sign::signature(secret, id, timestamp, body) {
        Ok(s) => s,
        Err(e) => return failed(e.to_string()),
    };
    let sent = client
        .post(url)
        .header(CONTENT_TYPE, "application/json")
        .header(
            USER_AGENT,
            concat!("iot-api-webhooks/", env!("CARGO_PKG_VERSION")),
        )
        .header("webhook-id", id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(body.to_owned())
        .send()
        .await;
    let mut response = match sent {
        Ok(r) => r,
        Err(e) => return failed(describe(&e)),
    };
    let status = response.status().as_u16();
    let mut read = 0usize;
    let mut kept = Vec::new();
    let mut read_error = None;
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = ERROR_BODY_KEPT.saturating_sub(kept.len());
                kept.extend_from_slice(&chunk[..chunk.len().min(room)]);
                read += chunk.len();
                if read >= BODY_READ_MAX {
                    break; // the rest is never read: dropping the response closes it
                }
            }
            Ok(None) => break,
            Err(e) => {
                read_error = Some(describe(&e));
                break;
            }
        }
    }
    let delivered = (200..300).contains(&status);
    let error = if delivered {
        None
    } else {
        let text = String::from_utf8_lossy(&kept);
        let text = text.trim();
        Some(match (text.is_empty(), read_error) {
            (_, Some(e)) => format!("HTTP {status}; reading the answer failed: {e}"),
            (true, None) => format!("HTTP {status}"),
            (false, None) => format!("HTTP {status}: {text}"),
        })
    };
    Answer {
        status: Some(status),
        duration: started.elapsed(),
        error,
    }
}

/// A failed request in a few words, with its causes (the guard's refusal among them).
fn describe(e: &reqwest::Error) -> String {
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else {
        "request failed"
    };
    let mut causes = Vec::new();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !causes.contains(&text) {
            causes.push(text);
        }
        source = cause.source();
    }
    if causes.is_empty() {
        what.to_owned()
    } else {
        format!("{what}: {}", causes.join(": "))
    }
}
