//! The Postgres store keeps the store contract: one test per story, each on its own throwaway
//! database (dropped after the store).

ports::contract_tests!(store_with_guard: {
    let db = test_db::TestDatabase::create().await;
    let store = db.store().await;
    (db, store)
});
