//! Load generator for the peers' counter servers: keep-alive HTTP/1.1
//! over loopback, checking every answer.
//!
//! ```text
//! load run --port PORT --mode counter|read|none
//!          (--requests N | --seconds S) [--connections C]
//!          [--server-pid PID] [--clk-tck HZ] [--wait SECONDS]
//! load free-ports COUNT
//! ```
//!
//! Each connection is one client with its own session: its first request
//! carries no cookie and obtains the session cookie; every later one sends
//! back the cookie the server last set, like a browser. The checks, per
//! `--mode`:
//!
//! - `counter`: the first answer sets a cookie and says `Visits: 1`, each
//!   next one says one more than the one before;
//! - `read`: the first answer sets a cookie, the next ones say the same
//!   number as the first and set no cookie;
//! - `none`: every answer is `Visits: N` and sets no cookie.
//!
//! Any other answer (or a status other than 200) is an error: the run
//! stops and the program exits with status 1.
//!
//! `--requests N`: N requests in all over the connections, first requests
//! included (for a server started with `--requests N`). `--seconds S`:
//! the first requests, then as many as fit in S seconds, counted from
//! after the first requests (at most 100,000,000 per connection).
//! With `--server-pid`, the server's user + system CPU time over the timed
//! part, from `/proc/PID/stat` (in ticks of `--clk-tck`, default 100: pass
//! `getconf CLK_TCK`). `--wait S` retries the first connection for up to S
//! seconds (a server still starting).
//!
//! Prints one line: `requests=… seconds=… rps=… cpu_us_per_request=…`.
//!
//! `free-ports COUNT` prints COUNT free ports of 127.0.0.1, one a line.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// At most this many requests per connection in a timed run.
const MAX_PER_CONNECTION: u64 = 100_000_000;

fn fail(message: impl std::fmt::Display) -> ! {
    eprintln!("load: {message}");
    std::process::exit(2)
}

fn bad<T>(arg: &str, value: &str) -> T {
    fail(format!("bad value for {arg}: {value}"))
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Counter,
    Read,
    None,
}

struct Options {
    addr: SocketAddr,
    mode: Mode,
    requests: Option<u64>,
    seconds: Option<f64>,
    connections: u64,
    server_pid: Option<u32>,
    clk_tck: f64,
    wait: f64,
}

fn options(mut args: impl Iterator<Item = String>) -> Options {
    let mut port = None;
    let mut mode = None;
    let mut options = Options {
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        mode: Mode::None,
        requests: None,
        seconds: None,
        connections: 1,
        server_pid: None,
        clk_tck: 100.0,
        wait: 0.0,
    };
    while let Some(arg) = args.next() {
        let value = args
            .next()
            .unwrap_or_else(|| fail(format!("{arg} needs a value")));
        match arg.as_str() {
            "--port" => port = Some(value.parse::<u16>().unwrap_or_else(|_| bad(&arg, &value))),
            "--mode" => {
                mode = Some(match value.as_str() {
                    "counter" => Mode::Counter,
                    "read" => Mode::Read,
                    "none" => Mode::None,
                    _ => bad(&arg, &value),
                })
            }
            "--requests" => {
                options.requests = Some(value.parse().unwrap_or_else(|_| bad(&arg, &value)))
            }
            "--seconds" => {
                options.seconds = Some(value.parse().unwrap_or_else(|_| bad(&arg, &value)))
            }
            "--connections" => {
                options.connections = value.parse().unwrap_or_else(|_| bad(&arg, &value))
            }
            "--server-pid" => {
                options.server_pid = Some(value.parse().unwrap_or_else(|_| bad(&arg, &value)))
            }
            "--clk-tck" => options.clk_tck = value.parse().unwrap_or_else(|_| bad(&arg, &value)),
            "--wait" => options.wait = value.parse().unwrap_or_else(|_| bad(&arg, &value)),
            _ => fail(format!("unknown argument {arg}")),
        }
    }
    options
        .addr
        .set_port(port.unwrap_or_else(|| fail("--port is required")));
    options.mode = mode.unwrap_or_else(|| fail("--mode is required"));
    if options.connections == 0 {
        fail("--connections must be at least 1");
    }
    match (options.requests, options.seconds) {
        (Some(n), None) if n >= options.connections => {}
        (Some(_), None) => fail("--requests must be at least --connections"),
        (None, Some(s)) if s > 0.0 && s <= 3600.0 => {}
        (None, Some(_)) => fail("--seconds must be in (0, 3600]"),
        _ => fail("give one of --requests and --seconds"),
    }
    options
}

