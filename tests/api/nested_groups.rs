//! Issue 17: nested groups. Each family names a parent in its own form (a UUID in the Group API,
//! a slug in the customer API); a wrong form, a parent of another tenant, a cycle or a ninth
//! level is a 422 naming `parent_id`; `include_descendants` covers a group's whole tree.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::devices::{create_device, put};
use crate::helpers::{detail, status_counts, token, TestApp};
use crate::on_both_stores;

async fn api_group(app: &TestApp, token: &str, body: Value) -> Value {
    let (status, created) = app.post("/api/groups", token, body.clone()).await;
    assert_eq!(status, StatusCode::CREATED, "{body} -> {created}");
    created
}

async fn customer_group(app: &TestApp, token: &str, body: Value) -> Value {
    let (status, created) = app
        .post("/customer/device-groups", token, body.clone())
        .await;
    assert_eq!(status, StatusCode::OK, "{body} -> {created}");
    created
}

fn id(group: &Value) -> &str {
    group["id"].as_str().expect("id")
}

fn slug(group: &Value) -> &str {
    group["group_id"].as_str().expect("group_id")
}

/// Asserts a 422 whose detail names `parent_id`, and returns the detail.
fn refused(status: StatusCode, body: &Value) -> String {
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let detail = detail(body).to_owned();
    assert!(detail.starts_with("parent_id: "), "{detail}");
    detail
}

async fn group_count(app: &TestApp, token: &str) -> usize {
    let (status, list) = app.get("/api/groups", token).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    list.as_array().expect("array").len()
}

on_both_stores! {
    async fn each_family_names_and_echoes_a_parent_in_its_own_form(app) {
        let admin = token("nested", &["admin"]);
        let building = api_group(&app, &admin, json!({"name": "Building"})).await;
        assert_eq!(building["parent_id"], Value::Null);

        // Act: a child in the Group API (by UUID), a grandchild in the customer API (by slug).
        let floor = api_group(&app, &admin, json!({"name": "Floor 1", "parent_id": id(&building)})).await;
        let room = customer_group(&app, &admin, json!({"name": "Room 101", "parent_id": slug(&floor)})).await;

        // Assert: each family echoes the parent in its form, in every view.
        assert_eq!(floor["parent_id"], id(&building));
        assert_eq!(room["parent_id"], slug(&floor));
        let (_, one) = app.get(&format!("/api/groups/{}", id(&room)), &admin).await;
        assert_eq!(one["parent_id"], id(&floor));
        let (_, list) = app.get("/api/groups", &admin).await;
        let parents: Vec<(&str, &Value)> = list.as_array().expect("array").iter()
            .map(|g| (g["name"].as_str().expect("name"), &g["parent_id"])).collect();
        assert_eq!(parents, [
            ("Building", &Value::Null),
            ("Floor 1", &json!(id(&building))),
            ("Room 101", &json!(id(&floor))),
        ]);
        let (_, one) = app.get(&format!("/customer/device-groups/{}", slug(&floor)), &admin).await;
        assert_eq!(one["parent_id"], slug(&building));
        let (_, list) = app.get("/customer/device-groups", &admin).await;
        let parents: Vec<(&str, &Value)> = list["groups"].as_array().expect("array").iter()
            .map(|g| (g["name"].as_str().expect("name"), &g["parent_id"])).collect();
        assert_eq!(parents, [
            ("Building", &Value::Null),
            ("Floor 1", &json!(slug(&building))),
            ("Room 101", &json!(slug(&floor))),
        ]);

        // Moves: PUT by UUID, PATCH by slug (a parent alone is a change), null to the top.
        let annex = api_group(&app, &admin, json!({"name": "Annex"})).await;
        let (status, moved) = put(&app, &format!("/api/groups/{}", id(&room)), &admin, json!({"parent_id": id(&annex)})).await;
        assert_eq!((status, &moved["parent_id"]), (StatusCode::OK, &json!(id(&annex))), "{moved}");
        let (status, moved) = app.patch(&format!("/customer/device-groups/{}", slug(&room)), &admin, json!({"parent_id": slug(&floor)})).await;
        assert_eq!((status, &moved["parent_id"]), (StatusCode::OK, &json!(slug(&floor))), "{moved}");
        let (status, renamed) = put(&app, &format!("/api/groups/{}", id(&room)), &admin, json!({"name": "Room 102"})).await;
        assert_eq!((status, &renamed["parent_id"]), (StatusCode::OK, &json!(id(&floor))), "absent: unchanged");
        let (status, top) = app.patch(&format!("/customer/device-groups/{}", slug(&room)), &admin, json!({"parent_id": null})).await;
        assert_eq!((status, &top["parent_id"]), (StatusCode::OK, &Value::Null), "{top}");

        // Deleting a parent leaves its children at the top.
        let (status, _) = app.delete(&format!("/api/groups/{}", id(&building)), &admin).await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (_, orphan) = app.get(&format!("/api/groups/{}", id(&floor)), &admin).await;
        assert_eq!(orphan["parent_id"], Value::Null);
        let (_, orphan) = app.get(&format!("/customer/device-groups/{}", slug(&floor)), &admin).await;
        assert_eq!(orphan["parent_id"], Value::Null);
    }
}

