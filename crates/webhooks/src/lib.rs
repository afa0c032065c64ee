//! Webhook deliveries (issue 15), as the Standard Webhooks specification describes them: the
//! signature ([`sign`]), the guard that keeps deliveries off private networks ([`target`]), the
//! sender ([`send`]) and the worker that drains the outbox ([`worker`]).
//!
//! Layer rule: an adapter like the HTTP one: it uses the ports (the outbox, the event payloads)
//! and knows nothing of the stores behind them.
#![forbid(unsafe_code)]

pub mod send;
pub mod sign;
pub mod target;
pub mod worker;

/// A new signing secret: `whsec_` + base64 of 32 random bytes (the specification's libraries
/// take the part after the prefix as base64 of the key).
///
/// # Errors
/// When the OS's random source fails.
pub fn new_secret() -> anyhow::Result<String> {
    use base64::Engine as _;
    let mut key = [0u8; 32];
    getrandom::fill(&mut key).map_err(|e| anyhow::anyhow!("no random bytes: {e}"))?;
    Ok(format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(key)
    ))
}

/// The body of a delivery, Standard Webhooks' recommended shape: `{"type", "timestamp" (RFC
/// 3339), "data"}`.
#[must_use]
pub fn payload(event_type: &str, at: domain::Timestamp, data: serde_json::Value) -> String {
    let timestamp = at
        .get()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    serde_json::json!({"type": event_type, "timestamp": timestamp, "data": data}).to_string()
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;

    #[test]
    fn secrets_are_prefixed_base64_of_32_random_bytes() {
        let a = super::new_secret().expect("random");
        let b = super::new_secret().expect("random");
        assert_ne!(a, b);
        let key = base64::engine::general_purpose::STANDARD
            .decode(a.strip_prefix("whsec_").expect("prefixed"))
            .expect("base64");
        assert_eq!(key.len(), 32);
    }
}
