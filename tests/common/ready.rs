//! Polling a future that never waits, without a runtime. Shared by the
//! tests (through `common`), the benches and the fuzz targets (by path).

/// Polls a future that never waits (no store, or `MemoryStore`) to its end.
pub fn ready<F: std::future::Future>(future: F) -> F::Output {
    use std::task::{Context, Poll, Waker};
    match std::pin::pin!(future).poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("this future was expected to complete without waiting"),
    }
}
