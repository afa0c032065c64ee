//! A group as a reader sees it: its members with what their alert status is judged from, and
//! the windows that may mute them; and the rules that judge them.

use std::collections::HashMap;

use uuid::Uuid;

use crate::alert::{AlertSummary, MemberState};
use crate::device::Device;
use crate::group::{DeviceGroup, GroupSlug};
use crate::state::DeviceState;
use crate::window::{CoverageIndex, MaintenanceWindow};
use crate::Timestamp;

/// Whether a member has open alerts, and whether one of them is acknowledged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MemberAlerts {
    pub open: bool,
    pub acknowledged: bool,
}

/// A member's state and alerts as they are now, newer than a kept [`GroupDetail`]'s: what a
/// summary needs of a device whose status, freshness or alerts changed since the detail was
/// read, while nothing else did (no device, group, membership or window write).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct MemberPatch {
    pub state: DeviceState,
    pub alerts: MemberAlerts,
}

/// Patches by device id. Ids of devices that are not members are ignored.
pub type MemberPatches = HashMap<Uuid, MemberPatch>;

/// A member device (with its kept state) and what its maintenance is judged from.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    pub device: Device,
    pub alerts: MemberAlerts,
    /// The groups (slugs) the device belongs to that some window of the tenant names in its
    /// `group_ids`: all that window scoping needs to know of its memberships.
    pub window_groups: Vec<GroupSlug>,
}

/// A group with its members, ordered by device name (byte order), and the tenant's windows that
/// may mute them (enabled and not ended).
#[derive(Debug, Clone, PartialEq)]
pub struct GroupDetail {
    pub group: DeviceGroup,
    pub members: Vec<Member>,
    pub windows: Vec<MaintenanceWindow>,
}

impl GroupDetail {
    /// Each member's state at `now`, in member order. A member is in maintenance when a window
    /// active at `now` covers it (site, type, group and recurrence, as the window says).
    #[must_use]
    pub fn assess(&self, now: Timestamp) -> Vec<MemberState> {
        self.assess_patched(now, &MemberPatches::new())
    }

    /// [`GroupDetail::assess`] with the members `patches` names in the state and alerts it
    /// gives them.
    #[must_use]
    pub fn assess_patched(&self, now: Timestamp, patches: &MemberPatches) -> Vec<MemberState> {
        // Activity depends on time only, so it is decided once per window, not once per member;
        // the scopes are indexed once, so members are checked against the windows that name them.
        let active = CoverageIndex::active_at(self.windows.iter().map(|w| &w.definition), now);
        self.members
            .iter()
            .map(|m| {
                let spec = &m.device.spec;
                let (state, alerts) = patched(m, patches);
                MemberState {
                    alert: state.alert_status,
                    in_maintenance: active.covers(
                        spec.site_id.as_ref(),
                        spec.device_type.as_ref(),
                        &spec.labels,
                        &m.window_groups,
                    ),
                    freshness: state.freshness(spec.stale_after, now),
                    open_alert: alerts.open,
                    acknowledged: alerts.open && alerts.acknowledged,
                }
            })
            .collect()
    }

    /// The group's alert summary at `now`.
    #[must_use]
    pub fn summary(&self, now: Timestamp) -> AlertSummary {
        summary_of(&self.assess(now))
    }

    /// The summary with `patches` applied ([`GroupDetail::assess_patched`]).
    #[must_use]
    pub fn summary_patched(&self, now: Timestamp, patches: &MemberPatches) -> AlertSummary {
        summary_of(&self.assess_patched(now, patches))
    }

    /// The first instant after `now` at which time alone changes [`GroupDetail::assess`]: a
    /// window starting or ending, or a member turning stale. None: only a change of the data can.
    #[must_use]
    pub fn next_change(&self, now: Timestamp) -> Option<Timestamp> {
        self.next_change_patched(now, &MemberPatches::new())
    }

    /// [`GroupDetail::next_change`] with `patches` applied.
    #[must_use]
    pub fn next_change_patched(
        &self,
        now: Timestamp,
        patches: &MemberPatches,
    ) -> Option<Timestamp> {
        let windows = self
            .windows
            .iter()
            .filter_map(|w| w.definition.next_change(now));
        let staleness = self
            .members
            .iter()
            .filter_map(|m| patched(m, patches).0.stale_from(m.device.spec.stale_after))
            .filter(|t| *t > now);
        windows.chain(staleness).min()
    }

