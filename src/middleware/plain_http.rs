//! The warning for a `Secure` session cookie sent in answer to a plain-HTTP
//! request to a host other than localhost: browsers drop such a cookie, so
//! every request of that browser starts a new session, and nothing else
//! says why. Logged once per process, at `warn`.
//!
//! A request counts as plain HTTP when its URI's scheme is not `https`
//! (HTTP/1 requests, as hyper hands them to a server, carry no scheme at
//! all) and no proxy says the client used HTTPS: no `X-Forwarded-Proto:
//! https`, no `Forwarded: proto=https` (the first value of each: the
//! proxy nearest the client). Browsers keep `Secure` cookies from
//! `localhost`, `*.localhost` and loopback addresses over plain HTTP; a
//! request with no host at all is not a browser's.
//!
//! The cost per request until the warning is logged, only when the cookie
//! is `Secure` and the request carried no cookie of the session's name (a
//! browser never sends a `Secure` cookie over plain HTTP): the scheme and
//! up to three header lookups; after it, one atomic load.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};

use http::header::{FORWARDED, HOST, HeaderName};
use http::{HeaderMap, Request, uri::Scheme};

/// Set once the warning was logged (or is being logged) in this process.
static WARNED: AtomicBool = AtomicBool::new(false);

const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");

/// Whether to watch the response to `request` for a `Secure` cookie
/// (`secure`: the session cookie is `Secure`; `relevant`: the layer's own
/// cheap test, asked only before the request's headers are read): the
/// warning was not logged yet and the request looks like plain HTTP to a
/// host other than localhost.
#[inline]
pub(crate) fn watch<B>(
    request: &Request<B>,
    secure: bool,
    relevant: impl FnOnce() -> bool,
) -> bool {
    secure && !WARNED.load(Ordering::Relaxed) && relevant() && plain_to_remote_host(request)
}

/// Logs the warning, unless this process already did: a `Secure` cookie
/// was sent in answer to a request [`watch`] picked.
#[cold]
pub(crate) fn warn_dropped() {
    if WARNED.swap(true, Ordering::Relaxed) {
        return;
    }
    tracing::warn!(
        "a Secure session cookie was sent in answer to a request that looks like plain HTTP \
         to a host other than localhost: browsers drop Secure cookies from http:// pages, so \
         every request of such a browser starts a new session. Serve the site over HTTPS. \
         Behind a proxy or load balancer that ends TLS, the application sees plain HTTP: have \
         the proxy send X-Forwarded-Proto: https (or Forwarded: proto=https); this request \
         had neither, and no https scheme. For local development over plain HTTP, use \
         http://localhost, or SessionConfig::with_secure(false) with a cookie name without \
         the __Host- or __Secure- prefix (SessionConfig::with_cookie_name). A server that \
         ends TLS itself sees no scheme in HTTP/1 requests: there this warning is a false \
         alarm. Logged once per process"
    );
}

/// Whether `request` looks like plain HTTP to a host other than localhost.
fn plain_to_remote_host<B>(request: &Request<B>) -> bool {
    if request.uri().scheme() == Some(&Scheme::HTTPS) || proxy_says_https(request.headers()) {
        return false;
    }
    let host = match request.uri().host() {
        Some(host) => host,
        None => match request.headers().get(HOST).map(|h| h.to_str()) {
            Some(Ok(host)) => without_port(host),
            // No host (not a browser), or not text.
            _ => return false,
        },
    };
    !is_local(host)
}