/// One keep-alive connection and the session it carries.
struct Client {
    stream: TcpStream,
    host: String,
    mode: Mode,
    /// `name=value` of each cookie the server set, in order.
    cookies: Vec<(String, String)>,
    /// The number the last answer said.
    last: Option<u64>,
    request: Vec<u8>,
    buffer: Vec<u8>,
}

impl Client {
    async fn connect(addr: SocketAddr, mode: Mode, wait: f64) -> Client {
        let deadline = Instant::now() + Duration::from_secs_f64(wait);
        let stream = loop {
            match TcpStream::connect(addr).await {
                Ok(stream) => break stream,
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(50)).await
                }
                Err(e) => fail(format!("cannot connect to {addr}: {e}")),
            }
        };
        stream.set_nodelay(true).unwrap();
        Client {
            stream,
            host: addr.to_string(),
            mode,
            cookies: Vec::new(),
            last: None,
            request: Vec::with_capacity(1024),
            buffer: Vec::with_capacity(8192),
        }
    }

    /// One request and its answer, checked.
    async fn request(&mut self) -> Result<(), String> {
        let first = self.last.is_none();
        self.request.clear();
        self.request.extend_from_slice(b"GET / HTTP/1.1\r\nHost: ");
        self.request.extend_from_slice(self.host.as_bytes());
        self.request.extend_from_slice(b"\r\n");
        if !self.cookies.is_empty() {
            self.request.extend_from_slice(b"Cookie: ");
            for (i, (name, value)) in self.cookies.iter().enumerate() {
                if i > 0 {
                    self.request.extend_from_slice(b"; ");
                }
                self.request.extend_from_slice(name.as_bytes());
                self.request.push(b'=');
                self.request.extend_from_slice(value.as_bytes());
            }
            self.request.extend_from_slice(b"\r\n");
        }
        self.request.extend_from_slice(b"\r\n");
        self.stream
            .write_all(&self.request)
            .await
            .map_err(|e| format!("write: {e}"))?;

        // Read until the head is complete, then the body by Content-Length.
        let (status, head_len, body_len, set_cookies) = loop {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut response = httparse::Response::new(&mut headers);
            match response.parse(&self.buffer) {
                Ok(httparse::Status::Complete(head_len)) => {
                    let mut body_len = None;
                    let mut set_cookies = Vec::new();
                    for header in response.headers.iter() {
                        if header.name.eq_ignore_ascii_case("content-length") {
                            body_len = std::str::from_utf8(header.value)
                                .ok()
                                .and_then(|v| v.trim().parse::<usize>().ok());
                        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
                            return Err("chunked answer: not supported".into());
                        } else if header.name.eq_ignore_ascii_case("set-cookie") {
                            let value = std::str::from_utf8(header.value)
                                .map_err(|_| "Set-Cookie is not UTF-8")?;
                            let pair = value.split(';').next().unwrap_or("");
                            let (name, value) = pair
                                .split_once('=')
                                .ok_or_else(|| format!("bad Set-Cookie {value}"))?;
                            set_cookies.push((name.trim().to_owned(), value.trim().to_owned()));
                        }
                    }
                    let body_len = body_len.ok_or("answer without Content-Length")?;
                    break (response.code.unwrap_or(0), head_len, body_len, set_cookies);
                }
                Ok(httparse::Status::Partial) => self.fill().await?,
                Err(e) => return Err(format!("bad answer: {e}")),
            }
        };
        while self.buffer.len() < head_len + body_len {
            self.fill().await?;
        }
        let body = &self.buffer[head_len..head_len + body_len];
        let seen = std::str::from_utf8(body)
            .ok()
            .and_then(|t| t.trim().strip_prefix("Visits: "))
            .and_then(|n| n.parse::<u64>().ok());
        let body_text = String::from_utf8_lossy(body).into_owned();
        self.buffer.drain(..head_len + body_len);

        if status != 200 {
            return Err(format!("status {status}: {body_text:?}"));
        }
        let seen = seen.ok_or_else(|| format!("unexpected body {body_text:?}"))?;
        let set = !set_cookies.is_empty();
        match self.mode {
            Mode::None if set => return Err("a server without sessions set a cookie".into()),
            Mode::None => {}
            Mode::Counter | Mode::Read if first && !set => {
                return Err("the first answer set no session cookie".into());
            }
            Mode::Counter => {
                let expected = self.last.map_or(1, |n| n + 1);
                if seen != expected {
                    return Err(format!("counter said {seen}, expected {expected}"));
                }
            }
            Mode::Read => {
                if let Some(last) = self.last {
                    if seen != last {
                        return Err(format!("read-only counter said {seen}, expected {last}"));
                    }
                    if set {
                        return Err("a read-only request set a cookie".into());
                    }
                }
            }
        }
        self.last = Some(seen);
        for (name, value) in set_cookies {
            match self.cookies.iter_mut().find(|(n, _)| *n == name) {
                Some(cookie) => cookie.1 = value,
                None => self.cookies.push((name, value)),
            }
        }
        Ok(())
    }

    async fn fill(&mut self) -> Result<(), String> {
        let mut chunk = [0u8; 8192];
        let n = self
            .stream
            .read(&mut chunk)
            .await
            .map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err("the server closed the connection".into());
        }
        self.buffer.extend_from_slice(&chunk[..n]);
        Ok(())
    }
}

