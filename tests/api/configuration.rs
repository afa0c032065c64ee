//! The command line: `--help`, settings as flags or environment variables, bad settings refused
//! at start with one clear line, and secrets kept out of stderr.

use std::time::Duration;

use reqwest::StatusCode;
use test_db::TestDatabase;

use crate::helpers::{run_binary, token, Exited, TestApp, SECRET};

/// The password put into `DATABASE_URL`, which must never reach the output.
const DB_PASSWORD: &str = "hunter2secret";

/// Starts `serve` with `args` and nothing in its environment but `env`, and waits for its
/// listening line.
async fn start(args: &[&str], env: &[(&str, &str)]) -> TestApp {
    TestApp::builder()
        .bare()
        .args(args)
        .envs(env.iter().copied())
        .spawn()
        .await
}

/// Runs `serve` with `args` and nothing in its environment but `env` to its end (it must end
/// within 60 s).
async fn run_serve(args: &[&str], env: &[(&str, &str)]) -> Exited {
    TestApp::builder()
        .bare()
        .args(args)
        .envs(env.iter().copied())
        .run_to_exit(Duration::from_secs(60))
        .await
}

/// The lines of a failed start that say what failed: every non-empty line but clap's pointer
/// to `--help`.
fn error_lines(stderr: &str) -> Vec<&str> {
    stderr
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with("For more information, try '--help'"))
        .collect()
}

/// Asserts a start with `args` and `env` fails with a non-zero status and exactly one error line
/// that contains each of `names`; answers that line.
async fn refused(args: &[&str], env: &[(&str, &str)], names: &[&str]) -> String {
    let Exited { status, stderr, .. } = run_serve(args, env).await;
    assert!(!status.success(), "{args:?} {env:?} started:\n{stderr}");
    let lines = error_lines(&stderr);
    assert_eq!(lines.len(), 1, "{args:?} {env:?}: not one line:\n{stderr}");
    for name in names {
        assert!(
            lines[0].contains(name),
            "{args:?} {env:?}: {name} not named in {:?}",
            lines[0]
        );
    }
    assert!(!stderr.contains("panicked"), "{stderr}");
    lines[0].to_owned()
}

/// The basic settings of a start that works.
fn good_env() -> Vec<(&'static str, &'static str)> {
    vec![
        ("IOT_BIND", "127.0.0.1:0"),
        ("IOT_JWT_SECRET", SECRET),
        ("IOT_WORKERS", "1"),
        ("RUST_LOG", "info"),
    ]
}

fn with<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut env: Vec<(&'a str, &'a str)> = good_env();
    for (key, value) in extra {
        env.retain(|(k, _)| k != key);
        env.push((key, value));
    }
    env
}

/// `url` with [`DB_PASSWORD`] as its password (the test cluster trusts local connections, so
/// any password is accepted); a URL that has a password of its own keeps it, and that is the
/// one to look for.
fn with_password(url: &str) -> (String, String) {
    let scheme_end = url.find("://").expect("a postgres:// URL") + 3;
    let authority_end = url[scheme_end..]
        .find(['/', '?'])
        .map_or(url.len(), |i| scheme_end + i);
    let authority = &url[scheme_end..authority_end];
    match authority.rfind('@') {
        Some(at) if authority[..at].contains(':') => {
            let password = &authority[..at][authority[..at].find(':').unwrap() + 1..];
            (url.to_owned(), password.to_owned())
        }
        Some(at) => (
            format!(
                "{}{}:{DB_PASSWORD}{}",
                &url[..scheme_end],
                &authority[..at],
                &url[scheme_end + at..]
            ),
            DB_PASSWORD.to_owned(),
        ),
        None => (
            format!(
                "{}postgres:{DB_PASSWORD}@{}",
                &url[..scheme_end],
                &url[scheme_end..]
            ),
            DB_PASSWORD.to_owned(),
        ),
    }
}

