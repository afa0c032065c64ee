//! Backing off from an unreachable server: while connecting fails, at most one attempt per
//! interval goes through; every other request fails at once with `Unavailable`, so a dead
//! database is not hammered by a connection attempt per request.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Time between connection attempts while the server is unreachable.
pub(crate) const CONNECT_RETRY_INTERVAL: Duration = Duration::from_millis(100);

#[derive(Debug, Default)]
struct State {
    /// Set after a failed attempt, cleared after a successful one.
    next_attempt: Option<Instant>,
}

#[derive(Debug, Default)]
pub(crate) struct ConnectBackoff {
    state: Mutex<State>,
}

impl ConnectBackoff {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is a single Option: a panic cannot leave it half-written.
        self.state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether this request may try to get a connection now. While failing, the first caller
    /// after each interval is let through (and the next slot moves on); the others are not.
    pub(crate) fn may_attempt(&self, now: Instant) -> bool {
        let mut state = self.state();
        match state.next_attempt {
            None => true,
            Some(at) if now >= at => {
                state.next_attempt = Some(now + CONNECT_RETRY_INTERVAL);
                true
            }
            Some(_) => false,
        }
    }

    pub(crate) fn succeeded(&self) {
        self.state().next_attempt = None;
    }

    pub(crate) fn failed(&self, now: Instant) {
        let mut state = self.state();
        let next = now + CONNECT_RETRY_INTERVAL;
        state.next_attempt = Some(state.next_attempt.map_or(next, |at| at.max(next)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn while_failing_one_attempt_per_interval_goes_through() {
        let backoff = ConnectBackoff::default();
        let t0 = Instant::now();
        assert!(backoff.may_attempt(t0), "a healthy store always attempts");
        backoff.failed(t0);
        assert!(!backoff.may_attempt(t0 + Duration::from_millis(50)));
        let t1 = t0 + CONNECT_RETRY_INTERVAL;
        assert!(
            backoff.may_attempt(t1),
            "the first caller after the interval probes"
        );
        assert!(!backoff.may_attempt(t1), "its peers do not");
        backoff.succeeded();
        assert!(
            backoff.may_attempt(t1),
            "after a success everyone attempts again"
        );
    }

    #[test]
    fn attempts_over_a_second_of_heavy_load_stay_near_ten() {
        let backoff = ConnectBackoff::default();
        let t0 = Instant::now();
        backoff.failed(t0);
        let mut attempts = 0;
        // 10,000 requests spread over one second, every attempt failing.
        for i in 0..10_000u64 {
            let now = t0 + Duration::from_micros(i * 100);
            if backoff.may_attempt(now) {
                attempts += 1;
                backoff.failed(now);
            }
        }
        assert!(attempts <= 10, "{attempts} attempts in a second");
    }
}
