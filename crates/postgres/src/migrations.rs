//! The embedded migrations (`migrations/` at the workspace root) and how they are applied.

use anyhow::Context as _;
use tokio_postgres::NoTls;

mod embedded {
    refinery::embed_migrations!("../../migrations");
}

/// Key of the advisory lock that serialises migrations between instances starting together.
const MIGRATION_LOCK_KEY: i64 = 0x0069_6f74_5f61_7069; // "iot_api"

/// Applies the embedded migrations, one instance at a time.
///
/// # Errors
/// When the server cannot be reached or a migration fails.
pub async fn migrate(config: &tokio_postgres::Config) -> anyhow::Result<()> {
    let (mut client, connection) = config
        .connect(NoTls)
        .await
        .context("failed to connect to PostgreSQL to apply migrations")?;
    let driver = tokio::spawn(connection);
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK_KEY])
        .await
        .context("failed to take the migration lock")?;
    let report = embedded::migrations::runner()
        .set_grouped(true)
        .run_async(&mut client)
        .await
        .context("failed to apply migrations");
    // Closing the session releases the advisory lock.
    drop(client);
    driver.abort();
    let report = report?;
    for applied in report.applied_migrations() {
        tracing::info!(migration = %applied, "applied migration");
    }
    Ok(())
}

/// A fingerprint of the embedded migrations, to name test templates after the schema they hold.
#[must_use]
pub fn schema_fingerprint() -> u64 {
    use std::hash::{Hash as _, Hasher as _};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    for migration in embedded::migrations::runner().get_migrations() {
        migration.version().hash(&mut hasher);
        migration.checksum().hash(&mut hasher);
    }
    hasher.finish()
}
