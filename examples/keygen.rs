//! Prints a fresh key for `SESSION_KEYS` (32 bytes from the OS, base64url).
//!
//! ```sh
//! export SESSION_KEYS=$(cargo run -q --example keygen)
//! ```

fn main() {
    println!("{}", sealed_session::Key::generate().to_base64url());
}
