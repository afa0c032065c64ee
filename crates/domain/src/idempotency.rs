//! Idempotent creates: the key a client sends so that a retry answers the first answer.

use thiserror::Error;

/// The longest `Idempotency-Key` accepted.
pub const IDEMPOTENCY_KEY_MAX: usize = 255;

/// How long a key answers its first answer: a retry after that is a new request.
pub const IDEMPOTENCY_TTL: std::time::Duration = std::time::Duration::from_secs(24 * 60 * 60);

/// How long a request holds a key it has claimed and not yet answered. Past it (the instance
/// died, or its deadline dropped the request between the create and storing the answer) the key
/// may be claimed again. Longer than any request may run (the request timeout caps it).
pub const IDEMPOTENCY_LEASE: std::time::Duration = std::time::Duration::from_secs(120);

/// A client's `Idempotency-Key`: 1 to [`IDEMPOTENCY_KEY_MAX`] printable ASCII characters (space
/// to `~`), as sent (no trimming: two keys that differ by a space are two keys).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct IdempotencyKey(String);

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("must be 1 to {IDEMPOTENCY_KEY_MAX} printable ASCII characters")]
pub struct IdempotencyKeyError;

impl IdempotencyKey {
    /// # Errors
    /// [`IdempotencyKeyError`] for an empty value, one longer than [`IDEMPOTENCY_KEY_MAX`], or
    /// one with a character outside printable ASCII.
    pub fn parse(value: &str) -> Result<Self, IdempotencyKeyError> {
        let printable = value.bytes().all(|b| (b' '..=b'~').contains(&b));
        if value.is_empty() || value.len() > IDEMPOTENCY_KEY_MAX || !printable {
            return Err(IdempotencyKeyError);
        }
        Ok(Self(value.to_owned()))
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
    fn a_key_is_one_to_255_printable_ascii_characters() {
        assert!(IdempotencyKey::parse("a").is_ok());
        assert!(IdempotencyKey::parse("order 42 ~!").is_ok());
        assert!(IdempotencyKey::parse(&"k".repeat(IDEMPOTENCY_KEY_MAX)).is_ok());
        assert!(IdempotencyKey::parse("").is_err());
        assert!(IdempotencyKey::parse(&"k".repeat(IDEMPOTENCY_KEY_MAX + 1)).is_err());
        assert!(IdempotencyKey::parse("tab\there").is_err());
        assert!(IdempotencyKey::parse("del\u{7f}").is_err());
        assert!(IdempotencyKey::parse("caf\u{e9}").is_err());
    }
}
