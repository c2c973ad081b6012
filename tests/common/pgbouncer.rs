//! A real PgBouncer for tests, in front of a [`PostgresServer`]: in
//! `pool_mode = transaction` with a small pool, so that many client
//! connections share a few server connections and a server connection
//! changes hands between transactions. No prepared-statement support
//! (PgBouncer before 1.21 has none; from 1.21 on it is switched off with
//! `max_prepared_statements = 0`), the setting in which a client's named
//! statement can run under another client's name. On a free port of
//! 127.0.0.1, its files (configuration, users, log, pid) in a temporary
//! directory; killed and the directory removed on drop. Run as the
//! `postgres` user when the tests run as root (PgBouncer refuses root).
//! Needs Debian's `pgbouncer` package (`.ci/run` installs it):
//! `pgbouncer` on the PATH or in /usr/sbin.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::postgres_server::{PostgresServer, running_as_root};
use super::redis_server::{free_port, temp_dir};

/// How long PgBouncer may take to accept connections.
const START_LIMIT: Duration = Duration::from_secs(10);

/// A running PgBouncer (see the module's docs).
pub struct PgBouncer {
    /// The port it listens on, on 127.0.0.1.
    pub port: u16,
    /// Its configuration, users, log and pid file.
    dir: PathBuf,
}

/// The `pgbouncer` program: on the PATH, or where Debian puts it.
fn binary() -> PathBuf {
    std::env::var_os("PATH")
        .and_then(|path| std::env::split_paths(&path).find(|dir| dir.join("pgbouncer").is_file()))
        .map(|dir| dir.join("pgbouncer"))
        .or_else(|| {
            let debian = Path::new("/usr/sbin/pgbouncer");
            debian.is_file().then(|| debian.to_owned())
        })
        .expect(
            "pgbouncer not found on the PATH nor in /usr/sbin: \
             apt-get install pgbouncer (.ci/run does)",
        )
}

/// The `(major, minor)` version of `pgbouncer`, from its first line
/// (`PgBouncer 1.18.0`).
fn version(binary: &Path) -> (u32, u32) {
    let out = Command::new(binary)
        .arg("--version")
        .output()
        .unwrap_or_else(|e| panic!("{} could not run: {e}", binary.display()));
    let text = String::from_utf8_lossy(&out.stdout);
    let parsed = text.split_whitespace().nth(1).and_then(|v| {
        let mut parts = v.split('.').map(str::parse::<u32>);
        Some((parts.next()?.ok()?, parts.next()?.ok()?))
    });
    parsed.unwrap_or_else(|| panic!("unexpected `pgbouncer --version`: {text:?}"))
}

/// How PgBouncer pools: `pool_mode`, at most `pool_size` server
/// connections, and `extra` lines for its `[pgbouncer]` section.
pub struct Pooling<'a> {
    pub pool_mode: &'a str,
    pub pool_size: u32,
    pub extra: &'a str,
}

/// The configuration: `postgres` on `server`, listening on
/// 127.0.0.1:`port` only (no Unix socket), everything else in `dir`.
fn config(
    server: &PostgresServer,
    port: u16,
    pooling: &Pooling<'_>,
    dir: &Path,
    newer: bool,
) -> String {
    let dir = dir.display();
    // From 1.21 on, PgBouncer tracks named statements itself unless this
    // is 0; older versions reject the unknown setting.
    let no_prepared = if newer {
        "max_prepared_statements = 0\n"
    } else {
        ""
    };
    format!(
        "[databases]\n\
         postgres = host=127.0.0.1 port={pg} dbname=postgres user=postgres\n\
         \n\
         [pgbouncer]\n\
         listen_addr = 127.0.0.1\n\
         listen_port = {port}\n\
         unix_socket_dir =\n\
         auth_type = trust\n\
         auth_file = {dir}/users.txt\n\
         pool_mode = {pool_mode}\n\
         default_pool_size = {pool_size}\n\
         min_pool_size = 0\n\
         reserve_pool_size = 0\n\
         max_client_conn = 1000\n\
         ignore_startup_parameters = extra_float_digits,options\n\
         logfile = {dir}/pgbouncer.log\n\
         pidfile = {dir}/pgbouncer.pid\n\
         {no_prepared}{extra}",
        pg = server.port,
        pool_mode = pooling.pool_mode,
        pool_size = pooling.pool_size,
        extra = pooling.extra,
    )
}

