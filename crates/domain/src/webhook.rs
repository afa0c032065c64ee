//! Webhooks (issue 15): which events a subscription may name, the bounds of a subscription, the
//! addresses a delivery may never reach, and the retry schedule of a failed delivery.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use crate::Timestamp;

/// The event types a subscription may name: the live stream's.
pub const EVENT_TYPES: [&str; 11] = [
    "alert.opened",
    "alert.escalated",
    "alert.deescalated",
    "alert.resolved",
    "alert.suppressed",
    "alert.unsuppressed",
    "alert.acknowledged",
    "alert.unacknowledged",
    "window.started",
    "window.ended",
    "device.state",
];

/// The type of the delivery `POST /api/webhooks/{id}/test` sends.
pub const TEST_EVENT_TYPE: &str = "webhook.test";

/// Whether `name` is one of [`EVENT_TYPES`].
#[must_use]
pub fn is_event_type(name: &str) -> bool {
    EVENT_TYPES.contains(&name)
}

/// The longest target URL accepted, in bytes.
pub const URL_MAX: usize = 2048;
/// The longest description accepted, in characters.
pub const DESCRIPTION_MAX: usize = 500;
/// Subscriptions a tenant may keep.
pub const WEBHOOKS_PER_TENANT_MAX: usize = 20;
/// Deliveries one page of `GET /api/webhooks/{id}/deliveries` shows at most, and by default.
pub const DELIVERIES_PAGE_MAX: u32 = 100;
pub const DELIVERIES_PAGE_DEFAULT: u32 = 20;
/// Attempts a delivery keeps (the latest ones): a delivery retried for days stays bounded.
pub const ATTEMPTS_KEPT: usize = 20;
/// How long finished (delivered or failed) deliveries are kept for the deliveries list.
pub const FINISHED_KEPT: Duration = Duration::from_secs(7 * 24 * 3600);

/// Whether a delivery may never be sent to `ip` (unless private targets are allowed): anything
/// but a public unicast address. IPv4 embedded in IPv6 (mapped, NAT64, 6to4) is judged as IPv4.
#[must_use]
pub fn is_forbidden_address(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => forbidden_v6(v6),
    }
}

fn forbidden_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    a == 0 // "this network", 0.0.0.0
        || a == 10 // RFC 1918
        || a == 127 // loopback
        || (a == 100 && (64..128).contains(&b)) // CGNAT, RFC 6598
        || (a == 169 && b == 254) // link-local, cloud metadata 169.254.169.254
        || (a == 172 && (16..32).contains(&b)) // RFC 1918
        || (a == 192 && b == 168) // RFC 1918
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 192 && b == 0 && c == 2) // documentation
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || (a == 198 && b == 51 && c == 100) // documentation
        || (a == 203 && b == 0 && c == 113) // documentation
        || a >= 224 // multicast, reserved, broadcast
}

