//! Bucketed reads of the embedded store: aggregated in memory, under the tenant's read lock.

use std::ops::Bound;

use domain::bucket::{BucketQuery, BucketStats, SeriesChoice, SeriesStats};
use domain::{Device, Timestamp};
use ports::GroupBucketsError;
use uuid::Uuid;

use crate::TenantData;

impl TenantData {
    /// The device's stats on `query.grid`, over the readings in the range and the grid.
    pub(crate) fn series_stats(&self, device: &Device, query: &BucketQuery) -> SeriesStats {
        let bounds = query.grid.instants();
        let mut buckets: Vec<BucketStats> = Vec::new();
        if let (Some(first), Some(last)) = (bounds.first(), bounds.last()) {
            let from = query.since.max(*first);
            let to = query.until.map_or(*last, |until| until.min(*last));
            if from < to {
                let readings = self.readings.range((
                    Bound::Included((device.id, from)),
                    Bound::Excluded((device.id, to)),
                ));
                // Readings come in time order: each bucket is filled before the next starts.
                for ((_, at), value) in readings {
                    let Some(index) = query.grid.index_of(*at) else {
                        continue;
                    };
                    match buckets.last_mut() {
                        Some(open) if open.index == index => open.push(*value),
                        _ => buckets.push(BucketStats::of(index, *value)),
                    }
                }
            }
        }
        let before = query.wants_before().then(|| {
            self.readings
                .range((
                    Bound::Included((device.id, Timestamp::MIN)),
                    Bound::Excluded((device.id, query.since)),
                ))
                .next_back()
                .map(|(_, value)| *value)
        });
        SeriesStats {
            device_id: device.id,
            device_name: device.spec.name.clone(),
            unit: device.spec.unit.clone(),
            buckets,
            before: before.flatten(),
        }
    }

    /// The chosen members' series (those with readings counted), at most `choice.cap()`.
    /// With `tree`, of the devices of the group's tree (each once).
    pub(crate) fn group_series(
        &self,
        group: Uuid,
        choice: &SeriesChoice,
        query: &BucketQuery,
        tree: bool,
    ) -> Result<Vec<SeriesStats>, GroupBucketsError> {
        let members: std::collections::BTreeSet<Uuid> = if tree {
            self.tree_member_ids(group)
        } else {
            self.member_ids(group).collect()
        };
        let devices: Vec<Uuid> = match choice.devices() {
            Some(listed) => {
                if let Some(outsider) = listed.iter().find(|id| !members.contains(id)) {
                    return Err(GroupBucketsError::NotMember(*outsider));
                }
                listed.to_vec()
            }
            None => members.into_iter().collect(),
        };
        let mut series: Vec<SeriesStats> = devices
            .iter()
            .filter_map(|id| self.device(*id))
            .map(|device| self.series_stats(device, query))
            .filter(|s| !s.buckets.is_empty())
            .collect();
        series.sort_by(|a, b| {
            b.total()
                .cmp(&a.total())
                .then_with(|| a.device_name.as_str().cmp(b.device_name.as_str()))
                .then(a.device_id.cmp(&b.device_id))
        });
        series.truncate(choice.cap());
        Ok(series)
    }
}
