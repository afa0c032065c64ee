//! `/customer/device-groups` (seed 000): every role of the tenant reads; admins and owners write.

use actix_web::{web, HttpResponse};
use app::groups::CreateGroup;
use domain::GroupSlug;
use ports::{
    CreateGroupError, DeviceGroupRepository, GroupKey, LookupError, MembershipError,
    UpdateGroupError,
};
use uuid::Uuid;

use crate::api::customer_groups::{
    DeviceGroupCreateBody, DeviceGroupDeletedView, DeviceGroupListView, DeviceGroupUpdateBody,
    DeviceGroupView, GroupMembersView, MembershipChangedView,
};
use crate::api::group_filter::DEFINED_BY_FILTER;
use crate::api::params::ListParams;
use crate::auth::{Caller, DataWrites, Writer};
use crate::error::{ApiError, ErrorBody};
use crate::idempotency::Idempotency;
use crate::json::JsonBody;

fn group_not_found() -> ApiError {
    ApiError::not_found("Group not found")
}

fn name_taken(name: &domain::GroupName) -> ApiError {
    ApiError::conflict(format!(
        "Group with name '{}' already exists",
        name.as_str()
    ))
}

/// A slug that cannot be valid names no group.
fn slug(raw: &str) -> Result<GroupSlug, ApiError> {
    GroupSlug::parse(raw).map_err(|_| group_not_found())
}

fn key(raw: &str) -> Result<GroupKey, ApiError> {
    slug(raw).map(GroupKey::Slug)
}

fn lookup_error(e: LookupError) -> ApiError {
    match e {
        LookupError::NotFound => group_not_found(),
        LookupError::Store(e) => e.into(),
    }
}

/// The id of the group whose slug the client gave as `parent_id`.
async fn parent_of(
    groups: &dyn DeviceGroupRepository,
    tenant: &domain::TenantId,
    parent: &GroupSlug,
) -> Result<Uuid, ApiError> {
    match groups
        .get_group_row(tenant, &GroupKey::Slug(parent.clone()))
        .await
    {
        Ok(group) => Ok(group.id),
        Err(LookupError::NotFound) => Err(parent_missing(parent)),
        Err(LookupError::Store(e)) => Err(e.into()),
    }
}

/// 422 for a parent slug the tenant has no group for; a UUID (the Group API's form) is told
/// where UUIDs belong.
fn parent_missing(parent: &GroupSlug) -> ApiError {
    let raw = parent.as_str();
    let hint = if Uuid::parse_str(raw).is_ok() {
        "; the customer API takes the parent's slug (group UUIDs are for /api/groups)"
    } else {
        ""
    };
    ApiError::invalid(
        "parent_id",
        format!("the tenant has no group '{raw}'{hint}"),
    )
}

/// 422 for a parent the store refused (gone since it was looked up, or a bad placement).
fn parent_refused(
    parent: Option<&GroupSlug>,
    placement: Option<domain::group::PlacementError>,
) -> ApiError {
    match (placement, parent) {
        (Some(e), _) => ApiError::invalid("parent_id", e),
        (None, Some(parent)) => parent_missing(parent),
        (None, None) => ApiError::invalid("parent_id", "the parent group no longer exists"),
    }
}

/// The groups as the customer API shows them, each parent by its slug (read only when some
/// group has one).
async fn views(
    groups: &dyn DeviceGroupRepository,
    tenant: &domain::TenantId,
    rows: &[domain::DeviceGroup],
) -> Result<Vec<DeviceGroupView>, ApiError> {
    let parents: Vec<Uuid> = rows.iter().filter_map(|g| g.parent_id).collect();
    let slugs = if parents.is_empty() {
        std::collections::HashMap::new()
    } else {
        groups.group_slugs(tenant, &parents).await?
    };
    Ok(rows
        .iter()
        .map(|g| DeviceGroupView::of(g, g.parent_id.and_then(|p| slugs.get(&p))))
        .collect())
}

async fn view(
    groups: &dyn DeviceGroupRepository,
    tenant: &domain::TenantId,
    group: &domain::DeviceGroup,
) -> Result<DeviceGroupView, ApiError> {
    let mut shown = views(groups, tenant, std::slice::from_ref(group)).await?;
    Ok(shown.remove(0))
}

