//! Finding the session cookie's values in a request's `Cookie` headers.
//!
//! The headers are split as raw bytes rather than as strings: a sealed
//! value is plain ASCII, and a neighbouring cookie with non-UTF-8 bytes must
//! not hide ours. This is the `cookie-string` grammar of RFC 6265 §5.4
//! (`name=value` pairs separated by `;`), tolerant of extra white space and
//! of a value wrapped in double quotes.

use http::HeaderMap;
use http::header::COOKIE;

fn trim(bytes: &[u8]) -> &[u8] {
    bytes.trim_ascii()
}

fn unquote(value: &[u8]) -> &[u8] {
    match value {
        [b'"', inner @ .., b'"'] => inner,
        other => other,
    }
}

/// The values of cookie `name` across all `Cookie` headers, in order.
pub(crate) fn cookie_values<'h>(
    headers: &'h HeaderMap,
    name: &'h str,
) -> impl Iterator<Item = &'h [u8]> + 'h {
    headers
        .get_all(COOKIE)
        .iter()
        .flat_map(|header| header.as_bytes().split(|&b| b == b';'))
        .filter_map(move |pair| {
            let eq = pair.iter().position(|&b| b == b'=')?;
            (trim(&pair[..eq]) == name.as_bytes()).then(|| unquote(trim(&pair[eq + 1..])))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn finds_every_value_in_order_across_headers() {
        let mut headers = HeaderMap::new();
        headers.append(COOKIE, HeaderValue::from_static("a=1; s=first;s2=no"));
        headers.append(
            COOKIE,
            HeaderValue::from_bytes(b"x=\xff\xfe; s = \"second\" ;s=third").unwrap(),
        );
        headers.append(COOKIE, HeaderValue::from_static("novalue; =; s="));
        let found: Vec<&[u8]> = cookie_values(&headers, "s").collect();
        assert_eq!(found, [&b"first"[..], b"second", b"third", b""]);
    }
}
