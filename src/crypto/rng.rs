//! Random bytes for nonces and ids, fork-safe.
//!
//! Nonces, session ids and store ids come from a per-thread ChaCha12
//! generator (`rand`'s `StdRng`) seeded from the operating system. A
//! `getrandom` system call per seal costs about 250 ns on our machine,
//! more than sealing a small session; the user-space stream costs a few ns.
//! Keys come from the operating system directly
//! ([`Key::generate`](crate::Key::generate)).
//!
//! The generator is drawn afresh from the operating system:
//!
//! - after [`RESEED_AFTER`] bytes of output, as `rand`'s `ThreadRng` does,
//!   so a copy of the state read from memory reveals at most the output of
//!   one seed, before and after the copy;
//! - whenever the process id differs from the one it was seeded in. After
//!   `fork` the child holds a copy of the parent's memory, generator
//!   included: without this check both would draw the same nonces, and two
//!   messages under one XAES-256-GCM nonce lose confidentiality and
//!   authenticity. `rand`'s `ThreadRng` does not check (its documentation
//!   asks the caller to reseed after `fork`), which is why this module keeps
//!   its own generator.
//!
//! The check is one `getpid` system call per draw (glibc has not cached the
//! process id since 2.25): about 100 ns on our machine
//! (`draw_24_bytes/process_id` in `cargo bench --bench nonce`). It cannot
//! be made less often: a fork between two checks would go unseen. What it
//! does not cover: another process with the id of the one that seeded the
//! state. `fork` gives a child its parent's id only across PID namespaces
//! (PID 1 forking into a new namespace: a known gap, SECURITY.md); else
//! it would take the seeding process to exit and a descendant that inherited the state,
//! without drawing from it, to be given that id again after the pid space
//! wrapped around. `rand`'s advice to reseed `ThreadRng` right after `fork`
//! needs a hook in the fork path (`pthread_atfork`), which is `unsafe`.

use std::cell::RefCell;

use rand::rngs::{StdRng, SysRng};
use rand::{Rng as _, SeedableRng as _};

/// Bytes a generator gives before it is reseeded from the operating system.
const RESEED_AFTER: usize = 64 * 1024;

struct Generator {
    /// The process id the generator was seeded in.
    pid: u32,
    /// Bytes left before the next reseed.
    left: usize,
    rng: StdRng,
}

impl Generator {
    fn from_os(pid: u32) -> Generator {
        let rng = StdRng::try_from_rng(&mut SysRng)
            .expect("the operating system's random number generator failed");
        Generator {
            pid,
            left: RESEED_AFTER,
            rng,
        }
    }
}

thread_local! {
    static GENERATOR: RefCell<Option<Generator>> = const { RefCell::new(None) };
}

/// Fills `buf` from the per-thread CSPRNG, reseeded from the operating
/// system first if the process id changed (a fork) or the generator has
/// given [`RESEED_AFTER`] bytes.
///
/// # Panics
///
/// Panics if the operating system cannot provide a seed: there is no safe
/// way to go on without one.
pub(crate) fn fill(buf: &mut [u8]) {
    let pid = process_id();
    GENERATOR.with_borrow_mut(|slot| {
        let generator = match slot {
            Some(g) if g.pid == pid && g.left > 0 => g,
            _ => slot.insert(Generator::from_os(pid)),
        };
        generator.left = generator.left.saturating_sub(buf.len());
        generator.rng.fill_bytes(buf);
    });
}

/// An array of random bytes from the per-thread CSPRNG.
pub(crate) fn array<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    fill(&mut out);
    out
}

/// The id of this process; in tests, as this thread's simulated forks left
/// it.
pub(crate) fn process_id() -> u32 {
    let pid = std::process::id();
    #[cfg(test)]
    let pid = pid ^ testing::FORKS.get();
    pid
}

/// Test seams: a simulated `fork` and a generator with a known seed.
#[cfg(test)]
pub(crate) mod testing {
    use std::cell::Cell;

    use super::*;

    thread_local! {
        pub(super) static FORKS: Cell<u32> = const { Cell::new(0) };
    }

    /// Makes this thread see the process id a forked child would: another
    /// one, with the generator's memory unchanged.
    pub(crate) fn fork() {
        FORKS.set(FORKS.get().wrapping_add(1));
    }

    /// Replaces this thread's generator with one seeded with `seed`, as if
    /// seeded from the operating system in the current process.
    pub(crate) fn install(seed: [u8; 32]) {
        let generator = Generator {
            pid: process_id(),
            left: RESEED_AFTER,
            rng: StdRng::from_seed(seed),
        };
        GENERATOR.set(Some(generator));
    }

    /// The first `N` bytes a generator seeded with `seed` gives.
    pub(crate) fn stream<const N: usize>(seed: [u8; 32]) -> [u8; N] {
        let mut out = [0u8; N];
        StdRng::from_seed(seed).fill_bytes(&mut out);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::testing::{fork, install, stream};
    use super::*;

    const SEED: [u8; 32] = [9; 32];

    #[test]
    fn draws_continue_the_installed_stream_while_the_process_id_stays() {
        install(SEED);
        let mut drawn = [0u8; 48];
        fill(&mut drawn[..16]);
        fill(&mut drawn[16..]);
        assert_eq!(drawn, stream::<48>(SEED));
    }

    /// A forked child holds the parent's generator state; its next draw
    /// must not be the one the parent makes from that same state.
    #[test]
    fn a_changed_process_id_reseeds_from_the_os() {
        install(SEED);
        let parent: [u8; 32] = array();
        assert_eq!(parent, stream::<32>(SEED));

        install(SEED);
        fork();
        let child: [u8; 32] = array();
        assert_ne!(child, parent);
        // Seeded once for the new process id, then it continues.
        let seeded_in = GENERATOR.with_borrow(|g| g.as_ref().map(|g| g.pid));
        assert_eq!(seeded_in, Some(process_id()));
    }

    #[test]
    fn reseeds_after_64_kib() {
        install(SEED);
        let mut drawn = vec![0u8; RESEED_AFTER + 32];
        for chunk in drawn.chunks_mut(32) {
            fill(chunk);
        }
        let mut expected = vec![0u8; RESEED_AFTER + 32];
        StdRng::from_seed(SEED).fill_bytes(&mut expected);
        assert_eq!(drawn[..RESEED_AFTER], expected[..RESEED_AFTER]);
        assert_ne!(drawn[RESEED_AFTER..], expected[RESEED_AFTER..]);
    }

    #[test]
    fn threads_draw_different_streams() {
        let here: [u8; 32] = array();
        let there: [u8; 32] = std::thread::spawn(array).join().unwrap();
        assert_ne!(here, there);
    }
}
