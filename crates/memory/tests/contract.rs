//! The embedded store keeps the store contract: one test per story, each on a new store.

ports::contract_tests!(store: store_memory::MemoryStore::new());
