//! Customer API maintenance windows: writes, status, occurrences, recurrence rules, group_ids and
//! the devices in scope.

use std::sync::{Arc, Mutex};

use actix_web::http::StatusCode;
use anyhow::anyhow;
use domain::{
    GroupSlug, Recurrence, RecurrenceParts, ScopeLabel, Thresholds, WindowChanges,
    WindowDefinition, WindowError, WindowName, WindowSchedule,
};
use ports::{CreateWindowError, LookupError, StoreError, UpdateWindowError};
use serde_json::{json, Value};
use time::macros::datetime;

use crate::support::*;

// ---------------------------------------------------------------------------------------------
// Maintenance windows: create

#[actix_web::test]
async fn creating_a_window_generates_an_mw_slug_and_enables_it_by_default() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .windows
        .expect_create_window()
        .withf(|tenant, _, new| {
            let d = &new.definition;
            is_tenant_a(tenant)
                && is_generated_slug(new.window_id.as_str(), "mw-")
                && d.name.as_str() == "Nightly patching"
                && d.schedule.starts_at() == at(datetime!(2025-10-20 22:00 UTC))
                && d.schedule.ends_at() == Some(at(datetime!(2025-10-21 02:00 UTC)))
                && d.recurring.is_none()
                && d.site_ids.is_none()
                && d.device_types.is_none()
                && d.group_ids.is_none()
                && d.enabled
        })
        .times(1)
        .returning(|_, _, new| Ok(saved_window(new)));

    // Act
    let answer = call(mocks, post(WINDOWS, &nightly_body())).await;

    // Assert
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let body = answer.json();
    let window_id = body["window_id"].as_str().expect("window_id");
    assert!(is_generated_slug(window_id, "mw-"), "{window_id}");
    assert_eq!(body["enabled"], true);
    assert_eq!(body["name"], "Nightly patching");
    assert_eq!(body["starts_at"], "2025-10-20T22:00:00Z");
    assert_eq!(body["ends_at"], "2025-10-21T02:00:00Z");
    assert_eq!(body["recurring"], Value::Null);
    assert_eq!(body["site_ids"], Value::Null);
    assert_eq!(body["group_ids"], Value::Null);
    assert_eq!(body["status"], "expired", "it ended on 2025-10-21");
}

#[actix_web::test]
async fn creating_a_window_passes_recurrence_scope_and_offsets_normalised_to_utc() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .windows
        .expect_create_window()
        .withf(|_, _, new| {
            let d = &new.definition;
            let recurring = d.recurring.as_ref();
            d.schedule.starts_at() == at(datetime!(2025-10-20 20:00 UTC))
                && d.schedule.ends_at().is_none()
                && recurring.and_then(Recurrence::days) == Some(&[1, 5][..])
                && recurring.map(Recurrence::start_hour) == Some(2)
                && recurring.map(Recurrence::end_hour) == Some(4)
                && recurring.map(Recurrence::timezone) == Some("UTC")
                && d.site_ids
                    .as_ref()
                    .is_some_and(|s| s.len() == 1 && s[0].as_str() == "site-1")
                && d.device_types
                    .as_ref()
                    .is_some_and(|t| t.len() == 1 && t[0].as_str() == "thermostat")
                && !d.enabled
        })
        .times(1)
        .returning(|_, _, new| Ok(saved_window(new)));

    // Act
    let answer = call(
        mocks,
        post(
            WINDOWS,
            &json!({
                "name": "Weekdays",
                "starts_at": "2025-10-20T22:00:00+02:00",
                "recurring": {"dow": [5, 1], "start_hour": 2, "end_hour": 4},
                "site_ids": ["site-1"],
                "device_types": ["thermostat"],
                "enabled": false,
            }),
        ),
    )
    .await;

    // Assert
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let body = answer.json();
    assert_eq!(body["starts_at"], "2025-10-20T20:00:00Z");
    assert_eq!(body["ends_at"], Value::Null);
    assert_eq!(
        body["recurring"],
        json!({"dow": [1, 5], "start_hour": 2, "end_hour": 4})
    );
    assert_eq!(body["site_ids"], json!(["site-1"]));
    assert_eq!(body["enabled"], false);
    assert_eq!(body["status"], "disabled");
}

#[actix_web::test]
async fn a_generated_window_id_that_is_taken_is_retried() {
    // Arrange
    let mut mocks = Mocks::new();
    let mut sequence = mockall::Sequence::new();
    mocks
        .windows
        .expect_create_window()
        .times(1)
        .in_sequence(&mut sequence)
        .returning(|_, _, new| Err(CreateWindowError::WindowIdTaken(new.window_id)));
    mocks
        .windows
        .expect_create_window()
        .times(1)
        .in_sequence(&mut sequence)
        .returning(|_, _, new| Ok(saved_window(new)));

    // Act
    let answer = call(mocks, post(WINDOWS, &nightly_body())).await;

    // Assert
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
}

async fn refused_window(body: Value) -> Answer {
    let answer = call(Mocks::untouchable(), post(WINDOWS, &body)).await;
    assert_eq!(
        answer.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        answer.text()
    );
    answer
}

#[actix_web::test]
async fn a_window_that_ends_when_it_starts_is_refused_with_422_naming_ends_at() {
    // Arrange
    let body = json!({
        "name": "Nightly",
        "starts_at": "2025-10-20T22:00:00Z",
        "ends_at": "2025-10-20T22:00:00Z",
    });

    // Act
    let answer = refused_window(body).await;

    // Assert
    assert!(
        answer.detail().starts_with("ends_at:"),
        "{}",
        answer.detail()
    );
}

#[actix_web::test]
async fn a_window_that_ends_before_it_starts_is_refused_with_422_naming_ends_at() {
    // Arrange
    let body = json!({
        "name": "Nightly",
        "starts_at": "2025-10-20T22:00:00Z",
        "ends_at": "2025-10-20T21:00:00Z",
    });

    // Act
    let answer = refused_window(body).await;

    // Assert
    assert!(
        answer.detail().starts_with("ends_at:"),
        "{}",
        answer.detail()
    );
}

#[actix_web::test]
async fn a_window_start_that_is_no_date_is_refused_with_422_naming_starts_at() {
    // Arrange
    let body = json!({"name": "Nightly", "starts_at": "tonight"});

    // Act
    let answer = refused_window(body).await;

    // Assert
    assert!(
        answer.detail().starts_with("starts_at:"),
        "{}",
        answer.detail()
    );
}

