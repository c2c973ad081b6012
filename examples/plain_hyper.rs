//! Any `http`-based server: the visit counter on bare hyper, with no tower
//! or axum, calling `Sessions::load` and `Sessions::save` on the headers.
//!
//! ```sh
//! SESSION_SECURE=0 cargo run --example plain_hyper
//! curl -c jar -b jar http://127.0.0.1:3000/
//! ```

#[path = "common/mod.rs"]
mod common;

use std::convert::Infallible;

use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use sealed_session::Sessions;

async fn handle(
    sessions: Sessions,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    // 1. Load: a bad or missing cookie gives a new session, never an error.
    let session = match sessions.load::<u64>(request.headers()).await {
        Ok(session) => session,
        Err(e) => return Ok(text(StatusCode::SERVICE_UNAVAILABLE, format!("{e}\n"))),
    };
    // 2. Use it.
    let count = session.update(|count| {
        *count += 1;
        *count
    });
    let mut response = text(StatusCode::OK, format!("Visits: {count}\n"));
    // 3. Save onto the response headers; on error send no Set-Cookie.
    if let Err(e) = sessions.save(&session, response.headers_mut()).await {
        return Ok(text(StatusCode::INTERNAL_SERVER_ERROR, format!("{e}\n")));
    }
    Ok(response)
}

fn text(status: StatusCode, body: String) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    common::init_logging();
    let sessions = common::sessions();
    let port = common::port();
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    println!("plain_hyper listening on http://127.0.0.1:{port}");
    loop {
        let (stream, _) = listener.accept().await?;
        let sessions = sessions.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request| handle(sessions.clone(), request));
            if let Err(e) = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                eprintln!("connection error: {e}");
            }
        });
    }
}
