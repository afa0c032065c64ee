//! Wire shapes of bucketed readings (issue 16): the `interval`, `agg`, `timezone`, `fill`
//! parameters (and a group's `device_ids`, `top`), and the series of buckets answered.

use domain::bucket::{
    Aggregate, Aggregates, Bucket, BucketGrid, BucketQuery, Fill, Interval, SeriesChoice,
    SeriesChoiceError, SeriesStats, Zone,
};
use domain::Timestamp;
use serde::ser::SerializeMap;
use serde::{Deserialize, Serialize, Serializer};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::api::params::ReadingsParams;
use crate::error::ApiError;
use crate::routes::{rfc3339_at, Cell};

/// A bucketed query as the handlers need it: what to ask the store and how to answer.
#[derive(Debug)]
pub(crate) struct Bucketed {
    pub query: BucketQuery,
    /// `interval` as the client wrote it (echoed).
    pub interval: String,
    pub zone: Zone,
}

impl ReadingsParams {
    /// `None` without `interval` (a raw readings query); else the buckets of the range asked.
    ///
    /// # Errors
    /// 422 naming `interval`, `agg`, `timezone` or `fill` (the last three also when given
    /// without `interval`), the range's parameters, or `cursor`/`offset` with `interval`.
    pub(crate) fn buckets(&self) -> Result<Option<Bucketed>, ApiError> {
        let Some(interval_text) = self.interval.as_deref() else {
            for (field, value) in [
                ("agg", &self.agg),
                ("timezone", &self.timezone),
                ("fill", &self.fill),
            ] {
                if value.is_some() {
                    return Err(ApiError::invalid(field, "applies only with interval"));
                }
            }
            return Ok(None);
        };
        if let Some(field) = self.paging_given() {
            return Err(ApiError::invalid(
                field,
                "pages raw readings only; buckets come in one answer",
            ));
        }
        let range = &self.query()?;
        let interval =
            Interval::parse(interval_text).map_err(|e| ApiError::invalid("interval", e))?;
        let aggregates = self
            .agg
            .as_deref()
            .map(Aggregates::parse)
            .transpose()
            .map_err(|e| ApiError::invalid("agg", e))?
            .unwrap_or_default();
        let zone = self
            .timezone
            .as_deref()
            .map(Zone::parse)
            .transpose()
            .map_err(|e| ApiError::invalid("timezone", e))?
            .unwrap_or_else(Zone::utc);
        let fill = self
            .fill
            .as_deref()
            .map(Fill::parse)
            .transpose()
            .map_err(|e| ApiError::invalid("fill", e))?
            .unwrap_or_default();
        // Without an end the buckets reach now (a reading stamped a little ahead of the clock
        // falls after the last bucket).
        let until = range.until().unwrap_or_else(Timestamp::now);
        let grid = BucketGrid::new(interval, &zone, range.since(), until)
            .map_err(|e| ApiError::invalid("interval", e))?;
        Ok(Some(Bucketed {
            query: BucketQuery {
                since: range.since(),
                until: range.until(),
                grid,
                aggregates,
                fill,
            },
            interval: interval_text.to_owned(),
            zone,
        }))
    }
}

/// Which members of a group get a series (with `interval` only).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SeriesParams {
    /// With `interval`: only these members (comma list of device UUIDs, at most 1000); a device
    /// that is no member is a 422.
    #[param(value_type = Option<String>)]
    device_ids: Option<String>,
    /// With `interval`: at most this many series, 1 to 1000: the members with the most readings
    /// in the range (ties by name).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 1000)]
    top: Option<String>,
}