impl PgBouncer {
    /// Starts PgBouncer in transaction pooling in front of `server`, with
    /// at most `pool_size` server connections; returns once it accepts
    /// connections (at most 10 s).
    pub fn start(server: &PostgresServer, pool_size: u32) -> PgBouncer {
        PgBouncer::start_with(
            server,
            &Pooling {
                pool_mode: "transaction",
                pool_size,
                extra: "",
            },
        )
    }

    /// Starts PgBouncer in front of `server`, pooling as `pooling` says;
    /// returns once it accepts connections (at most 10 s).
    pub fn start_with(server: &PostgresServer, pooling: &Pooling<'_>) -> PgBouncer {
        let binary = binary();
        let bouncer = PgBouncer {
            port: free_port(),
            dir: temp_dir("pgbouncer"),
        };
        let ini = bouncer.dir.join("pgbouncer.ini");
        let newer = version(&binary) >= (1, 21);
        let text = config(server, bouncer.port, pooling, &bouncer.dir, newer);
        std::fs::write(&ini, text).unwrap();
        // The test cluster trusts `postgres` on 127.0.0.1 (initdb
        // --auth=trust); PgBouncer still needs the user listed.
        std::fs::write(bouncer.dir.join("users.txt"), "\"postgres\" \"\"\n").unwrap();
        let as_postgres = running_as_root();
        let mut command = if as_postgres {
            let owned = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&bouncer.dir)
                .status()
                .unwrap();
            assert!(owned.success(), "chown of the pgbouncer directory failed");
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&binary);
            c
        } else {
            Command::new(&binary)
        };
        // `-d`: in the background once its configuration has loaded (it
        // exits with an error on stderr before that if the configuration
        // is bad).
        let started = command
            .arg("-d")
            .arg(&ini)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("{} could not run: {e}", binary.display()));
        assert!(
            started.status.success(),
            "pgbouncer did not start: {}see {}",
            String::from_utf8_lossy(&started.stderr),
            bouncer.log().display()
        );
        let begun = Instant::now();
        while !bouncer.answers() {
            assert!(
                begun.elapsed() < START_LIMIT,
                "pgbouncer on port {} did not answer within {START_LIMIT:?}: see {}",
                bouncer.port,
                bouncer.log().display()
            );
            std::thread::sleep(Duration::from_millis(25));
        }
        bouncer
    }

    /// The URL clients connect to: the server's `postgres` database and
    /// user, through PgBouncer.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// PgBouncer's log file.
    pub fn log(&self) -> PathBuf {
        self.dir.join("pgbouncer.log")
    }

    /// Whether PgBouncer answers the protocol: an `SSLRequest` gets `N`
    /// (no TLS configured).
    fn answers(&self) -> bool {
        let Ok(mut stream) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
        // Length 8, then the SSLRequest code 80877103.
        let request = [0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f];
        let mut reply = [0u8; 1];
        stream.write_all(&request).is_ok()
            && stream.read_exact(&mut reply).is_ok()
            && reply == *b"N"
    }

    /// The process id of the running PgBouncer, from its pid file.
    fn pid(&self) -> Option<u32> {
        let text = std::fs::read_to_string(self.dir.join("pgbouncer.pid")).ok()?;
        text.trim().parse().ok()
    }
}

impl Drop for PgBouncer {
    fn drop(&mut self) {
        if let Some(pid) = self.pid() {
            let _ = Command::new("kill")
                .args(["-KILL", &pid.to_string()])
                .stderr(Stdio::null())
                .status();
            // Gone within a second (bounded; the directory goes anyway).
            let proc = PathBuf::from(format!("/proc/{pid}"));
            for _ in 0..100 {
                if !proc.exists() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
