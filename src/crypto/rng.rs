//! Random bytes for nonces and ids, straight from the operating system.
//!
//! Every draw (a nonce, a session id, a store key) is a `getrandom` system
//! call (`rand`'s `SysRng`). No generator state lives in the process, so
//! nothing can be copied out of it and drawn twice:
//!
//! - a `fork`ed child does not repeat its parent's draws (a user-space
//!   generator would be copied with the rest of the memory);
//! - neither does a child forked into a new PID namespace, which a check
//!   of the process id cannot tell from its parent (both are PID 1);
//! - nor two processes restored from one checkpoint (CRIU) or a cloned VM
//!   snapshot: the kernel reseeds its generator when a VM generation
//!   change is reported to it (Linux 5.18 and later, on hypervisors that
//!   provide a VM generation ID).
//!
//! The releases before this one kept a per-thread ChaCha12 generator and
//! compared the process id before each draw, which missed the last two
//! cases (SECURITY.md). The system call costs about 410 ns per 24-byte
//! draw against 147 ns for the `getpid` that check made (`cargo bench
//! --bench nonce -- draw_24_bytes`, one run, side by side): about 0.25 us
//! more per cookie sealed, the price of having no state to copy.

use rand::TryRng as _;
use rand::rngs::SysRng;

/// Fills `buf` from the operating system's generator.
///
/// # Panics
///
/// Panics if the operating system cannot give random bytes: there is no
/// safe way to go on without them (a nonce or id drawn from anything else
/// could repeat). On Linux `getrandom` only fails before the kernel's
/// generator is first seeded at boot, when it blocks instead.
pub(crate) fn fill(buf: &mut [u8]) {
    SysRng
        .try_fill_bytes(buf)
        .expect("the operating system's random number generator failed");
}

/// An array of random bytes from the operating system.
pub(crate) fn array<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    fill(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_differ() {
        let a: [u8; 32] = array();
        let b: [u8; 32] = array();
        assert_ne!(a, b);
        assert_ne!(a, [0; 32]);
    }

    #[test]
    fn threads_draw_different_bytes() {
        let here: [u8; 32] = array();
        let there: [u8; 32] = std::thread::spawn(array).join().unwrap();
        assert_ne!(here, there);
    }

    /// Every byte of a large draw is filled (a short read must not leave a
    /// tail of zeros): 4096 bytes hold every byte value with overwhelming
    /// probability, and no run of 16 zeros.
    #[test]
    fn a_large_draw_is_filled_to_the_end() {
        let mut buf = vec![0u8; 4096];
        fill(&mut buf);
        let mut seen = [false; 256];
        for &b in &buf {
            seen[usize::from(b)] = true;
        }
        assert!(seen.iter().filter(|&&s| s).count() > 240);
        assert!(buf.windows(16).all(|w| w != [0u8; 16]));
        assert_ne!(buf[4080..], [0u8; 16]);
    }
}
