//! A real, throw-away PostgreSQL cluster for tests: `initdb` into a
//! temporary directory, `pg_ctl` on a free port of 127.0.0.1 (its socket
//! in that directory too), stopped and removed on drop. Run as the
//! `postgres` user when the tests run as root (initdb refuses root).
//! Needs Debian's `postgresql` package (`.ci/run` installs it): `initdb`
//! and `pg_ctl` on the PATH or under /usr/lib/postgresql/*/bin.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, Weak};

pub struct PostgresServer {
    pub port: u16,
    dir: PathBuf,
    bin: PathBuf,
    as_postgres: bool,
    /// `fsync` on, as in production (the comparison); off for the tests,
    /// which never outlive the machine.
    durable: bool,
}

/// The directory holding `initdb` and `pg_ctl`: the PATH first, then the
/// newest /usr/lib/postgresql/*/bin.
fn bin_dir() -> PathBuf {
    let on_path = std::env::var_os("PATH")
        .and_then(|path| std::env::split_paths(&path).find(|dir| dir.join("initdb").is_file()));
    if let Some(dir) = on_path {
        return dir;
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin).expect(
        "initdb not found on the PATH nor in /usr/lib/postgresql/*/bin: \
         apt-get install postgresql (.ci/run does)",
    )
}

/// Whether the tests run as root (servers then run as `postgres`).
pub fn running_as_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| out.stdout.trim_ascii() == b"0")
}

impl PostgresServer {
    /// A new cluster, started, on a free port, with `fsync=off`.
    pub fn start() -> PostgresServer {
        PostgresServer::launch(false)
    }

    /// A new cluster with PostgreSQL's durable defaults (`fsync=on`).
    pub fn start_durable() -> PostgresServer {
        PostgresServer::launch(true)
    }

    fn launch(durable: bool) -> PostgresServer {
        let dir = std::env::temp_dir().join(format!(
            "sealed-session-pg-{}-{}",
            std::process::id(),
            rand::random::<u64>()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let server = PostgresServer {
            port,
            dir,
            bin: bin_dir(),
            as_postgres: running_as_root(),
            durable,
        };
        if server.as_postgres {
            let owned = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&server.dir)
                .status()
                .unwrap();
            assert!(owned.success(), "chown of the cluster directory failed");
        }
        let data = server.data();
        server.run(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
                "-U",
                "postgres",
                "--auth=trust",
                "--no-sync",
                "--no-locale",
                "-E",
                "UTF8",
            ],
        );
        server.start_again();
        server
    }

    /// The cluster this test binary shares: started by the first caller,
    /// stopped and removed when the last holder drops it. Tests isolate
    /// themselves with a table of their own.
    pub fn shared() -> Arc<PostgresServer> {
        static SHARED: Mutex<Weak<PostgresServer>> = Mutex::new(Weak::new());
        let mut shared = SHARED.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(server) = shared.upgrade() {
            return server;
        }
        let server = Arc::new(PostgresServer::start());
        *shared = Arc::downgrade(&server);
        server
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    /// Runs one of the cluster's programs (as `postgres` when root).
    fn run(&self, program: &str, args: &[&str]) -> bool {
        let path = self.bin.join(program);
        let mut command = if self.as_postgres {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&path);
            c
        } else {
            Command::new(&path)
        };
        command
            .args(args)
            .current_dir(&self.dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap_or_else(|e| panic!("{} could not run: {e}", path.display()))
            .success()
    }

    fn pg_ctl(&self, args: &[&str]) -> bool {
        let data = self.data();
        let mut all = vec!["-D", data.to_str().unwrap()];
        all.extend_from_slice(args);
        self.run("pg_ctl", &all)
    }

    /// Starts the server (again) on the same port; returns once it
    /// accepts connections (`pg_ctl -w`, at most 30 s).
    pub fn start_again(&self) {
        let options = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories={} -c fsync={}",
            self.port,
            self.dir.display(),
            if self.durable { "on" } else { "off" }
        );
        let log = self.dir.join("log");
        let started = self.pg_ctl(&[
            "-l",
            log.to_str().unwrap(),
            "-o",
            &options,
            "-w",
            "-t",
            "30",
            "start",
        ]);
        assert!(
            started,
            "postgres did not start on port {}: see {}",
            self.port,
            log.display()
        );
    }

    /// Stops the server (`-m fast`: transactions rolled back, connections
    /// cut, data kept).
    pub fn stop(&self) {
        self.pg_ctl(&["-m", "fast", "-w", "stop"]);
    }

    /// Stops the server as a crash would (`-m immediate`: every process
    /// quits at once; the next start recovers from the log).
    pub fn crash(&self) {
        self.pg_ctl(&["-m", "immediate", "-w", "stop"]);
    }

    /// The process id of the running server (the postmaster), from its
    /// `postmaster.pid`.
    pub fn pid(&self) -> Option<u32> {
        let text = std::fs::read_to_string(self.data().join("postmaster.pid")).ok()?;
        text.lines().next()?.trim().parse().ok()
    }
}

impl Drop for PostgresServer {
    fn drop(&mut self) {
        self.crash();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
