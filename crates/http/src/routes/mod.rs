pub mod customer_groups;
pub mod customer_windows;
pub mod meta;