impl SeriesParams {
    /// # Errors
    /// 422 naming `device_ids` or `top`, also when given without `interval`.
    pub(crate) fn choice(&self, bucketed: bool) -> Result<SeriesChoice, ApiError> {
        if !bucketed {
            for (field, value) in [("device_ids", &self.device_ids), ("top", &self.top)] {
                if value.is_some() {
                    return Err(ApiError::invalid(field, "applies only with interval"));
                }
            }
        }
        let devices = self
            .device_ids
            .as_deref()
            .map(|list| {
                list.split(',')
                    .map(|raw| {
                        Uuid::parse_str(raw.trim()).map_err(|_| {
                            let shown: String = raw.chars().take(64).collect();
                            ApiError::invalid("device_ids", format!("'{shown}' is not a UUID"))
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .transpose()?;
        let top = self
            .top
            .as_deref()
            .map(|v| {
                v.parse::<i64>()
                    .map_err(|_| ApiError::invalid("top", format!("must be an integer, got '{v}'")))
            })
            .transpose()?;
        SeriesChoice::new(devices, top).map_err(|e| match e {
            SeriesChoiceError::DeviceCount(_) => ApiError::invalid("device_ids", e),
            SeriesChoiceError::Top(_) => ApiError::invalid("top", e),
        })
    }
}

/// One bucket: `start`, `end`, each aggregate asked for (in the order asked), and `count`.
/// Aggregates of an empty bucket are null (`fill=null`) or the value carried (`fill=previous`).
#[derive(Debug, ToSchema)]
#[schema(as = ReadingBucket)]
pub struct BucketView {
    /// Start of the bucket (inclusive), RFC 3339 at the zone's offset then.
    #[schema(format = DateTime, example = "2025-10-26T00:00:00+02:00")]
    pub start: String,
    /// End of the bucket (exclusive), RFC 3339 at the zone's offset then: a DST day's bucket
    /// is 23 or 25 hours long.
    #[schema(format = DateTime, example = "2025-10-27T00:00:00+01:00")]
    pub end: String,
    /// Mean value (when asked for).
    pub avg: Option<f64>,
    /// Least value (when asked for).
    pub min: Option<f64>,
    /// Greatest value (when asked for).
    pub max: Option<f64>,
    /// Value of the bucket's earliest reading (when asked for).
    pub first: Option<f64>,
    /// Value of the bucket's latest reading (when asked for).
    pub last: Option<f64>,
    /// Sum of the values (when asked for); null for an empty bucket.
    pub sum: Option<f64>,
    /// Readings in the bucket (always present; 0 for a filled bucket).
    pub count: u64,
    #[schema(ignore)]
    #[doc(hidden)]
    asked: Vec<Aggregate>,
}

impl BucketView {
    fn of(bucket: &Bucket, asked: &Aggregates) -> Self {
        Self {
            start: rfc3339_at(bucket.start.local),
            end: rfc3339_at(bucket.end.local),
            avg: bucket.avg,
            min: bucket.min,
            max: bucket.max,
            first: bucket.first,
            last: bucket.last,
            sum: bucket.sum,
            count: bucket.count,
            asked: asked.get().to_vec(),
        }
    }
}

impl Serialize for BucketView {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.asked.len() + 3))?;
        map.serialize_entry("start", &self.start)?;
        map.serialize_entry("end", &self.end)?;
        for aggregate in &self.asked {
            let value = match aggregate {
                Aggregate::Count => continue,
                Aggregate::Avg => self.avg,
                Aggregate::Min => self.min,
                Aggregate::Max => self.max,
                Aggregate::First => self.first,
                Aggregate::Last => self.last,
                Aggregate::Sum => self.sum,
            };
            // JSON has no infinities (a sum may overflow): null then.
            map.serialize_entry(aggregate.name(), &value.filter(|v| v.is_finite()))?;
        }
        map.serialize_entry("count", &self.count)?;
        map.end()
    }
}

/// One device's buckets.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ReadingSeries)]
pub struct SeriesView {
    /// The device's UUID.
    pub device_id: Uuid,
    /// The device's name.
    pub device_name: String,
    /// The unit of its values.
    pub unit: String,
    /// The buckets, oldest first.
    pub buckets: Vec<BucketView>,
}

impl SeriesView {
    pub(crate) fn of(series: &SeriesStats, query: &BucketQuery) -> Self {
        Self {
            device_id: series.device_id,
            device_name: series.device_name.as_str().to_owned(),
            unit: series.unit.as_str().to_owned(),
            buckets: domain::bucket::fill_series(&query.grid, series, query.fill)
                .iter()
                .map(|b| BucketView::of(b, &query.aggregates))
                .collect(),
        }
    }
}

/// `GET /api/devices/{id}/readings` with `interval`: one series (its buckets per `fill`).
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = DeviceReadingBuckets)]
pub struct DeviceBucketsView {
    /// The device's UUID.
    pub device_id: Uuid,
    /// `interval` as given.
    pub interval: String,
    /// The time zone the buckets align to (canonical IANA name).
    pub timezone: String,
    /// The device's series.
    pub series: Vec<SeriesView>,
}

/// `GET /api/groups/{group_id}/readings` with `interval`: one series per chosen member with
/// readings in the range, ordered by device name.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = GroupReadingBuckets)]
pub struct GroupBucketsView {
    /// The group's UUID.
    pub group_id: Uuid,
    /// `interval` as given.
    pub interval: String,
    /// The time zone the buckets align to (canonical IANA name).
    pub timezone: String,
    /// The members' series.
    pub series: Vec<SeriesView>,
}

/// The CSV header of bucketed readings: `device_id,device_name,unit,start,end,<aggs>,count`.
pub(crate) fn csv_header(asked: &Aggregates) -> Vec<&'static str> {
    let mut header = vec!["device_id", "device_name", "unit", "start", "end"];
    header.extend(
        asked
            .get()
            .iter()
            .filter(|a| **a != Aggregate::Count)
            .map(|a| a.name()),
    );
    header.push("count");
    header
}

