//! Issue 17: device labels, the device-list filters, window dry runs, unknown group slugs, and
//! why a device is muted.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::devices::{create_device, names, put};
use crate::helpers::{detail, token, TestApp};
use crate::on_both_stores;

const WINDOWS: &str = "/customer/maintenance-windows";

async fn list(app: &TestApp, token: &str, query: &str) -> (StatusCode, Value) {
    app.get(&format!("/api/devices?{query}"), token).await
}

async fn listed(app: &TestApp, token: &str, query: &str) -> Vec<String> {
    let (status, body) = list(app, token, query).await;
    assert_eq!(status, StatusCode::OK, "{query}: {body}");
    names(&body).into_iter().map(str::to_owned).collect()
}

on_both_stores! {
    async fn labels_default_to_empty_are_replaced_whole_and_echoed_everywhere(app) {
        let admin = token("labels", &["admin"]);

        // Act: create without labels, and with some.
        let (status, plain) = app.post("/api/devices", &admin, json!({"name": "plain"})).await;
        assert_eq!(status, StatusCode::CREATED, "{plain}");
        let (status, tagged) = app.post("/api/devices", &admin, json!({
            "name": "tagged", "labels": {"floor": "3", "team/owner": "ops", "note": "a:b é"},
        })).await;

        // Assert
        assert_eq!(status, StatusCode::CREATED, "{tagged}");
        assert_eq!(plain["labels"], json!({}));
        assert_eq!(tagged["labels"], json!({"floor": "3", "team/owner": "ops", "note": "a:b é"}));
        let id = tagged["id"].as_str().unwrap().to_owned();
        let path = format!("/api/devices/{id}");
        assert_eq!(app.get(&path, &admin).await.1["labels"], tagged["labels"]);

        // PUT without labels leaves them; with labels replaces them whole; {} empties them.
        let (status, renamed) = put(&app, &path, &admin, json!({"name": "tagged 2"})).await;
        assert_eq!(status, StatusCode::OK, "{renamed}");
        assert_eq!(renamed["labels"], tagged["labels"]);
        let (_, replaced) = put(&app, &path, &admin, json!({"labels": {"floor": "4"}})).await;
        assert_eq!(replaced["labels"], json!({"floor": "4"}));
        assert_eq!(app.get(&path, &admin).await.1["labels"], json!({"floor": "4"}));

        // Lists, group member lists and window scopes show them too.
        let (_, all) = app.get("/api/devices", &admin).await;
        assert_eq!(all[1]["labels"], json!({"floor": "4"}), "{all}");
        let (_, emptied) = put(&app, &path, &admin, json!({"labels": {}})).await;
        assert_eq!(emptied["labels"], json!({}));
    }
}

on_both_stores! {
    async fn bad_labels_are_422_naming_the_field_and_store_nothing(app) {
        let admin = token("bad-labels", &["admin"]);
        let id = create_device(&app, &admin, json!({"name": "d", "labels": {"floor": "3"}})).await;
        let path = format!("/api/devices/{id}");
        let many: serde_json::Map<String, Value> =
            (0..33).map(|i| (format!("k{i}"), json!("v"))).collect();

        for (labels, field) in [
            (json!({"floor": 3}), "labels.floor"),
            (json!({"floor": "a\u{7}b"}), "labels.floor"),
            (json!({"floor": "x".repeat(129)}), "labels.floor"),
            (json!({"Floor": "3"}), "labels"),
            (json!({"": "3"}), "labels"),
            (json!({"k".repeat(64): "3"}), "labels"),
            (json!({"a b": "3"}), "labels"),
            (Value::Object(many), "labels"),
            (json!(["floor"]), "labels"),
            (json!(null), "labels"),
        ] {
            // Act
            let (status, body) = app.post("/api/devices", &admin, json!({"name": "new", "labels": labels})).await;
            let (put_status, put_body) = put(&app, &path, &admin, json!({"labels": labels})).await;

            // Assert
            for (status, body) in [(status, &body), (put_status, &put_body)] {
                assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{labels}: {body}");
                assert!(detail(body).starts_with(&format!("{field}: ")), "{labels}: {body}");
            }
        }
        assert_eq!(names(&app.get("/api/devices", &admin).await.1), ["d"], "nothing created");
        assert_eq!(app.get(&path, &admin).await.1["labels"], json!({"floor": "3"}), "nothing changed");
        let limits = json!({"k".repeat(63): "v".repeat(128)});
        let (status, body) = put(&app, &path, &admin, json!({"labels": limits})).await;
        assert_eq!(status, StatusCode::OK, "the limits themselves pass: {body}");
    }
}