#[actix_web::test]
async fn a_recurring_rule_with_an_unknown_key_is_refused_with_422_naming_it() {
    // Arrange
    let body = json!({
        "name": "Nightly",
        "starts_at": "2025-10-20T22:00:00Z",
        "recurring": {"start_hour": 1, "end_hour": 2, "every": "day"},
    });

    // Act
    let answer = refused_window(body).await;

    // Assert
    assert!(
        answer.detail().starts_with("recurring.every:"),
        "{}",
        answer.detail()
    );
}

#[actix_web::test]
async fn a_recurring_day_of_week_7_is_refused_with_422_naming_the_entry() {
    // Arrange
    let body = json!({
        "name": "Nightly",
        "starts_at": "2025-10-20T22:00:00Z",
        "recurring": {"dow": [1, 7], "start_hour": 1, "end_hour": 2},
    });

    // Act
    let answer = refused_window(body).await;

    // Assert
    assert!(
        answer.detail().starts_with("recurring.dow[1]:"),
        "{}",
        answer.detail()
    );
}

#[actix_web::test]
async fn a_recurring_start_hour_24_is_refused_with_422_naming_it() {
    // Arrange
    let body = json!({
        "name": "Nightly",
        "starts_at": "2025-10-20T22:00:00Z",
        "recurring": {"start_hour": 24, "end_hour": 24},
    });

    // Act
    let answer = refused_window(body).await;

    // Assert
    assert!(
        answer.detail().starts_with("recurring.start_hour:"),
        "{}",
        answer.detail()
    );
}

#[actix_web::test]
async fn a_recurring_end_hour_0_is_refused_with_422_naming_it() {
    // Arrange
    let body = json!({
        "name": "Nightly",
        "starts_at": "2025-10-20T22:00:00Z",
        "recurring": {"start_hour": 0, "end_hour": 0},
    });

    // Act
    let answer = refused_window(body).await;

    // Assert
    assert!(
        answer.detail().starts_with("recurring.end_hour:"),
        "{}",
        answer.detail()
    );
}

#[actix_web::test]
async fn an_empty_site_id_is_refused_with_422_naming_its_index() {
    // Arrange
    let body = json!({
        "name": "Nightly",
        "starts_at": "2025-10-20T22:00:00Z",
        "site_ids": [""],
    });

    // Act
    let answer = refused_window(body).await;

    // Assert
    assert!(
        answer.detail().starts_with("site_ids[0]: "),
        "{}",
        answer.detail()
    );
}

#[actix_web::test]
async fn an_empty_window_name_is_refused_with_422() {
    // Arrange
    let body = json!({"name": " ", "starts_at": "2025-10-20T22:00:00Z"});

    // Act
    let answer = refused_window(body).await;

    // Assert
    assert!(answer.detail().starts_with("name:"), "{}", answer.detail());
}

// ---------------------------------------------------------------------------------------------
// Maintenance windows: list, get, update, delete

#[actix_web::test]
async fn listing_windows_returns_the_tenants_windows_and_their_total() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .windows
        .expect_list_windows()
        .withf(|tenant, query| is_tenant_a(tenant) && is_all(query))
        .times(1)
        .returning(|_, _| Ok(page(vec![stored_window("mw-0000abcd")])));

    // Act
    let answer = call(mocks, get(WINDOWS)).await;

    // Assert
    assert_eq!(answer.status, StatusCode::OK);
    let body = answer.json();
    assert_eq!(body["total"], 1);
    assert_eq!(body["windows"][0]["window_id"], "mw-0000abcd");
    assert_eq!(
        body["windows"][0]["recurring"],
        json!({"dow": [1, 2, 3], "start_hour": 2, "end_hour": 4})
    );
    assert_eq!(body["windows"][0]["site_ids"], json!(["site-1"]));
    assert_eq!(body["windows"][0]["device_types"], Value::Null);
    assert_eq!(body["windows"][0]["group_ids"], Value::Null);
    assert_eq!(body["windows"][0]["status"], "expired");
    assert_eq!(body["windows"][0]["created_by"], CREATOR);
    assert_eq!(body["windows"][0]["updated_by"], EDITOR);
}

#[actix_web::test]
async fn getting_a_window_returns_it() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .windows
        .expect_get_window()
        .withf(|tenant, window_id| is_tenant_a(tenant) && window_id.as_str() == "mw-0000abcd")
        .times(1)
        .returning(|_, _| Ok(stored_window("mw-0000abcd")));

    // Act
    let answer = call(mocks, get("/customer/maintenance-windows/mw-0000abcd")).await;

    // Assert
    assert_eq!(answer.status, StatusCode::OK);
    let body = answer.json();
    assert_eq!(body["window_id"], "mw-0000abcd");
    assert_eq!(body["name"], "Nightly patching");
    assert_eq!(body["starts_at"], "2025-10-20T22:00:00Z");
    assert_eq!(body["ends_at"], "2025-10-21T02:00:00Z");
    assert_eq!(body["enabled"], true);
    assert_eq!(body["group_ids"], Value::Null);
    assert_eq!(body["status"], "expired");
    assert_eq!(body["created_by"], CREATOR);
    assert_eq!(body["updated_by"], EDITOR);
}

#[actix_web::test]
async fn patching_a_window_with_no_fields_answers_400_without_reaching_the_repository() {
    // Arrange
    let mocks = Mocks::untouchable();

    // Act
    let answer = call(
        mocks,
        patch("/customer/maintenance-windows/mw-0000abcd", &json!({})),
    )
    .await;

    // Assert
    assert_eq!(answer.status, StatusCode::BAD_REQUEST);
    assert_eq!(answer.json(), json!({"detail": "No fields to update"}));
}

#[actix_web::test]
async fn patching_a_window_end_to_null_asks_the_repository_to_clear_it() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .windows
        .expect_update_window()
        .withf(|tenant, _, window_id, changes| {
            is_tenant_a(tenant)
                && window_id.as_str() == "mw-0000abcd"
                && *changes
                    == WindowChanges {
                        ends_at: Some(None),
                        ..WindowChanges::default()
                    }
        })
        .times(1)
        .returning(|_, _, _, _| {
            let mut window = stored_window("mw-0000abcd");
            window.definition.schedule =
                WindowSchedule::new(window.definition.schedule.starts_at(), None)
                    .expect("open-ended");
            Ok(window)
        });

    // Act
    let answer = call(
        mocks,
        patch(
            "/customer/maintenance-windows/mw-0000abcd",
            &json!({"ends_at": null}),
        ),
    )
    .await;

    // Assert
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(answer.json()["ends_at"], Value::Null);
}