/// The user + system CPU time of `pid` in seconds, from `/proc/PID/stat`.
fn cpu_seconds(pid: u32, clk_tck: f64) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .unwrap_or_else(|e| fail(format!("cannot read /proc/{pid}/stat: {e}")));
    // `pid (comm) state ppid ...`: utime and stime are fields 14 and 15,
    // the 12th and 13th after the closing parenthesis.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks = |i: usize| -> f64 {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or_else(|| fail(format!("unexpected /proc/{pid}/stat"))) as f64
    };
    (ticks(11) + ticks(12)) / clk_tck
}

async fn run(options: Options) -> Result<(), String> {
    let mut clients = Vec::new();
    for i in 0..options.connections {
        let wait = if i == 0 { options.wait } else { 0.0 };
        let mut client = Client::connect(options.addr, options.mode, wait).await;
        client.request().await?;
        clients.push(client);
    }
    // Requests left for each connection after its first.
    let per_connection: Vec<u64> = match options.requests {
        Some(n) => {
            let rest = n - options.connections;
            (0..options.connections)
                .map(|i| rest / options.connections + u64::from(i < rest % options.connections))
                .collect()
        }
        None => vec![MAX_PER_CONNECTION; clients.len()],
    };
    let cpu_before = options
        .server_pid
        .map(|pid| cpu_seconds(pid, options.clk_tck));
    let started = Instant::now();
    let deadline = options
        .seconds
        .map(|s| started + Duration::from_secs_f64(s));
    let tasks: Vec<_> = clients
        .into_iter()
        .zip(per_connection)
        .map(|(mut client, count)| {
            tokio::spawn(async move {
                let mut done = 0u64;
                while done < count {
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        break;
                    }
                    client.request().await?;
                    done += 1;
                }
                Ok::<u64, String>(done)
            })
        })
        .collect();
    let mut requests = 0;
    let mut error = None;
    for task in tasks {
        match task.await.map_err(|e| e.to_string()).and_then(|r| r) {
            Ok(n) => requests += n,
            Err(e) => error = error.or(Some(e)),
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    if let Some(e) = error {
        return Err(e);
    }
    let cpu = options
        .server_pid
        .zip(cpu_before)
        .map(|(pid, before)| cpu_seconds(pid, options.clk_tck) - before);
    let cpu_us = cpu.map_or_else(
        || "-".to_owned(),
        |cpu| format!("{:.3}", cpu * 1e6 / requests.max(1) as f64),
    );
    println!(
        "requests={requests} seconds={seconds:.3} rps={:.0} cpu_us_per_request={cpu_us}",
        requests as f64 / seconds
    );
    Ok(())
}

fn main() {
    let mut args = std::env::args().skip(1);
    match args.next().as_deref() {
        Some("run") => {
            let options = options(args);
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            if let Err(e) = runtime.block_on(run(options)) {
                eprintln!("load: FAILED: {e}");
                std::process::exit(1);
            }
        }
        Some("free-ports") => {
            let count: usize = args
                .next()
                .and_then(|c| c.parse().ok())
                .filter(|&c| c > 0 && c <= 1000)
                .unwrap_or_else(|| fail("usage: load free-ports COUNT (1 to 1000)"));
            // Held together so that the ports differ, then released.
            let listeners: Vec<_> = (0..count)
                .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
                .collect();
            for listener in &listeners {
                println!("{}", listener.local_addr().unwrap().port());
            }
        }
        _ => fail("usage: load run ... | load free-ports COUNT (see the source's header)"),
    }
}