#[test]
fn passwords_are_put_into_urls() {
    assert_eq!(
        with_password("postgres://postgres@127.0.0.1:5/db"),
        (
            format!("postgres://postgres:{DB_PASSWORD}@127.0.0.1:5/db"),
            DB_PASSWORD.to_owned()
        )
    );
    assert_eq!(
        with_password("postgres://u:pw@h/db?x=1"),
        ("postgres://u:pw@h/db?x=1".to_owned(), "pw".to_owned())
    );
}

// ---------------------------------------------------------------------------------------------
// Help

#[tokio::test]
async fn help_lists_the_subcommands() {
    let Exited {
        status,
        stdout,
        stderr,
        ..
    } = run_binary(&["--help"], &[]).await;
    assert!(status.success(), "{stderr}");
    let commands: Vec<&str> = stdout
        .lines()
        .skip_while(|l| !l.starts_with("Commands:"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    for command in ["serve", "openapi", "token"] {
        assert!(
            commands.contains(&command),
            "{command} missing from:\n{stdout}"
        );
    }
}

/// The help entry of `--flag`: its line and the description lines under it.
fn entry<'a>(help: &'a str, flag: &str) -> String {
    let lines: Vec<&'a str> = help.lines().collect();
    let start = lines
        .iter()
        .position(|l| {
            let l = l.trim_start();
            l.starts_with(&format!("{flag} "))
                || l == flag
                || l.contains(&format!(", {flag} "))
                || l.contains(&format!(", {flag}"))
        })
        .unwrap_or_else(|| panic!("{flag} is not in:\n{help}"));
    let is_entry = |l: &str| {
        let l = l.trim_start();
        l.starts_with("--")
            || (l.starts_with('-') && l.chars().nth(1).is_some_and(|c| c.is_ascii_alphabetic()))
    };
    let mut text = lines[start].to_owned();
    for line in &lines[start + 1..] {
        if is_entry(line) || !line.starts_with(' ') {
            break;
        }
        text.push(' ');
        text.push_str(line.trim());
    }
    text
}

#[tokio::test]
async fn serve_help_lists_every_setting_with_its_env_var_and_default() {
    // Settings in the environment must not be echoed by the help, the secret ones least of all.
    let url = format!("postgres://u:{DB_PASSWORD}@127.0.0.1:1/db");
    let Exited {
        status,
        stdout,
        stderr,
        ..
    } = run_binary(
        &["serve", "--help"],
        &[("IOT_JWT_SECRET", SECRET), ("DATABASE_URL", &url)],
    )
    .await;
    assert!(status.success(), "{stderr}");
    // The signing secret is no flag in the help (a flag shows in `ps`): the help names its
    // environment variable instead.
    assert!(!stdout.contains("--jwt-secret"), "{stdout}");
    assert!(
        stdout.contains("IOT_JWT_SECRET environment variable"),
        "{stdout}"
    );
    let settings: [(&str, &str, Option<&str>); 10] = [
        ("--bind", "IOT_BIND", Some("127.0.0.1:8080")),
        ("--database-url", "DATABASE_URL", None),
        ("--db-pool-size", "IOT_DB_POOL_SIZE", Some("8")),
        (
            "--db-wait-timeout-ms",
            "IOT_DB_WAIT_TIMEOUT_MS",
            Some("2000"),
        ),
        (
            "--request-timeout-ms",
            "IOT_REQUEST_TIMEOUT_MS",
            Some("5000"),
        ),
        ("--workers", "IOT_WORKERS", None),
        (
            "--shutdown-timeout-secs",
            "IOT_SHUTDOWN_TIMEOUT_SECS",
            Some("30"),
        ),
        (
            "--shutdown-drain-secs",
            "IOT_SHUTDOWN_DRAIN_SECS",
            Some("5"),
        ),
        (
            "--db-start-timeout-secs",
            "IOT_DB_START_TIMEOUT_SECS",
            Some("60"),
        ),
        ("--metrics-bind", "IOT_METRICS_BIND", None),
    ];
    for (flag, env, default) in settings {
        let text = entry(&stdout, flag);
        assert!(
            text.contains(&format!("[env: {env}")),
            "{flag}: no [env: {env}] in {text:?}"
        );
        match default {
            Some(default) => assert!(
                text.contains(&format!("[default: {default}]")),
                "{flag}: no [default: {default}] in {text:?}"
            ),
            None => assert!(
                !text.contains("[default: "),
                "{flag} has a default: {text:?}"
            ),
        }
        // Every entry says what the setting does.
        let description = text
            .split_once('>')
            .map_or("", |(_, d)| d)
            .split("[env:")
            .next()
            .unwrap_or("")
            .trim();
        assert!(description.len() > 10, "{flag}: no description in {text:?}");
    }
    assert!(
        entry(&stdout, "--workers").contains("one per core"),
        "{stdout}"
    );
    assert!(
        !stdout.contains(SECRET) && !stderr.contains(SECRET),
        "{stdout}"
    );
    assert!(
        !stdout.contains(DB_PASSWORD) && !stderr.contains(DB_PASSWORD),
        "{stdout}"
    );
}

// ---------------------------------------------------------------------------------------------
// Flags and environment variables

#[tokio::test]
async fn flags_work_as_well_as_environment_variables() {
    // Flags alone.
    let server = start(
        &[
            "--bind",
            "127.0.0.1:0",
            "--jwt-secret",
            SECRET,
            "--workers",
            "1",
            "--db-pool-size",
            "3",
            "--request-timeout-ms",
            "4000",
        ],
        &[],
    )
    .await;
    let client = reqwest::Client::new();
    let response = client
        .get(format!("{}/api/groups", server.base))
        .bearer_auth(token("acme", &["viewer"]))
        .send()
        .await
        .expect("request");
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "the token signed with the flag's secret is accepted"
    );
    server.kill().await;

    // A flag wins over its environment variable: the environment's address is taken, its
    // secret too short; the flags' are fine.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let taken_address = taken.local_addr().unwrap().to_string();
    let server = start(
        &["--bind", "127.0.0.1:0", "--jwt-secret", SECRET],
        &[
            ("IOT_BIND", &taken_address),
            ("IOT_JWT_SECRET", "short"),
            ("IOT_WORKERS", "1"),
        ],
    )
    .await;
    assert_ne!(server.base, format!("http://{taken_address}"));
    let response = client
        .get(format!("{}/health/live", server.base))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::OK);
    server.kill().await;

    // Environment variables alone.
    let server = start(&[], &good_env()).await;
    let response = client
        .get(format!("{}/health/live", server.base))
        .send()
        .await
        .expect("request");
    assert_eq!(response.status(), StatusCode::OK);
    server.kill().await;
}

