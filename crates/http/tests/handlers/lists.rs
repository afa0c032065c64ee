//! Lists: the name filter and paging, on every list.

use actix_web::http::header;
use actix_web::http::StatusCode;
use domain::{Device, ListQuery, Page, Thresholds};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::support::*;

// ---------------------------------------------------------------------------------------------
// Lists: name filter and paging

/// The `X-Total-Count` header of a list answered as a bare array.
fn total_count(answer: &Answer) -> Option<&str> {
    answer.header(header::HeaderName::from_static("x-total-count"))
}

/// `?name=lob&limit=2&offset=4`, as the repository must receive it.
fn lob_query() -> ListQuery {
    ListQuery::new(Some("lob"), Some(2), Some(4)).expect("valid list query")
}

/// The `name` of each object of `items`.
fn names(items: &Value) -> Vec<String> {
    items
        .as_array()
        .expect("an array")
        .iter()
        .map(|item| item["name"].as_str().expect("name").to_owned())
        .collect()
}

/// Names as a store orders them (byte order): four of the five contain "lob" in some case.
const LOBBY_NAMES: [&str; 5] = ["Hall", "LOBBY C", "Lobby A", "Lobby D", "lobby B"];

/// A device per name of [`LOBBY_NAMES`] (or `names`), in that order.
fn devices_named(names: &[&str]) -> Vec<Device> {
    names
        .iter()
        .enumerate()
        .map(|(i, name)| device(Uuid::from_u128(i as u128 + 1), name, Thresholds::default()))
        .collect()
}

#[actix_web::test]
async fn a_bad_name_limit_or_offset_on_any_list_is_refused_with_422_naming_it_before_the_repository(
) {
    // Arrange: no port may be called.
    let mocks = Mocks::untouchable();
    let cases = [
        ("limit=0".to_owned(), "limit"),
        ("limit=1001".to_owned(), "limit"),
        ("limit=-1".to_owned(), "limit"),
        ("limit=abc".to_owned(), "limit"),
        ("limit=1.5".to_owned(), "limit"),
        ("limit=".to_owned(), "limit"),
        ("offset=-1".to_owned(), "offset"),
        ("offset=abc".to_owned(), "offset"),
        ("name=".to_owned(), "name"),
        ("name=%07".to_owned(), "name"),
        (format!("name={}", "n".repeat(129)), "name"),
    ];
    let lists = [
        GROUPS.to_owned(),
        WINDOWS.to_owned(),
        API_GROUPS.to_owned(),
        DEVICES.to_owned(),
        format!("{DEVICES}/{DEVICE_A}/groups"),
        format!("{GROUPS}/grp-lobby/devices"),
        format!("{WINDOWS}/mw-0000abcd/devices"),
    ];
    let mut expected = Vec::new();
    let mut requests = Vec::new();
    for (query, field) in &cases {
        for list in &lists {
            let uri = format!("{list}?{query}");
            requests.push(get(&uri));
            expected.push((uri, *field));
        }
    }

    // Act
    let answers = call_all(mocks, requests).await;

    // Assert
    assert_eq!(answers.len(), cases.len() * lists.len());
    for ((uri, field), answer) in expected.iter().zip(&answers) {
        assert_eq!(
            answer.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{uri}: {}",
            answer.text()
        );
        assert!(
            answer.detail().starts_with(&format!("{field}: ")),
            "{uri}: {}",
            answer.detail()
        );
    }
}

