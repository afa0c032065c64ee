//! Membership in the customer API (`/customer/device-groups/{group_id}/devices`), and the one
//! group both API families address.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::devices::{create_device, put};
use crate::helpers::{token, TestApp};
use crate::on_both_stores;
use crate::readings::{ago, ingest};

/// Creates a customer-API group, asserting 200, and returns its slug.
async fn customer_group(app: &TestApp, token: &str, body: Value) -> String {
    let (status, created) = app
        .post("/customer/device-groups", token, body.clone())
        .await;
    assert_eq!(status, StatusCode::OK, "{body} -> {created}");
    created["group_id"].as_str().expect("group_id").to_owned()
}

async fn add(app: &TestApp, token: &str, group: &str, device: &str) -> (StatusCode, Value) {
    put(
        app,
        &format!("/customer/device-groups/{group}/devices/{device}"),
        token,
        json!({}),
    )
    .await
}

async fn add_without_body(
    app: &TestApp,
    token: &str,
    group: &str,
    device: &str,
) -> (StatusCode, Value) {
    app.request(
        Method::PUT,
        &format!("/customer/device-groups/{group}/devices/{device}"),
        Some(token),
        None,
    )
    .await
}

async fn remove(app: &TestApp, token: &str, group: &str, device: &str) -> (StatusCode, Value) {
    app.delete(
        &format!("/customer/device-groups/{group}/devices/{device}"),
        token,
    )
    .await
}

async fn member_count(app: &TestApp, token: &str, group: &str) -> u64 {
    let (status, list) = app.get("/customer/device-groups", token).await;
    assert_eq!(status, StatusCode::OK, "{list}");
    list["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .find(|g| g["group_id"] == group)
        .unwrap_or_else(|| panic!("{group} not listed in {list}"))["member_count"]
        .as_u64()
        .expect("member_count")
}

fn device_ids(members: &Value) -> Vec<&str> {
    members["devices"]
        .as_array()
        .unwrap_or_else(|| panic!("no devices in {members}"))
        .iter()
        .map(|d| d["id"].as_str().expect("id"))
        .collect()
}

on_both_stores! {
    async fn a_device_is_added_idempotently_listed_and_removed(app) {
        let admin = token("acme", &["admin"]);
        let boiler = create_device(&app, &admin, json!({"name": "Boiler", "unit": "°C"})).await;
        let alpha = create_device(&app, &admin, json!({"name": "Alpha"})).await;
        let slug = customer_group(&app, &admin, json!({"name": "Lobby"})).await;
        let members_path = format!("/customer/device-groups/{slug}/devices");

        let (status, members) = app.get(&members_path, &admin).await;
        assert_eq!((status, members), (StatusCode::OK, json!({"group_id": slug, "devices": [], "total": 0})));

        // Act: add the same device twice.
        let (status, body) = add(&app, &admin, &slug, &boiler).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["member"], true, "{body}");
        let (status, body) = add_without_body(&app, &admin, &slug, &boiler).await;
        assert_eq!(status, StatusCode::OK, "a second PUT is idempotent: {body}");

        // Assert
        let (status, members) = app.get(&members_path, &admin).await;
        assert_eq!(status, StatusCode::OK, "{members}");
        assert_eq!(members["group_id"], slug.as_str());
        assert_eq!(members["total"], 1);
        assert_eq!(device_ids(&members), [boiler.as_str()]);
        assert_eq!(members["devices"][0]["name"], "Boiler");
        assert_eq!(members["devices"][0]["unit"], "°C");
        assert_eq!(member_count(&app, &admin, &slug).await, 1);

        // A second device; the list is ordered by name.
        let (status, _) = add(&app, &admin, &slug, &alpha).await;
        assert_eq!(status, StatusCode::OK);
        let (_, members) = app.get(&members_path, &admin).await;
        assert_eq!(device_ids(&members), [alpha.as_str(), boiler.as_str()]);
        assert_eq!(members["total"], 2);
        assert_eq!(member_count(&app, &admin, &slug).await, 2);

        // Remove, then removing again is 404.
        let (status, body) = remove(&app, &admin, &slug, &boiler).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["member"], false, "{body}");
        let (status, body) = remove(&app, &admin, &slug, &boiler).await;
        assert_eq!((status, body), (StatusCode::NOT_FOUND, json!({"detail": "Device not in group"})));
        let (_, members) = app.get(&members_path, &admin).await;
        assert_eq!(device_ids(&members), [alpha.as_str()]);
        assert_eq!(member_count(&app, &admin, &slug).await, 1);

        // The device itself stays.
        let (status, _) = app.get(&format!("/api/devices/{boiler}"), &admin).await;
        assert_eq!(status, StatusCode::OK);
    }
}