/// One CSV row per bucket of each series; a null aggregate is an empty cell.
pub(crate) fn csv_rows<'a>(
    series: &'a [SeriesView],
    asked: &'a Aggregates,
) -> impl Iterator<Item = Vec<Cell>> + 'a {
    series.iter().flat_map(move |s| {
        s.buckets.iter().map(move |b| {
            let mut row = vec![
                Cell::Text(s.device_id.to_string()),
                Cell::Text(s.device_name.clone()),
                Cell::Text(s.unit.clone()),
                Cell::Text(b.start.clone()),
                Cell::Text(b.end.clone()),
            ];
            for aggregate in asked.get() {
                let value = match aggregate {
                    Aggregate::Count => continue,
                    Aggregate::Avg => b.avg,
                    Aggregate::Min => b.min,
                    Aggregate::Max => b.max,
                    Aggregate::First => b.first,
                    Aggregate::Last => b.last,
                    Aggregate::Sum => b.sum,
                };
                row.push(
                    value
                        .filter(|v| v.is_finite())
                        .map_or_else(|| Cell::Text(String::new()), Cell::Number),
                );
            }
            #[allow(clippy::cast_precision_loss)]
            row.push(Cell::Number(b.count as f64));
            row
        })
    })
}

/// The JSON answer of `GET /api/devices/{id}/readings`: raw readings, or with `interval` the
/// buckets. (A schema only: each handler writes one of the two.)
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
#[schema(as = DeviceReadingsOrBuckets)]
pub enum DeviceReadingsAnswer {
    Readings(crate::api::readings::DeviceReadingsView),
    Buckets(DeviceBucketsView),
}

/// The JSON answer of `GET /api/groups/{group_id}/readings`: raw readings, or with `interval`
/// the buckets. (A schema only: each handler writes one of the two.)
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
#[schema(as = GroupReadingsOrBuckets)]
pub enum GroupReadingsAnswer {
    Readings(crate::api::group_api::GroupReadingsView),
    Buckets(GroupBucketsView),
}