#[actix_web::test]
async fn patching_a_window_passes_every_given_field_and_clears_the_nulled_ones() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .windows
        .expect_update_window()
        .withf(|_, _, _, changes| {
            *changes
                == WindowChanges {
                    labels: None,
                    name: Some(WindowName::parse("Renamed").expect("valid")),
                    starts_at: Some(at(datetime!(2025-11-01 00:00 UTC))),
                    ends_at: None,
                    recurring: Some(None),
                    site_ids: Some(None),
                    device_types: Some(Some(vec![ScopeLabel::parse("meter").expect("valid")])),
                    group_ids: None,
                    enabled: Some(false),
                }
        })
        .times(1)
        .returning(|_, _, _, _| Ok(stored_window("mw-0000abcd")));

    // Act
    let answer = call(
        mocks,
        patch(
            "/customer/maintenance-windows/mw-0000abcd",
            &json!({
                "name": "Renamed",
                "starts_at": "2025-11-01T00:00:00Z",
                "recurring": null,
                "site_ids": null,
                "device_types": ["meter"],
                "enabled": false,
            }),
        ),
    )
    .await;

    // Assert
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
}

#[actix_web::test]
async fn patching_a_window_enabled_to_null_is_refused_with_422() {
    // Arrange
    let mocks = Mocks::untouchable();

    // Act
    let answer = call(
        mocks,
        patch(
            "/customer/maintenance-windows/mw-0000abcd",
            &json!({"enabled": null}),
        ),
    )
    .await;

    // Assert
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(answer.detail(), "enabled: must not be null");
}

#[actix_web::test]
async fn patching_a_window_with_an_invalid_recurrence_is_refused_with_422_before_the_repository() {
    // Arrange
    let mocks = Mocks::untouchable();

    // Act
    let answer = call(
        mocks,
        patch(
            "/customer/maintenance-windows/mw-0000abcd",
            &json!({"recurring": {"start_hour": 5, "end_hour": 5}}),
        ),
    )
    .await;

    // Assert
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        answer.detail().starts_with("recurring.end_hour:"),
        "{}",
        answer.detail()
    );
}

#[actix_web::test]
async fn a_window_patch_that_makes_the_merged_window_invalid_answers_422_naming_ends_at() {
    // Arrange: the store merges and finds the end no longer after the start.
    let mut mocks = Mocks::new();
    mocks
        .windows
        .expect_update_window()
        .times(1)
        .returning(|_, _, _, _| Err(UpdateWindowError::Invalid(WindowError::EndsNotAfterStart)));

    // Act
    let answer = call(
        mocks,
        patch(
            "/customer/maintenance-windows/mw-0000abcd",
            &json!({"starts_at": "2030-01-01T00:00:00Z"}),
        ),
    )
    .await;

    // Assert
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        answer.detail().starts_with("ends_at: "),
        "{}",
        answer.detail()
    );
}

#[actix_web::test]
async fn deleting_a_window_answers_its_window_id_and_deleted_true() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .windows
        .expect_delete_window()
        .withf(|tenant, window_id| is_tenant_a(tenant) && window_id.as_str() == "mw-0000abcd")
        .times(1)
        .returning(|_, _| Ok(()));

    // Act
    let answer = call(mocks, delete("/customer/maintenance-windows/mw-0000abcd")).await;

    // Assert
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(
        answer.json(),
        json!({"window_id": "mw-0000abcd", "deleted": true})
    );
}

// ---------------------------------------------------------------------------------------------
// Maintenance windows: status now, and the status filter

#[actix_web::test]
async fn listing_windows_reports_each_windows_status_now() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .windows
        .expect_list_windows()
        .withf(|tenant, query| is_tenant_a(tenant) && is_all(query))
        .times(1)
        .returning(|_, _| Ok(page(windows_in_every_status())));

    // Act
    let answer = call(mocks, get(WINDOWS)).await;

    // Assert
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let body = answer.json();
    assert_eq!(body["total"], 7);
    let statuses: Vec<(&str, &str)> = body["windows"]
        .as_array()
        .expect("a windows array")
        .iter()
        .map(|w| {
            (
                w["window_id"].as_str().expect("window_id"),
                w["status"].as_str().expect("status"),
            )
        })
        .collect();
    assert_eq!(
        statuses,
        [
            ("mw-active", "active"),
            ("mw-all-day", "active"),
            ("mw-disabled", "disabled"),
            ("mw-off-and-over", "disabled"),
            ("mw-expired", "expired"),
            ("mw-future", "scheduled"),
            ("mw-elsewhere", "scheduled"),
        ]
    );
}

#[actix_web::test]
async fn getting_a_window_reports_its_status_now() {
    // Arrange: the store answers each slug with the window of that name.
    let mut mocks = Mocks::new();
    mocks
        .windows
        .expect_get_window()
        .withf(|tenant, _| is_tenant_a(tenant))
        .times(5)
        .returning(|_, id| {
            windows_in_every_status()
                .into_iter()
                .find(|w| w.window_id == *id)
                .ok_or(LookupError::NotFound)
        });
    let cases = [
        ("mw-active", "active"),
        ("mw-disabled", "disabled"),
        ("mw-expired", "expired"),
        ("mw-future", "scheduled"),
        ("mw-elsewhere", "scheduled"),
    ];
    let requests = cases
        .iter()
        .map(|(id, _)| get(&format!("{WINDOWS}/{id}")))
        .collect();

    // Act
    let answers = call_all(mocks, requests).await;

    // Assert
    for ((id, status), answer) in cases.iter().zip(&answers) {
        assert_eq!(answer.status, StatusCode::OK, "{id}: {}", answer.text());
        let body = answer.json();
        assert_eq!(body["window_id"], *id);
        assert_eq!(body["status"], *status, "{id}");
    }
}

#[actix_web::test]
async fn the_status_filter_keeps_exactly_the_windows_with_that_status_in_store_order() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .windows
        .expect_list_windows()
        .withf(|tenant, query| is_tenant_a(tenant) && is_all(query))
        .times(5)
        .returning(|_, _| Ok(page(windows_in_every_status())));
    let cases: [(&str, &[&str]); 5] = [
        (
            "",
            &[
                "mw-active",
                "mw-all-day",
                "mw-disabled",
                "mw-off-and-over",
                "mw-expired",
                "mw-future",
                "mw-elsewhere",
            ],
        ),
        ("?status=active", &["mw-active", "mw-all-day"]),
        ("?status=disabled", &["mw-disabled", "mw-off-and-over"]),
        ("?status=expired", &["mw-expired"]),
        ("?status=scheduled", &["mw-future", "mw-elsewhere"]),
    ];
    let requests = cases
        .iter()
        .map(|(query, _)| get(&format!("{WINDOWS}{query}")))
        .collect();

    // Act
    let answers = call_all(mocks, requests).await;

    // Assert
    for ((query, expected), answer) in cases.iter().zip(&answers) {
        assert_eq!(answer.status, StatusCode::OK, "{query}: {}", answer.text());
        let body = answer.json();
        assert_eq!(window_ids(&body), *expected, "{query}");
        assert_eq!(body["total"], expected.len(), "{query}");
    }
}

