//! What a request's COMMIT became, for the request deadline to answer honestly.
//!
//! A deadline that drops a request whose COMMIT is on its way cannot say "not done, retry": the
//! write may be stored. So the HTTP layer runs each request [`watched`], stores report their
//! COMMITs with [`committing`], and the deadline reads the [`CommitWatch`]. The watch travels in
//! a thread-local set only while the request's future is polled (a task-local with std alone),
//! so this crate stays free of any runtime.

use std::cell::RefCell;
use std::future::Future;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

/// What a request's COMMITs became so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommitState {
    /// No COMMIT sent: nothing the request wrote can be stored.
    NotSent,
    /// A COMMIT is on its way and its answer not in yet.
    InFlight,
    /// Every COMMIT sent was answered, success or failure: the response tells which.
    Answered,
    /// A COMMIT's answer was lost (the connection broke): it may have been applied.
    Unknown,
}

impl CommitState {
    const fn from_u8(value: u8) -> Self {
        match value {
            0 => Self::NotSent,
            1 => Self::InFlight,
            2 => Self::Answered,
            _ => Self::Unknown,
        }
    }
}

/// One request's [`CommitState`], shared between the request and the COMMITs it sends.
#[derive(Debug, Clone, Default)]
pub struct CommitWatch(Arc<AtomicU8>);

impl CommitWatch {
    #[must_use]
    pub fn state(&self) -> CommitState {
        CommitState::from_u8(self.0.load(Ordering::Acquire))
    }

    /// Moves to `next`, except out of `Unknown`: once an answer is lost, it stays lost.
    fn set(&self, next: CommitState) {
        let _ = self
            .0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |now| {
                (CommitState::from_u8(now) != CommitState::Unknown).then_some(next as u8)
            });
    }
}

thread_local! {
    static CURRENT: RefCell<Option<CommitWatch>> = const { RefCell::new(None) };
}

/// Runs `work` with `watch` as the watch of every [`committing`] called while it is polled.
pub async fn watched<F: Future>(watch: &CommitWatch, work: F) -> F::Output {
    let mut work = std::pin::pin!(work);
    std::future::poll_fn(|cx| {
        let _scope = Scope::enter(watch.clone());
        work.as_mut().poll(cx)
    })
    .await
}

/// Sets the current watch for one poll, putting back the previous one after (even on a panic).
struct Scope(Option<CommitWatch>);

impl Scope {
    fn enter(watch: CommitWatch) -> Self {
        Self(CURRENT.with(|current| current.replace(Some(watch))))
    }
}

impl Drop for Scope {
    fn drop(&mut self) {
        let previous = self.0.take();
        CURRENT.with(|current| *current.borrow_mut() = previous);
    }
}

/// Reports a COMMIT about to be sent, to the watch of the request being polled (if any). Call
/// it from the request's future, before sending; then say how the COMMIT ended with
/// [`Committing::answered`] or [`Committing::lost`]. Dropped without either, the answer counts
/// as lost.
#[must_use = "say how the COMMIT ended"]
pub fn committing() -> Committing {
    let watch = CURRENT.with(|current| current.borrow().clone());
    if let Some(watch) = &watch {
        watch.set(CommitState::InFlight);
    }
    Committing(watch)
}

/// A COMMIT on its way; see [`committing`].
#[derive(Debug)]
pub struct Committing(Option<CommitWatch>);

impl Committing {
    /// The server answered the COMMIT (committed or refused).
    pub fn answered(mut self) {
        if let Some(watch) = self.0.take() {
            watch.set(CommitState::Answered);
        }
    }

    /// The COMMIT's answer was lost: it may or may not have been applied.
    pub fn lost(self) {
        drop(self);
    }
}

impl Drop for Committing {
    fn drop(&mut self) {
        if let Some(watch) = self.0.take() {
            watch.set(CommitState::Unknown);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn poll_once<F: Future>(work: F) -> std::task::Poll<F::Output> {
        let mut work = std::pin::pin!(work);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        work.as_mut().poll(&mut cx)
    }

    #[test]
    fn a_commit_reported_while_watched_moves_the_watch() {
        let watch = CommitWatch::default();
        assert_eq!(watch.state(), CommitState::NotSent);
        let commit = poll_once(watched(&watch, async { committing() }));
        let std::task::Poll::Ready(commit) = commit else {
            panic!("ready at once");
        };
        assert_eq!(watch.state(), CommitState::InFlight);
        commit.answered();
        assert_eq!(watch.state(), CommitState::Answered);
    }

    #[test]
    fn a_lost_answer_stays_lost() {
        let watch = CommitWatch::default();
        let _ = poll_once(watched(&watch, async {
            committing().lost();
            committing().answered();
        }));
        assert_eq!(watch.state(), CommitState::Unknown);
    }

    #[test]
    fn outside_a_watched_request_nothing_is_reported() {
        let watch = CommitWatch::default();
        let _ = poll_once(watched(&watch, async {}));
        committing().answered();
        assert_eq!(watch.state(), CommitState::NotSent);
    }
}