#[tokio::test]
async fn the_bind_setting_is_obeyed() {
    // Find a free port, release it, and ask for it by flag and then by environment variable.
    for by_flag in [true, false] {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let address = format!("127.0.0.1:{port}");
        let server = if by_flag {
            start(&["--bind", &address], &with(&[("IOT_BIND", "127.0.0.1:0")])).await
        } else {
            start(&[], &with(&[("IOT_BIND", &address)])).await
        };
        assert_eq!(server.base, format!("http://{address}"));
        server.kill().await;
    }
}

// ---------------------------------------------------------------------------------------------
// Bad settings

#[tokio::test]
async fn an_unparsable_database_url_stops_the_start() {
    refused(
        &[],
        &with(&[("DATABASE_URL", "postgres://host:notaport/db")]),
        &["DATABASE_URL"],
    )
    .await;
    let url = format!("postgres://user:{DB_PASSWORD}@host:notaport/db");
    let line = refused(&["--database-url", &url], &good_env(), &["DATABASE_URL"]).await;
    assert!(!line.contains(DB_PASSWORD), "{line}");
    for url in [
        "not a url",
        "postgres://u@127.0.0.1:99999/db",
        "postgres://u@127.0.0.1:1/db?sslmode=sometimes",
    ] {
        refused(&[], &with(&[("DATABASE_URL", url)]), &["DATABASE_URL"]).await;
    }
}

