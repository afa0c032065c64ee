//! Tenants: every row and every query is scoped by one.

use thiserror::Error;

pub const TENANT_ID_MAX: usize = 128;

/// The tenant a caller acts for, taken from its token.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TenantId(String);

#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("tenant id must be from 1 to {TENANT_ID_MAX} printable characters")]
pub struct TenantIdError;

impl TenantId {
    /// # Errors
    /// [`TenantIdError`] when the value is blank, longer than [`TENANT_ID_MAX`] or holds control
    /// characters.
    pub fn parse(value: &str) -> Result<Self, TenantIdError> {
        crate::text::label(value, TENANT_ID_MAX)
            .map(Self)
            .map_err(|_| TenantIdError)
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for TenantId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tenant_id_must_be_printable_and_bounded() {
        assert!(TenantId::parse("acme").is_ok());
        assert!(TenantId::parse("").is_err());
        assert!(TenantId::parse("a\0").is_err());
        assert!(TenantId::parse(&"t".repeat(TENANT_ID_MAX + 1)).is_err());
    }
}