    /// The detail with each member's kept state and alerts as `states` says (the default state,
    /// no reading and no alert, for a member it does not name), all else as it was. Valid only
    /// while no device, group, membership or window changed since the detail was read (the
    /// store's scope revision says so). Whether anything changed.
    pub fn apply_states(&mut self, states: &MemberPatches) -> bool {
        let mut changed = false;
        for member in &mut self.members {
            let patch = states.get(&member.device.id).copied().unwrap_or_default();
            if member.device.state != patch.state || member.alerts != patch.alerts {
                member.device.state = patch.state;
                member.alerts = patch.alerts;
                changed = true;
            }
        }
        changed
    }
}

/// A member's state and alerts: its patch's when `patches` has one.
fn patched<'a>(member: &'a Member, patches: &'a MemberPatches) -> (&'a DeviceState, MemberAlerts) {
    // Most summaries have no patch: no id is hashed for them.
    match (!patches.is_empty())
        .then(|| patches.get(&member.device.id))
        .flatten()
    {
        Some(patch) => (&patch.state, patch.alerts),
        None => (&member.device.state, member.alerts),
    }
}

/// The summary of members' states.
#[must_use]
pub fn summary_of(states: &[MemberState]) -> AlertSummary {
    AlertSummary::of(states.iter().copied())
}

#[cfg(test)]
mod tests {
    use time::Duration;
    use uuid::Uuid;

    use super::*;
    use crate::alert::AlertStatus;
    use crate::device::{DeviceName, DeviceSpec, DeviceStatus, Thresholds, Unit};
    use crate::group::GroupName;
    use crate::reading::ReadingPoint;
    use crate::state::DeviceState;
    use crate::window::{ScopeLabel, WindowDefinition, WindowName, WindowSchedule, WindowSlug};
    use crate::Actor;

    fn at(minutes: i64) -> Timestamp {
        Timestamp::now()
            .checked_add(Duration::minutes(minutes))
            .expect("in range")
    }

    fn label(value: &str) -> ScopeLabel {
        ScopeLabel::parse(value).expect("valid")
    }

    /// A device at `site` whose latest reading is `value` (warning above 30, critical above 40).
    fn member(name: &str, site: &str, value: Option<f64>, groups: &[&str]) -> Member {
        let now = Timestamp::now();
        let thresholds = Thresholds::new(None, None, Some(30.0), Some(40.0)).expect("ordered");
        let state = value.map_or_else(DeviceState::default, |value| {
            DeviceState::default()
                .after_reading(
                    &thresholds,
                    ReadingPoint {
                        timestamp: now,
                        value,
                    },
                )
                .expect("first reading")
        });
        Member {
            device: Device {
                id: Uuid::new_v4(),
                spec: DeviceSpec {
                    name: DeviceName::parse(name).expect("valid"),
                    unit: Unit::parse("C").expect("valid"),
                    status: DeviceStatus::Connected,
                    site_id: Some(label(site)),
                    device_type: Some(label("thermometer")),
                    thresholds,
                    stale_after: None,
                    labels: crate::Labels::none(),
                },
                state,
                created_at: now,
                updated_at: now,
                created_by: Actor::parse("a").expect("valid"),
                updated_by: Actor::parse("a").expect("valid"),
            },
            alerts: MemberAlerts::default(),
            window_groups: groups
                .iter()
                .map(|g| GroupSlug::parse(g).expect("valid"))
                .collect(),
        }
    }

    fn window(
        starts: i64,
        ends: Option<i64>,
        sites: Option<&[&str]>,
        groups: Option<&[&str]>,
    ) -> MaintenanceWindow {
        let now = Timestamp::now();
        MaintenanceWindow {
            window_id: WindowSlug::parse("mw-00000001").expect("valid"),
            definition: WindowDefinition {
                labels: None,
                name: WindowName::parse("w").expect("valid"),
                schedule: WindowSchedule::new(at(starts), ends.map(at)).expect("valid"),
                recurring: None,
                site_ids: sites.map(|s| s.iter().map(|v| label(v)).collect()),
                device_types: None,
                group_ids: groups.map(|g| {
                    g.iter()
                        .map(|v| GroupSlug::parse(v).expect("valid"))
                        .collect()
                }),
                enabled: true,
            },
            created_at: now,
            updated_at: now,
            created_by: Actor::parse("a").expect("valid"),
            updated_by: Actor::parse("a").expect("valid"),
        }
    }