/// Whether the proxy nearest the client says the client used HTTPS (on
/// bytes: no UTF-8 check, no allocation).
fn proxy_says_https(headers: &HeaderMap) -> bool {
    // The first element of the first value: what the proxy nearest the
    // client saw.
    let first = |name: &HeaderName| {
        let value = headers.get(name)?.as_bytes();
        value.split(|&b| b == b',').next()
    };
    if let Some(proto) = first(&X_FORWARDED_PROTO) {
        return proto.trim_ascii().eq_ignore_ascii_case(b"https");
    }
    first(&FORWARDED).is_some_and(|element| {
        element.split(|&b| b == b';').any(|pair| {
            let Some(equals) = pair.iter().position(|&b| b == b'=') else {
                return false;
            };
            let value = pair[equals + 1..].trim_ascii();
            let value = value
                .strip_prefix(b"\"")
                .and_then(|v| v.strip_suffix(b"\""))
                .unwrap_or(value);
            pair[..equals].trim_ascii().eq_ignore_ascii_case(b"proto")
                && value.eq_ignore_ascii_case(b"https")
        })
    })
}

/// A `Host` header's host: without its port, an IPv6 address in brackets.
fn without_port(host: &str) -> &str {
    if host.starts_with('[') {
        return host.find(']').map_or(host, |end| &host[..=end]);
    }
    host.split(':').next().unwrap_or(host)
}

/// Whether browsers treat `host` as localhost, where they keep `Secure`
/// cookies over plain HTTP: `localhost`, `*.localhost`, a loopback
/// address (IPv6 in brackets or not).
fn is_local(host: &str) -> bool {
    let host = host.strip_suffix('.').unwrap_or(host);
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return ip.is_loopback();
    }
    const SUFFIX: &[u8] = b".localhost";
    let bytes = host.as_bytes();
    host.eq_ignore_ascii_case("localhost")
        || (bytes.len() > SUFFIX.len()
            && bytes[bytes.len() - SUFFIX.len()..].eq_ignore_ascii_case(SUFFIX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(uri: &str, headers: &[(&str, &str)]) -> Request<()> {
        headers
            .iter()
            .fold(Request::get(uri), |r, (n, v)| r.header(*n, *v))
            .body(())
            .unwrap()
    }

    #[test]
    fn plain_http_to_another_host_is_told_apart() {
        let plain = |uri, headers: &[(&str, &str)]| plain_to_remote_host(&request(uri, headers));
        // Plain HTTP to another host.
        assert!(plain("/", &[("host", "example.com")]));
        assert!(plain("/", &[("host", "example.com:8080")]));
        assert!(plain("http://example.com/", &[]));
        assert!(plain("/", &[("host", "10.0.0.1")]));
        assert!(plain("/", &[("host", "[2001:db8::1]:80")]));
        assert!(plain("/", &[("host", "notlocalhost")]));
        assert!(plain("/", &[("host", "localhost.example.com")]));
        // A proxy that says the client used plain HTTP (the nearest first).
        let host = ("host", "example.com");
        assert!(plain("/", &[host, ("x-forwarded-proto", "http")]));
        assert!(plain("/", &[host, ("x-forwarded-proto", "http, https")]));
        assert!(plain(
            "/",
            &[host, ("forwarded", "proto=http, proto=https")]
        ));
        assert!(plain("/", &[host, ("forwarded", "for=192.0.2.1")]));
        // X-Forwarded-Proto, when there, decides.
        assert!(plain(
            "/",
            &[
                host,
                ("x-forwarded-proto", "http"),
                ("forwarded", "proto=https")
            ]
        ));

        // HTTPS.
        assert!(!plain("https://example.com/", &[]));
        assert!(!plain("/", &[host, ("x-forwarded-proto", " HTTPS ")]));
        assert!(!plain(
            "/",
            &[host, ("forwarded", "for=a;Proto=\"https\";by=b")]
        ));
        // Localhost.
        for local in [
            "localhost",
            "LOCALHOST:3000",
            "localhost.",
            "app.localhost:8080",
            "127.0.0.1",
            "127.1.2.3:80",
            "[::1]",
            "[::1]:8080",
        ] {
            assert!(!plain("/", &[("host", local)]), "{local}");
        }
        assert!(!plain("http://[::1]:3000/", &[]));
        // No host.
        assert!(!plain("/", &[]));
    }
}
