//! The Postgres store keeps the store contract: one test per story, each on its own throwaway
//! database (dropped after the store).

ports::contract_tests!(store_with_guard: {
    let db = test_db::TestDatabase::create().await;
    let store = db.store().await;
    (db, store)
});

/// Kept views rely on it; the embedded store keeps no revisions, so this story is not in the
/// common list.
#[tokio::test]
async fn revisions_move_with_every_committed_write_and_only_then() {
    let db = test_db::TestDatabase::create().await;
    let store = db.store().await;
    ports::contract::revisions_move_with_every_committed_write_and_only_then(&store).await;
}
