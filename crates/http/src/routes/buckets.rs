//! Bucketed readings (issue 16): the `interval` branch of the device and group readings routes.
//! Parse, ask the use case, answer JSON or CSV; the aggregation itself runs in the store.

use actix_web::HttpResponse;
use domain::bucket::SeriesChoice;
use ports::DeviceGroupRepository;
use ports::{GroupBucketsError, GroupKey, LookupError, ReadingRepository};
use uuid::Uuid;

use crate::api::buckets::{
    csv_header, csv_rows, Bucketed, DeviceBucketsView, GroupBucketsView, SeriesView,
};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::routes::{csv, csv_attachment, wants_csv};

/// The device's buckets, as JSON or (asked for by `Accept`) CSV.
pub(crate) async fn device(
    caller: &Caller,
    readings: &dyn ReadingRepository,
    device: Uuid,
    not_found: impl FnOnce() -> ApiError,
    bucketed: Bucketed,
    request: &actix_web::HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let Bucketed {
        query,
        interval,
        zone,
    } = bucketed;
    let stats = app::readings::device_buckets(readings, &caller.tenant, device, &query)
        .await
        .map_err(|e| match e {
            LookupError::NotFound => not_found(),
            LookupError::Store(e) => e.into(),
        })?;
    let series = vec![SeriesView::of(&stats, &query)];
    if wants_csv(request) {
        let mut answer = csv(
            &csv_header(&query.aggregates),
            csv_rows(&series, &query.aggregates),
        );
        attach(&mut answer, stats.device_name.as_str());
        return Ok(answer);
    }
    Ok(HttpResponse::Ok().json(DeviceBucketsView {
        device_id: device,
        interval,
        timezone: zone.name().to_owned(),
        series,
    }))
}

/// The group's members' buckets, as JSON or (asked for by `Accept`) CSV.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn group(
    caller: &Caller,
    readings: &dyn ReadingRepository,
    groups: &dyn DeviceGroupRepository,
    group_id: Uuid,
    not_found: impl Fn() -> ApiError,
    bucketed: Bucketed,
    choice: &SeriesChoice,
    request: &actix_web::HttpRequest,
    tree: bool,
) -> Result<HttpResponse, ApiError> {
    let Bucketed {
        query,
        interval,
        zone,
    } = bucketed;
    let group = GroupKey::Id(group_id);
    let stats = if tree {
        app::readings::tree_buckets(readings, &caller.tenant, &group, choice, &query).await
    } else {
        app::readings::group_buckets(readings, &caller.tenant, &group, choice, &query).await
    }
    .map_err(|e| match e {
        GroupBucketsError::NotFound => not_found(),
        GroupBucketsError::NotMember(id) => ApiError::invalid(
            "device_ids",
            if tree {
                format!("device {id} is not a member of the group or its descendants")
            } else {
                format!("device {id} is not a member of the group")
            },
        ),
        GroupBucketsError::TooManyBuckets => ApiError::invalid(
            "interval",
            format!(
                "an answer holds at most {} buckets over all its series ({} series of {} \
                     buckets asked); widen the interval, shorten the range, or narrow the \
                     series with top or device_ids",
                domain::bucket::MAX_BUCKETS_PER_ANSWER,
                choice.most_series(),
                query.grid.len()
            ),
        ),
        GroupBucketsError::TooManySeries => ApiError::invalid(
            "device_ids",
            format!(
                "more than {} members have readings in the range; narrow the answer with \
                     device_ids or top",
                domain::bucket::MAX_SERIES
            ),
        ),
        GroupBucketsError::Store(e) => e.into(),
    })?;
    let series: Vec<SeriesView> = stats.iter().map(|s| SeriesView::of(s, &query)).collect();
    if wants_csv(request) {
        // The file is named after the group: one more (small) read, for exports only.
        let name = groups
            .get_group_row(&caller.tenant, &group)
            .await
            .map_err(|e| match e {
                LookupError::NotFound => not_found(),
                LookupError::Store(e) => ApiError::from(e),
            })?
            .name;
        let mut answer = csv(
            &csv_header(&query.aggregates),
            csv_rows(&series, &query.aggregates),
        );
        attach(&mut answer, name.as_str());
        return Ok(answer);
    }
    Ok(HttpResponse::Ok().json(GroupBucketsView {
        group_id,
        interval,
        timezone: zone.name().to_owned(),
        series,
    }))
}

fn attach(answer: &mut HttpResponse, name: &str) {
    let (header, value) = csv_attachment(name);
    answer.headers_mut().insert(header, value);
}
