//! The model-based lifecycle test on `MemoryStore` (the Redis suite runs
//! the same model on a real server). `MODEL_CASES` sets the number of
//! random sequences (default 256); SECURITY.md gives the longer run.

mod common;
#[path = "common/model.rs"]
mod model;

use std::sync::Arc;

use common::START;
use common::ready;
use model::{Setup, ops, run, setups};
use proptest::prelude::*;
use sealed_session::{ManualClock, MemoryStore};

fn cases() -> u32 {
    std::env::var("MODEL_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(256)
}

fn on_memory(setup: Setup, ops: &[model::Op]) {
    let clock = ManualClock::new(START);
    // Room for about two large sessions: growing ones meet a full store.
    let store = MemoryStore::new()
        .with_clock(clock.clone())
        .with_max_bytes(16_000);
    ready(run(setup, ops, clock, Arc::new(store), false));
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn the_lifecycle_keeps_its_promises(setup in setups(), ops in ops()) {
        on_memory(setup, &ops);
    }
}
