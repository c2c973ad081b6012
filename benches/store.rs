//! One request's session work, side by side in one run: load a 256-byte
//! session from the `Cookie` header, change it, save it; the next request
//! sends back the cookie it got.
//!
//! - `cookie`: the session lives in the cookie (the default);
//! - `server_memory`: server mode, every session in a `MemoryStore`;
//! - `server_redis`: server mode, every session in Redis on 127.0.0.1
//!   (a `redis-server` this bench starts; skipped with a message when
//!   `redis-server` is not installed).
//!
//! Run: `cargo bench --bench store --features redis`

#[path = "../tests/common/redis_server.rs"]
#[allow(dead_code)]
mod redis_server;

use criterion::{Criterion, criterion_group, criterion_main};
use http::HeaderMap;
use http::header::{COOKIE, SET_COOKIE};
use sealed_session::{Key, Keyring, MemoryStore, SessionConfig, Sessions, StoreMode};
use serde::{Deserialize, Serialize};

#[derive(Default, Serialize, Deserialize)]
struct Profile {
    visits: u64,
    data: Vec<u8>,
}

/// A browser: sends back the last cookie it was given.
struct Client {
    request: HeaderMap,
}

impl Client {
    fn take(&mut self, response: &HeaderMap) {
        if let Some(set_cookie) = response.get(SET_COOKIE) {
            let text = std::str::from_utf8(set_cookie.as_bytes()).unwrap();
            let (pair, _) = text.split_once(';').unwrap();
            self.request
                .insert(COOKIE, http::HeaderValue::from_str(pair).unwrap());
        }
    }
}

async fn request(sessions: &Sessions, client: &mut Client) -> u64 {
    let session = sessions.load::<Profile>(&client.request).await.unwrap();
    let visits = session.update(|p| {
        p.visits += 1;
        p.visits
    });
    let mut response = HeaderMap::new();
    sessions.save(&session, &mut response).await.unwrap();
    client.take(&response);
    visits
}

fn sessions(config: SessionConfig) -> Sessions {
    Sessions::new(Keyring::new(Key::generate()), config).unwrap()
}

fn bench(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let redis = std::process::Command::new("redis-server")
        .arg("--version")
        .output()
        .is_ok()
        .then(redis_server::RedisServer::start);
    let mut cases = vec![
        ("cookie", sessions(SessionConfig::default())),
        (
            "server_memory",
            sessions(
                SessionConfig::default()
                    .with_store(MemoryStore::new())
                    .with_store_mode(StoreMode::Server),
            ),
        ),
    ];
    match &redis {
        Some(server) => {
            let store = runtime
                .block_on(sealed_session::RedisStore::connect(&server.url()))
                .unwrap();
            cases.push((
                "server_redis",
                sessions(
                    SessionConfig::default()
                        .with_store(store)
                        .with_store_mode(StoreMode::Server),
                ),
            ));
        }
        None => eprintln!("server_redis skipped: redis-server is not installed"),
    }

    let mut group = c.benchmark_group("request_256B");
    for (name, sessions) in &cases {
        // A first request creates the session: 256 bytes in it.
        let mut client = Client {
            request: HeaderMap::new(),
        };
        runtime.block_on(async {
            let session = sessions.load::<Profile>(&client.request).await.unwrap();
            session.set(Profile {
                visits: 0,
                data: vec![7; 246],
            });
            let mut response = HeaderMap::new();
            sessions.save(&session, &mut response).await.unwrap();
            client.take(&response);
        });
        let before = runtime.block_on(request(sessions, &mut client));
        group.bench_function(*name, |b| {
            b.iter(|| runtime.block_on(request(sessions, &mut client)))
        });
        // The session really continued through every iteration.
        let after = runtime.block_on(request(sessions, &mut client));
        assert!(after > before + 10, "{name}: visits {before} -> {after}");
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