on_both_stores! {
    async fn wrong_parents_are_422_naming_parent_id_and_store_nothing(app) {
        let admin = token("nested-bad", &["admin"]);
        let root = api_group(&app, &admin, json!({"name": "Root"})).await;
        let child = api_group(&app, &admin, json!({"name": "Child", "parent_id": id(&root)})).await;
        let foreign = api_group(&app, &token("nested-other", &["admin"]), json!({"name": "Foreign"})).await;
        let before = group_count(&app, &admin).await;

        // The other family's form.
        let (status, body) = app.post("/api/groups", &admin, json!({"name": "X", "parent_id": slug(&root)})).await;
        let said = refused(status, &body);
        assert!(said.contains("slugs are for /customer/device-groups"), "{said}");
        let (status, body) = app.post("/customer/device-groups", &admin, json!({"name": "X", "parent_id": id(&root)})).await;
        let said = refused(status, &body);
        assert!(said.contains("UUIDs are for /api/groups"), "{said}");
        // Unknown, another tenant's, not a slug at all.
        for parent in [uuid::Uuid::new_v4().to_string(), id(&foreign).to_owned()] {
            let (status, body) = app.post("/api/groups", &admin, json!({"name": "X", "parent_id": parent})).await;
            refused(status, &body);
        }
        let (status, body) = app.post("/customer/device-groups", &admin, json!({"name": "X", "parent_id": slug(&foreign)})).await;
        refused(status, &body);
        let (status, body) = app.post("/customer/device-groups", &admin, json!({"name": "X", "parent_id": "a b"})).await;
        refused(status, &body);
        assert_eq!(group_count(&app, &admin).await, before, "nothing stored");

        // Cycles: itself, a descendant; in both families.
        let root_path = format!("/api/groups/{}", id(&root));
        for parent in [id(&root), id(&child)] {
            let (status, body) = put(&app, &root_path, &admin, json!({"parent_id": parent})).await;
            let said = refused(status, &body);
            assert!(said.contains("under itself or one of its descendants"), "{said}");
        }
        let (status, body) = app.patch(&format!("/customer/device-groups/{}", slug(&root)), &admin, json!({"parent_id": slug(&child)})).await;
        refused(status, &body);
        let (_, still) = app.get(&root_path, &admin).await;
        assert_eq!(still["parent_id"], Value::Null, "nothing changed");

        // Eight levels (root, child, six more) are allowed; a ninth is refused.
        let mut parent = slug(&child).to_owned();
        for level in 3..=8 {
            let group = customer_group(&app, &admin, json!({"name": format!("Level {level}"), "parent_id": parent})).await;
            parent = slug(&group).to_owned();
        }
        let (status, body) = app.post("/customer/device-groups", &admin, json!({"name": "Level 9", "parent_id": parent})).await;
        let said = refused(status, &body);
        assert!(said.contains("at most 8 levels"), "{said}");
        // Moving a subtree of two levels under level 7 would put its leaf on level 9.
        let top = api_group(&app, &admin, json!({"name": "Top"})).await;
        api_group(&app, &admin, json!({"name": "Under top", "parent_id": id(&top)})).await;
        let (_, level8) = app.get(&format!("/customer/device-groups/{parent}"), &admin).await;
        let (_, level7) = app.get(&format!("/customer/device-groups/{}", level8["parent_id"].as_str().expect("parent")), &admin).await;
        let (status, body) = put(&app, &format!("/api/groups/{}", id(&top)), &admin, json!({"parent_id": id(&level7)})).await;
        refused(status, &body);
    }
}