#[actix_web::test]
async fn an_unknown_status_filter_is_refused_with_422_before_the_repository() {
    // Arrange
    let mocks = Mocks::untouchable();

    // Act
    let answers = call_all(
        mocks,
        vec![
            get(&format!("{WINDOWS}?status=bogus")),
            get(&format!("{WINDOWS}?status=")),
        ],
    )
    .await;

    // Assert
    for answer in answers {
        assert_eq!(
            answer.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            answer.text()
        );
        assert!(
            answer.detail().starts_with("status: "),
            "{}",
            answer.detail()
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Maintenance windows: occurrences

#[actix_web::test]
async fn occurrences_of_a_berlin_night_slot_follow_the_dst_change() {
    // Arrange: the window is created through the API; the store keeps what it was given.
    let saved: Arc<Mutex<Option<WindowDefinition>>> = Arc::default();
    let keep = saved.clone();
    let mut mocks = Mocks::new();
    mocks
        .windows
        .expect_create_window()
        .times(1)
        .returning(move |_, _, new| {
            *keep.lock().expect("not poisoned") = Some(new.definition.clone());
            Ok(saved_window(new))
        });
    let created = call(
        mocks,
        post(
            WINDOWS,
            &json!({
                "name": "Berlin nights",
                "starts_at": "2025-01-01T00:00:00Z",
                "recurring": {"start_hour": 22, "end_hour": 6, "timezone": "Europe/Berlin"},
            }),
        ),
    )
    .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.text());
    let definition = saved
        .lock()
        .expect("not poisoned")
        .take()
        .expect("the window reached the store");
    let mut mocks = Mocks::new();
    mocks
        .windows
        .expect_get_window()
        .withf(|tenant, id| is_tenant_a(tenant) && id.as_str() == "mw-0000abcd")
        .times(1)
        .return_once(move |_, _| Ok(window_of("mw-0000abcd", definition)));

    // Act
    let answer = call(
        mocks,
        get(&format!(
            "{WINDOWS}/mw-0000abcd/occurrences?from=2025-03-28T00:00:00Z&limit=4"
        )),
    )
    .await;

    // Assert: 22:00 to 06:00 CET is 21:00Z to 05:00Z; from the night of 30 March, CEST (UTC+2).
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(
        answer.json(),
        json!({
            "window_id": "mw-0000abcd",
            "occurrences": [
                {"starts_at": "2025-03-27T21:00:00Z", "ends_at": "2025-03-28T05:00:00Z"},
                {"starts_at": "2025-03-28T21:00:00Z", "ends_at": "2025-03-29T05:00:00Z"},
                {"starts_at": "2025-03-29T21:00:00Z", "ends_at": "2025-03-30T04:00:00Z"},
                {"starts_at": "2025-03-30T20:00:00Z", "ends_at": "2025-03-31T04:00:00Z"},
            ],
        })
    );
}

#[actix_web::test]
async fn occurrences_default_to_ten_from_now() {
    // Arrange: a daily UTC slot since 2020.
    let mut mocks = Mocks::new();
    mocks
        .windows
        .expect_get_window()
        .times(2)
        .returning(|_, id| {
            let rule = Recurrence::new(None, 2, 4).expect("valid recurrence");
            Ok(window_of(id.as_str(), recurring_since_2020(rule)))
        });
    let before = time::OffsetDateTime::now_utc();

    // Act
    let answers = call_all(
        mocks,
        vec![
            get(&format!(
                "{WINDOWS}/mw-0000abcd/occurrences?from=2025-03-01T00:00:00Z"
            )),
            get(&format!("{WINDOWS}/mw-0000abcd/occurrences?limit=2")),
        ],
    )
    .await;

    // Assert
    assert_eq!(answers[0].status, StatusCode::OK, "{}", answers[0].text());
    let ten = spans(&answers[0].json());
    assert_eq!(ten.len(), 10);
    assert_eq!(
        ten[0],
        (json!("2025-03-01T02:00:00Z"), json!("2025-03-01T04:00:00Z"))
    );
    assert_eq!(
        ten[9],
        (json!("2025-03-10T02:00:00Z"), json!("2025-03-10T04:00:00Z"))
    );
    assert_eq!(answers[1].status, StatusCode::OK, "{}", answers[1].text());
    let next = spans(&answers[1].json());
    assert_eq!(next.len(), 2);
    let rfc3339 = |v: &Value| {
        time::OffsetDateTime::parse(
            v.as_str().expect("a string"),
            &time::format_description::well_known::Rfc3339,
        )
        .expect("RFC 3339")
    };
    let (first_start, first_end) = (rfc3339(&next[0].0), rfc3339(&next[0].1));
    assert!(first_end > before, "the first occurrence ends after now");
    assert!(
        first_start < before + time::Duration::days(1),
        "the first occurrence is the next one"
    );
}

#[actix_web::test]
async fn a_window_without_recurrence_has_at_most_one_occurrence() {
    // Arrange: 2025-10-20 22:00Z to 2025-10-21 02:00Z, and an open-ended one.
    let mut mocks = Mocks::new();
    mocks
        .windows
        .expect_get_window()
        .times(5)
        .returning(|_, id| {
            let definition = if id.as_str() == "mw-open" {
                always_active()
            } else {
                plain_definition(
                    datetime!(2025-10-20 22:00 UTC),
                    Some(datetime!(2025-10-21 02:00 UTC)),
                )
            };
            Ok(window_of(id.as_str(), definition))
        });
    let one = vec![(json!("2025-10-20T22:00:00Z"), json!("2025-10-21T02:00:00Z"))];
    let cases = [
        (
            "mw-0000abcd",
            "from=2025-01-01T00:00:00Z&limit=5",
            one.clone(),
        ),
        (
            "mw-0000abcd",
            "from=2025-10-21T03:59:00%2B02:00&limit=5",
            one,
        ),
        (
            "mw-0000abcd",
            "from=2025-10-21T04:00:00%2B02:00&limit=5",
            vec![],
        ),
        ("mw-0000abcd", "from=2030-01-01T00:00:00Z", vec![]),
        (
            "mw-open",
            "from=2025-01-01T00:00:00Z&limit=100",
            vec![(json!("2020-01-01T00:00:00Z"), Value::Null)],
        ),
    ];
    let requests = cases
        .iter()
        .map(|(id, query, _)| get(&format!("{WINDOWS}/{id}/occurrences?{query}")))
        .collect();

    // Act
    let answers = call_all(mocks, requests).await;

    // Assert
    for ((id, query, expected), answer) in cases.iter().zip(&answers) {
        assert_eq!(answer.status, StatusCode::OK, "{query}: {}", answer.text());
        let body = answer.json();
        assert_eq!(body["window_id"], *id);
        assert_eq!(spans(&body), *expected, "{id}?{query}");
    }
}

#[actix_web::test]
async fn a_recurring_window_starting_in_year_one_lists_its_first_slots() {
    // Arrange: POST accepts any start in years 1..=9999.
    let mut mocks = Mocks::new();
    mocks
        .windows
        .expect_get_window()
        .times(1)
        .returning(|_, id| {
            let rule = Recurrence::new(None, 2, 4).expect("valid recurrence");
            let definition = WindowDefinition {
                recurring: Some(rule),
                ..plain_definition(datetime!(0001-01-01 00:00 UTC), None)
            };
            Ok(window_of(id.as_str(), definition))
        });

    // Act
    let answer = call(
        mocks,
        get(&format!(
            "{WINDOWS}/mw-0000abcd/occurrences?from=0001-01-01T00:00:00Z&limit=2"
        )),
    )
    .await;

    // Assert
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(
        spans(&answer.json()),
        [
            (json!("0001-01-01T02:00:00Z"), json!("0001-01-01T04:00:00Z")),
            (json!("0001-01-02T02:00:00Z"), json!("0001-01-02T04:00:00Z")),
        ]
    );
}

#[actix_web::test]
async fn a_disabled_window_has_no_occurrences() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .windows
        .expect_get_window()
        .times(1)
        .returning(|_, id| Ok(window_of(id.as_str(), disabled_window())));

    // Act
    let answer = call(
        mocks,
        get(&format!(
            "{WINDOWS}/mw-0000abcd/occurrences?from=2025-01-01T00:00:00Z"
        )),
    )
    .await;

    // Assert
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(
        answer.json(),
        json!({"window_id": "mw-0000abcd", "occurrences": []})
    );
}

#[actix_web::test]
async fn an_occurrence_limit_of_1_or_100_is_accepted() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .windows
        .expect_get_window()
        .times(2)
        .returning(|_, id| {
            let rule = Recurrence::new(None, 2, 4).expect("valid recurrence");
            Ok(window_of(id.as_str(), recurring_since_2020(rule)))
        });

    // Act
    let answers = call_all(
        mocks,
        vec![
            get(&format!(
                "{WINDOWS}/mw-0000abcd/occurrences?from=2025-01-01T00:00:00Z&limit=1"
            )),
            get(&format!(
                "{WINDOWS}/mw-0000abcd/occurrences?from=2025-01-01T00:00:00Z&limit=100"
            )),
        ],
    )
    .await;

    // Assert
    for (answer, count) in answers.iter().zip([1, 100]) {
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
        assert_eq!(spans(&answer.json()).len(), count);
    }
}