on_both_stores! {
    async fn device_lists_filter_by_labels_site_type_status_and_alert_status_together(app) {
        let admin = token("fleet", &["admin"]);
        let viewer = token("fleet", &["viewer"]);
        let boiler = create_device(&app, &admin, json!({
            "name": "boiler", "site_id": "plant-1", "device_type": "thermo", "status": "connected",
            "labels": {"floor": "3", "team": "ops"},
            "threshold_warning_upper": 30.0, "threshold_critical_upper": 40.0,
        })).await;
        create_device(&app, &admin, json!({
            "name": "pump", "site_id": "plant-1", "device_type": "pump", "status": "error",
            "labels": {"floor": "3"},
        })).await;
        create_device(&app, &admin, json!({
            "name": "fan", "site_id": "plant-2", "device_type": "thermo", "labels": {"floor": "4", "team": "ops"},
        })).await;
        create_device(&app, &token("other", &["admin"]), json!({"name": "elsewhere", "labels": {"floor": "3"}})).await;
        let (status, body) = app.post(&format!("/api/devices/{boiler}/readings"), &admin, json!({"value": 45.0})).await;
        assert!(status.is_success(), "{body}");

        // Act / Assert: each filter alone, then together (AND).
        assert_eq!(listed(&app, &viewer, "label=floor:3").await, ["boiler", "pump"]);
        assert_eq!(listed(&app, &viewer, "label=floor:3&label=team:ops").await, ["boiler"]);
        assert_eq!(listed(&app, &viewer, "label=team:ops").await, ["boiler", "fan"]);
        assert!(listed(&app, &viewer, "label=floor:3&label=floor:4").await.is_empty());
        assert!(listed(&app, &viewer, "label=floor:9").await.is_empty());
        assert_eq!(listed(&app, &viewer, "site_id=plant-1").await, ["boiler", "pump"]);
        assert_eq!(listed(&app, &viewer, "device_type=thermo").await, ["boiler", "fan"]);
        assert_eq!(listed(&app, &viewer, "status=error").await, ["pump"]);
        assert_eq!(listed(&app, &viewer, "alert_status=critical").await, ["boiler"]);
        assert_eq!(listed(&app, &viewer, "alert_status=normal").await, ["fan", "pump"]);
        assert_eq!(listed(&app, &viewer, "device_type=thermo&label=team:ops&site_id=plant-2").await, ["fan"]);
        assert!(listed(&app, &viewer, "status=error&label=team:ops").await.is_empty());
        assert_eq!(listed(&app, &viewer, "label=floor%3A3&name=BOIL").await, ["boiler"]);

        // Paged, with the total of all matches.
        let response = app.client()
            .get(format!("{}/api/devices?label=floor:3&limit=1&offset=1", app.base))
            .bearer_auth(&viewer).send().await.expect("sent");
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["x-total-count"], "2");
        assert!(response.headers().contains_key("etag"));
        let page: Value = response.json().await.expect("json");
        assert_eq!(names(&page), ["pump"]);

        // Unknown values and malformed conditions: 422 naming the parameter.
        for (query, field) in [
            ("status=broken", "status"),
            ("alert_status=fine", "alert_status"),
            ("label=floor", "label"),
            ("label=Floor:3", "label"),
            ("label=:3", "label"),
            ("site_id=", "site_id"),
            ("status=error&status=connected", "status"),
            ("site_id=a&site_id=b", "site_id"),
            ("labels=floor:3", "labels"),
        ] {
            let (status, body) = list(&app, &viewer, query).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{query}: {body}");
            assert!(detail(&body).starts_with(&format!("{field}: ")), "{query}: {body}");
        }
        let too_many = vec!["label=a:b"; 33].join("&");
        let (status, body) = list(&app, &viewer, &too_many).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(detail(&body).starts_with("label: "), "{body}");
        let enough = vec!["label=floor:3"; 32].join("&");
        assert_eq!(listed(&app, &viewer, &enough).await, ["boiler", "pump"]);
    }
}

/// A window body open since 2020 with `scope` merged in.
fn window(name: &str, scope: Value) -> Value {
    let mut body = json!({"name": name, "starts_at": "2020-01-01T00:00:00Z"});
    for (k, v) in scope.as_object().expect("object") {
        body[k] = v.clone();
    }
    body
}

