//! The Group API, `/api/groups` (seed 002): groups by UUID with devices, alert summary and
//! readings. Reads for every role; writes for admins and owners. Errors carry `GROUP_00x` codes.

use actix_web::{web, HttpResponse};
use app::groups::CreateGroup;
use domain::{GroupChanges, GroupDetail, ReadingPosition, Timestamp};
use ports::{
    CreateGroupError, DeviceGroupRepository, GroupKey, LookupError, MaintenanceWindowRepository,
    ReadingRepository, UpdateGroupError,
};
use uuid::Uuid;

use crate::api::buckets::{GroupReadingsAnswer, SeriesParams};
use crate::api::group_api::{
    device_ids, group_api_name, parent_refused, parent_uuid, AlertSummaryView, GroupCreateBody,
    GroupDetailView, GroupListItemView, GroupReadingView, GroupReadingsView, GroupUpdateBody,
    TreeParams,
};
use crate::api::group_filter::{
    filter_of_create, filter_of_update, GroupPreviewBody, GroupPreviewView, DEFINED_BY_FILTER,
};
use crate::api::params::{description, not_null, ListParams, ReadingsParams};
use crate::auth::{Caller, GroupApiWrites, Writer};
use crate::cursor::{Cursor, Scope};
use crate::error::{ApiError, ErrorBody, GroupApiCode};
use crate::group_views::{
    off_io_thread, off_io_thread_if, GroupViews, Key, Rendered, View, MIN_MEMBERS, OFF_IO_MEMBERS,
};
use crate::idempotency::Idempotency;
use crate::json::JsonBody;
use crate::routes::{
    csv, csv_attachment, ndjson, rfc3339, wants_csv, wants_ndjson, Cell, TOTAL_COUNT,
};

/// Seed 002's 404 for a UUID; a path segment that is no UUID is most often a Customer API
/// slug, so its 404 says where slugs belong (the seed fixes only the text for a UUID).
fn group_not_found(raw: &str) -> ApiError {
    let detail = if Uuid::parse_str(raw).is_ok() {
        format!("Group {raw} not found")
    } else {
        format!(
            "Group {raw} not found; the Group API takes group UUIDs \
             (slugs are for /customer/device-groups)"
        )
    };
    ApiError::not_found(detail).with_code(GroupApiCode::GroupNotFound)
}

/// A path segment that is no UUID names no group.
fn group_key(raw: &str) -> Result<GroupKey, ApiError> {
    Uuid::parse_str(raw)
        .map(GroupKey::Id)
        .map_err(|_| group_not_found(raw))
}

fn name_taken(name: &domain::GroupName) -> ApiError {
    ApiError::bad_request(format!(
        "Group with name '{}' already exists",
        name.as_str()
    ))
    .with_code(GroupApiCode::NameTaken)
}

fn device_not_found(id: Uuid) -> ApiError {
    ApiError::bad_request(format!("Device {id} not found")).with_code(GroupApiCode::DeviceNotFound)
}

fn lookup(raw: &str) -> impl Fn(LookupError) -> ApiError + '_ {
    move |e| match e {
        LookupError::NotFound => group_not_found(raw),
        LookupError::Store(e) => e.into(),
    }
}