on_both_stores! {
    async fn include_descendants_covers_the_tree_counting_each_device_once(app) {
        let admin = token("nested-tree", &["admin"]);
        let thresholds = |name: &str| json!({
            "name": name, "unit": "°C",
            "threshold_warning_lower": 0.0, "threshold_warning_upper": 30.0,
            "threshold_critical_lower": -10.0, "threshold_critical_upper": 40.0,
        });
        let a = create_device(&app, &admin, thresholds("a")).await;
        let b = create_device(&app, &admin, thresholds("b")).await;
        let c = create_device(&app, &admin, thresholds("c")).await;
        let (status, body) = app.post("/api/readings", &admin, json!({"readings": [
            {"device_id": a, "timestamp": time_ago(90), "value": 20.0},
            {"device_id": b, "timestamp": time_ago(80), "value": 35.0},
            {"device_id": c, "timestamp": time_ago(70), "value": 45.0},
        ]})).await;
        assert!(status.is_success(), "{body}");
        let root = api_group(&app, &admin, json!({"name": "Root", "device_ids": [a, b]})).await;
        // b is in both groups: the tree counts it once.
        api_group(&app, &admin, json!({"name": "Child", "device_ids": [b, c], "parent_id": id(&root)})).await;
        let path = format!("/api/groups/{}", id(&root));

        // Default: the group's own members, as before.
        let (_, own) = app.get(&path, &admin).await;
        assert_eq!(own["devices"].as_array().expect("devices").len(), 2);
        let (_, own_again) = app.get(&format!("{path}?include_descendants=false"), &admin).await;
        assert_eq!(own_again["devices"], own["devices"]);

        // Act
        let (status, tree) = app.get(&format!("{path}?include_descendants=true"), &admin).await;

        // Assert: three devices, normal + warning + critical = 3.
        assert_eq!(status, StatusCode::OK, "{tree}");
        let names: Vec<&str> = tree["devices"].as_array().expect("devices").iter()
            .map(|d| d["name"].as_str().expect("name")).collect();
        assert_eq!(names, ["a", "b", "c"]);
        assert_eq!(tree["id"], id(&root));
        let counts = json!({"normal": 1, "warning": 1, "critical": 1, "in_maintenance": 0, "suppressed": 0});
        assert_eq!(status_counts(&tree["alert_summary"]), counts);
        let (status, alerts) = app.get(&format!("{path}/alerts?include_descendants=true"), &admin).await;
        assert_eq!((status, status_counts(&alerts)), (StatusCode::OK, counts));
        let (_, own_alerts) = app.get(&format!("{path}/alerts"), &admin).await;
        assert_eq!(status_counts(&own_alerts)["critical"], 0, "the group's own: a and b");
        let (status, readings) = app.get(&format!("{path}/readings?hours=1&include_descendants=true"), &admin).await;
        assert_eq!(status, StatusCode::OK, "{readings}");
        let read: Vec<&str> = readings["readings"].as_array().expect("readings").iter()
            .map(|r| r["device_id"].as_str().expect("device")).collect();
        assert_eq!(read, [c.as_str(), b.as_str(), a.as_str()], "newest first, each once");
        let (_, own_readings) = app.get(&format!("{path}/readings?hours=1"), &admin).await;
        assert_eq!(own_readings["total"], 2);

        // Buckets: one series per device of the tree.
        let (status, buckets) = app.get(&format!("{path}/readings?hours=1&interval=1h&include_descendants=true"), &admin).await;
        assert_eq!(status, StatusCode::OK, "{buckets}");
        let mut series: Vec<&str> = buckets["series"].as_array().expect("series").iter()
            .map(|s| s["device_id"].as_str().expect("device")).collect();
        series.sort_unstable();
        let mut all = vec![a.as_str(), b.as_str(), c.as_str()];
        all.sort_unstable();
        assert_eq!(series, all);

        // A tree's cursor is not the group's: asked of the group's own members, it is refused;
        // sent alone, or with the tree asked again, it goes on over the tree.
        let (_, first) = app.get(&format!("{path}/readings?hours=1&limit=1&include_descendants=true"), &admin).await;
        let cursor = first["next_cursor"].as_str().expect("more follow");
        let (status, body) = app.get(&format!("{path}/readings?hours=1&limit=1&include_descendants=false&cursor={cursor}"), &admin).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(detail(&body).starts_with("cursor: "), "{body}");
        for asked in ["include_descendants=true&", ""] {
            let (status, next) = app.get(&format!("{path}/readings?{asked}cursor={cursor}"), &admin).await;
            assert_eq!((status, &next["readings"][0]["device_id"]), (StatusCode::OK, &json!(b)), "{asked}: {next}");
            let after = next["next_cursor"].as_str().expect("one more follows");
            let (_, last) = app.get(&format!("{path}/readings?cursor={after}"), &admin).await;
            assert_eq!(last["readings"][0]["device_id"], json!(a), "{last}");
            assert_eq!(last["has_more"], false, "{last}");
        }

        // The key is declared on the reads only, and its values are checked.
        for route in ["", "/alerts", "/readings"] {
            let (status, body) = app.get(&format!("{path}{route}?include_descendants=yes"), &admin).await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
            assert_eq!(detail(&body), "include_descendants: must be true or false");
        }
        let (status, body) = app.request(Method::PUT, &format!("{path}?include_descendants=true"), Some(&admin), Some(json!({}))).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert_eq!(detail(&body), "include_descendants: unknown query parameter");
        let (status, body) = app.get(&format!("/customer/device-groups/{}?include_descendants=true", slug(&root)), &admin).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    }
}