#[actix_web::test]
async fn an_occurrence_limit_out_of_range_or_not_an_integer_is_refused_with_422_before_the_repository(
) {
    // Arrange
    let mocks = Mocks::untouchable();
    let limits = ["0", "101", "abc", "-1", "1.5", ""];
    let requests = limits
        .iter()
        .map(|limit| get(&format!("{WINDOWS}/mw-0000abcd/occurrences?limit={limit}")))
        .collect();

    // Act
    let answers = call_all(mocks, requests).await;

    // Assert
    for (limit, answer) in limits.iter().zip(&answers) {
        assert_eq!(
            answer.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "limit={limit}: {}",
            answer.text()
        );
        assert!(
            answer.detail().starts_with("limit: "),
            "limit={limit}: {}",
            answer.detail()
        );
    }
}

#[actix_web::test]
async fn an_occurrence_start_that_is_no_instant_is_refused_with_422_before_the_repository() {
    // Arrange
    let mocks = Mocks::untouchable();
    let froms = ["yesterday", "2025-13-01T00:00:00Z", "2025-03-28"];
    let requests = froms
        .iter()
        .map(|from| get(&format!("{WINDOWS}/mw-0000abcd/occurrences?from={from}")))
        .collect();

    // Act
    let answers = call_all(mocks, requests).await;

    // Assert
    for (from, answer) in froms.iter().zip(&answers) {
        assert_eq!(
            answer.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "from={from}: {}",
            answer.text()
        );
        assert!(
            answer.detail().starts_with("from: "),
            "from={from}: {}",
            answer.detail()
        );
    }
}

#[actix_web::test]
async fn a_window_path_that_cannot_be_a_slug_answers_404_without_reaching_the_repository() {
    // Arrange
    let mocks = Mocks::untouchable();

    // Act
    let answers = call_all(
        mocks,
        vec![
            get(&format!("{WINDOWS}/a%20b/occurrences")),
            get(&format!("{WINDOWS}/a%20b/devices")),
        ],
    )
    .await;

    // Assert
    for answer in answers {
        assert_eq!(answer.status, StatusCode::NOT_FOUND, "{}", answer.text());
        assert_eq!(answer.json(), json!({"detail": "Window not found"}));
    }
}

// ---------------------------------------------------------------------------------------------
// Maintenance windows: recurrence rules

#[actix_web::test]
async fn a_recurring_slot_that_ends_before_it_starts_runs_past_midnight_and_is_accepted() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .windows
        .expect_create_window()
        .withf(|_, _, new| {
            new.definition.recurring
                == Some(Recurrence::new(None, 9, 3).expect("a slot past midnight is valid"))
        })
        .times(1)
        .returning(|_, _, new| Ok(saved_window(new)));

    // Act
    let answer = call(
        mocks,
        post(
            WINDOWS,
            &json!({
                "name": "Overnight",
                "starts_at": "2025-10-20T00:00:00Z",
                "recurring": {"start_hour": 9, "end_hour": 3},
            }),
        ),
    )
    .await;

    // Assert
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(
        answer.json()["recurring"],
        json!({"start_hour": 9, "end_hour": 3})
    );
}

#[actix_web::test]
async fn a_recurring_slot_that_ends_when_it_starts_is_refused_with_422_naming_end_hour() {
    for recurring in [
        json!({"start_hour": 9, "end_hour": 9}),
        json!({"start_hour": 9, "start_minute": 30, "end_hour": 9, "end_minute": 30}),
    ] {
        // Arrange
        let body = json!({
            "name": "Nightly",
            "starts_at": "2025-10-20T22:00:00Z",
            "recurring": recurring,
        });

        // Act
        let answer = refused_window(body).await;

        // Assert
        assert!(
            answer.detail().starts_with("recurring.end_hour: "),
            "{recurring}: {}",
            answer.detail()
        );
    }
}

