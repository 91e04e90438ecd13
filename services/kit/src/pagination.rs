//! The seed's list envelope, `{"data": [...], "meta": {"limit": 20, "offset": 0, "total": N}}`, and
//! the `limit`/`offset` rules shared by every list endpoint.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::error::FieldError;

pub const DEFAULT_LIMIT: i64 = 20;
pub const MAX_LIMIT: i64 = 100;

/// A validated window into a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub limit: i64,
    pub offset: i64,
}

impl Default for Page {
    fn default() -> Self {
        Self {
            limit: DEFAULT_LIMIT,
            offset: 0,
        }
    }
}

impl Page {
    /// `limit` defaults to 20 and must be 1..=100; `offset` defaults to 0 and must not be negative.
    ///
    /// Services keep `limit`/`offset` as plain fields of their own query struct (serde's `flatten`
    /// does not work with numbers in query strings) and call this.
    pub fn new(limit: Option<i64>, offset: Option<i64>) -> Result<Self, Vec<FieldError>> {
        let mut errors = Vec::new();
        let limit = limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            errors.push(FieldError::new(
                "limit",
                format!("must be between 1 and {MAX_LIMIT}"),
            ));
        }
        let offset = offset.unwrap_or(0);
        if offset < 0 {
            errors.push(FieldError::new("offset", "must not be negative"));
        }
        if errors.is_empty() {
            Ok(Self { limit, offset })
        } else {
            Err(errors)
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PageMeta {
    /// Page size used for this response.
    pub limit: i64,
    /// Number of items skipped.
    pub offset: i64,
    /// Number of items matching the filters, over all pages.
    pub total: i64,
}

/// A page of items and where it sits in the whole list.
// `Deserialize` too, so that clients and caches can read it back.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Paginated<T> {
    pub data: Vec<T>,
    pub meta: PageMeta,
}

impl<T> Paginated<T> {
    pub fn new(data: Vec<T>, page: Page, total: i64) -> Self {
        Self {
            data,
            meta: PageMeta {
                limit: page.limit,
                offset: page.offset,
                total,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_bounds() {
        assert_eq!(
            Page::new(None, None).unwrap(),
            Page {
                limit: 20,
                offset: 0
            }
        );
        assert_eq!(
            Page::new(Some(100), Some(5)).unwrap(),
            Page {
                limit: 100,
                offset: 5
            }
        );
        let errors = Page::new(Some(101), Some(-1)).unwrap_err();
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["limit", "offset"]);
        assert!(Page::new(Some(0), None).is_err());
    }

    #[test]
    fn envelope_shape() {
        let page = Paginated::new(vec![1, 2], Page::default(), 7);
        let json = serde_json::to_value(page).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"data": [1, 2], "meta": {"limit": 20, "offset": 0, "total": 7}})
        );
    }
}
