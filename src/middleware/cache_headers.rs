//! Keeping responses that depend on a session out of shared caches: the
//! rule the tower layer applies after a successful save (feature `tower`;
//! the rule itself is documented on [`SessionLayer`](crate::SessionLayer)).

use http::header::{CACHE_CONTROL, Entry, OccupiedEntry, VARY};
use http::{HeaderMap, HeaderValue};

/// The cache rule of [`SessionLayer`](crate::SessionLayer) (see "Caches" there): `Vary: Cookie`
/// when the request carried the session's cookie (`carried`, asked only
/// when no `Set-Cookie` was written) or a `Set-Cookie` was written; and
/// then `Cache-Control: private`. `admit_warn` says whether to log that
/// the handler had let shared caches store it, and how many such events
/// went unlogged before ([`Sessions`](crate::Sessions)' rate limit).
pub(crate) fn mark_for_caches(
    headers: &mut HeaderMap,
    set_cookie: bool,
    carried: impl FnOnce() -> bool,
    admit_warn: impl FnOnce() -> Option<u64>,
) {
    if set_cookie || carried() {
        vary_on_cookie(headers);
    }
    if set_cookie {
        keep_from_shared_caches(headers, admit_warn);
    }
}

/// The items of a comma-separated header list, trimmed; commas inside a
/// quoted string (`no-cache="a, b"`) do not separate.
fn list_items(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    let mut quoted = false;
    let mut escaped = false;
    value
        .split(move |&b| {
            match b {
                _ if escaped => escaped = false,
                b'\\' if quoted => escaped = true,
                b'"' => quoted = !quoted,
                b',' if !quoted => return true,
                _ => {}
            }
            false
        })
        .map(<[u8]>::trim_ascii)
        .filter(|item| !item.is_empty())
}

/// The items of every line of an occupied header.
fn all_items<'h>(entry: &'h OccupiedEntry<'_, HeaderValue>) -> Vec<&'h [u8]> {
    entry
        .iter()
        .flat_map(|value| list_items(value.as_bytes()))
        .collect()
}

/// One header value holding `items`, joined by ", ".
fn joined(items: &[&[u8]]) -> Option<HeaderValue> {
    // Items of valid header values, joined by ", ": valid too.
    HeaderValue::from_bytes(&items.join(&b", "[..])).ok()
}

/// Adds `Cookie` to `Vary` unless it is there already or `Vary` is `*`.
fn vary_on_cookie(headers: &mut HeaderMap) {
    // One look-up: this runs on most requests.
    let mut entry = match headers.entry(VARY) {
        Entry::Vacant(entry) => {
            entry.insert(HeaderValue::from_static("Cookie"));
            return;
        }
        Entry::Occupied(entry) => entry,
    };
    let mut items = all_items(&entry);
    if items
        .iter()
        .any(|item| *item == b"*" || item.eq_ignore_ascii_case(b"cookie"))
    {
        return;
    }
    items.push(b"Cookie");
    if let Some(value) = joined(&items) {
        entry.insert(value);
    }
}

/// Whether a `Cache-Control` item is directive `name` (with or without a
/// value).
fn is_directive(item: &[u8], name: &str) -> bool {
    let end = item.iter().position(|&b| b == b'=').unwrap_or(item.len());
    item[..end]
        .trim_ascii()
        .eq_ignore_ascii_case(name.as_bytes())
}

/// Makes sure no shared cache stores a response that sets the session
/// cookie: `Cache-Control: private`, merged into the handler's own.
fn keep_from_shared_caches(headers: &mut HeaderMap, admit_warn: impl FnOnce() -> Option<u64>) {
    let mut entry = match headers.entry(CACHE_CONTROL) {
        Entry::Vacant(entry) => {
            entry.insert(HeaderValue::from_static("private"));
            return;
        }
        Entry::Occupied(entry) => entry,
    };
    let items = all_items(&entry);
    let shared_only = |item: &&[u8]| is_directive(item, "public") || is_directive(item, "s-maxage");
    let shared = items.iter().any(shared_only);
    let private = items
        .iter()
        .any(|item| item.eq_ignore_ascii_case(b"private"));
    if items.iter().any(|item| is_directive(item, "no-store")) || (private && !shared) {
        return;
    }
    let mut kept: Vec<&[u8]> = items
        .iter()
        .copied()
        .filter(|item| !shared_only(item) && !is_directive(item, "private"))
        .collect();
    kept.push(b"private");
    if let Some(unlogged) = shared.then(admit_warn).flatten() {
        tracing::warn!(
            handler = %String::from_utf8_lossy(&items.join(&b", "[..])),
            unlogged,
            interval_secs = crate::REJECTION_WARN_INTERVAL,
            "a response that sets the session cookie let shared caches store it: \
             public and s-maxage dropped, private added"
        );
    }
    if let Some(value) = joined(&kept) {
        entry.insert(value);
    }
}