on_both_stores! {
    async fn unknown_groups_and_devices_answer_404(app) {
        let admin = token("acme", &["admin"]);
        let device = create_device(&app, &admin, json!({"name": "Boiler"})).await;
        let slug = customer_group(&app, &admin, json!({"name": "Lobby"})).await;
        let unknown = uuid::Uuid::new_v4().to_string();
        let group_missing = json!({"detail": "Group not found"});

        for (what, (status, body)) in [
            ("list members", app.get("/customer/device-groups/grp-missing/devices", &admin).await),
            ("add", add(&app, &admin, "grp-missing", &device).await),
            ("add, unknown device too", add(&app, &admin, "grp-missing", &unknown).await),
            ("remove", remove(&app, &admin, "grp-missing", &device).await),
        ] {
            assert_eq!((status, body), (StatusCode::NOT_FOUND, group_missing.clone()), "{what}");
        }
        for raw in [unknown.as_str(), "abc"] {
            let (status, body) = add(&app, &admin, &slug, raw).await;
            assert_eq!((status, body), (StatusCode::NOT_FOUND, json!({"detail": "Device not found"})), "{raw}");
            let (status, body) = remove(&app, &admin, &slug, raw).await;
            assert_eq!((status, body), (StatusCode::NOT_FOUND, json!({"detail": "Device not in group"})), "{raw}");
        }
        // A device that exists but is not a member.
        let (status, body) = remove(&app, &admin, &slug, &device).await;
        assert_eq!((status, body), (StatusCode::NOT_FOUND, json!({"detail": "Device not in group"})));
        assert_eq!(member_count(&app, &admin, &slug).await, 0);
    }
}

on_both_stores! {
    async fn one_group_is_addressed_by_both_api_families(app) {
        let admin = token("acme", &["admin"]);
        let d1 = create_device(&app, &admin, json!({"name": "D1"})).await;
        let d2 = create_device(&app, &admin, json!({"name": "D2"})).await;

        // A customer-API group is visible in the Group API by its id, with its members.
        let (_, created) = app.post("/customer/device-groups", &admin, json!({"group_id": "grp-lobby", "name": "Lobby", "description": "Ground floor"})).await;
        let uuid = created["id"].as_str().expect("id").to_owned();
        add(&app, &admin, "grp-lobby", &d1).await;
        let (status, group) = app.get(&format!("/api/groups/{uuid}"), &admin).await;
        assert_eq!(status, StatusCode::OK, "{group}");
        assert_eq!(group["name"], "Lobby");
        assert_eq!(group["description"], "Ground floor");
        assert_eq!(group["devices"].as_array().map(Vec::len), Some(1));
        assert_eq!(group["devices"][0]["id"], d1.as_str());
        let (_, list) = app.get("/api/groups", &admin).await;
        assert_eq!(list[0]["id"], uuid.as_str());
        assert_eq!(list[0]["device_count"], 1);

        // A Group API change shows in the customer API.
        let (status, _) = put(&app, &format!("/api/groups/{uuid}"), &admin, json!({"device_ids": [d1, d2]})).await;
        assert_eq!(status, StatusCode::OK);
        let (_, members) = app.get("/customer/device-groups/grp-lobby/devices", &admin).await;
        assert_eq!(device_ids(&members), [d1.as_str(), d2.as_str()]);
        assert_eq!(member_count(&app, &admin, "grp-lobby").await, 2);

        // A Group API group is visible in the customer API by the slug the Group API returns.
        let (status, api_group) = app.post("/api/groups", &admin, json!({"name": "Roof", "device_ids": [d2]})).await;
        assert_eq!(status, StatusCode::CREATED, "{api_group}");
        let slug = api_group["group_id"].as_str().unwrap_or_else(|| panic!("no group_id slug in {api_group}")).to_owned();
        let (status, one) = app.get(&format!("/customer/device-groups/{slug}"), &admin).await;
        assert_eq!(status, StatusCode::OK, "{one}");
        assert_eq!(one["id"], api_group["id"]);
        assert_eq!(one["name"], "Roof");
        assert_eq!(one["member_count"], 1);
        let (_, members) = app.get(&format!("/customer/device-groups/{slug}/devices"), &admin).await;
        assert_eq!(device_ids(&members), [d2.as_str()]);

        // Removing through the customer API shows in the Group API.
        remove(&app, &admin, &slug, &d2).await;
        let (_, group) = app.get(&format!("/api/groups/{}", api_group["id"].as_str().unwrap()), &admin).await;
        assert_eq!(group["devices"], json!([]));

        // Names are unique across both families.
        let (status, body) = app.post("/api/groups", &admin, json!({"name": "Lobby"})).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body["code"], "GROUP_001");
        let (status, _) = app.post("/customer/device-groups", &admin, json!({"name": "Roof"})).await;
        assert_eq!(status, StatusCode::CONFLICT);
    }
}