#[actix_web::test]
async fn the_store_paged_lists_pass_name_limit_and_offset_to_the_repository_and_answer_its_total() {
    // Arrange: each store answers a page of two (one for windows) out of more matches.
    let mut mocks = Mocks::new();
    mocks
        .groups
        .expect_list_groups()
        .withf(|tenant, query| is_tenant_a(tenant) && *query == lob_query())
        .times(2)
        .returning(|_, _| {
            Ok(Page {
                items: vec![
                    stored_group("grp-lobby-a", "Lobby A"),
                    stored_group("grp-lobby-b", "Lobby B"),
                ],
                total: 9,
            })
        });
    mocks
        .windows
        .expect_list_windows()
        .withf(|tenant, query| is_tenant_a(tenant) && *query == lob_query())
        .times(1)
        .returning(|_, _| {
            Ok(Page {
                items: vec![stored_window("mw-0000abcd")],
                total: 5,
            })
        });
    mocks
        .devices
        .expect_list_devices()
        .withf(|tenant, _, query| is_tenant_a(tenant) && *query == lob_query())
        .times(1)
        .returning(|_, _, _| {
            Ok(Page {
                items: devices_named(&["Lobby A", "Lobby B"]),
                total: 7,
            })
        });
    let query = "?name=lob&limit=2&offset=4";

    // Act
    let answers = call_all(
        mocks,
        vec![
            get(&format!("{GROUPS}{query}")),
            get(&format!("{WINDOWS}{query}")),
            get(&format!("{API_GROUPS}{query}")),
            get(&format!("{DEVICES}{query}")),
        ],
    )
    .await;

    // Assert: customer lists carry the store's total, the others a bare array and the header.
    for answer in &answers {
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    }
    let groups = answers[0].json();
    assert_eq!(groups["total"], 9);
    assert_eq!(names(&groups["groups"]), ["Lobby A", "Lobby B"]);
    let windows = answers[1].json();
    assert_eq!(windows["total"], 5);
    assert_eq!(window_ids(&windows), ["mw-0000abcd"]);
    assert_eq!(names(&answers[2].json()), ["Lobby A", "Lobby B"]);
    assert_eq!(total_count(&answers[2]), Some("9"));
    assert_eq!(names(&answers[3].json()), ["Lobby A", "Lobby B"]);
    assert_eq!(total_count(&answers[3]), Some("7"));
}

#[actix_web::test]
async fn the_store_paged_lists_without_parameters_ask_for_everything_and_answer_the_stores_total() {
    // Arrange: the stores report more matches than they return, so a count of the items
    // cannot pass for the total.
    let mut mocks = Mocks::new();
    mocks
        .groups
        .expect_list_groups()
        .withf(|tenant, query| is_tenant_a(tenant) && is_all(query))
        .times(2)
        .returning(|_, _| {
            Ok(Page {
                items: vec![stored_group("grp-hall", "Hall")],
                total: 3,
            })
        });
    mocks
        .windows
        .expect_list_windows()
        .withf(|tenant, query| is_tenant_a(tenant) && is_all(query))
        .times(1)
        .returning(|_, _| {
            Ok(Page {
                items: vec![stored_window("mw-0000abcd")],
                total: 4,
            })
        });
    mocks
        .devices
        .expect_list_devices()
        .withf(|tenant, _, query| is_tenant_a(tenant) && is_all(query))
        .times(1)
        .returning(|_, _, _| {
            Ok(Page {
                items: devices_named(&["Hall"]),
                total: 6,
            })
        });

    // Act
    let answers = call_all(
        mocks,
        vec![get(GROUPS), get(WINDOWS), get(API_GROUPS), get(DEVICES)],
    )
    .await;

    // Assert
    for answer in &answers {
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
    }
    assert_eq!(answers[0].json()["total"], 3);
    assert_eq!(names(&answers[0].json()["groups"]), ["Hall"]);
    assert_eq!(answers[1].json()["total"], 4);
    assert_eq!(window_ids(&answers[1].json()), ["mw-0000abcd"]);
    assert_eq!(names(&answers[2].json()), ["Hall"]);
    assert_eq!(total_count(&answers[2]), Some("3"));
    assert_eq!(names(&answers[3].json()), ["Hall"]);
    assert_eq!(total_count(&answers[3]), Some("6"));
}

