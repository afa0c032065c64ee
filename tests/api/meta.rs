//! Health, the OpenAPI document, the docs page, and the start-up log.

use reqwest::StatusCode;

use crate::helpers::{Store, TestApp};
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

#[test]
fn the_committed_spec_equals_what_the_binary_prints() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_iot-api"))
        .arg("openapi")
        .output()
        .unwrap();
    assert!(output.status.success());
    let printed = String::from_utf8(output.stdout).unwrap();
    let committed = std::fs::read_to_string(committed_spec_path()).unwrap();
    assert!(
        printed == committed,
        "openapi/openapi.json is out of date: run `make openapi` and commit the result"
    );
}

/// `scripts/bench/prepare.py` reads the statements of its PostgreSQL references from this
/// hidden command, as a JSON object of name to SQL.
#[test]
fn the_sql_catalog_command_prints_the_statements_as_json() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_iot-api"))
        .arg("sql-catalog")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let catalog: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&output.stdout).expect("a JSON object");
    let readings = catalog["GROUP_READINGS"].as_str().expect("SQL text");
    assert!(readings.contains("FROM readings"), "{readings}");
    // The column lists are filled in: no `{DEVICE_COLUMNS}` left for the script to expand.
    for (name, sql) in &catalog {
        let sql = sql.as_str().expect("SQL text");
        assert!(!sql.contains('{'), "{name}: {sql}");
    }
    let help = std::process::Command::new(env!("CARGO_BIN_EXE_iot-api"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&help.stdout).contains("sql-catalog"));
}

#[test]
fn the_token_command_prints_a_signed_jwt() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_iot-api"))
        .args(["token", "--tenant", "acme", "--role", "admin"])
        .env("IOT_JWT_SECRET", crate::helpers::SECRET)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let token = String::from_utf8(output.stdout).unwrap();
    assert_eq!(token.trim().split('.').count(), 3, "{token}");
}

#[test]
fn a_short_secret_stops_the_start_with_one_clear_line() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_iot-api"))
        .arg("serve")
        .env("IOT_JWT_SECRET", "short")
        .env("IOT_BIND", "127.0.0.1:0")
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
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
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_iot-api"))
        .args(["token", "--tenant", "acme", "--role", "viewer"])
        .env("IOT_JWT_SECRET", crate::helpers::SECRET)
        .output()
        .unwrap();
    let token = String::from_utf8(output.stdout).unwrap();
    let (status, _) = app.get("/customer/device-groups", token.trim()).await;
    assert_eq!(status, StatusCode::OK);
}
