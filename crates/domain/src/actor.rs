//! Who makes a change: the subject (`sub`) of the caller's token, recorded on every write.

use thiserror::Error;

/// Longest subject recorded.
pub const ACTOR_MAX: usize = 256;

/// The subject that created or last changed a row.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Actor(String);

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("a subject must be from 1 to {ACTOR_MAX} printable characters")]
pub struct ActorError;

impl Actor {
    /// # Errors
    /// [`ActorError`] when blank, over [`ACTOR_MAX`] characters, or holding control characters.
    pub fn parse(value: &str) -> Result<Self, ActorError> {
        crate::text::label(value, ACTOR_MAX)
            .map(Self)
            .map_err(|_| ActorError)
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subject_is_printable_and_bounded() {
        assert_eq!(
            Actor::parse("alice@example.com").unwrap().as_str(),
            "alice@example.com"
        );
        assert!(Actor::parse("").is_err());
        assert!(Actor::parse("a\nb").is_err());
        assert!(Actor::parse(&"a".repeat(ACTOR_MAX + 1)).is_err());
    }
}