on_both_stores! {
    async fn a_dry_run_shows_the_scope_and_warnings_and_stores_nothing(app) {
        let admin = token("dry", &["admin"]);
        let operator = token("dry", &["operator"]);
        let viewer = token("dry", &["viewer"]);
        let a = create_device(&app, &admin, json!({"name": "a", "site_id": "s1"})).await;
        create_device(&app, &admin, json!({"name": "b", "site_id": "s1"})).await;
        create_device(&app, &admin, json!({"name": "c", "site_id": "s2"})).await;
        let (status, body) = app.post("/customer/device-groups", &admin, json!({"group_id": "grp-a", "name": "A"})).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (status, body) = app.request(Method::PUT, &format!("/customer/device-groups/grp-a/devices/{a}"), Some(&admin), None).await;
        assert!(status.is_success(), "{body}");
        let dry = format!("{WINDOWS}?dry_run=true");

        // Act: a scope of some devices.
        let (status, run) = app.post(&dry, &operator, window("Site 1", json!({"site_ids": ["s1"]}))).await;

        // Assert
        assert_eq!(status, StatusCode::OK, "{run}");
        assert_eq!(run["devices_in_scope"], 2);
        assert_eq!(names(&run["devices"]), ["a", "b"]);
        assert_eq!(run["devices"][0]["labels"], json!({}));
        assert_eq!(run["warnings"], json!([]));
        assert_eq!(run["window"]["name"], "Site 1");
        assert_eq!(run["window"]["site_ids"], json!(["s1"]));
        assert_eq!(run["window"]["status"], "active");
        assert_eq!(run["window"]["created_by"], run["window"]["updated_by"]);

        // Warnings, worded exactly.
        let (_, none) = app.post(&dry, &admin, window("Nowhere", json!({"site_ids": ["s9"]}))).await;
        assert_eq!((none["devices_in_scope"].clone(), none["warnings"].clone()), (json!(0), json!(["covers no device"])));
        let (_, every) = app.post(&dry, &admin, window("Everything", json!({}))).await;
        assert_eq!(every["devices_in_scope"], 3);
        assert_eq!(every["warnings"], json!(["covers every device of the tenant"]));
        let (_, missing) = app.post(&dry, &admin, window("Groups", json!({"group_ids": ["grp-a", "grp-gone"]}))).await;
        assert_eq!(missing["devices_in_scope"], 1);
        assert_eq!(missing["warnings"], json!(["names a group that does not exist: grp-gone"]));

        // Nothing was stored: no window, no idempotency record, no event.
        let (_, windows) = app.get(WINDOWS, &admin).await;
        assert_eq!(windows["total"], 0, "{windows}");
        let keyed = app.client().post(format!("{}{dry}", app.base)).bearer_auth(&admin)
            .header("Idempotency-Key", "k-1").json(&window("Keyed", json!({}))).send().await.expect("sent");
        assert_eq!(keyed.status(), StatusCode::OK);
        let real = app.client().post(format!("{}{WINDOWS}", app.base)).bearer_auth(&admin)
            .header("Idempotency-Key", "k-1").json(&window("Keyed", json!({}))).send().await.expect("sent");
        assert_eq!(real.status(), StatusCode::OK);
        let real: Value = real.json().await.expect("json");
        assert!(real.get("devices_in_scope").is_none(), "the key was not kept by the dry run: {real}");

        // Invalid windows and roles are judged as the write judges them.
        let (status, body) = app.post(&dry, &admin, json!({"name": "x", "starts_at": "2025-01-02T00:00:00Z", "ends_at": "2025-01-01T00:00:00Z"})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(detail(&body).starts_with("ends_at: "), "{body}");
        let (status, _) = app.post(&dry, &viewer, window("Viewer", json!({}))).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, body) = app.post(&format!("{WINDOWS}?dry_run=maybe"), &admin, window("x", json!({}))).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(detail(&body).starts_with("dry_run: "), "{body}");
        let (status, body) = app.get(&format!("{WINDOWS}?dry_run=true"), &admin).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "a read takes no dry_run: {body}");

        // PATCH: the stored window with the changes, unchanged in store.
        let path = format!("{WINDOWS}/{}", real["window_id"].as_str().unwrap());
        let (status, run) = app.patch(&format!("{path}?dry_run=true"), &operator, json!({"site_ids": ["s2"], "group_ids": ["grp-gone"]})).await;
        assert_eq!(status, StatusCode::OK, "{run}");
        assert_eq!(run["window"]["window_id"], real["window_id"]);
        assert_eq!(run["window"]["site_ids"], json!(["s2"]));
        assert_eq!(run["devices_in_scope"], 0);
        assert_eq!(run["warnings"], json!(["covers no device", "names a group that does not exist: grp-gone"]));
        let (_, stored) = app.get(&path, &admin).await;
        assert_eq!(stored, real, "nothing changed");
        let (status, _) = app.patch(&format!("{WINDOWS}/mw-00000000?dry_run=true"), &admin, json!({"enabled": false})).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, body) = app.delete(&format!("{path}?dry_run=true"), &admin).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "a delete is never a dry run: {body}");
        assert_eq!(app.get(&path, &admin).await.0, StatusCode::OK);
        // `dry_run=false` is a real write, answered with the resource's tag as without it.
        let response = app
            .client()
            .patch(format!("{}{path}?dry_run=false", app.base))
            .bearer_auth(&admin)
            .json(&json!({"name": "Renamed"}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert!(response.headers().contains_key("etag"), "a real write is tagged");
    }
}