on_both_stores! {
    async fn deleting_a_device_removes_it_from_its_groups_which_stay(app) {
        let admin = token("acme", &["admin"]);
        let doomed = create_device(&app, &admin, json!({"name": "Doomed"})).await;
        let kept = create_device(&app, &admin, json!({"name": "Kept"})).await;
        let lobby = customer_group(&app, &admin, json!({"name": "Lobby"})).await;
        let roof = customer_group(&app, &admin, json!({"name": "Roof"})).await;
        for (group, device) in [(&lobby, &doomed), (&lobby, &kept), (&roof, &doomed)] {
            let (status, body) = add(&app, &admin, group, device).await;
            assert_eq!(status, StatusCode::OK, "{body}");
        }
        assert_eq!(member_count(&app, &admin, &lobby).await, 2);
        assert_eq!(member_count(&app, &admin, &roof).await, 1);
        let t = ago(60);
        ingest(&app, &admin, &[(&doomed, &t, 1.0), (&kept, &t, 2.0)]).await;
        let (_, lobby_group) = app.get(&format!("/customer/device-groups/{lobby}"), &admin).await;
        let lobby_readings = format!("/api/groups/{}/readings", lobby_group["id"].as_str().expect("id"));
        let (_, readings) = app.get(&lobby_readings, &admin).await;
        assert_eq!(readings["total"], 2, "{readings}");

        // Act
        let (status, _) = app.delete(&format!("/api/devices/{doomed}"), &admin).await;
        assert_eq!(status, StatusCode::NO_CONTENT);

        // Assert: both groups stay, without the device.
        assert_eq!(member_count(&app, &admin, &lobby).await, 1);
        assert_eq!(member_count(&app, &admin, &roof).await, 0);
        let (_, members) = app.get(&format!("/customer/device-groups/{lobby}/devices"), &admin).await;
        assert_eq!(device_ids(&members), [kept.as_str()]);
        let (status, members) = app.get(&format!("/customer/device-groups/{roof}/devices"), &admin).await;
        assert_eq!((status, members), (StatusCode::OK, json!({"group_id": roof, "devices": [], "total": 0})));
        let (_, list) = app.get("/api/groups", &admin).await;
        let counts: Vec<u64> = list.as_array().unwrap().iter().map(|g| g["device_count"].as_u64().unwrap()).collect();
        assert_eq!(counts, [1, 0]);
        let (_, readings) = app.get(&lobby_readings, &admin).await;
        assert_eq!(readings["total"], 1, "the deleted device's readings are gone: {readings}");
        assert_eq!(readings["readings"][0]["device_id"], kept.as_str());
    }
}

on_both_stores! {
    async fn another_tenants_device_cannot_join_a_group(app) {
        let a = token("tenant-a", &["admin"]);
        let b = token("tenant-b", &["admin"]);
        let a_device = create_device(&app, &a, json!({"name": "A's"})).await;
        let a_group = customer_group(&app, &a, json!({"group_id": "grp-shared", "name": "Shared"})).await;
        add(&app, &a, &a_group, &a_device).await;
        let b_group = customer_group(&app, &b, json!({"name": "B's"})).await;

        let (status, body) = add(&app, &b, &b_group, &a_device).await;
        assert_eq!((status, body), (StatusCode::NOT_FOUND, json!({"detail": "Device not found"})));
        assert_eq!(member_count(&app, &b, &b_group).await, 0);

        // B's view of A's group: none. The same slug is B's to use.
        let group_missing = json!({"detail": "Group not found"});
        for (status, body) in [
            app.get("/customer/device-groups/grp-shared/devices", &b).await,
            add(&app, &b, "grp-shared", &a_device).await,
            remove(&app, &b, "grp-shared", &a_device).await,
        ] {
            assert_eq!((status, body), (StatusCode::NOT_FOUND, group_missing.clone()));
        }
        let (_, members) = app.get("/customer/device-groups/grp-shared/devices", &a).await;
        assert_eq!(device_ids(&members), [a_device.as_str()], "A's membership is as it was");
    }
}

on_both_stores! {
    async fn racing_adds_of_one_device_all_succeed_and_count_once(app) {
        let admin = token("acme", &["admin"]);
        let device = create_device(&app, &admin, json!({"name": "Boiler"})).await;
        let slug = customer_group(&app, &admin, json!({"name": "Lobby"})).await;
        let (r1, r2, r3, r4) = tokio::join!(
            add(&app, &admin, &slug, &device),
            add(&app, &admin, &slug, &device),
            add(&app, &admin, &slug, &device),
            add(&app, &admin, &slug, &device),
        );
        for (status, body) in [r1, r2, r3, r4] {
            assert_eq!(status, StatusCode::OK, "{body}");
        }
        let (_, members) = app.get(&format!("/customer/device-groups/{slug}/devices"), &admin).await;
        assert_eq!(members["total"], 1, "{members}");
        assert_eq!(member_count(&app, &admin, &slug).await, 1);
    }
}
