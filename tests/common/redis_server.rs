//! A real `redis-server` for tests: on a free loopback port, no
//! persistence, killed on drop. Needs `redis-server` on the PATH (`.ci/run`
//! installs it).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
    /// With persistence: the data directory (append-only file, fsync on
    /// every write), so a killed server comes back with its data.
    dir: Option<std::path::PathBuf>,
}

impl RedisServer {
    /// Starts a server on a free port of 127.0.0.1, without persistence.
    pub fn start() -> RedisServer {
        RedisServer::launch(None)
    }

    /// Starts a server that keeps its data across `kill` and `restart`.
    pub fn start_persistent() -> RedisServer {
        RedisServer::launch(Some(temp_dir("redis")))
    }

    fn launch(dir: Option<std::path::PathBuf>) -> RedisServer {
        let mut server = RedisServer {
            port: free_port(),
            child: None,
            dir,
        };
        server.restart();
        server
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server (with SIGKILL; without persistence its data is gone).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and waits until it answers.
    pub fn restart(&mut self) {
        self.kill();
        let mut command = Command::new("redis-server");
        command
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", ""]);
        match &self.dir {
            Some(dir) => command
                .args(["--appendonly", "yes", "--appendfsync", "always", "--dir"])
                .arg(dir),
            None => command.args(["--appendonly", "no"]),
        };
        let child = command
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect(
                "redis-server not found: install it (apt-get install redis-server); .ci/run does",
            );
        self.child = Some(child);
        for _ in 0..200 {
            if self.ping() {
                return;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        panic!(
            "redis-server on port {} did not answer within 5 s",
            self.port
        );
    }

    fn ping(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
        let mut reply = [0u8; 7];
        stream.write_all(b"PING\r\n").is_ok()
            && stream.read_exact(&mut reply).is_ok()
            && &reply == b"+PONG\r\n"
    }
}

/// A port of 127.0.0.1 free right now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A new empty directory for one server's files.
pub fn temp_dir(kind: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "sealed-session-{kind}-{}-{}",
        std::process::id(),
        rand::random::<u64>()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Connecting to a port where nothing listens fails within 5 s, as
/// unavailable or timed out.
pub async fn connecting_to_nothing_fails_fast<T: std::fmt::Debug>(
    connect: impl AsyncFnOnce(String) -> Result<T, sealed_session::StoreError>,
) {
    let started = std::time::Instant::now();
    let err = connect(format!("redis://127.0.0.1:{}", free_port()))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            sealed_session::StoreError::Unavailable(_) | sealed_session::StoreError::Timeout
        ),
        "{err:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}