/// Posts a window whose `recurring` is `rule` and returns the 422 `detail`.
async fn refused_rule(rule: Value) -> String {
    let body = json!({
        "name": "Nightly",
        "starts_at": "2025-10-20T22:00:00Z",
        "recurring": rule,
    });
    refused_window(body).await.detail()
}

#[actix_web::test]
async fn a_recurring_rule_with_an_unknown_time_zone_is_refused_with_422_naming_it() {
    // Act
    let detail = refused_rule(json!({
        "start_hour": 1,
        "end_hour": 2,
        "timezone": "Mars/Olympus",
    }))
    .await;

    // Assert
    assert!(detail.starts_with("recurring.timezone: "), "{detail}");
    assert!(detail.contains("Mars/Olympus"), "{detail}");
}

#[actix_web::test]
async fn recurring_minutes_out_of_range_are_refused_with_422_naming_them() {
    for (rule, field) in [
        (
            json!({"start_hour": 1, "start_minute": 60, "end_hour": 2}),
            "recurring.start_minute: ",
        ),
        (
            json!({"start_hour": 1, "start_minute": -1, "end_hour": 2}),
            "recurring.start_minute: ",
        ),
        (
            json!({"start_hour": 1, "end_hour": 2, "end_minute": 60}),
            "recurring.end_minute: ",
        ),
        (
            json!({"start_hour": 1, "end_hour": 24, "end_minute": 5}),
            "recurring.end_minute: ",
        ),
    ] {
        // Act
        let detail = refused_rule(rule.clone()).await;

        // Assert
        assert!(detail.starts_with(field), "{rule}: {detail}");
    }
}

#[actix_web::test]
async fn recurring_days_of_month_out_of_range_are_refused_with_422_naming_the_entry() {
    for (days, field) in [
        (json!([0]), "recurring.days_of_month[0]: "),
        (json!([1, 32]), "recurring.days_of_month[1]: "),
        (json!([-32]), "recurring.days_of_month[0]: "),
        (json!([]), "recurring.days_of_month: "),
    ] {
        // Act
        let detail = refused_rule(json!({
            "days_of_month": days,
            "start_hour": 1,
            "end_hour": 2,
        }))
        .await;

        // Assert
        assert!(detail.starts_with(field), "{days}: {detail}");
    }
}

#[actix_web::test]
async fn a_misspelt_new_recurring_key_is_refused_with_422_naming_it() {
    // Act
    let detail = refused_rule(json!({
        "start_hour": 1,
        "end_hour": 2,
        "time_zone": "Europe/Berlin",
    }))
    .await;

    // Assert
    assert!(detail.starts_with("recurring.time_zone: "), "{detail}");
}

#[actix_web::test]
async fn an_accepted_rule_echoes_minutes_only_when_not_zero_and_the_zone_only_when_not_utc() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .windows
        .expect_create_window()
        .times(2)
        .returning(|_, _, new| Ok(saved_window(new)));
    let rules = [
        (
            json!({
                "start_hour": 22, "start_minute": 0,
                "end_hour": 6, "end_minute": 30,
                "timezone": "UTC",
            }),
            json!({"start_hour": 22, "end_hour": 6, "end_minute": 30}),
        ),
        (
            json!({
                "dow": [5], "days_of_month": [1, -1, 1],
                "start_hour": 23, "start_minute": 15,
                "end_hour": 24, "end_minute": 0,
                "timezone": "europe/berlin",
            }),
            json!({
                "dow": [5], "days_of_month": [-1, 1],
                "start_hour": 23, "start_minute": 15,
                "end_hour": 24,
                "timezone": "Europe/Berlin",
            }),
        ),
    ];
    let requests = rules
        .iter()
        .map(|(rule, _)| {
            post(
                WINDOWS,
                &json!({
                    "name": "Slots",
                    "starts_at": "2025-10-20T00:00:00Z",
                    "recurring": rule,
                }),
            )
        })
        .collect();

    // Act
    let answers = call_all(mocks, requests).await;

    // Assert
    for ((rule, echoed), answer) in rules.iter().zip(&answers) {
        assert_eq!(answer.status, StatusCode::OK, "{rule}: {}", answer.text());
        assert_eq!(answer.json()["recurring"], *echoed, "{rule}");
    }
}

#[actix_web::test]
async fn a_rule_reaches_the_repository_with_its_zone_minutes_and_days_of_month() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .windows
        .expect_create_window()
        .withf(|_, _, new| {
            let expected = Recurrence::from_parts(RecurrenceParts {
                dow: Some(&[1, 2]),
                days_of_month: Some(&[-1, 15]),
                start_hour: 21,
                start_minute: Some(45),
                end_hour: 5,
                end_minute: Some(10),
                timezone: Some("America/New_York"),
            })
            .expect("valid recurrence");
            new.definition.recurring.as_ref() == Some(&expected)
        })
        .times(1)
        .returning(|_, _, new| Ok(saved_window(new)));

    // Act
    let answer = call(
        mocks,
        post(
            WINDOWS,
            &json!({
                "name": "Slots",
                "starts_at": "2025-10-20T00:00:00Z",
                "recurring": {
                    "dow": [2, 1], "days_of_month": [15, -1],
                    "start_hour": 21, "start_minute": 45,
                    "end_hour": 5, "end_minute": 10,
                    "timezone": "America/New_York",
                },
            }),
        ),
    )
    .await;

    // Assert
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
}

#[actix_web::test]
async fn patching_a_window_recurrence_passes_the_new_rule_in_its_zone() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .windows
        .expect_update_window()
        .withf(|_, _, _, changes| {
            let rule = Recurrence::from_parts(RecurrenceParts {
                start_hour: 22,
                end_hour: 6,
                timezone: Some("Europe/Berlin"),
                ..RecurrenceParts::default()
            })
            .expect("valid recurrence");
            *changes
                == WindowChanges {
                    recurring: Some(Some(rule)),
                    ..WindowChanges::default()
                }
        })
        .times(1)
        .returning(|_, _, _, _| Ok(stored_window("mw-0000abcd")));

    // Act
    let answer = call(
        mocks,
        patch(
            "/customer/maintenance-windows/mw-0000abcd",
            &json!({"recurring": {"start_hour": 22, "end_hour": 6, "timezone": "Europe/Berlin"}}),
        ),
    )
    .await;

    // Assert
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
}

#[actix_web::test]
async fn patching_a_window_recurrence_with_an_unknown_zone_is_refused_with_422_before_the_repository(
) {
    // Arrange
    let mocks = Mocks::untouchable();

    // Act
    let answer = call(
        mocks,
        patch(
            "/customer/maintenance-windows/mw-0000abcd",
            &json!({"recurring": {"start_hour": 1, "end_hour": 2, "timezone": "Nowhere/Land"}}),
        ),
    )
    .await;

    // Assert
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        answer.detail().starts_with("recurring.timezone: "),
        "{}",
        answer.detail()
    );
}

