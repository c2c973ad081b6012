//! A minimal HTTP/1.1 client over loopback for end-to-end tests: one
//! connection per request, like a browser tab that does not reuse.

use http::{Request, StatusCode};
use http_body_util::{BodyExt, Empty, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use std::net::SocketAddr;
use std::time::Duration;

pub struct Reply {
    pub status: StatusCode,
    /// The `Set-Cookie` headers.
    pub set_cookies: Vec<String>,
    pub body: String,
}

/// `GET path` on `addr` with an optional `Cookie` header. Bounded: 10 s.
pub async fn get(addr: SocketAddr, path: &str, cookie: Option<&str>) -> Reply {
    send(addr, http::Method::GET, path, cookie).await
}

/// A request with any method, no body. Bounded: 10 s.
pub async fn send(
    addr: SocketAddr,
    method: http::Method,
    path: &str,
    cookie: Option<&str>,
) -> Reply {
    let request = builder(addr, method, path, cookie)
        .body(Empty::<Bytes>::new())
        .unwrap();
    exchange(addr, request).await
}

/// `POST path` on `addr` with `form` as an
/// `application/x-www-form-urlencoded` body (already encoded, as a
/// browser sends it) and an optional `Cookie` header. Bounded: 10 s.
pub async fn post_form(addr: SocketAddr, path: &str, cookie: Option<&str>, form: &str) -> Reply {
    let request = builder(addr, http::Method::POST, path, cookie)
        .header(
            http::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(Full::new(Bytes::from(form.to_owned())))
        .unwrap();
    exchange(addr, request).await
}

/// A request to `addr` with its `Host` and optional `Cookie` headers.
fn builder(
    addr: SocketAddr,
    method: http::Method,
    path: &str,
    cookie: Option<&str>,
) -> http::request::Builder {
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header(http::header::HOST, addr.to_string());
    if let Some(cookie) = cookie {
        request = request.header(http::header::COOKIE, cookie);
    }
    request
}

/// Sends `request` on a new connection to `addr` and reads the whole
/// reply. Bounded: 10 s.
async fn exchange<B>(addr: SocketAddr, request: Request<B>) -> Reply
where
    B: hyper::body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    tokio::time::timeout(Duration::from_secs(10), async {
        let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .unwrap();
        tokio::spawn(conn);
        let response = sender.send_request(request).await.unwrap();
        let status = response.status();
        let set_cookies = response
            .headers()
            .get_all(http::header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        Reply {
            status,
            set_cookies,
            body: String::from_utf8(body.to_vec()).unwrap(),
        }
    })
    .await
    .expect("request finished within 10 s")
}

/// The `name=value` pair a browser would send back, from a `Set-Cookie`.
pub fn pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().to_owned()
}

/// One browser's cookie for one site: keeps the last `Set-Cookie`, drops
/// it on a removal, and checks every cookie against the 4096-byte limit
/// browsers enforce on name plus value.
#[derive(Default)]
pub struct Jar {
    pub pair: Option<String>,
}

impl Jar {
    pub async fn send(&mut self, addr: SocketAddr, method: http::Method, path: &str) -> Reply {
        let reply = send(addr, method, path, self.pair.as_deref()).await;
        for set_cookie in &reply.set_cookies {
            let pair = pair(set_cookie);
            let (name, value) = pair.split_once('=').unwrap();
            assert!(
                name.len() + value.len() <= 4096,
                "a browser would drop this cookie: {} bytes",
                name.len() + value.len()
            );
            self.pair = (!value.is_empty()).then_some(pair);
        }
        reply
    }
}
