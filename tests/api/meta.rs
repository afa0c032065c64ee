//! Health, the OpenAPI document, the docs page, and the start-up log.

use std::time::Duration;

use reqwest::StatusCode;

use crate::helpers::{run_binary, Store, TestApp, SECRET};
use crate::on_both_stores;

on_both_stores! {
    async fn health_and_the_spec_need_no_token(app) {
        for path in ["/health/live", "/health/ready", "/openapi.json", "/docs"] {
            let response = app.client().get(format!("{}{path}", app.base)).send().await.unwrap();
            assert_eq!(response.status(), StatusCode::OK, "{path}");
        }
        let served: serde_json::Value = app.client().get(format!("{}/openapi.json", app.base)).send().await.unwrap().json().await.unwrap();
        let committed: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(committed_spec_path()).unwrap()).unwrap();
        assert_eq!(served, committed, "the served spec is the committed one");
        let docs = app.client().get(format!("{}/docs", app.base)).send().await.unwrap().text().await.unwrap();
        assert!(docs.contains("/openapi.json"));
    }
}

fn committed_spec_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../openapi/openapi.json")
}

#[tokio::test]
async fn the_committed_spec_equals_what_the_binary_prints() {
    let output = run_binary(&["openapi"], &[]).await;
    assert!(output.status.success());
    let printed = output.stdout;
    let committed = std::fs::read_to_string(committed_spec_path()).unwrap();
    assert!(
        printed == committed,
        "openapi/openapi.json is out of date: run `make openapi` and commit the result"
    );
}

/// `scripts/bench/prepare.py` reads the statements of its PostgreSQL references from this
/// hidden command, as a JSON object of name to SQL.
#[tokio::test]
async fn the_sql_catalog_command_prints_the_statements_as_json() {
    let output = run_binary(&["sql-catalog"], &[]).await;
    assert!(output.status.success(), "{}", output.stderr);
    let catalog: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(&output.stdout).expect("a JSON object");
    let readings = catalog["GROUP_READINGS"].as_str().expect("SQL text");
    assert!(readings.contains("FROM readings"), "{readings}");
    // The column lists are filled in: no `{DEVICE_COLUMNS}` left for the script to expand.
    for (name, sql) in &catalog {
        let sql = sql.as_str().expect("SQL text");
        assert!(!sql.contains('{'), "{name}: {sql}");
    }
    let help = run_binary(&["--help"], &[]).await;
    assert!(!help.stdout.contains("sql-catalog"));
}

#[tokio::test]
async fn the_token_command_prints_a_signed_jwt() {
    let output = run_binary(
        &["token", "--tenant", "acme", "--role", "admin"],
        &[("IOT_JWT_SECRET", SECRET)],
    )
    .await;
    assert!(output.status.success(), "{}", output.stderr);
    let token = output.stdout;
    assert_eq!(token.trim().split('.').count(), 3, "{token}");
}

#[tokio::test]
async fn a_short_secret_stops_the_start_with_one_clear_line() {
    let output = TestApp::builder()
        .env("IOT_JWT_SECRET", "short")
        .run_to_exit(Duration::from_secs(60))
        .await;
    assert!(!output.status.success());
    let stderr = output.stderr;
    assert!(
        stderr.contains("IOT_JWT_SECRET must be at least 32 bytes"),
        "{stderr}"
    );
}

#[tokio::test]
async fn the_embedded_store_says_that_nothing_is_persisted() {
    let app = TestApp::spawn(Store::Memory).await;
    assert!(
        app.startup_log
            .iter()
            .any(|l| l.contains("not persisted") || l.contains("NOT persisted")),
        "{:?}",
        app.startup_log
    );
}

#[tokio::test]
async fn a_token_from_the_token_command_is_accepted_by_the_server() {
    let app = TestApp::spawn(Store::Memory).await;
    let output = run_binary(
        &["token", "--tenant", "acme", "--role", "viewer"],
        &[("IOT_JWT_SECRET", SECRET)],
    )
    .await;
    let token = output.stdout;
    let (status, _) = app.get("/customer/device-groups", token.trim()).await;
    assert_eq!(status, StatusCode::OK);
}
