//! A `tracing` writer that keeps what it is given, for tests that read
//! the events the library logs.

use std::io::Write;
use std::sync::{Arc, Mutex, OnceLock};

/// Clones share the same buffer: hand one to the subscriber, read the
/// other.
#[derive(Clone, Default)]
pub struct Capture(Arc<Mutex<Vec<u8>>>);

impl Capture {
    /// Captures the events at `level` and above logged on this thread
    /// until the guard is dropped (plain text, no colours).
    pub fn start(level: tracing::Level) -> (Capture, tracing::subscriber::DefaultGuard) {
        let capture = Capture::default();
        let guard = tracing::subscriber::set_default(capture.subscriber(level));
        (capture, guard)
    }

    /// A subscriber writing the events at `level` and above here.
    pub fn subscriber(&self, level: tracing::Level) -> impl tracing::Subscriber + Send + Sync {
        let writer = self.clone();
        tracing_subscriber::fmt()
            .with_max_level(level)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish()
    }

    /// Everything written so far, as text.
    pub fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

/// The lines of `log` at `level` (`"WARN"`, `"DEBUG"`, ...).
pub fn lines_at<'a>(log: &'a str, level: &str) -> Vec<&'a str> {
    log.lines()
        .filter(|line| line.split_whitespace().nth(1) == Some(level))
        .collect()
}

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The capture of a whole test binary: the global subscriber, at `debug`,
/// set on first use. For binaries of several tests that read logs: a
/// thread-local subscriber per test meets `tracing`'s per-call-site cache
/// (`rejection_event.rs`), so each test reads only the lines that name
/// its own session type or numbers.
pub fn global() -> &'static Capture {
    static LOG: OnceLock<Capture> = OnceLock::new();
    LOG.get_or_init(|| {
        let capture = Capture::default();
        tracing::subscriber::set_global_default(capture.subscriber(tracing::Level::DEBUG))
            .expect("the only global subscriber of this binary");
        capture
    })
}

/// The `warn` lines [`global`] holds that contain every one of `texts`.
pub fn global_warns(texts: &[&str]) -> usize {
    lines_at(&global().text(), "WARN")
        .into_iter()
        .filter(|line| texts.iter().all(|t| line.contains(t)))
        .count()
}
