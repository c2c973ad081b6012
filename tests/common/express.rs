//! express-session's side of a cut-over, written from its sources
//! (cookie-signature, the `cookie` package, uid-safe), independently of
//! `examples/import_express.rs`: what the import tests sign and send.

use base64::Engine as _;
use hmac::{Hmac, KeyInit as _, Mac as _};
use sha2::Sha256;

/// cookie-signature's `sign(val, secret)`: `val.` and the base64 HMAC,
/// trailing `=` removed.
pub fn sign(id: &str, secret: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(id.as_bytes());
    let mac = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    format!("{id}.{}", mac.trim_end_matches('='))
}

/// JavaScript's `encodeURIComponent`, which the `cookie` package's
/// `serialize` applies to the value.
pub fn encode_uri_component(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The `Cookie` header a browser sends after express-session's
/// `setcookie(res, 'connect.sid', id, secrets[0])`.
pub fn express_cookie(id: &str, secret: &str) -> String {
    format!(
        "connect.sid={}",
        encode_uri_component(&format!("s:{}", sign(id, secret)))
    )
}

/// express-session's default `genid`: uid-safe's 24 random bytes in
/// base64url.
pub fn express_id() -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 24]>())
}