// ---------------------------------------------------------------------------------------------
// Maintenance windows: group_ids

#[actix_web::test]
async fn creating_a_window_with_group_ids_passes_and_echoes_them() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .windows
        .expect_unknown_groups()
        .times(1)
        .returning(|_, _| Ok(Vec::new()));
    mocks
        .windows
        .expect_create_window()
        .withf(|_, _, new| {
            new.definition.group_ids
                == Some(vec![
                    GroupSlug::parse("grp-lobby").expect("valid"),
                    GroupSlug::parse("grp-night").expect("valid"),
                ])
        })
        .times(1)
        .returning(|_, _, new| Ok(saved_window(new)));
    let mut body = nightly_body();
    body["group_ids"] = json!(["grp-lobby", "grp-night"]);

    // Act
    let answer = call(mocks, post(WINDOWS, &body)).await;

    // Assert
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(
        answer.json()["group_ids"],
        json!(["grp-lobby", "grp-night"])
    );
}

#[actix_web::test]
async fn a_window_naming_a_group_that_does_not_exist_is_refused_and_not_stored() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .windows
        .expect_unknown_groups()
        .times(2)
        .returning(|_, _| Ok(vec![GroupSlug::parse("grp-night").expect("valid")]));
    mocks.windows.expect_create_window().never();
    mocks.windows.expect_update_window().never();
    let mut body = nightly_body();
    body["group_ids"] = json!(["grp-lobby", "grp-night"]);

    // Act
    let answers = call_all(
        mocks,
        vec![
            post(WINDOWS, &body),
            patch(
                &format!("{WINDOWS}/mw-0000abcd"),
                &json!({"group_ids": ["grp-night"]}),
            ),
        ],
    )
    .await;

    // Assert
    for answer in answers {
        assert_eq!(
            answer.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{}",
            answer.text()
        );
        assert_eq!(
            answer.json()["detail"],
            "group_ids: names a group that does not exist: grp-night"
        );
    }
}

#[actix_web::test]
async fn a_dry_run_answers_the_scope_and_stores_nothing() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks.windows.expect_create_window().never();
    mocks.windows.expect_unknown_groups().never();
    mocks
        .windows
        .expect_list_windows()
        .times(1)
        .returning(|_, _| {
            Ok(domain::Page {
                items: Vec::new(),
                total: 999,
            })
        });
    mocks
        .windows
        .expect_preview_scope()
        .withf(|_, _, limit| *limit == 100)
        .times(1)
        .returning(|_, _, _| {
            Ok(ports::ScopePreview {
                devices: Vec::new(),
                in_scope: 0,
                tenant_devices: 4,
                unknown_groups: vec![GroupSlug::parse("grp-gone").expect("valid")],
            })
        });
    let mut body = nightly_body();
    body["group_ids"] = json!(["grp-gone"]);

    // Act
    let answer = call(mocks, post(&format!("{WINDOWS}?dry_run=true"), &body)).await;

    // Assert
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    let json = answer.json();
    assert_eq!(json["devices_in_scope"], 0);
    assert_eq!(json["devices"], json!([]));
    assert_eq!(
        json["warnings"],
        json!([
            "covers no device",
            "names a group that does not exist: grp-gone"
        ])
    );
    assert_eq!(json["window"]["name"], body["name"]);
    assert_eq!(json["window"]["group_ids"], json!(["grp-gone"]));
}

#[actix_web::test]
async fn a_dry_run_at_the_window_cap_is_refused_as_the_create_would_be() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks.windows.expect_preview_scope().never();
    mocks
        .windows
        .expect_list_windows()
        .times(1)
        .returning(|_, _| {
            Ok(domain::Page {
                items: Vec::new(),
                total: 1000,
            })
        });

    // Act
    let answer = call(
        mocks,
        post(&format!("{WINDOWS}?dry_run=true"), &nightly_body()),
    )
    .await;

    // Assert
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        answer.json()["detail"],
        "windows: a tenant may have at most 1000 maintenance windows"
    );
}

#[actix_web::test]
async fn a_group_id_that_cannot_be_a_slug_is_refused_with_422_naming_its_index() {
    for (group_ids, field) in [
        (json!(["bad slug"]), "group_ids[0]: "),
        (json!(["grp-lobby", ""]), "group_ids[1]: "),
    ] {
        // Arrange
        let mut body = nightly_body();
        body["group_ids"] = group_ids.clone();

        // Act
        let answer = refused_window(body).await;

        // Assert
        assert!(
            answer.detail().starts_with(field),
            "{group_ids}: {}",
            answer.detail()
        );
    }
}

#[actix_web::test]
async fn patching_window_group_ids_to_null_asks_the_repository_to_stop_narrowing() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .windows
        .expect_update_window()
        .withf(|tenant, _, window_id, changes| {
            is_tenant_a(tenant)
                && window_id.as_str() == "mw-0000abcd"
                && *changes
                    == WindowChanges {
                        group_ids: Some(None),
                        ..WindowChanges::default()
                    }
        })
        .times(1)
        .returning(|_, _, _, _| Ok(stored_window("mw-0000abcd")));

    // Act
    let answer = call(
        mocks,
        patch(
            "/customer/maintenance-windows/mw-0000abcd",
            &json!({"group_ids": null}),
        ),
    )
    .await;

    // Assert
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(answer.json()["group_ids"], Value::Null);
}

#[actix_web::test]
async fn patching_window_group_ids_passes_the_new_list() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .windows
        .expect_unknown_groups()
        .times(1)
        .returning(|_, _| Ok(Vec::new()));
    mocks
        .windows
        .expect_update_window()
        .withf(|_, _, _, changes| {
            *changes
                == WindowChanges {
                    group_ids: Some(Some(vec![GroupSlug::parse("grp-night").expect("valid")])),
                    ..WindowChanges::default()
                }
        })
        .times(1)
        .returning(|_, _, _, _| {
            let mut window = stored_window("mw-0000abcd");
            window.definition.group_ids = Some(vec![GroupSlug::parse("grp-night").expect("valid")]);
            Ok(window)
        });

    // Act
    let answer = call(
        mocks,
        patch(
            "/customer/maintenance-windows/mw-0000abcd",
            &json!({"group_ids": ["grp-night"]}),
        ),
    )
    .await;

    // Assert
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(answer.json()["group_ids"], json!(["grp-night"]));
}

