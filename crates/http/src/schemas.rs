//! Hand-built schemas for fields whose rules the derive cannot state: lists whose items carry
//! their own bounds or patterns. They say exactly what the domain enforces, so generated clients
//! and spec-driven fuzzers learn the same rules the service applies.

use utoipa::openapi::schema::{
    ArrayBuilder, KnownFormat, ObjectBuilder, OneOfBuilder, SchemaFormat, SchemaType, Type,
};
use utoipa::openapi::{Array, Object};

/// A label: no control characters and at least one visible character (the domain's rule).
pub const LABEL: &str = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$";
/// A slug: URL-safe characters, and not `.` or `..` (which URL normalisation would fold away).
pub const SLUG: &str =
    r"^([A-Za-z0-9_~-][A-Za-z0-9._~-]*|\.[A-Za-z0-9_~-][A-Za-z0-9._~-]*|\.\.[A-Za-z0-9._~-]+)$";

fn nullable_array(items: Object, min_items: Option<usize>, max_items: usize) -> Array {
    ArrayBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Array, Type::Null]))
        .items(items)
        .min_items(min_items)
        .max_items(Some(max_items))
        .build()
}

fn label(max: usize) -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(max))
        .pattern(Some(LABEL))
        .build()
}

/// `site_ids`, `device_types`: null, or up to 1,000 labels.
#[must_use]
pub fn label_list() -> Array {
    let mut list = nullable_array(
        label(domain::window::SCOPE_LABEL_MAX),
        None,
        domain::window::SCOPE_LIST_MAX,
    );
    list.description = Some(format!(
        "Null covers all; else at most {} entries.",
        domain::window::SCOPE_LIST_MAX
    ));
    list
}

/// `group_ids`: null, or up to 1,000 group slugs.
#[must_use]
pub fn slug_list() -> Array {
    let slug = ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(domain::group::SLUG_MAX))
        .pattern(Some(SLUG))
        .build();
    let mut list = nullable_array(slug, None, domain::window::SCOPE_LIST_MAX);
    list.description = Some(format!(
        "Null does not narrow; else at most {} group slugs.",
        domain::window::SCOPE_LIST_MAX
    ));
    list
}

/// `recurring.dow`: absent or null for every day, else 0 (Sunday) to 6, at least one.
#[must_use]
pub fn days_of_week() -> Array {
    let day = ObjectBuilder::new()
        .schema_type(Type::Integer)
        .minimum(Some(0))
        .maximum(Some(6))
        .build();
    nullable_array(day, Some(1), 7_000)
}

/// `recurring.days_of_month`: 1 to 31, or -1 to -31 from the month's end; at least one.
#[must_use]
pub fn days_of_month() -> Array {
    let range = |low: i32, high: i32| {
        ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(Some(low))
            .maximum(Some(high))
    };
    let day = OneOfBuilder::new()
        .item(range(1, 31))
        .item(range(-31, -1))
        .build();
    ArrayBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Array, Type::Null]))
        .items(utoipa::openapi::RefOr::T(utoipa::openapi::Schema::OneOf(
            day,
        )))
        .min_items(Some(1))
        .max_items(Some(31_000))
        .build()
}

fn uuid() -> Object {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid)))
        .build()
}

/// Device ids of the Group API: UUIDs (another string is 400 `GROUP_003`).
#[must_use]
pub fn device_ids() -> Array {
    nullable_array(uuid(), None, 100_000)
}

/// A new member list of the Group API (PUT): UUIDs, not null.
#[must_use]
pub fn member_ids() -> Array {
    ArrayBuilder::new()
        .items(uuid())
        .max_items(Some(100_000))
        .build()
}