#[tokio::test]
async fn a_short_secret_stops_the_start() {
    let short = "s".repeat(31);
    let line = refused(
        &[],
        &with(&[("IOT_JWT_SECRET", &short)]),
        &["IOT_JWT_SECRET", "32"],
    )
    .await;
    assert!(!line.contains(&short), "the secret is printed: {line}");
    refused(&["--jwt-secret", "tiny"], &good_env(), &["IOT_JWT_SECRET"]).await;
    // Exactly 32 bytes is enough.
    let server = start(
        &[],
        &with(&[("IOT_JWT_SECRET", "0123456789abcdef0123456789abcdef")]),
    )
    .await;
    server.kill().await;
}

#[tokio::test]
async fn a_taken_port_stops_the_start() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let address = taken.local_addr().unwrap().to_string();
    refused(&[], &with(&[("IOT_BIND", &address)]), &[&address]).await;
    refused(&["--bind", &address], &good_env(), &[&address]).await;
    // The metrics address as well.
    refused(
        &[],
        &with(&[("IOT_METRICS_BIND", &address)]),
        &[&address, "metrics"],
    )
    .await;
    // And an address that is none.
    refused(&[], &with(&[("IOT_BIND", "nonsense")]), &["nonsense"]).await;
}

#[tokio::test]
async fn a_number_that_is_none_stops_the_start() {
    for (env, flag) in [
        ("IOT_DB_POOL_SIZE", "--db-pool-size"),
        ("IOT_DB_WAIT_TIMEOUT_MS", "--db-wait-timeout-ms"),
        ("IOT_REQUEST_TIMEOUT_MS", "--request-timeout-ms"),
        ("IOT_WORKERS", "--workers"),
        ("IOT_SHUTDOWN_TIMEOUT_SECS", "--shutdown-timeout-secs"),
    ] {
        refused(&[], &with(&[(env, "abc")]), &[flag, "abc"]).await;
        refused(&[&format!("{flag}=-3")], &good_env(), &[flag, "-3"]).await;
    }
}

#[tokio::test]
async fn zero_workers_stops_the_start_with_one_line() {
    refused(&[], &with(&[("IOT_WORKERS", "0")]), &["workers"]).await;
}

#[tokio::test]
async fn a_statement_timeout_of_zero_or_beyond_the_request_timeout_stops_the_start() {
    refused(
        &[],
        &with(&[("IOT_DB_STATEMENT_TIMEOUT_MS", "0")]),
        &["IOT_DB_STATEMENT_TIMEOUT_MS", "at least 1"],
    )
    .await;
    refused(
        &[
            "--db-statement-timeout-ms=2001",
            "--request-timeout-ms=2000",
        ],
        &good_env(),
        &[
            "IOT_DB_STATEMENT_TIMEOUT_MS",
            "IOT_REQUEST_TIMEOUT_MS",
            "2000",
        ],
    )
    .await;
}

// ---------------------------------------------------------------------------------------------
// Secrets

#[tokio::test]
async fn secrets_never_reach_stderr_of_a_failed_start() {
    let unreachable = format!("postgres://user:{DB_PASSWORD}@127.0.0.1:1/db");
    let bad_option = format!("postgres://user:{DB_PASSWORD}@127.0.0.1:1/db?sslmode=sometimes");
    let bad_port = format!("postgres://user:{DB_PASSWORD}@127.0.0.1:notaport/db");
    let key_value = format!("host=127.0.0.1 port=1 user=u password={DB_PASSWORD} dbname=d");
    let short = format!("{DB_PASSWORD}-short");
    let cases: Vec<Vec<(&str, &str)>> = vec![
        // A second of retries, whose lines must not show the password either.
        with(&[
            ("DATABASE_URL", &unreachable),
            ("IOT_DB_START_TIMEOUT_SECS", "1"),
        ]),
        with(&[("DATABASE_URL", &bad_option)]),
        with(&[("DATABASE_URL", &bad_port)]),
        with(&[
            ("DATABASE_URL", &key_value),
            ("IOT_DB_START_TIMEOUT_SECS", "1"),
        ]),
        with(&[("DATABASE_URL", &unreachable), ("IOT_DB_POOL_SIZE", "abc")]),
        with(&[("DATABASE_URL", &unreachable), ("IOT_BIND", "nonsense")]),
        with(&[("IOT_JWT_SECRET", &short)]),
    ];
    for env in cases {
        for log in ["info", "trace"] {
            let mut env = env.clone();
            env.retain(|(k, _)| *k != "RUST_LOG");
            env.push(("RUST_LOG", log));
            for format in ["text", "json"] {
                let mut env = env.clone();
                env.push(("IOT_LOG_FORMAT", format));
                let Exited {
                    status,
                    stdout,
                    stderr,
                    ..
                } = run_serve(&[], &env).await;
                assert!(!status.success(), "{env:?} started");
                for secret in [DB_PASSWORD, SECRET] {
                    assert!(
                        !stderr.contains(secret) && !stdout.contains(secret),
                        "{secret} printed with {env:?}:\n{stderr}"
                    );
                }
            }
        }
    }
}