    fn detail(members: Vec<Member>, windows: Vec<MaintenanceWindow>) -> GroupDetail {
        let now = Timestamp::now();
        GroupDetail {
            group: DeviceGroup {
                filter: None,
                id: Uuid::new_v4(),
                group_id: GroupSlug::parse("grp-test").expect("valid"),
                name: GroupName::parse("Test").expect("valid"),
                description: None,
                member_count: members.len() as u64,
                created_at: now,
                updated_at: now,
                created_by: Actor::parse("a").expect("valid"),
                updated_by: Actor::parse("a").expect("valid"),
                parent_id: None,
            },
            members,
            windows,
        }
    }

    #[test]
    fn each_member_is_judged_by_its_latest_reading_and_no_reading_is_normal() {
        let d = detail(
            vec![
                member("a", "s1", Some(10.0), &[]),
                member("b", "s1", Some(35.0), &[]),
                member("c", "s1", Some(45.0), &[]),
                member("d", "s1", None, &[]),
            ],
            Vec::new(),
        );
        let alerts: Vec<AlertStatus> = d.assess(at(0)).iter().map(|s| s.alert).collect();
        assert_eq!(
            alerts,
            [
                AlertStatus::Normal,
                AlertStatus::Warning,
                AlertStatus::Critical,
                AlertStatus::Normal
            ]
        );
        let summary = d.summary(at(0));
        assert_eq!(
            (summary.normal, summary.warning, summary.critical),
            (2, 1, 1)
        );
        assert_eq!(
            summary.total(),
            4,
            "normal + warning + critical is the device count"
        );
    }

    #[test]
    fn patches_replace_the_state_and_alerts_of_the_members_they_name_and_no_others() {
        let (a, b) = (
            member("a", "s1", Some(10.0), &[]),
            member("b", "s1", Some(35.0), &[]),
        );
        let stale_after = crate::StaleAfter::from_secs(60).expect("valid");
        let mut c = member("c", "s1", Some(10.0), &[]);
        c.device.spec.stale_after = Some(stale_after);
        let (a_id, c_id) = (a.device.id, c.device.id);
        let d = detail(vec![a, b, c], Vec::new());
        let critical = DeviceState::default()
            .after_reading(
                &d.members[0].device.spec.thresholds,
                ReadingPoint {
                    timestamp: at(0),
                    value: 45.0,
                },
            )
            .expect("first reading");
        let patches: MemberPatches = [
            (
                a_id,
                MemberPatch {
                    state: critical,
                    alerts: MemberAlerts {
                        open: true,
                        acknowledged: true,
                    },
                },
            ),
            // Not a member: ignored.
            (
                Uuid::new_v4(),
                MemberPatch {
                    state: critical,
                    alerts: MemberAlerts::default(),
                },
            ),
        ]
        .into_iter()
        .collect();
        let before = d.summary(at(0));
        let after = d.summary_patched(at(0), &patches);
        assert_eq!((before.normal, before.warning, before.critical), (2, 1, 0));
        assert_eq!((after.normal, after.warning, after.critical), (1, 1, 1));
        assert_eq!((after.open_alerts, after.acknowledged), (1, 1));
        assert_eq!(after.total(), 3);
        // A patch's newer reading moves when the member turns stale.
        let later = DeviceState {
            last_reading: Some(ReadingPoint {
                timestamp: at(30),
                value: 10.0,
            }),
            ..d.members[2].device.state
        };
        let moved: MemberPatches = [(
            c_id,
            MemberPatch {
                state: later,
                alerts: MemberAlerts::default(),
            },
        )]
        .into_iter()
        .collect();
        let (kept, patched) = (d.next_change(at(0)), d.next_change_patched(at(0), &moved));
        assert!(patched > kept, "{kept:?} then {patched:?}");
        assert_eq!(d.summary_patched(at(20), &moved).stale, 0);
        assert_eq!(d.summary(at(20)).stale, 1);
    }

