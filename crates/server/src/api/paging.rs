//! Cursor pagination shared by every list endpoint: pages are ordered by (creation time, id)
//! and a cursor is that pair of the last item, opaque to clients (base64url).

use std::fmt::Display;
use std::str::FromStr;

use base64::Engine;

use crate::error::FieldError;

const B64URL: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Page size when the client gives none.
pub const DEFAULT_LIMIT: i64 = 50;
/// Largest page a client may ask for.
pub const MAX_LIMIT: i64 = 200;

/// The cursor after an item created at `created_at` with id `id`.
pub fn encode_cursor(created_at: i64, id: impl Display) -> String {
    B64URL.encode(format!("{created_at}|{id}"))
}

/// Reads a cursor of [`encode_cursor`]; `None` for anything else.
pub fn decode_cursor<Id: FromStr>(cursor: &str) -> Option<(i64, Id)> {
    let text = String::from_utf8(B64URL.decode(cursor).ok()?).ok()?;
    let (created, id) = text.split_once('|')?;
    Some((created.parse().ok()?, id.parse().ok()?))
}

/// Validated page position from the query's `cursor` and `limit`; problems are pushed onto
/// `problems` so they are reported with the query's other field errors.
pub fn page<Id: FromStr>(
    cursor: Option<&str>,
    limit: Option<i64>,
    problems: &mut Vec<FieldError>,
) -> (Option<(i64, Id)>, i64) {
    let limit = limit.unwrap_or(DEFAULT_LIMIT);
    if !(1..=MAX_LIMIT).contains(&limit) {
        problems.push(FieldError::new(
            "limit",
            format!("between 1 and {MAX_LIMIT}"),
        ));
    }
    let after = cursor.and_then(|cursor| {
        let after = decode_cursor(cursor);
        if after.is_none() {
            problems.push(FieldError::new("cursor", "not a cursor from this API"));
        }
        after
    });
    (after, limit)
}

/// The cursor of the next page: the last item's, when the page is full.
pub fn next_cursor<T>(items: &[T], limit: i64, key: impl Fn(&T) -> String) -> Option<String> {
    let full_page = i64::try_from(items.len()).unwrap_or(0) == limit;
    items.last().filter(|_| full_page).map(key)
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;

    #[test]
    fn cursor_round_trips_and_rejects_garbage() {
        let id = Uuid::now_v7();
        let cursor = encode_cursor(1_700_000_000_123, id);
        assert_eq!(
            decode_cursor::<Uuid>(&cursor),
            Some((1_700_000_000_123, id))
        );
        for garbage in [
            "",
            "!!",
            "bm90IGEgY3Vyc29y",
            &B64URL.encode("12|not-a-uuid"),
        ] {
            assert_eq!(decode_cursor::<Uuid>(garbage), None, "{garbage}");
        }
    }

    #[test]
    fn page_validates_limit_and_cursor_together() {
        let mut problems = Vec::new();
        let (after, limit) = page::<Uuid>(Some("garbage"), Some(0), &mut problems);
        assert_eq!((after, limit), (None, 0));
        let fields: Vec<_> = problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(fields, ["limit", "cursor"]);

        let mut problems = Vec::new();
        assert_eq!(
            page::<Uuid>(None, None, &mut problems),
            (None, DEFAULT_LIMIT)
        );
        assert!(problems.is_empty());
    }

    #[test]
    fn next_cursor_only_on_full_pages() {
        let items = [1, 2, 3];
        assert_eq!(
            next_cursor(&items, 3, |i| i.to_string()),
            Some("3".to_owned())
        );
        assert_eq!(next_cursor(&items, 4, |i| i.to_string()), None);
        assert_eq!(next_cursor::<i32>(&[], 4, |i| i.to_string()), None);
    }
}
