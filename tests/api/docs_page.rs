//! `/docs` as a person sees it: headless Chromium (Debian's `chromium`) renders the page from
//! the server alone, and every request it makes stays on the server and succeeds. Also the
//! headers that keep the page to its own origin.
//!
//! The browser is driven over the DevTools protocol, which reports every request the page makes
//! (even one that CSP blocks before it leaves), every failed load, console error and exception.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::{SinkExt as _, StreamExt as _};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use crate::helpers::{Store, TestApp};

/// Where Debian's package puts the browser; `CHROMIUM` names another.
const CHROMIUM: &str = "/usr/bin/chromium";
/// How long the page may take to show the reference.
const RENDER_LIMIT: Duration = Duration::from_secs(60);
/// How long to keep listening once it shows: late requests (the search worker, icons) count too.
const SETTLE: Duration = Duration::from_secs(2);

const SCRIPT: &str = "/docs/assets/redoc-2.5.0/redoc.standalone.js";

/// The docs page in a real browser, from the embedded store (the page does not depend on the
/// store).
#[tokio::test]
async fn the_docs_page_renders_in_chromium_from_the_server_alone() {
    let app = TestApp::spawn(Store::Memory).await;
    let spec: Value = serde_json::from_str(
        &std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../openapi/openapi.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let title = spec["info"]["title"].as_str().expect("a title").to_owned();
    let path = "/customer/device-groups/{group_id}";
    let summary = words(
        spec["paths"][path]["get"]["summary"]
            .as_str()
            .expect("a summary"),
    );

    let mut browser = Browser::launch().await;
    let page = browser.open(&format!("{}/docs", app.base)).await;
    let shown = browser
        .wait_for_text(&page, &app.base, RENDER_LIMIT, |text| {
            text.contains(&title) && text.contains(&summary) && text.contains(path)
        })
        .await;
    browser.listen(SETTLE).await;
    let violations = browser
        .evaluate(&page, "JSON.stringify(window.__violations)")
        .await;
    browser.close().await;

    let problems = browser.problems(&app.base);
    assert!(
        problems.is_empty(),
        "/docs in Chromium:\n{}\npage text: {}\nbrowser events:\n{}",
        problems.join("\n"),
        browser.last_text,
        browser.describe_events()
    );
    let Some(shown) = shown else {
        panic!(
            "/docs did not show {title:?}, {summary:?} and {path} within {RENDER_LIMIT:?}:\n{}\nbrowser events:\n{}",
            browser.last_text,
            browser.describe_events()
        )
    };
    assert!(shown.contains(&title));
    assert_eq!(
        violations.as_str(),
        Some("[]"),
        "Content-Security-Policy violations"
    );
    // The page really ran from the vendored script (not, say, a cached or other copy).
    assert!(
        browser
            .requests()
            .iter()
            .any(|url| *url == format!("{}{SCRIPT}", app.base)),
        "{:?}",
        browser.requests()
    );
}

#[tokio::test]
async fn the_docs_page_and_its_assets_allow_their_own_origin_only() {
    let app = TestApp::spawn(Store::Memory).await;
    let client = reqwest::Client::new();
    let page = client
        .get(format!("{}/docs", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let policy = header(&page, "content-security-policy");
    assert!(policy.starts_with("default-src 'self';"), "{policy}");
    for directive in policy.split(';').map(str::trim) {
        // Only keywords, the page's own origin and inline data: no host, no scheme of the web.
        for source in directive.split_whitespace().skip(1) {
            assert!(
                source.starts_with('\'') || source == "data:" || source == "blob:",
                "{directive}"
            );
        }
    }
    assert!(!policy.contains("unsafe-eval"), "{policy}");
    assert_eq!(header(&page, "x-content-type-options"), "nosniff");
    assert!(header(&page, "content-type").starts_with("text/html"));
    let html = page.text().await.unwrap();
    assert!(
        html.contains(&format!(r#"<script src="{SCRIPT}">"#)),
        "{html}"
    );
    assert!(!html.contains("https://"), "{html}");

    let script = client
        .get(format!("{}{SCRIPT}", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(script.status(), StatusCode::OK);
    assert_eq!(
        header(&script, "content-type"),
        "text/javascript; charset=utf-8"
    );
    assert_eq!(header(&script, "content-security-policy"), policy);
    assert_eq!(header(&script, "x-content-type-options"), "nosniff");
    let cache = header(&script, "cache-control");
    assert!(cache.contains("max-age=31536000"), "{cache}");
    let body = script.text().await.unwrap();
    assert!(
        body.len() > 500_000,
        "the whole bundle: {} bytes",
        body.len()
    );
    assert!(!body.contains("cdn.redoc.ly"));

    // The licences ship beside the script, where its first line points.
    for (name, text) in [
        ("LICENSE", "The MIT License"),
        ("redoc.standalone.js.LICENSE.txt", "@license"),
    ] {
        let answer = client
            .get(format!("{}/docs/assets/redoc-2.5.0/{name}", app.base))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), StatusCode::OK, "{name}");
        assert!(header(&answer, "content-type").starts_with("text/plain"));
        assert!(answer.text().await.unwrap().contains(text), "{name}");
    }
    let missing = client
        .get(format!("{}/docs/assets/redoc-2.5.0/other.js", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}

fn header(answer: &reqwest::Response, name: &str) -> String {
    answer
        .headers()
        .get(name)
        .unwrap_or_else(|| panic!("no {name}"))
        .to_str()
        .unwrap()
        .to_owned()
}

/// `text` with each run of whitespace one space, as a rendered page shows it.
fn words(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// A URL short enough to read (`data:` URLs run to kilobytes).
fn short(url: &str) -> String {
    match url.char_indices().nth(100) {
        Some((at, _)) => format!("{}…", &url[..at]),
        None => url.to_owned(),
    }
}

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// A headless Chromium of its own (own profile directory, killed when dropped) and one DevTools
/// connection to it, keeping every event it has been sent.
struct Browser {
    child: Child,
    profile: PathBuf,
    socket: Socket,
    next_id: u64,
    events: Vec<Value>,
    last_text: String,
}

/// A page's DevTools session.
struct Page(String);

/// Recorded in every document before its own scripts run: the violations CSP reports to the page.
const WATCH_VIOLATIONS: &str = "window.__violations = []; \
    document.addEventListener('securitypolicyviolation', \
    e => window.__violations.push(e.violatedDirective + ' ' + e.blockedURI));";

impl Browser {
    async fn launch() -> Self {
        let binary =
            std::env::var_os("CHROMIUM").map_or_else(|| PathBuf::from(CHROMIUM), PathBuf::from);
        assert!(
            binary.exists(),
            "{} not found: the docs page test needs Debian's Chromium (`apt-get install chromium`; \
             CHROMIUM=/path/to/chromium names another)",
            binary.display()
        );
        let unique = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let profile =
            std::env::temp_dir().join(format!("iot-api-chromium-{}-{unique}", std::process::id()));
        let mut child = Command::new(&binary)
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                // Nothing but the test server resolves: whatever else the page asked for could
                // not leave this machine (the test still sees and reports the request).
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
                "--remote-debugging-port=0",
            ])
            .arg(format!("--user-data-dir={}", profile.display()))
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", binary.display()));
        // Chromium says where its DevTools endpoint listens on stderr; the rest of stderr is
        // drained (and dropped) so that it never blocks on a full pipe.
        let mut lines = BufReader::new(child.stderr.take().expect("piped")).lines();
        let mut seen = Vec::new();
        let url = tokio::time::timeout(Duration::from_secs(60), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(at) = line.find("ws://") {
                    return Some(line[at..].trim().to_owned());
                }
                seen.push(line);
            }
            None
        })
        .await
        .ok()
        .flatten()
        .unwrap_or_else(|| panic!("Chromium gave no DevTools address:\n{}", seen.join("\n")));
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        let (socket, _) = tokio_tungstenite::connect_async(url.as_str())
            .await
            .unwrap_or_else(|e| panic!("connect to Chromium at {url}: {e}"));
        Self {
            child,
            profile,
            socket,
            next_id: 0,
            events: Vec::new(),
            last_text: String::new(),
        }
    }

    /// A new tab watched from before its first request (network, console, log, exceptions),
    /// navigated to `url`.
    async fn open(&mut self, url: &str) -> Page {
        let target = self
            .call(None, "Target.createTarget", json!({"url": "about:blank"}))
            .await;
        let attached = self
            .call(
                None,
                "Target.attachToTarget",
                json!({"targetId": target["targetId"], "flatten": true}),
            )
            .await;
        let page = Page(
            attached["sessionId"]
                .as_str()
                .expect("a session")
                .to_owned(),
        );
        for domain in ["Network", "Page", "Runtime", "Log"] {
            self.call(Some(&page), &format!("{domain}.enable"), json!({}))
                .await;
        }
        self.call(
            Some(&page),
            "Page.addScriptToEvaluateOnNewDocument",
            json!({"source": WATCH_VIOLATIONS}),
        )
        .await;
        let navigated = self
            .call(Some(&page), "Page.navigate", json!({"url": url}))
            .await;
        assert!(navigated.get("errorText").is_none(), "{navigated}");
        page
    }

    /// The page's text once `done` holds for it; `None` after `limit`, or as soon as something
    /// went wrong (see [`Browser::problems`]).
    async fn wait_for_text(
        &mut self,
        page: &Page,
        base: &str,
        limit: Duration,
        done: impl Fn(&str) -> bool,
    ) -> Option<String> {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline && self.problems(base).is_empty() {
            let text = self
                .evaluate(page, "document.body ? document.body.innerText : ''")
                .await;
            self.last_text = words(text.as_str().unwrap_or_default());
            if done(&self.last_text) {
                return Some(self.last_text.clone());
            }
            self.listen(Duration::from_millis(250)).await;
        }
        None
    }

    async fn evaluate(&mut self, page: &Page, expression: &str) -> Value {
        let answer = self
            .call(
                Some(page),
                "Runtime.evaluate",
                json!({"expression": expression, "returnByValue": true}),
            )
            .await;
        answer["result"]["value"].clone()
    }

    /// Sends a command and answers its result; events that arrive meanwhile are kept.
    async fn call(&mut self, page: Option<&Page>, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut command = json!({"id": id, "method": method, "params": params});
        if let Some(Page(session)) = page {
            command["sessionId"] = json!(session);
        }
        self.socket
            .send(Message::text(command.to_string()))
            .await
            .unwrap_or_else(|e| panic!("{method}: {e}"));
        let answer = tokio::time::timeout(Duration::from_secs(30), async {
            loop {
                let message = self.receive().await;
                if message["id"] == json!(id) {
                    return message;
                }
                self.events.push(message);
            }
        })
        .await
        .unwrap_or_else(|_| panic!("Chromium did not answer {method}"));
        assert!(answer.get("error").is_none(), "{method}: {answer}");
        answer["result"].clone()
    }

    /// Keeps the events sent within `period`.
    async fn listen(&mut self, period: Duration) {
        let deadline = tokio::time::Instant::now() + period;
        while let Ok(message) = tokio::time::timeout_at(deadline, self.receive()).await {
            self.events.push(message);
        }
    }

    async fn receive(&mut self) -> Value {
        loop {
            match self.socket.next().await {
                Some(Ok(Message::Text(text))) => {
                    return serde_json::from_str(&text).expect("DevTools sends JSON")
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => panic!("DevTools connection: {e}"),
                None => panic!("Chromium closed the DevTools connection"),
            }
        }
    }

    async fn close(&mut self) {
        let _ = tokio::time::timeout(
            Duration::from_secs(10),
            self.call(None, "Browser.close", json!({})),
        )
        .await;
        let _ = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
    }

    fn events_named<'a>(&'a self, method: &'a str) -> impl Iterator<Item = &'a Value> + 'a {
        self.events
            .iter()
            .filter(move |e| e["method"] == json!(method))
            .map(|e| &e["params"])
    }

    /// Every URL the page requested.
    fn requests(&self) -> Vec<String> {
        self.events_named("Network.requestWillBeSent")
            .filter_map(|p| p["request"]["url"].as_str())
            .map(ToOwned::to_owned)
            .collect()
    }

    /// What went wrong, one line each: a request to another origin, a failed load or an error
    /// status, a console error, a log error or any CSP report, an uncaught exception.
    fn problems(&self, base: &str) -> Vec<String> {
        let own = format!("{base}/");
        let own_blob = format!("blob:{base}/");
        let mut problems: Vec<String> = self
            .requests()
            .into_iter()
            // `data:` is inline content (the page's icons), not a request to anywhere; a `blob:`
            // of the page's origin is data the page made (Redoc's search worker).
            .filter(|url| {
                !url.starts_with(&own) && !url.starts_with("data:") && !url.starts_with(&own_blob)
            })
            .map(|url| format!("request to another origin: {}", short(&url)))
            .collect();
        problems.extend(self.events_named("Network.loadingFailed").map(|p| {
            format!(
                "failed load: {} {} {}",
                p["type"], p["errorText"], p["blockedReason"]
            )
        }));
        problems.extend(
            self.events_named("Network.responseReceived")
                .filter(|p| p["response"]["status"].as_u64().is_none_or(|s| s >= 400))
                .map(|p| {
                    format!(
                        "{} answered {}",
                        p["response"]["url"], p["response"]["status"]
                    )
                }),
        );
        problems.extend(
            self.events_named("Log.entryAdded")
                .filter(|p| {
                    p["entry"]["level"] == json!("error")
                        || p["entry"]["text"]
                            .as_str()
                            .is_some_and(|t| t.contains("Content Security Policy"))
                })
                .map(|p| format!("log: {}", p["entry"]["text"])),
        );
        problems.extend(
            self.events_named("Runtime.consoleAPICalled")
                .filter(|p| p["type"] == json!("error") || p["type"] == json!("assert"))
                .map(|p| format!("console error: {}", p["args"])),
        );
        problems.extend(
            self.events_named("Runtime.exceptionThrown")
                .map(|p| format!("exception: {}", p["exceptionDetails"])),
        );
        problems
    }

    /// The events worth reading when the test fails (not the bodies).
    fn describe_events(&self) -> String {
        self.events
            .iter()
            .filter_map(|e| {
                let method = e["method"].as_str()?;
                let p = &e["params"];
                Some(match method {
                    "Network.requestWillBeSent" => {
                        format!("request {}", short(p["request"]["url"].as_str()?))
                    }
                    "Network.responseReceived" => format!(
                        "response {} {}",
                        p["response"]["status"],
                        short(p["response"]["url"].as_str()?)
                    ),
                    "Network.loadingFailed" => {
                        format!("failed {} {}", p["errorText"], p["blockedReason"])
                    }
                    "Log.entryAdded" => {
                        format!("log {} {}", p["entry"]["level"], p["entry"]["text"])
                    }
                    "Runtime.consoleAPICalled" => format!("console {} {}", p["type"], p["args"]),
                    "Runtime.exceptionThrown" => format!("exception {}", p["exceptionDetails"]),
                    _ => return None,
                })
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}
