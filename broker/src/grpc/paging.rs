//! Pages of the list calls whose domain answer is a whole (bounded) list: the items in a
//! stable order of a text key, the page after the caller's token, and the token of the next.

/// The items after `token` (exclusive; empty: from the first) in the order of `key`, at most
/// `size`, and the token to continue from (empty when this is the last page).
pub fn page<T>(
    mut items: Vec<T>,
    key: impl Fn(&T) -> String,
    token: &str,
    size: usize,
) -> (Vec<T>, String) {
    items.sort_by_cached_key(|item| key(item));
    let mut rest: Vec<T> = items
        .into_iter()
        .filter(|item| token.is_empty() || key(item).as_str() > token)
        .collect();
    if rest.len() <= size {
        return (rest, String::new());
    }
    rest.truncate(size);
    let next = rest.last().map(&key).unwrap_or_default();
    (rest, next)
}

/// A match's key: creation time (zero-padded, so text order is time order), then its id.
pub fn match_key(created: i64, id: &uuid::Uuid) -> String {
    format!("{:020}.{id}", created.max(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_cover_everything_once_in_order() {
        let items: Vec<u32> = (0..25).rev().collect();
        let key = |n: &u32| format!("{n:04}");
        let mut seen = Vec::new();
        let mut token = String::new();
        loop {
            let (got, next) = page(items.clone(), key, &token, 10);
            seen.extend(got);
            if next.is_empty() {
                break;
            }
            token = next;
        }
        assert_eq!(seen, (0..25).collect::<Vec<_>>());
        let (all, next) = page(items, key, "", 25);
        assert_eq!((all.len(), next.as_str()), (25, ""));
    }
}
