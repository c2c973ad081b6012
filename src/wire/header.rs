//! Finding the session cookie's values in a request's `Cookie` headers.
//!
//! This is the `cookie-string` grammar of RFC 6265 §5.4 (`name=value`
//! pairs separated by `;`), tolerant of extra white space and of a value
//! wrapped in double quotes. A header that is UTF-8 (nearly all) is split
//! with `str::split`, which finds `;` a machine word at a time; one that is
//! not is split byte by byte, so a neighbouring cookie with non-UTF-8 bytes
//! cannot hide ours.

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

/// The `;`-separated pairs of one header.
enum Pairs<'h> {
    Text(std::str::Split<'h, char>),
    Bytes(std::slice::Split<'h, u8, fn(&u8) -> bool>),
}

impl<'h> Pairs<'h> {
    fn new(header: &'h [u8]) -> Pairs<'h> {
        match std::str::from_utf8(header) {
            Ok(text) => Pairs::Text(text.split(';')),
            Err(_) => Pairs::Bytes(header.split(|&b| b == b';')),
        }
    }
}

impl<'h> Iterator for Pairs<'h> {
    type Item = &'h [u8];

    fn next(&mut self) -> Option<&'h [u8]> {
        match self {
            Pairs::Text(split) => split.next().map(str::as_bytes),
            Pairs::Bytes(split) => split.next(),
        }
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
        .flat_map(|header| Pairs::new(header.as_bytes()))
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
