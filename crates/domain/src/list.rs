//! Pages of a list: an optional name filter, then `offset` and `limit` over the sorted matches.

use thiserror::Error;

/// Most items one page may ask for.
pub const MAX_PAGE: u32 = 1_000;
/// Longest name filter.
pub const NAME_FILTER_MAX: usize = 128;

/// Which items of a list to return.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListQuery {
    name_contains: Option<String>,
    limit: Option<u32>,
    offset: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ListQueryError {
    #[error("must be from 1 to {MAX_PAGE}, got {0}")]
    Limit(i64),
    #[error("must be from 0 to 4294967295, got {0}")]
    Offset(i64),
    #[error("must be from 1 to {NAME_FILTER_MAX} characters without control characters")]
    Name,
}

impl ListQuery {
    /// Everything, in order.
    #[must_use]
    pub fn all() -> Self {
        Self::default()
    }

    /// # Errors
    /// [`ListQueryError`] for a limit outside 1..=1000, a negative offset, or a bad filter.
    pub fn new(
        name_contains: Option<&str>,
        limit: Option<i64>,
        offset: Option<i64>,
    ) -> Result<Self, ListQueryError> {
        let limit = limit
            .map(|l| {
                u32::try_from(l)
                    .ok()
                    .filter(|l| (1..=MAX_PAGE).contains(l))
                    .ok_or(ListQueryError::Limit(l))
            })
            .transpose()?;
        let offset = offset.map_or(Ok(0), |o| {
            u32::try_from(o).map_err(|_| ListQueryError::Offset(o))
        })?;
        let name_contains = name_contains
            .map(|n| {
                if n.is_empty()
                    || n.chars().count() > NAME_FILTER_MAX
                    || n.chars().any(char::is_control)
                {
                    Err(ListQueryError::Name)
                } else {
                    Ok(n.to_owned())
                }
            })
            .transpose()?;
        Ok(Self {
            name_contains,
            limit,
            offset,
        })
    }

    /// The filter, as given.
    #[must_use]
    pub fn name_contains(&self) -> Option<&str> {
        self.name_contains.as_deref()
    }

    #[must_use]
    pub fn limit(&self) -> Option<u32> {
        self.limit
    }

    #[must_use]
    pub fn offset(&self) -> u32 {
        self.offset
    }

    /// Whether `name` passes the filter: it contains the filter, ignoring the case of ASCII
    /// letters (as PostgreSQL's `lower()` does under the "C" collation, so both stores agree).
    #[must_use]
    pub fn matches(&self, name: &str) -> bool {
        self.name_contains.as_deref().is_none_or(|part| {
            name.to_ascii_lowercase()
                .contains(&part.to_ascii_lowercase())
        })
    }

    /// The page of `items` (already sorted) that this query selects, with the number of matches.
    #[must_use]
    pub fn page<T>(&self, items: Vec<T>, name: impl Fn(&T) -> &str) -> Page<T> {
        let matching: Vec<T> = items
            .into_iter()
            .filter(|item| self.matches(name(item)))
            .collect();
        let total = matching.len() as u64;
        let items = matching
            .into_iter()
            .skip(self.offset as usize)
            .take(self.limit.map_or(usize::MAX, |l| l as usize))
            .collect();
        Page { items, total }
    }
}

/// One page of a list, and how many items match in all.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub total: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_is_the_filtered_matches_after_offset_up_to_limit() {
        let q = ListQuery::new(Some("LOB"), Some(2), Some(1)).unwrap();
        let page = q.page(
            vec!["Lobby A", "Hall", "lobby B", "Lobby C", "Lobby D"],
            |s| s,
        );
        assert_eq!(page.total, 4);
        assert_eq!(page.items, ["lobby B", "Lobby C"]);
        assert_eq!(ListQuery::all().page(vec!["x"; 3], |s| s).items.len(), 3);
    }

    #[test]
    fn bounds_are_checked() {
        assert_eq!(
            ListQuery::new(None, Some(0), None),
            Err(ListQueryError::Limit(0))
        );
        assert_eq!(
            ListQuery::new(None, Some(1001), None),
            Err(ListQueryError::Limit(1001))
        );
        assert_eq!(
            ListQuery::new(None, None, Some(-1)),
            Err(ListQueryError::Offset(-1))
        );
        assert_eq!(
            ListQuery::new(Some(""), None, None),
            Err(ListQueryError::Name)
        );
        assert_eq!(
            ListQuery::new(Some("a\0"), None, None),
            Err(ListQueryError::Name)
        );
        assert!(ListQuery::new(Some("é"), Some(1000), Some(0)).is_ok());
    }

    #[test]
    fn only_ascii_letters_fold_case() {
        let q = ListQuery::new(Some("É"), None, None).unwrap();
        assert!(
            !q.matches("café"),
            "non-ASCII letters match case-sensitively, as in PostgreSQL's C collation"
        );
        assert!(q.matches("CAFÉ"));
    }
}
