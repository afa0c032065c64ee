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

/// A label key: 1 to 63 of `a-z 0-9 . _ - /` (the domain's `valid_key`).
pub const LABEL_KEY: &str = r"^[a-z0-9._/-]+$";
/// A label value: no control characters (the domain's `valid_value`).
pub const LABEL_VALUE: &str = r"^[^\u0000-\u001F\u007F-\u009F]*$";

/// A set of labels as the domain takes it: at most 32 pairs, each key and value valid; null
/// too when `nullable`, and at least `min_pairs`.
fn label_map(
    nullable: bool,
    min_pairs: Option<usize>,
    description: &str,
    example: serde_json::Value,
) -> Object {
    let key = ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(domain::label::LABEL_KEY_MAX))
        .pattern(Some(LABEL_KEY));
    let value = ObjectBuilder::new()
        .schema_type(Type::String)
        .max_length(Some(domain::label::LABEL_VALUE_MAX))
        .pattern(Some(LABEL_VALUE));
    let schema_type = if nullable {
        SchemaType::from_iter([Type::Object, Type::Null])
    } else {
        SchemaType::new(Type::Object)
    };
    ObjectBuilder::new()
        .schema_type(schema_type)
        .property_names(Some(key))
        .additional_properties(Some(value))
        .min_properties(min_pairs)
        .max_properties(Some(domain::label::LABELS_MAX))
        .description(Some(description))
        .examples([example])
        .build()
}

/// A device's `labels` on create.
#[must_use]
pub fn device_labels() -> Object {
    label_map(
        false,
        None,
        "Free labels: at most 32 pairs, keys of 1 to 63 characters of `a-z 0-9 . _ - /`, string \
         values of at most 128 characters without control characters. Default `{}`.",
        serde_json::json!({"floor": "3", "team/owner": "ops"}),
    )
}

/// A device's `labels` on update.
#[must_use]
pub fn device_labels_update() -> Object {
    label_map(
        false,
        None,
        "The new labels, replacing the old ones whole (`{}` removes them all); same limits as on \
         create.",
        serde_json::json!({"floor": "4"}),
    )
}

/// A dynamic group's `filter.labels`.
#[must_use]
pub fn filter_labels() -> Object {
    label_map(
        true,
        Some(1),
        "Labels the device carries, every one (1 to 32 pairs, as device labels).",
        serde_json::json!({"floor": "3"}),
    )
}

/// A window's `labels` on create.
#[must_use]
pub fn window_labels() -> Object {
    label_map(
        true,
        Some(1),
        "Labels a device must all carry to be covered (1 to 32 pairs, as device labels); null \
         does not narrow.",
        serde_json::json!({"zone": "north"}),
    )
}

/// A window's `labels` on update.
#[must_use]
pub fn window_labels_update() -> Object {
    label_map(
        true,
        Some(1),
        "New labels a device must all carry (1 to 32 pairs, as device labels), or null to stop \
         narrowing by label.",
        serde_json::json!({"zone": "south"}),
    )
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

#[cfg(test)]
mod tests {
    use super::{LABEL_KEY, LABEL_VALUE};
    use domain::label::{valid_key, valid_value, LABEL_KEY_MAX, LABEL_VALUE_MAX};

    /// The spec's patterns and lengths, as a client applies them.
    fn by_spec(pattern: &str, max: usize, text: &str) -> bool {
        let regex = regex::Regex::new(pattern).expect("the spec's pattern compiles");
        regex.is_match(text) && text.chars().count() <= max
    }

    #[test]
    fn label_patterns_say_what_the_domain_checks() {
        let keys = [
            "floor",
            "team/owner",
            "a.b_c-d",
            "0",
            "",
            "Floor",
            "flo or",
            "é",
            "a:b",
            "a\n",
        ];
        let long_key = "k".repeat(LABEL_KEY_MAX + 1);
        for key in keys.iter().copied().chain([long_key.as_str()]) {
            let spec = !key.is_empty() && by_spec(LABEL_KEY, LABEL_KEY_MAX, key);
            assert_eq!(spec, valid_key(key), "key {key:?}");
        }
        let values = [
            "",
            "3",
            "north wing",
            "été ☃",
            "a\tb",
            "a\u{7f}",
            "a\u{85}b",
            "a\u{a0}b",
            "\u{9f}",
        ];
        let long_value = "v".repeat(LABEL_VALUE_MAX + 1);
        let longest = "é".repeat(LABEL_VALUE_MAX);
        for value in values
            .iter()
            .copied()
            .chain([long_value.as_str(), longest.as_str()])
        {
            let spec = by_spec(LABEL_VALUE, LABEL_VALUE_MAX, value);
            assert_eq!(spec, valid_value(value), "value {value:?}");
        }
    }
}