/// The customer API never sends members, so a missing device here is a broken invariant.
fn unexpected_member_error(id: Uuid) -> ApiError {
    ApiError::internal(anyhow::anyhow!(
        "device {id} reported missing for a change without members"
    ))
}

/// List the tenant's device groups, ordered by name, with their member counts.
#[utoipa::path(
    get, path = "/customer/device-groups", tag = "customer: device groups",
    operation_id = "list_customer_device_groups",
    params(ListParams),
    responses(
        (status = 200, description = "The tenant's groups", body = DeviceGroupListView),
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
    let groups: Vec<DeviceGroupView> = views(groups.as_ref(), &caller.tenant, &page.items).await?;
    Ok(HttpResponse::Ok().json(DeviceGroupListView {
        total: page.total,
        groups,
    }))
}

/// Create a device group. Without `group_id`, one is generated (`grp-` + 8 hex digits).
#[utoipa::path(
    post, path = "/customer/device-groups", tag = "customer: device groups",
    operation_id = "create_customer_device_group",
    request_body = DeviceGroupCreateBody,
    params(
        ("Idempotency-Key" = Option<String>, Header, nullable = false, min_length = 1, max_length = 255, pattern = r"^[!-~]([ -~]*[!-~])?$",
        description = "Makes the create safe to retry: a retry with the same key and the same body (byte for byte) within 24 hours gets the first answer and creates nothing; the same key with another body is a 422, and while the first request runs a 409. Per tenant; 1 to 255 printable ASCII characters."),
    ),
    responses(
        (status = 200, description = "The created group", body = DeviceGroupView),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "`Access forbidden. Required roles: admin, owner`", body = ErrorBody),
        (status = 409, description = "`Group ID already exists`, the name is taken, or `A request with this Idempotency-Key is in progress`", body = ErrorBody),
        (status = 413, description = "Body over 1 MiB", body = ErrorBody),
        (status = 422, description = "Invalid body; `detail` names the field; or `Idempotency-Key: …`, a malformed key or one sent before with another body", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn create(
    caller: Writer<DataWrites>,
    groups: web::Data<dyn DeviceGroupRepository>,
    idempotency: Idempotency,
    body: JsonBody<DeviceGroupCreateBody>,
) -> Result<HttpResponse, ApiError> {
    idempotency
        .run(&caller.tenant, async {
            let checked = body.0.try_into_domain()?;
            let parent_id = match &checked.parent {
                Some(parent) => Some(parent_of(groups.as_ref(), &caller.tenant, parent).await?),
                None => None,
            };
            let wanted = CreateGroup {
                group_id: checked.group_id,
                name: checked.name,
                description: checked.description,
                filter: checked.filter,
                members: Vec::new(),
                parent_id,
            };
            let detail =
                app::groups::create(groups.as_ref(), &caller.tenant, &caller.actor, wanted)
                    .await
                    .map_err(|e| match e {
                        // A slug the client chose, or every generated one, is taken.
                        CreateGroupError::GroupIdTaken(_) => {
                            ApiError::conflict("Group ID already exists")
                        }
                        CreateGroupError::NameTaken(name) => name_taken(&name),
                        CreateGroupError::DeviceNotFound(id) => unexpected_member_error(id),
                        e @ CreateGroupError::TooManyDynamic => ApiError::invalid("filter", e),
                        CreateGroupError::ParentNotFound(_) => {
                            parent_refused(checked.parent.as_ref(), None)
                        }
                        CreateGroupError::Placement(e) => parent_refused(None, Some(e)),
                        CreateGroupError::Store(e) => e.into(),
                    })?;
            Ok(
                HttpResponse::Ok()
                    .json(view(groups.as_ref(), &caller.tenant, &detail.group).await?),
            )
        })
        .await
}

/// Read one device group.
#[utoipa::path(
    get, path = "/customer/device-groups/{group_id}", tag = "customer: device groups",
    operation_id = "get_customer_device_group",
    params(("group_id" = String, Path, description = "The group's slug")),
    responses(
        (status = 200, description = "The group", body = DeviceGroupView),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 404, description = "`Group not found`", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn get(
    caller: Caller,
    groups: web::Data<dyn DeviceGroupRepository>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let group = groups
        .get_group_row(&caller.tenant, &key(&path)?)
        .await
        .map_err(lookup_error)?;
    Ok(HttpResponse::Ok().json(view(groups.as_ref(), &caller.tenant, &group).await?))
}

/// The group of a membership route (`{group_id}/devices/{device_id}`) as [`get`] answers it:
/// membership writes are writes of the group, checked and tagged against its representation.
pub(crate) async fn group_of_member(
    caller: Caller,
    groups: web::Data<dyn DeviceGroupRepository>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    get(caller, groups, web::Path::from(path.into_inner().0)).await
}

/// Change a group's name or description. Absent fields stay; `description: null` clears it.
#[utoipa::path(
    patch, path = "/customer/device-groups/{group_id}", tag = "customer: device groups",
    operation_id = "update_customer_device_group",
    params(("group_id" = String, Path, description = "The group's slug")),
    request_body = DeviceGroupUpdateBody,
    responses(
        (status = 200, description = "The updated group", body = DeviceGroupView),
        (status = 400, description = "`No fields to update`", body = ErrorBody),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "`Access forbidden. Required roles: admin, owner`", body = ErrorBody),
        (status = 404, description = "`Group not found`", body = ErrorBody),
        (status = 409, description = "The new name is taken", body = ErrorBody),
        (status = 413, description = "Body over 1 MiB", body = ErrorBody),
        (status = 422, description = "Invalid body; `detail` names the field", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn update(
    caller: Writer<DataWrites>,
    groups: web::Data<dyn DeviceGroupRepository>,
    path: web::Path<String>,
    body: JsonBody<DeviceGroupUpdateBody>,
) -> Result<HttpResponse, ApiError> {
    let checked = body.0.try_into_domain()?;
    let group = key(&path)?;
    let mut changes = checked.changes;
    changes.parent_id = match &checked.parent {
        None => None,
        Some(None) => Some(None),
        Some(Some(parent)) => {
            // An unknown group is a 404 before its parent is looked at.
            groups
                .get_group_row(&caller.tenant, &group)
                .await
                .map_err(lookup_error)?;
            Some(Some(
                parent_of(groups.as_ref(), &caller.tenant, parent).await?,
            ))
        }
    };
    let detail = groups
        .update_group(&caller.tenant, &caller.actor, &group, changes)
        .await
        .map_err(|e| match e {
            UpdateGroupError::NotFound => group_not_found(),
            UpdateGroupError::NameTaken(name) => name_taken(&name),
            UpdateGroupError::DefinedByFilter => ApiError::conflict(DEFINED_BY_FILTER),
            e @ UpdateGroupError::TooManyDynamic => ApiError::invalid("filter", e),
            UpdateGroupError::DeviceNotFound(id) => unexpected_member_error(id),
            UpdateGroupError::ParentNotFound(_) => {
                parent_refused(checked.parent.as_ref().and_then(Option::as_ref), None)
            }
            UpdateGroupError::Placement(e) => parent_refused(None, Some(e)),
            UpdateGroupError::Store(e) => e.into(),
        })?;
    Ok(HttpResponse::Ok().json(view(groups.as_ref(), &caller.tenant, &detail.group).await?))
}

/// Delete a group and its memberships; its devices stay.
#[utoipa::path(
    delete, path = "/customer/device-groups/{group_id}", tag = "customer: device groups",
    operation_id = "delete_customer_device_group",
    params(("group_id" = String, Path, description = "The group's slug")),
    responses(
        (status = 200, description = "Deleted", body = DeviceGroupDeletedView),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "`Access forbidden. Required roles: admin, owner`", body = ErrorBody),
        (status = 404, description = "`Group not found`", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn delete(
    caller: Writer<DataWrites>,
    groups: web::Data<dyn DeviceGroupRepository>,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let group_id = slug(&path)?;
    groups
        .delete_group(&caller.tenant, &GroupKey::Slug(group_id.clone()))
        .await
        .map_err(lookup_error)?;
    Ok(HttpResponse::Ok().json(DeviceGroupDeletedView {
        group_id: group_id.as_str().to_owned(),
        deleted: true,
    }))
}

/// A path segment that is no UUID names no device. The nil UUID names none either, so passing
/// it lets the store still report an unknown group first.
fn device_or_nil(raw: &str) -> Uuid {
    Uuid::parse_str(raw).unwrap_or(Uuid::nil())
}

/// The group's devices, ordered by name.
#[utoipa::path(
    get, path = "/customer/device-groups/{group_id}/devices", tag = "customer: device groups",
    operation_id = "list_customer_group_devices",
    params(("group_id" = String, Path, description = "The group's slug"), ListParams),
    responses(
        (status = 200, description = "The group's devices", body = GroupMembersView),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 404, description = "`Group not found`", body = ErrorBody),
        (status = 422, description = "Bad `name`, `limit` or `offset`", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn members(
    caller: Caller,
    groups: web::Data<dyn DeviceGroupRepository>,
    windows: web::Data<dyn ports::MaintenanceWindowRepository>,
    path: web::Path<String>,
    params: web::Query<ListParams>,
) -> Result<HttpResponse, ApiError> {
    let query = params.query()?;
    let group_id = slug(&path)?;
    let page = groups
        .list_members(&caller.tenant, &GroupKey::Slug(group_id.clone()), &query)
        .await
        .map_err(lookup_error)?;
    Ok(HttpResponse::Ok().json(GroupMembersView {
        group_id: group_id.as_str().to_owned(),
        devices: crate::routes::device_views(windows.as_ref(), &caller.tenant, &page.items).await?,
        total: page.total,
    }))
}

/// Put a device in the group; doing it again changes nothing.
#[utoipa::path(
    put, path = "/customer/device-groups/{group_id}/devices/{device_id}", tag = "customer: device groups",
    operation_id = "add_customer_group_device",
    params(
        ("group_id" = String, Path, description = "The group's slug"),
        ("device_id" = String, Path, description = "The device's UUID"),
    ),
    responses(
        (status = 200, description = "The device is a member", body = MembershipChangedView),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "`Access forbidden. Required roles: admin, owner`", body = ErrorBody),
        (status = 404, description = "`Group not found` or `Device not found`", body = ErrorBody),
        (status = 409, description = "`Group membership is defined by its filter` (a dynamic group)", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn add_member(
    caller: Writer<DataWrites>,
    groups: web::Data<dyn DeviceGroupRepository>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (group, device) = path.into_inner();
    let device_id = device_or_nil(&device);
    groups
        .add_member(&caller.tenant, &caller.actor, &key(&group)?, device_id)
        .await
        .map_err(|e| match e {
            MembershipError::GroupNotFound => group_not_found(),
            MembershipError::DefinedByFilter => ApiError::conflict(DEFINED_BY_FILTER),
            MembershipError::DeviceNotFound | MembershipError::NotMember => {
                ApiError::not_found("Device not found")
            }
            MembershipError::Store(e) => e.into(),
        })?;
    Ok(HttpResponse::Ok().json(MembershipChangedView {
        group_id: group,
        device_id,
        member: true,
    }))
}

/// Take a device out of the group.
#[utoipa::path(
    delete, path = "/customer/device-groups/{group_id}/devices/{device_id}", tag = "customer: device groups",
    operation_id = "remove_customer_group_device",
    params(
        ("group_id" = String, Path, description = "The group's slug"),
        ("device_id" = String, Path, description = "The device's UUID"),
    ),
    responses(
        (status = 200, description = "The device is no longer a member", body = MembershipChangedView),
        (status = 401, description = "Missing or invalid token", body = ErrorBody),
        (status = 403, description = "`Access forbidden. Required roles: admin, owner`", body = ErrorBody),
        (status = 404, description = "`Group not found` or `Device not in group`", body = ErrorBody),
        (status = 409, description = "`Group membership is defined by its filter` (a dynamic group)", body = ErrorBody),
        (status = 503, description = "Store unavailable", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn remove_member(
    caller: Writer<DataWrites>,
    groups: web::Data<dyn DeviceGroupRepository>,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, ApiError> {
    let (group, device) = path.into_inner();
    let device_id = device_or_nil(&device);
    groups
        .remove_member(&caller.tenant, &caller.actor, &key(&group)?, device_id)
        .await
        .map_err(|e| match e {
            MembershipError::GroupNotFound => group_not_found(),
            MembershipError::DefinedByFilter => ApiError::conflict(DEFINED_BY_FILTER),
            MembershipError::DeviceNotFound | MembershipError::NotMember => {
                ApiError::not_found("Device not in group")
            }
            MembershipError::Store(e) => e.into(),
        })?;
    Ok(HttpResponse::Ok().json(MembershipChangedView {
        group_id: group,
        device_id,
        member: false,
    }))
}
