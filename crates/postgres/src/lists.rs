//! List pages: the name filter every list takes, and a page fetched with its total count.

use domain::TenantId;
use ports::StoreError;

use crate::error::query_error;
use crate::pool::PgStore;

/// The SQL condition of a list's name filter (`$2`, NULL for none) on `column`: a substring,
/// ignoring the case of ASCII letters only, as `ListQuery::matches` does.
pub(crate) fn name_filter(column: &str) -> String {
    format!("($2::text IS NULL OR strpos(lower({column} COLLATE \"C\"), lower($2::text COLLATE \"C\")) > 0)")
}

/// Runs a list's page (`$1` tenant, `$2` filter, `$3` limit, `$4` offset) and its count (`$1`,
/// `$2`) in one read transaction: one round trip.
pub(crate) async fn fetch_page(
    store: &PgStore,
    page_sql: &str,
    count_sql: &str,
    tenant: &TenantId,
    query: &domain::ListQuery,
) -> Result<(Vec<tokio_postgres::Row>, u64), StoreError> {
    let tx = store.reader(tenant).await?;
    let page = tx.prepare(page_sql).await.map_err(query_error)?;
    let count = tx.prepare(count_sql).await.map_err(query_error)?;
    let tenant = tenant.as_str();
    let filter = query.name_contains();
    let limit = query.limit().map(i64::from);
    let offset = i64::from(query.offset());
    let page_params: [&(dyn tokio_postgres::types::ToSql + Sync); 4] =
        [&tenant, &filter, &limit, &offset];
    let (rows, total) = tx
        .run(|client| async {
            tokio::try_join!(
                biased;
                client.query(&page, &page_params),
                client.query_one(&count, &page_params[..2])
            )
        })
        .await
        .map_err(query_error)?;
    let total: i64 = total.get(0);
    Ok((rows, u64::try_from(total).unwrap_or_default()))
}