on_both_stores! {
    async fn unknown_group_slugs_are_refused_on_real_writes(app) {
        let admin = token("slugs", &["admin"]);
        let (status, body) = app.post("/customer/device-groups", &admin, json!({"group_id": "grp-real", "name": "Real"})).await;
        assert_eq!(status, StatusCode::OK, "{body}");

        // Act
        let (status, body) = app.post(WINDOWS, &admin, window("W", json!({"group_ids": ["grp-real", "grp-nope"]}))).await;

        // Assert
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(detail(&body), "group_ids: names a group that does not exist: grp-nope");
        assert_eq!(app.get(WINDOWS, &admin).await.1["total"], 0);

        let (status, created) = app.post(WINDOWS, &admin, window("W", json!({"group_ids": ["grp-real"]}))).await;
        assert_eq!(status, StatusCode::OK, "{created}");
        let path = format!("{WINDOWS}/{}", created["window_id"].as_str().unwrap());
        let (status, body) = app.patch(&path, &admin, json!({"group_ids": ["grp-nope"]})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(detail(&body), "group_ids: names a group that does not exist: grp-nope");
        assert_eq!(app.get(&path, &admin).await.1["group_ids"], json!(["grp-real"]));
    }
}

on_both_stores! {
    async fn a_device_answers_which_windows_may_mute_it_and_when(app) {
        let admin = token("why", &["admin"]);
        let viewer = token("why", &["viewer"]);
        let id = create_device(&app, &admin, json!({"name": "boiler", "site_id": "s1", "device_type": "thermo"})).await;
        let (_, active) = app.post(WINDOWS, &admin, window("Now", json!({"site_ids": ["s1"]}))).await;
        let (_, later) = app.post(WINDOWS, &admin, json!({"name": "Later", "starts_at": "2099-01-01T00:00:00Z", "ends_at": "2099-01-02T00:00:00Z", "device_types": ["thermo"]})).await;
        for body in [
            window("Elsewhere", json!({"site_ids": ["s2"]})),
            json!({"name": "Over", "starts_at": "2020-01-01T00:00:00Z", "ends_at": "2020-01-02T00:00:00Z"}),
            window("Off", json!({"enabled": false})),
        ] {
            let (status, body) = app.post(WINDOWS, &admin, body).await;
            assert_eq!(status, StatusCode::OK, "{body}");
        }

        // Act
        let path = format!("/api/devices/{id}/maintenance");
        let (status, body) = app.get(&path, &viewer).await;

        // Assert
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["device_id"], id.as_str());
        let windows = body["windows"].as_array().expect("windows");
        let names: Vec<&str> = windows.iter().map(|w| w["window"]["name"].as_str().unwrap()).collect();
        assert_eq!(names, ["Later", "Now"], "latest start first: {body}");
        assert_eq!(windows[1]["window"], app.get(&format!("{WINDOWS}/{}", active["window_id"].as_str().unwrap()), &admin).await.1);
        assert_eq!(windows[1]["active_now"], true);
        assert_eq!(windows[1]["next_occurrence"], json!({"starts_at": "2020-01-01T00:00:00Z", "ends_at": null}));
        assert_eq!(windows[0]["window"]["window_id"], later["window_id"]);
        assert_eq!(windows[0]["active_now"], false);
        assert_eq!(windows[0]["next_occurrence"], json!({"starts_at": "2099-01-01T00:00:00Z", "ends_at": "2099-01-02T00:00:00Z"}));

        // Unknown and foreign devices: 404 as the other device routes.
        for (device, who) in [(uuid::Uuid::new_v4().to_string(), &viewer), (id.clone(), &token("other", &["admin"])), ("nope".to_owned(), &viewer)] {
            let (status, body) = app.get(&format!("/api/devices/{device}/maintenance"), who).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
            assert_eq!(detail(&body), format!("Device {device} not found"));
        }
    }
}