    #[test]
    fn a_member_is_in_maintenance_only_while_an_active_window_covers_it() {
        let members = vec![
            member("at-site", "s1", Some(45.0), &[]),
            member("elsewhere", "s2", Some(45.0), &[]),
            member("by-group", "s3", Some(10.0), &["grp-roof"]),
        ];
        let windows = vec![
            window(-10, Some(10), Some(&["s1"]), None),
            window(-10, None, Some(&["s3"]), Some(&["grp-roof"])),
            // Not yet started, and already ended: they cover nobody now.
            window(5, None, None, None),
            window(-20, Some(-10), None, None),
        ];
        let d = detail(members, windows);
        let muted: Vec<bool> = d.assess(at(0)).iter().map(|s| s.in_maintenance).collect();
        assert_eq!(muted, [true, false, true]);
        let summary = d.summary(at(0));
        assert_eq!(
            (summary.in_maintenance, summary.suppressed, summary.critical),
            (2, 1, 2),
            "maintenance is counted apart and mutes only the alerts it covers"
        );
        // Once the first window has ended, and the future one started (it covers every site).
        let later: Vec<bool> = d.assess(at(11)).iter().map(|s| s.in_maintenance).collect();
        assert_eq!(later, [true, true, true]);
    }

    #[test]
    fn time_alone_changes_the_detail_when_the_next_window_starts_or_ends() {
        let d = detail(
            vec![member("a", "s1", None, &[])],
            vec![
                window(-10, Some(10), None, None),
                window(5, None, None, None),
            ],
        );
        let next = d.next_change(at(0)).expect("a change ahead");
        assert!(
            next > at(4) && next <= at(5),
            "the start in 5 minutes comes first"
        );
        assert_eq!(detail(Vec::new(), Vec::new()).next_change(at(0)), None);
    }

    /// Every member's state as kept now, `a` with a newer reading (and whatever status it made).
    fn states_of(d: &GroupDetail) -> MemberPatches {
        d.members
            .iter()
            .map(|m| {
                (
                    m.device.id,
                    MemberPatch {
                        state: m.device.state,
                        alerts: m.alerts,
                    },
                )
            })
            .collect()
    }

    #[test]
    fn kept_states_replace_only_the_members_states_and_alerts() {
        let mut d = detail(
            vec![
                member("a", "s1", Some(10.0), &[]),
                member("b", "s1", Some(35.0), &[]),
                member("c", "s1", None, &[]),
            ],
            Vec::new(),
        );
        let before = d.clone();
        let mut states = states_of(&d);
        assert!(!d.apply_states(&states), "nothing new");
        let a = d.members[0].device.id;
        let critical = d.members[0]
            .device
            .state
            .after_reading(
                &d.members[0].device.spec.thresholds,
                ReadingPoint {
                    timestamp: at(1),
                    value: 45.0,
                },
            )
            .expect("newer");
        let patch = MemberPatch {
            state: critical,
            alerts: MemberAlerts {
                open: true,
                acknowledged: false,
            },
        };
        states.insert(a, patch);
        // c is not named: the default state (no reading), which it had.
        states.remove(&d.members[2].device.id);
        assert!(d.apply_states(&states), "a changed");
        assert_eq!(
            (d.members[0].device.state, d.members[0].alerts),
            (patch.state, patch.alerts)
        );
        assert_eq!(d.members[0].device.spec, before.members[0].device.spec);
        assert_eq!(d.members[1], before.members[1]);
        assert_eq!(d.members[2], before.members[2]);
        assert_eq!((&d.group, &d.windows), (&before.group, &before.windows));
        assert_eq!(d.summary(at(1)).critical, 1);
        assert!(
            !d.clone().apply_states(&states),
            "nothing new the second time"
        );
    }

    #[test]
    fn a_patched_last_reading_moves_when_the_member_turns_stale() {
        let mut d = detail(vec![member("a", "s1", Some(10.0), &[])], Vec::new());
        d.members[0].device.spec.stale_after =
            Some(crate::StaleAfter::from_secs(120).expect("valid"));
        let first = d.next_change(at(0)).expect("turns stale");
        assert_eq!(d.assess(at(3))[0].freshness, crate::Freshness::Stale);
        let later = ReadingPoint {
            timestamp: at(2),
            value: 11.0,
        };
        let mut states = states_of(&d);
        states
            .get_mut(&d.members[0].device.id)
            .expect("a member")
            .state
            .last_reading = Some(later);
        d.apply_states(&states);
        let next = d.next_change(at(0)).expect("turns stale");
        assert!(next > first, "{next:?} after {first:?}");
        assert_eq!(
            d.assess(at(3))[0].freshness,
            crate::Freshness::Fresh,
            "fresh by the patched reading"
        );
    }
}