on_both_stores! {
    async fn a_window_naming_a_group_mutes_its_descendants_members(app) {
        let admin = token("nested-window", &["admin"]);
        let x = create_device(&app, &admin, json!({"name": "x", "unit": "°C"})).await;
        let site = customer_group(&app, &admin, json!({"name": "Site", "group_id": "grp-site"})).await;
        let floor = customer_group(&app, &admin, json!({"name": "Floor", "parent_id": slug(&site)})).await;
        let (status, body) = put(&app, &format!("/customer/device-groups/{}/devices/{x}", slug(&floor)), &admin, json!({})).await;
        assert!(status.is_success(), "{body}");
        let (status, window) = app.post("/customer/maintenance-windows", &admin, json!({
            "name": "Site works", "starts_at": "2025-01-01T00:00:00Z", "group_ids": ["grp-site"],
        })).await;
        assert_eq!(status, StatusCode::OK, "{window}");
        let floor_path = format!("/api/groups/{}", id(&floor));

        let (_, detail_now) = app.get(&floor_path, &admin).await;
        assert_eq!(detail_now["devices"][0]["in_maintenance"], true, "{detail_now}");
        let window_id = window["window_id"].as_str().expect("window id");
        let (_, covered) = app.get(&format!("/customer/maintenance-windows/{window_id}/devices"), &admin).await;
        assert_eq!(covered["total"], 1, "{covered}");
        // "Why muted" names the window that reaches the device through the floor's parent.
        let why = format!("/api/devices/{x}/maintenance");
        let windows_of = |answer: &Value| -> Vec<String> {
            answer["windows"].as_array().expect("windows").iter()
                .map(|w| w["window"]["window_id"].as_str().expect("window id").to_owned())
                .collect()
        };
        let (status, answer) = app.get(&why, &admin).await;
        assert_eq!(status, StatusCode::OK, "{answer}");
        assert_eq!(windows_of(&answer), [window_id], "{answer}");
        assert_eq!(answer["windows"][0]["active_now"], true, "{answer}");

        // A dynamic group under the site reaches its matches the same way, two levels down.
        let y = create_device(&app, &admin, json!({"name": "y", "unit": "°C", "labels": {"zone": "north"}})).await;
        customer_group(&app, &admin, json!({
            "name": "North", "parent_id": slug(&floor), "filter": {"labels": {"zone": "north"}},
        })).await;
        let (_, answer) = app.get(&format!("/api/devices/{y}/maintenance"), &admin).await;
        assert_eq!(windows_of(&answer), [window_id], "{answer}");

        // The floor moves to the top: the window no longer covers its member.
        let (status, _) = app.patch(&format!("/customer/device-groups/{}", slug(&floor)), &admin, json!({"parent_id": null})).await;
        assert_eq!(status, StatusCode::OK);
        let (_, detail_now) = app.get(&floor_path, &admin).await;
        assert_eq!(detail_now["devices"][0]["in_maintenance"], false, "{detail_now}");
        let (_, covered) = app.get(&format!("/customer/maintenance-windows/{window_id}/devices"), &admin).await;
        assert_eq!(covered["total"], 0, "{covered}");
        for device in [&x, &y] {
            let (_, answer) = app.get(&format!("/api/devices/{device}/maintenance"), &admin).await;
            assert!(windows_of(&answer).is_empty(), "{answer}");
        }
    }
}

/// An RFC 3339 instant `seconds` ago.
fn time_ago(seconds: i64) -> String {
    (time::OffsetDateTime::now_utc() - time::Duration::seconds(seconds))
        .format(&time::format_description::well_known::Rfc3339)
        .expect("formatted")
}