#[actix_web::test]
async fn patching_window_group_ids_with_a_bad_slug_is_refused_with_422_before_the_repository() {
    // Arrange
    let mocks = Mocks::untouchable();

    // Act
    let answer = call(
        mocks,
        patch(
            "/customer/maintenance-windows/mw-0000abcd",
            &json!({"group_ids": ["bad slug"]}),
        ),
    )
    .await;

    // Assert
    assert_eq!(answer.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        answer.detail().starts_with("group_ids[0]: "),
        "{}",
        answer.detail()
    );
}

// ---------------------------------------------------------------------------------------------
// Maintenance windows: the devices in scope

#[actix_web::test]
async fn a_windows_devices_are_listed_with_active_now_true_while_it_is_active() {
    // Arrange
    let mut mocks = Mocks::bare();
    mocks
        .windows
        .expect_covering_windows()
        .withf(|tenant, ids, _| is_tenant_a(tenant) && ids == [uuid(DEVICE_A), uuid(DEVICE_B)])
        .times(1)
        .returning(|_, ids, _| {
            Ok(ids
                .iter()
                .map(|id| {
                    (
                        *id,
                        vec![domain::WindowSlug::parse("mw-0000abcd").expect("valid")],
                    )
                })
                .collect())
        });
    mocks
        .windows
        .expect_window_devices()
        .withf(|tenant, id| is_tenant_a(tenant) && id.as_str() == "mw-0000abcd")
        .times(1)
        .returning(|_, id| {
            Ok((
                window_of(id.as_str(), always_active()),
                vec![
                    device(uuid(DEVICE_A), "A sensor", office_thresholds()),
                    device(uuid(DEVICE_B), "B sensor", Thresholds::default()),
                ],
            ))
        });

    // Act
    let answer = call(mocks, get(&format!("{WINDOWS}/mw-0000abcd/devices"))).await;

    // Assert
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(
        answer.json(),
        json!({
            "window_id": "mw-0000abcd",
            "devices": [
                {
                    "id": DEVICE_A, "name": "A sensor", "unit": "°C", "status": "connected",
                    "site_id": "site-1", "device_type": "thermostat",
                    "threshold_warning_lower": 0.0, "threshold_warning_upper": 30.0,
                    "threshold_critical_lower": -10.0, "threshold_critical_upper": 40.0,
                    "created_at": "2025-10-01T08:00:00Z", "updated_at": "2025-10-02T09:30:00Z",
                    "created_by": CREATOR, "updated_by": EDITOR,
                    "stale_after_s": null,
                    "labels": {},
                    "state": {
                        "alert_status": "normal", "since": null, "last_reading_at": null,
                        "last_value": null, "freshness": "no_data", "in_maintenance": true,
                    },
                    "active_now": true,
                },
                {
                    "id": DEVICE_B, "name": "B sensor", "unit": "°C", "status": "connected",
                    "site_id": "site-1", "device_type": "thermostat",
                    "threshold_warning_lower": null, "threshold_warning_upper": null,
                    "threshold_critical_lower": null, "threshold_critical_upper": null,
                    "created_at": "2025-10-01T08:00:00Z", "updated_at": "2025-10-02T09:30:00Z",
                    "created_by": CREATOR, "updated_by": EDITOR,
                    "stale_after_s": null,
                    "labels": {},
                    "state": {
                        "alert_status": "normal", "since": null, "last_reading_at": null,
                        "last_value": null, "freshness": "no_data", "in_maintenance": true,
                    },
                    "active_now": true,
                },
            ],
            "total": 2,
        })
    );
}

#[actix_web::test]
async fn a_windows_devices_are_active_now_only_while_the_window_covers_now() {
    // Arrange: the store answers each slug with the window of that name and two devices.
    let mut mocks = Mocks::new();
    mocks
        .windows
        .expect_window_devices()
        .times(6)
        .returning(|_, id| {
            let window = windows_in_every_status()
                .into_iter()
                .find(|w| w.window_id == *id)
                .ok_or(LookupError::NotFound)?;
            Ok((
                window,
                vec![
                    device(uuid(DEVICE_A), "A", Thresholds::default()),
                    device(uuid(DEVICE_B), "B", Thresholds::default()),
                ],
            ))
        });
    let cases = [
        ("mw-active", true),
        ("mw-all-day", true),
        ("mw-disabled", false),
        ("mw-expired", false),
        ("mw-future", false),
        ("mw-elsewhere", false),
    ];
    let requests = cases
        .iter()
        .map(|(id, _)| get(&format!("{WINDOWS}/{id}/devices")))
        .collect();

    // Act
    let answers = call_all(mocks, requests).await;

    // Assert
    for ((id, active), answer) in cases.iter().zip(&answers) {
        assert_eq!(answer.status, StatusCode::OK, "{id}: {}", answer.text());
        let body = answer.json();
        assert_eq!(body["window_id"], *id);
        assert_eq!(body["total"], 2, "{id}");
        let flags: Vec<&Value> = body["devices"]
            .as_array()
            .expect("a devices array")
            .iter()
            .map(|d| &d["active_now"])
            .collect();
        assert_eq!(flags, [&json!(active), &json!(active)], "{id}");
    }
}

#[actix_web::test]
async fn a_window_without_devices_in_scope_lists_none() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .windows
        .expect_window_devices()
        .times(1)
        .returning(|_, id| Ok((window_of(id.as_str(), always_active()), vec![])));

    // Act
    let answer = call(mocks, get(&format!("{WINDOWS}/mw-0000abcd/devices"))).await;

    // Assert
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    assert_eq!(
        answer.json(),
        json!({"window_id": "mw-0000abcd", "devices": [], "total": 0})
    );
}

#[actix_web::test]
async fn store_failures_on_occurrences_and_window_devices_answer_503_or_500_without_leaking() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .windows
        .expect_get_window()
        .times(1)
        .returning(|_, _| {
            Err(LookupError::Store(StoreError::Unavailable(anyhow!(
                "pool exhausted"
            ))))
        });
    mocks
        .windows
        .expect_window_devices()
        .times(1)
        .returning(|_, _| {
            Err(LookupError::Store(StoreError::Unknown(anyhow!(
                "secret SQL detail"
            ))))
        });

    // Act
    let answers = call_all(
        mocks,
        vec![
            get(&format!("{WINDOWS}/mw-0000abcd/occurrences")),
            get(&format!("{WINDOWS}/mw-0000abcd/devices")),
        ],
    )
    .await;

    // Assert
    assert_eq!(answers[0].status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(answers[1].status, StatusCode::INTERNAL_SERVER_ERROR);
    for answer in answers {
        assert!(!answer.detail().is_empty());
        assert!(
            !answer.text().contains("pool exhausted") && !answer.text().contains("secret SQL"),
            "{}",
            answer.text()
        );
    }
}