#[actix_web::test]
async fn list_parameters_at_their_bounds_reach_the_repository_as_given() {
    // Arrange: one expectation per query; the filter keeps its case and its decoded space.
    let mut mocks = Mocks::new();
    let cases = [
        (
            "?limit=1000&offset=0",
            ListQuery::new(None, Some(1000), None),
        ),
        ("?limit=1", ListQuery::new(None, Some(1), None)),
        (
            "?offset=4294967295",
            ListQuery::new(None, None, Some(4_294_967_295)),
        ),
        (
            "?name=Lobby%20B",
            ListQuery::new(Some("Lobby B"), None, None),
        ),
        (
            &*format!("?name={}", "%C3%A9".repeat(128)),
            ListQuery::new(Some(&"é".repeat(128)), None, None),
        ),
    ]
    .map(|(query, expected)| (query.to_owned(), expected.expect("valid list query")));
    for (_, expected) in &cases {
        let expected = expected.clone();
        mocks
            .devices
            .expect_list_devices()
            .withf(move |tenant, _, query| is_tenant_a(tenant) && *query == expected)
            .times(1)
            .returning(|_, _, _| Ok(page(vec![])));
    }
    let requests = cases
        .iter()
        .map(|(query, _)| get(&format!("{DEVICES}{query}")))
        .collect();

    // Act
    let answers = call_all(mocks, requests).await;

    // Assert
    for ((query, _), answer) in cases.iter().zip(&answers) {
        assert_eq!(answer.status, StatusCode::OK, "{query}: {}", answer.text());
        assert_eq!(answer.json(), json!([]), "{query}");
        assert_eq!(total_count(answer), Some("0"), "{query}");
    }
}

#[actix_web::test]
async fn a_groups_devices_are_asked_for_by_name_and_page_and_answered_with_the_stores_total() {
    // Arrange: the store pages (its contract proves how); the handler passes the query on and
    // answers the page with the store's count of all matches.
    let mut mocks = Mocks::new();
    // (query string, name, limit, offset)
    type Case = (&'static str, Option<&'static str>, Option<i64>, Option<i64>);
    let cases: [Case; 4] = [
        ("", None, None, None),
        ("?name=lob&limit=2&offset=1", Some("lob"), Some(2), Some(1)),
        ("?name=LOB", Some("LOB"), None, None),
        ("?offset=4", None, None, Some(4)),
    ];
    for (_, name, limit, offset) in cases {
        let wanted = ListQuery::new(name, limit, offset).expect("valid");
        mocks
            .groups
            .expect_list_members()
            .withf(move |tenant, key, query| {
                is_tenant_a(tenant) && is_slug(key, "grp-lobby") && *query == wanted
            })
            .times(1)
            .returning(|_, _, _| {
                Ok(Page {
                    items: devices_named(&LOBBY_NAMES[..2]),
                    total: 5,
                })
            });
    }
    let requests = cases
        .iter()
        .map(|(query, ..)| get(&format!("{GROUPS}/grp-lobby/devices{query}")))
        .collect();

    // Act
    let answers = call_all(mocks, requests).await;

    // Assert
    for ((query, ..), answer) in cases.iter().zip(&answers) {
        assert_eq!(answer.status, StatusCode::OK, "{query}: {}", answer.text());
        let body = answer.json();
        assert_eq!(body["group_id"], "grp-lobby", "{query}");
        assert_eq!(names(&body["devices"]), LOBBY_NAMES[..2], "{query}");
        assert_eq!(body["total"], 5, "{query}");
    }
}

#[actix_web::test]
async fn a_devices_groups_are_filtered_by_name_then_paged_with_the_matches_in_x_total_count() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .devices
        .expect_groups_of_device()
        .withf(|tenant, id| is_tenant_a(tenant) && *id == uuid(DEVICE_A))
        .times(4)
        .returning(|_, _| {
            Ok(LOBBY_NAMES
                .iter()
                .enumerate()
                .map(|(i, name)| stored_group(&format!("grp-{i}"), name))
                .collect())
        });
    let cases: [(&str, &[&str], &str); 4] = [
        ("", &LOBBY_NAMES, "5"),
        ("?name=lob&limit=2&offset=1", &["Lobby A", "Lobby D"], "4"),
        ("?limit=1&offset=4", &["lobby B"], "5"),
        ("?name=hall&offset=1", &[], "1"),
    ];
    let requests = cases
        .iter()
        .map(|(query, _, _)| get(&format!("{DEVICES}/{DEVICE_A}/groups{query}")))
        .collect();

    // Act
    let answers = call_all(mocks, requests).await;

    // Assert
    for ((query, expected, total), answer) in cases.iter().zip(&answers) {
        assert_eq!(answer.status, StatusCode::OK, "{query}: {}", answer.text());
        assert_eq!(names(&answer.json()), *expected, "{query}");
        assert_eq!(total_count(answer), Some(*total), "{query}");
    }
}

