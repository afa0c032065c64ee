//! Whether this instance wants new traffic. Shutdown begins by draining: `/health/ready`
//! answers 503 so that load balancers stop sending, while every request that still comes is
//! served as usual.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Shared by the signal handler and every HTTP worker; clones see the same state.
#[derive(Clone, Debug, Default)]
pub struct Readiness {
    draining: Arc<AtomicBool>,
}

impl Readiness {
    /// From now on `/health/ready` answers 503; nothing else changes.
    pub fn start_draining(&self) {
        self.draining.store(true, Ordering::Relaxed);
    }

    #[must_use]
    pub fn is_draining(&self) -> bool {
        self.draining.load(Ordering::Relaxed)
    }
}