/// Create a group, optionally with devices (admin or owner).
#[utoipa::path(
    post, path = "/api/groups", tag = "groups", operation_id = "create_group",
    request_body = GroupCreateBody,
    params(
        ("Idempotency-Key" = Option<String>, Header, nullable = false, min_length = 1, max_length = 255, pattern = r"^[!-~]([ -~]*[!-~])?$",
        description = "Makes the create safe to retry: a retry with the same key and the same body (byte for byte) within 24 hours gets the first answer and creates nothing; the same key with another body is a 422, and while the first request runs a 409. Per tenant; 1 to 255 printable ASCII characters."),
    ),
    responses(
        (status = 201, description = "Group created", body = GroupDetailView),
        (status = 400, description = "`GROUP_001` name taken, `GROUP_002` device not found, `GROUP_003` malformed device id", body = ErrorBody),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "`GROUP_004` `Access forbidden. Required roles: admin, owner`", body = ErrorBody),
        (status = 409, description = "`A request with this Idempotency-Key is in progress` (a retry sent while the first runs)", body = ErrorBody),
        (status = 413, description = "Body over 1 MiB", body = ErrorBody),
        (status = 422, description = "Invalid body; `detail` names the field; or `Idempotency-Key: …`, a malformed key or one sent before with another body", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn create(
    caller: Writer<GroupApiWrites>,
    groups: web::Data<dyn DeviceGroupRepository>,
    idempotency: Idempotency,
    body: JsonBody<GroupCreateBody>,
) -> Result<HttpResponse, ApiError> {
    idempotency
        .run(&caller.tenant, async {
            let body = body.0;
            let name = group_api_name(&body.name)?;
            let description = description(body.description.as_deref())?;
            let filter = filter_of_create(body.filter, body.device_ids.is_some())?;
            let members = device_ids(body.device_ids.as_deref().unwrap_or_default())?;
            let parent_id = body.parent_id.as_deref().map(parent_uuid).transpose()?;
            let wanted = CreateGroup {
                group_id: None,
                name,
                description,
                filter,
                members,
                parent_id,
            };
            let detail =
                app::groups::create(groups.as_ref(), &caller.tenant, &caller.actor, wanted)
                    .await
                    .map_err(|e| match e {
                        CreateGroupError::GroupIdTaken(slug) => {
                            ApiError::internal(anyhow::anyhow!(
                                "every generated group id collided, the last {}",
                                slug.as_str()
                            ))
                        }
                        CreateGroupError::NameTaken(name) => name_taken(&name),
                        CreateGroupError::DeviceNotFound(id) => device_not_found(id),
                        e @ CreateGroupError::TooManyDynamic => ApiError::invalid("filter", e),
                        CreateGroupError::ParentNotFound(id) => {
                            parent_refused(&id.to_string(), None)
                        }
                        CreateGroupError::Placement(e) => parent_refused("", Some(e)),
                        CreateGroupError::Store(e) => e.into(),
                    })?;
            let view =
                off_io_thread(move || GroupDetailView::at(&detail, Timestamp::now())).await?;
            Ok(HttpResponse::Created().json(view))
        })
        .await
}

/// See which devices a dynamic group's filter would hold now (any role): how many, and the
/// first 100 by name. Nothing is stored.
#[utoipa::path(
    post, path = "/api/groups/preview", tag = "groups", operation_id = "preview_group_filter",
    request_body = GroupPreviewBody,
    responses(
        (status = 200, description = "The devices the filter selects now", body = GroupPreviewView),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 413, description = "Body over 1 MiB", body = ErrorBody),
        (status = 422, description = "Invalid filter; `detail` names the key (`filter.…`)", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn preview(
    caller: Caller,
    groups: web::Data<dyn DeviceGroupRepository>,
    windows: web::Data<dyn MaintenanceWindowRepository>,
    body: JsonBody<GroupPreviewBody>,
) -> Result<HttpResponse, ApiError> {
    let filter = body.0.filter.try_into_domain()?;
    let found = groups
        .preview_filter(&caller.tenant, &filter, domain::window::SCOPE_PREVIEW_MAX)
        .await?;
    Ok(HttpResponse::Ok().json(GroupPreviewView {
        count: found.count,
        devices: crate::routes::device_views(windows.as_ref(), &caller.tenant, &found.devices)
            .await?,
    }))
}

/// List all groups with their device counts.
#[utoipa::path(
    get, path = "/api/groups", tag = "groups", operation_id = "list_groups",
    params(ListParams),
    responses(
        (status = 200, description = "The tenant's groups, ordered by name", body = Vec<GroupListItemView>,
            headers(("X-Total-Count" = u64, description = "Number of matching groups"))),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 422, description = "Bad `name`, `limit` or `offset`", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn list(
    caller: Caller,
    groups: web::Data<dyn DeviceGroupRepository>,
    params: web::Query<ListParams>,
) -> Result<HttpResponse, ApiError> {
    let page = groups.list_groups(&caller.tenant, &params.query()?).await?;
    Ok(HttpResponse::Ok()
        .insert_header((TOTAL_COUNT, page.total))
        .json(
            page.items
                .iter()
                .map(GroupListItemView::from)
                .collect::<Vec<_>>(),
        ))
}

/// A group with its devices and alert summary.
#[utoipa::path(
    get, path = "/api/groups/{group_id}", tag = "groups", operation_id = "get_group",
    params(("group_id" = Uuid, Path, description = "Group UUID"), TreeParams),
    responses(
        (status = 200, description = "The group (with `include_descendants=true`, its devices and summary are those of its whole tree, each device once)", body = GroupDetailView),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 404, description = "`GROUP_005` group not found", body = ErrorBody),
        (status = 422, description = "Bad `include_descendants`", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn get(
    caller: Caller,
    groups: web::Data<dyn DeviceGroupRepository>,
    views: web::Data<GroupViews>,
    path: web::Path<String>,
    tree: web::Query<TreeParams>,
) -> Result<HttpResponse, ApiError> {
    let id = Uuid::parse_str(&path).map_err(|_| group_not_found(&path))?;
    if tree.descendants()? {
        // The tree's detail is kept as other views are (not patched by readings: the kept
        // detail's patch reads one group's members).
        return group_view(
            &caller,
            groups.as_ref(),
            &views,
            &path,
            View::Detail,
            true,
            |detail, now| serde_json::to_vec(&GroupDetailView::at(detail, now)),
        )
        .await;
    }
    let body = views
        .detail(
            &caller.tenant,
            id,
            || async {
                groups
                    .get_group(&caller.tenant, &GroupKey::Id(id))
                    .await
                    .map_err(lookup(&path))
            },
            |detail, now| async move {
                let large = detail.members.len() >= OFF_IO_MEMBERS;
                let body = off_io_thread_if(large, move || {
                    // Sized for the members up front: a large group's body is megabytes, and
                    // growing it by doubling copies it over and over.
                    let mut body = Vec::with_capacity(512 + 160 * detail.members.len());
                    serde_json::to_writer(&mut body, &GroupDetailView::at(&detail, now))
                        .map(|()| body)
                })
                .await?
                .map_err(|e| ApiError::internal(e.into()))?;
                Ok::<_, ApiError>(body.into())
            },
        )
        .await?;
    Ok(json_body(body))
}

/// The JSON `view` of the group at `path`: kept, or read and rendered by `render` off the I/O
/// thread, valid until a window starts or ends and worth keeping for a large group.
/// With `tree`, of the group's whole tree (kept apart from the group's own).
async fn group_view(
    caller: &Caller,
    groups: &dyn DeviceGroupRepository,
    views: &GroupViews,
    path: &str,
    view: View,
    tree: bool,
    render: impl FnOnce(&GroupDetail, Timestamp) -> serde_json::Result<Vec<u8>> + Send + 'static,
) -> Result<HttpResponse, ApiError> {
    let group = group_key(path)?;
    let key = Key::group(&caller.tenant, &group, view).descendants(tree);
    let body = views
        .get_or_render(key, || async {
            let detail = if tree {
                groups.get_group_tree(&caller.tenant, &group).await
            } else {
                groups.get_group(&caller.tenant, &group).await
            }
            .map_err(lookup(path))?;
            let now = Timestamp::now();
            off_io_thread(move || {
                let body = render(&detail, now).map_err(|e| ApiError::internal(e.into()))?;
                Ok::<_, ApiError>(Rendered {
                    body: body.into(),
                    valid_until: detail.next_change(now),
                    worth_keeping: detail.members.len() >= MIN_MEMBERS,
                })
            })
            .await?
        })
        .await?;
    Ok(json_body(body))
}

fn json_body(body: actix_web::web::Bytes) -> HttpResponse {
    HttpResponse::Ok()
        .content_type(actix_web::http::header::ContentType::json())
        .body(body)
}

/// Update a group (admin or owner). Every field is optional; `device_ids` replaces the whole
/// member list. A refused update changes nothing.
#[utoipa::path(
    put, path = "/api/groups/{group_id}", tag = "groups", operation_id = "update_group",
    params(("group_id" = Uuid, Path, description = "Group UUID")),
    request_body = GroupUpdateBody,
    responses(
        (status = 200, description = "Group updated", body = GroupDetailView),
        (status = 400, description = "`GROUP_001` name taken, `GROUP_002` device not found, `GROUP_003` malformed device id", body = ErrorBody),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "`GROUP_004` `Access forbidden. Required roles: admin, owner`", body = ErrorBody),
        (status = 404, description = "`GROUP_005` group not found", body = ErrorBody),
        (status = 409, description = "`Group membership is defined by its filter`: `device_ids` for a dynamic group", body = ErrorBody),
        (status = 413, description = "Body over 1 MiB", body = ErrorBody),
        (status = 422, description = "Invalid body; `detail` names the field", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn update(
    caller: Writer<GroupApiWrites>,
    groups: web::Data<dyn DeviceGroupRepository>,
    path: web::Path<String>,
    body: JsonBody<GroupUpdateBody>,
) -> Result<HttpResponse, ApiError> {
    let key = group_key(&path)?;
    let body = body.0;
    let name = not_null("name", body.name)?;
    let device_ids_given = not_null("device_ids", body.device_ids)?;
    let filter = filter_of_update(body.filter, device_ids_given.is_some())?;
    let changes = GroupChanges {
        filter,
        name: name.map(|n| group_api_name(&n)).transpose()?,
        description: body
            .description
            .map(|d| description(d.as_deref()))
            .transpose()?,
        members: device_ids_given.map(|ids| device_ids(&ids)).transpose()?,
        parent_id: body
            .parent_id
            .map(|p| p.as_deref().map(parent_uuid).transpose())
            .transpose()?,
    };
    let detail = groups
        .update_group(&caller.tenant, &caller.actor, &key, changes)
        .await
        .map_err(|e| match e {
            UpdateGroupError::NotFound => group_not_found(&path),
            UpdateGroupError::NameTaken(name) => name_taken(&name),
            UpdateGroupError::DeviceNotFound(id) => device_not_found(id),
            UpdateGroupError::DefinedByFilter => ApiError::conflict(DEFINED_BY_FILTER),
            e @ UpdateGroupError::TooManyDynamic => ApiError::invalid("filter", e),
            UpdateGroupError::ParentNotFound(id) => parent_refused(&id.to_string(), None),
            UpdateGroupError::Placement(e) => parent_refused("", Some(e)),
            UpdateGroupError::Store(e) => e.into(),
        })?;
    Ok(HttpResponse::Ok().json(GroupDetailView::at(&detail, Timestamp::now())))
}

/// Delete a group (admin or owner); its devices stay.
#[utoipa::path(
    delete, path = "/api/groups/{group_id}", tag = "groups", operation_id = "delete_group",
    params(("group_id" = Uuid, Path, description = "Group UUID")),
    responses(
        (status = 204, description = "Group deleted"),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "`GROUP_004` `Access forbidden. Required roles: admin, owner`", body = ErrorBody),
        (status = 404, description = "`GROUP_005` group not found", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn delete(
    caller: Writer<GroupApiWrites>,
    groups: web::Data<dyn DeviceGroupRepository>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    groups
        .delete_group(&caller.tenant, &group_key(&path)?)
        .await
        .map_err(lookup(&path))?;
    Ok(HttpResponse::NoContent().finish())
}

/// Readings of all the group's devices, newest first, a page at a time (`cursor` or `offset`);
/// with `Accept: text/csv` as a CSV attachment, with `Accept: application/x-ndjson` streamed
/// whole. With `interval`, aggregated into time buckets aligned to the calendar of `timezone`,
/// one series per member with readings in the range.
#[utoipa::path(
    get, path = "/api/groups/{group_id}/readings", tag = "groups", operation_id = "list_group_readings",
    params(("group_id" = Uuid, Path, description = "Group UUID"), ReadingsParams, SeriesParams, TreeParams),
    responses(
        (status = 200, description = "The readings. With `Accept: text/csv`, the page as CSV with the columns `device_id,device_name,timestamp,value,unit`, as an attachment (`Content-Disposition: attachment; filename=\"<group name>-readings.csv\"`). With `Accept: application/x-ndjson`, every reading of the range (up to `limit`, at most 10,000,000) streamed, one reading object per line as in `readings`; a stream cut short (store failure, or its 15-minute deadline) ends without its last chunk. With `interval`: the buckets (`GroupReadingBuckets`); in CSV one row per bucket with the columns `device_id,device_name,unit,start,end,<agg…>,count`, as an attachment",
            content((GroupReadingsAnswer = "application/json"), (String = "text/csv"), (GroupReadingView = "application/x-ndjson")),
            headers(("Content-Disposition" = String, description = "CSV only: `attachment; filename=\"<name>-readings.csv\"`"))),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 404, description = "`GROUP_005` group not found", body = ErrorBody),
        (status = 422, description = "Bad `hours`, `limit`, `start_time`, `end_time`, `offset` or `cursor` (a cursor of another route, device, group, tenant or query; `cursor` with `offset`), `interval` (also: more than 10000 buckets), `agg`, `timezone`, `fill`, `top` or `device_ids` (also: a device that is no member, or more than 1000 series); `cursor` or `offset` with `interval`; bad `include_descendants`", body = ErrorBody),
        (status = 503, description = "Store unavailable, or as many NDJSON exports running as allowed", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
// One extractor per need, as actix hands them to handlers.
#[allow(clippy::too_many_arguments)]
pub async fn readings(
    caller: Caller,
    groups: web::Data<dyn DeviceGroupRepository>,
    views: web::Data<GroupViews>,
    auth: web::Data<crate::auth::Authenticator>,
    path: web::Path<String>,
    params: web::Query<ReadingsParams>,
    series: web::Query<SeriesParams>,
    tree: web::Query<TreeParams>,
    readings_store: web::Data<dyn ReadingRepository>,
    request: actix_web::HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let group_id = Uuid::parse_str(&path).map_err(|_| group_not_found(&path))?;
    let tree_given = tree.include_descendants.is_some();
    let tree = tree.descendants()?;
    let bucketed = params.buckets()?;
    let choice = series.choice(bucketed.is_some())?;
    if let Some(bucketed) = bucketed {
        let not_found = || group_not_found(&path);
        return super::buckets::group(
            &caller,
            readings_store.as_ref(),
            groups.as_ref(),
            group_id,
            not_found,
            bucketed,
            &choice,
            &request,
            tree,
        )
        .await;
    }
    let group = GroupKey::Id(group_id);
    if wants_ndjson(&request) {
        let query = params.export()?;
        let rows = if tree {
            groups
                .export_tree_readings(&caller.tenant, &group, query)
                .await
        } else {
            groups
                .export_group_readings(&caller.tenant, &group, query)
                .await
        }
        .map_err(lookup(&path))?;
        return Ok(ndjson(rows, |r| GroupReadingView::from(r)));
    }
    // A tree's pages are another walk than the group's: their cursors do not mix, but a tree's
    // cursor sent without `include_descendants` goes on over the tree.
    let scope = if tree {
        Scope::GroupTree(group_id)
    } else {
        Scope::Group(group_id)
    };
    let page = params.page(scope, tree_given, auth.cursor_key(), &caller.tenant)?;
    let (scope, tree) = (page.scope, matches!(page.scope, Scope::GroupTree(_)));
    let tenant = caller.tenant.clone();
    let key = auth.cursor_key().clone();
    // The page, whether more follow, and the cursor of the next.
    let read = || async {
        let mut readings = if tree {
            groups
                .tree_readings(&tenant, &group, page.query.one_more())
                .await
        } else {
            groups
                .group_readings(&tenant, &group, page.query.one_more())
                .await
        }
        .map_err(lookup(&path))?;
        let has_more = readings.len() > page.query.limit() as usize;
        readings.truncate(page.query.limit() as usize);
        let next_cursor = has_more.then(|| readings.last()).flatten().map(|last| {
            Cursor::after(
                scope,
                &page.query,
                page.selection,
                ReadingPosition {
                    timestamp: last.timestamp,
                    device_id: last.device_id,
                },
            )
            .encode(&key, &tenant)
        });
        Ok::<_, ApiError>((readings, has_more, next_cursor))
    };
    if wants_csv(&request) {
        // CSV exports are rarer, and not kept. The group's name names the file.
        let row = groups
            .get_group_row(&caller.tenant, &group)
            .await
            .map_err(lookup(&path))?;
        let (readings, _, _) = read().await?;
        let mut answer = csv(
            &["device_id", "device_name", "timestamp", "value", "unit"],
            readings.iter().map(|r| {
                vec![
                    Cell::Text(r.device_id.to_string()),
                    Cell::Text(r.device_name.as_str().to_owned()),
                    Cell::Text(rfc3339(r.timestamp)),
                    Cell::Number(r.value),
                    Cell::Text(r.unit.as_str().to_owned()),
                ]
            }),
        );
        let (header, value) = csv_attachment(row.name.as_str());
        answer.headers_mut().insert(header, value);
        return Ok(answer);
    }
    let render = || async {
        let (readings, has_more, next_cursor) = read().await?;
        let valid_until = page
            .query
            .answer_holds_until(readings.last().map(|r| r.timestamp));
        let body = off_io_thread(move || {
            let readings: Vec<GroupReadingView> =
                readings.iter().map(GroupReadingView::from).collect();
            serde_json::to_vec(&GroupReadingsView {
                group_id,
                total: readings.len() as u64,
                readings,
                has_more,
                next_cursor,
            })
        })
        .await?
        .map_err(|e| ApiError::internal(e.into()))?;
        Ok::<_, ApiError>(Rendered {
            body: body.into(),
            valid_until,
            worth_keeping: true,
        })
    };
    // Only first pages are kept: a page after a cursor or an offset is one client's walk.
    // (A first page's key is its normalised query, which is also what its cursor carries.)
    let body = if page.first {
        let key = Key::readings(&caller.tenant, &group, &page.query).descendants(tree);
        views.get_or_render(key, render).await?
    } else {
        render().await?.body
    };
    Ok(json_body(body))
}

/// The group's alert summary (the `alert_summary` of the group detail).
#[utoipa::path(
    get, path = "/api/groups/{group_id}/alerts", tag = "groups", operation_id = "get_group_alerts",
    params(("group_id" = Uuid, Path, description = "Group UUID"), TreeParams),
    responses(
        (status = 200, description = "The alert summary (with `include_descendants=true`, of the group's whole tree, each device counted once)", body = AlertSummaryView),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 404, description = "`GROUP_005` group not found", body = ErrorBody),
        (status = 422, description = "Bad `include_descendants`", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn alerts(
    caller: Caller,
    groups: web::Data<dyn DeviceGroupRepository>,
    views: web::Data<GroupViews>,
    path: web::Path<String>,
    tree: web::Query<TreeParams>,
) -> Result<HttpResponse, ApiError> {
    let tree = tree.descendants()?;
    let group = group_key(&path)?;
    let key = Key::group(&caller.tenant, &group, View::Alerts).descendants(tree);
    let body = views
        .summary(
            key,
            || async {
                if tree {
                    groups.get_group_tree(&caller.tenant, &group).await
                } else {
                    groups.get_group(&caller.tenant, &group).await
                }
                .map_err(lookup(&path))
            },
            |summary| {
                serde_json::to_vec(&AlertSummaryView::from(summary))
                    .map_err(|e| ApiError::internal(e.into()))
            },
        )
        .await?;
    Ok(json_body(body))
}