fn forbidden_v6(ip: Ipv6Addr) -> bool {
    let s = ip.segments();
    if let Some(v4) = ip.to_ipv4_mapped() {
        return forbidden_v4(v4);
    }
    let embedded = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    if s[0] == 0x0064 && s[1] == 0xff9b && s[2..6] == [0, 0, 0, 0] {
        return forbidden_v4(embedded(s[6], s[7])); // NAT64
    }
    if s[0] == 0x2002 {
        return forbidden_v4(embedded(s[1], s[2])); // 6to4
    }
    ip.is_unspecified()
        || ip.is_loopback()
        || s[..6] == [0, 0, 0, 0, 0, 0] // IPv4-compatible (deprecated)
        || (s[0] & 0xfe00) == 0xfc00 // unique local
        || (s[0] & 0xffc0) == 0xfe80 // link-local
        || (s[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
        || (s[0] & 0xff00) == 0xff00 // multicast
        || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
        || (s[0] == 0x0100 && s[1..4] == [0, 0, 0]) // discard
}

/// When a failed delivery is tried again, and when it and its subscription give up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The wait after the 1st, 2nd, … failure; the last one repeats.
    pub schedule: Vec<Duration>,
    /// A delivery is failed for good once its next try would come this long after its first
    /// failure.
    pub retry_for: Duration,
    /// A subscription whose deliveries have failed (with no success) for this long is disabled.
    pub disable_after: Duration,
}

impl Default for RetryPolicy {
    /// The schedule: 5 s, 30 s, 2 min, 10 min, 1 h, then every 3 h (each ±20 %), for
    /// 3 days; a subscription failing for 3 days is disabled.
    fn default() -> Self {
        Self {
            schedule: [5, 30, 120, 600, 3600, 3 * 3600]
                .into_iter()
                .map(Duration::from_secs)
                .collect(),
            retry_for: Duration::from_secs(3 * 24 * 3600),
            disable_after: Duration::from_secs(3 * 24 * 3600),
        }
    }
}

/// Jitter spread: a wait is drawn from ±20 % of the schedule's.
const JITTER: f64 = 0.2;

impl RetryPolicy {
    /// The wait after the `failures`-th failure (1-based), jittered by `unit` in `[0, 1)` (a
    /// random draw: deliveries failing together do not come back together).
    #[must_use]
    pub fn delay(&self, failures: u32, unit: f64) -> Duration {
        let index = usize::try_from(failures.max(1) - 1).unwrap_or(usize::MAX);
        let base = self
            .schedule
            .get(index)
            .or(self.schedule.last())
            .copied()
            .unwrap_or(Duration::from_secs(5));
        let factor = 1.0 + JITTER * (2.0 * unit.clamp(0.0, 1.0) - 1.0);
        base.mul_f64(factor)
    }

    /// The next try of a delivery that failed at `now` for the `failures`-th time, its first
    /// failure at `first_failure`; `None` when it is failed for good.
    #[must_use]
    pub fn next_attempt(
        &self,
        first_failure: Timestamp,
        now: Timestamp,
        failures: u32,
        unit: f64,
    ) -> Option<Timestamp> {
        let wait = time::Duration::try_from(self.delay(failures, unit)).ok()?;
        let next = now.checked_add(wait)?;
        let limit = time::Duration::try_from(self.retry_for).ok()?;
        (next.get() - first_failure.get() <= limit).then_some(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn forbidden(s: &str) -> bool {
        is_forbidden_address(s.parse().expect("an address"))
    }

    #[test]
    fn private_loopback_link_local_and_metadata_addresses_are_forbidden() {
        for ip in [
            "127.0.0.1",
            "127.8.9.10",
            "10.0.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "::",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a00:1",
            "2002:a00:1::",
            "ff02::1",
        ] {
            assert!(forbidden(ip), "{ip}");
        }
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(!forbidden(ip), "{ip}");
        }
    }

    #[test]
    fn retries_grow_with_jitter_and_give_up_after_the_window() {
        let policy = RetryPolicy::default();
        assert!(
            policy.delay(1, 1.0) <= Duration::from_secs(10),
            "first within 10 s"
        );
        assert!(policy.delay(1, 0.0) >= Duration::from_secs(4));
        assert_eq!(policy.delay(2, 0.5), Duration::from_secs(30));
        assert_eq!(policy.delay(6, 0.5), Duration::from_secs(3 * 3600));
        assert_eq!(policy.delay(40, 0.5), Duration::from_secs(3 * 3600));
        let first = Timestamp::now();
        let day = time::Duration::hours(24);
        let later = first.checked_add(day).expect("in range");
        assert!(
            policy.next_attempt(first, later, 10, 0.5).is_some(),
            "still retrying after 24 h"
        );
        let end = first.checked_add(day * 3).expect("in range");
        assert_eq!(policy.next_attempt(first, end, 30, 0.5), None);
    }
}