#[tokio::test]
async fn secrets_never_reach_stderr_of_a_successful_start() {
    let db = TestDatabase::create().await;
    let (url, password) = with_password(db.url());
    for (log, format) in [("info", "text"), ("debug", "json"), ("trace", "text")] {
        let server = start(
            &[],
            &with(&[
                ("DATABASE_URL", &url),
                ("RUST_LOG", log),
                ("IOT_LOG_FORMAT", format),
                ("IOT_DB_POOL_SIZE", "2"),
            ]),
        )
        .await;
        let client = reqwest::Client::new();
        let admin = token("acme", &["admin"]);
        let response = client
            .post(format!("{}/api/devices", server.base))
            .bearer_auth(&admin)
            .json(&serde_json::json!({ "name": format!("D {log} {format}") }))
            .send()
            .await
            .expect("request");
        assert_eq!(
            response.status(),
            StatusCode::CREATED,
            "the store works with this URL"
        );
        let response = client
            .get(format!("{}/health/ready", server.base))
            .send()
            .await
            .expect("request");
        assert_eq!(response.status(), StatusCode::OK);
        let stderr = server.kill().await.join("\n");
        assert!(stderr.contains("PostgreSQL"), "{stderr}");
        assert!(
            !stderr.contains(&password),
            "the database password is printed at RUST_LOG={log}:\n{stderr}"
        );
        assert!(
            !stderr.contains(SECRET),
            "the JWT secret is printed at RUST_LOG={log}:\n{stderr}"
        );
        assert!(
            !stderr.contains(&admin),
            "a bearer token is printed at RUST_LOG={log}"
        );
    }
}

#[tokio::test]
async fn the_future_skew_setting_is_obeyed() {
    let client = reqwest::Client::new();
    let admin = token("acme", &["admin"]);
    let now = crate::helpers::now_unix();
    // Two hours allowed by the environment, none by the flag.
    for (args, env, ahead, accepted) in [
        (
            vec![],
            with(&[("IOT_MAX_FUTURE_SKEW_SECS", "7200")]),
            3_600,
            true,
        ),
        (vec!["--max-future-skew-secs", "0"], good_env(), 60, false),
    ] {
        let server = start(&args, &env).await;
        let device = client
            .post(format!("{}/api/devices", server.base))
            .bearer_auth(&admin)
            .json(&serde_json::json!({"name": "D"}))
            .send()
            .await
            .expect("request");
        assert_eq!(device.status(), StatusCode::CREATED);
        let id = device.json::<serde_json::Value>().await.expect("JSON")["id"]
            .as_str()
            .expect("id")
            .to_owned();
        let reply = client
            .post(format!("{}/api/devices/{id}/readings", server.base))
            .bearer_auth(&admin)
            .json(&serde_json::json!({"value": 1, "timestamp": crate::readings::rfc3339(now + ahead)}))
            .send()
            .await
            .expect("request");
        if accepted {
            assert_eq!(reply.status(), StatusCode::CREATED, "{args:?}");
        } else {
            assert_eq!(reply.status(), StatusCode::UNPROCESSABLE_ENTITY, "{args:?}");
            let body: serde_json::Value = reply.json().await.expect("JSON");
            assert_eq!(body["detail"], "timestamp: more than 0 s in the future");
        }
        server.stop().await;
    }
}