#[actix_web::test]
async fn a_windows_devices_are_filtered_by_name_ignoring_ascii_case_only_then_paged() {
    // Arrange
    let mut mocks = Mocks::new();
    mocks
        .windows
        .expect_window_devices()
        .withf(|tenant, window_id| is_tenant_a(tenant) && window_id.as_str() == "mw-0000abcd")
        .times(4)
        .returning(|_, _| {
            let mut names = vec!["CAFÉ", "Café"];
            names.extend(LOBBY_NAMES);
            Ok((stored_window("mw-0000abcd"), devices_named(&names)))
        });
    let cases: [(&str, &[&str], u64); 4] = [
        ("?name=lob&limit=2&offset=1", &["Lobby A", "Lobby D"], 4),
        ("?name=CAF%C3%A9", &["Café"], 1),
        ("?limit=3", &["CAFÉ", "Café", "Hall"], 7),
        (
            "",
            &[
                "CAFÉ", "Café", "Hall", "LOBBY C", "Lobby A", "Lobby D", "lobby B",
            ],
            7,
        ),
    ];
    let requests = cases
        .iter()
        .map(|(query, _, _)| get(&format!("{WINDOWS}/mw-0000abcd/devices{query}")))
        .collect();

    // Act
    let answers = call_all(mocks, requests).await;

    // Assert
    for ((query, expected, total), answer) in cases.iter().zip(&answers) {
        assert_eq!(answer.status, StatusCode::OK, "{query}: {}", answer.text());
        let body = answer.json();
        assert_eq!(body["window_id"], "mw-0000abcd", "{query}");
        assert_eq!(names(&body["devices"]), *expected, "{query}");
        assert_eq!(body["total"], *total, "{query}");
    }
}

#[actix_web::test]
async fn the_status_filter_applies_before_paging_and_total_counts_the_windows_with_that_status() {
    // Arrange: the store is asked for every name match, unpaged; its own total is not the answer.
    let mut mocks = Mocks::new();
    mocks
        .windows
        .expect_list_windows()
        .withf(|tenant, query| is_tenant_a(tenant) && is_all(query))
        .times(2)
        .returning(|_, _| {
            Ok(Page {
                items: windows_in_every_status(),
                total: 7,
            })
        });
    mocks
        .windows
        .expect_list_windows()
        .withf(|tenant, query| {
            is_tenant_a(tenant) && *query == ListQuery::new(Some("pla"), None, None).expect("valid")
        })
        .times(1)
        .returning(|_, _| {
            Ok(Page {
                items: windows_in_every_status(),
                total: 7,
            })
        });
    let cases: [(&str, &[&str], u64); 3] = [
        ("?status=active&limit=1", &["mw-active"], 2),
        ("?status=active&limit=1&offset=1", &["mw-all-day"], 2),
        (
            "?status=scheduled&name=pla&limit=1&offset=1",
            &["mw-elsewhere"],
            2,
        ),
    ];
    let requests = cases
        .iter()
        .map(|(query, _, _)| get(&format!("{WINDOWS}{query}")))
        .collect();

    // Act
    let answers = call_all(mocks, requests).await;

    // Assert
    for ((query, expected, total), answer) in cases.iter().zip(&answers) {
        assert_eq!(answer.status, StatusCode::OK, "{query}: {}", answer.text());
        let body = answer.json();
        assert_eq!(window_ids(&body), *expected, "{query}");
        assert_eq!(body["total"], *total, "{query}");
    }
}
