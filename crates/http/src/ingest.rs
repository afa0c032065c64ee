//! What readings the service admits, set at start-up. Apart from the crate root so that the
//! handlers that read it do not import the root that registers them.

/// What readings the service admits, beyond their own validity.
#[derive(Debug, Clone, Copy, Default)]
pub struct IngestSettings {
    /// How far ahead of the server's clock a reading may be stamped.
    pub max_future_skew: domain::MaxFutureSkew,
}
