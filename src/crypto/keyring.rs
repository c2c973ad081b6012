//! The key ring: one primary key that seals, older keys that only open.

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};

use hkdf::Hkdf;
use sha2::Sha256;
use subtle::ConstantTimeEq as _;
use zeroize::{Zeroize as _, Zeroizing};

use crate::crypto::key::Key;
use crate::crypto::xaes::XaesKey;
use crate::error::KeyError;

/// HKDF-SHA256 `info` label for the public key id.
pub(crate) const LABEL_KEY_ID: &[u8] = b"sealed-session v1 key id";
/// HKDF-SHA256 `info` label for the cookie-sealing subkey.
pub(crate) const LABEL_COOKIE: &[u8] = b"sealed-session v1 cookie seal";
/// HKDF-SHA256 `info` label for the store-entry sealing subkey.
pub(crate) const LABEL_STORE: &[u8] = b"sealed-session v1 store seal";
/// HKDF-SHA256 `info` label for the fingerprint that tells a repeated key
/// from a key-id collision (never leaves the process).
pub(crate) const LABEL_FINGERPRINT: &[u8] = b"sealed-session v1 duplicate check";

/// The public 4-byte fingerprint of a key, written in clear into every
/// cookie the key seals so the opener can find the key without trying each.
///
/// It is derived from the master key with HKDF-SHA256 under its own label,
/// so it reveals nothing about the sealing subkey. `Display` is 8 lowercase
/// hex digits.
///
/// # Example
///
/// ```
/// let key = sealed_session::Key::generate();
/// let id = key.id();
/// assert_eq!(id.as_bytes().len(), 4);
/// assert_eq!(format!("{id}").len(), 8);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyId([u8; 4]);

impl KeyId {
    /// The id's four bytes, as they stand in the cookie.
    ///
    /// # Example
    ///
    /// ```
    /// let id = sealed_session::Key::generate().id();
    /// assert_eq!(id.to_string(), id.as_bytes().iter().map(|b| format!("{b:02x}")).collect::<String>());
    /// ```
    pub fn as_bytes(&self) -> &[u8; 4] {
        &self.0
    }

    pub(crate) fn from_bytes(bytes: [u8; 4]) -> KeyId {
        KeyId(bytes)
    }
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}

pub(crate) fn derive_id(key: &Key) -> KeyId {
    id_from(&hkdf(key))
}

fn id_from(hkdf: &Hkdf<Sha256>) -> KeyId {
    let mut id = [0u8; 4];
    hkdf.expand(LABEL_KEY_ID, &mut id)
        .expect("4 bytes is a valid HKDF-SHA256 output length");
    KeyId(id)
}

/// HKDF-SHA256 with the master key as input keying material, no salt.
///
/// The extract step's output, the pseudorandom key, is zeroized here (the
/// `hkdf` crate's `Hkdf::new` drops its copy without wiping it). What is
/// returned is an HMAC keyed with it, whose SHA-256 states and block buffer
/// are zeroized when it drops (`sha2`'s `zeroize` feature).
fn hkdf(key: &Key) -> Hkdf<Sha256> {
    let (mut prk, hkdf) = Hkdf::<Sha256>::extract(None, key.bytes());
    prk.as_mut_slice().zeroize();
    hkdf
}

/// One key of the ring with its subkeys derived once, and its counters.
pub(crate) struct RingKey {
    pub(crate) id: KeyId,
    pub(crate) cookie_cipher: XaesKey,
    pub(crate) store_cipher: XaesKey,
    opens: AtomicU64,
    seals: AtomicU64,
    /// A one-way fingerprint of the master key, to refuse duplicates; the
    /// master key itself is dropped (and zeroized) once derived from. Boxed,
    /// like the ciphers' key material, so that moving a `RingKey` (the ring's
    /// `Vec` growing) copies no secret bytes.
    fingerprint: Box<Zeroizing<[u8; 32]>>,
}

impl RingKey {
    fn new(master: Key) -> RingKey {
        let hkdf = hkdf(&master);
        drop(master);
        let mut fingerprint = Box::new(Zeroizing::new([0u8; 32]));
        hkdf.expand(LABEL_FINGERPRINT, &mut **fingerprint)
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        let subkey = |label: &[u8]| {
            let mut subkey = Zeroizing::new([0u8; 32]);
            hkdf.expand(label, &mut *subkey)
                .expect("32 bytes is a valid HKDF-SHA256 output length");
            XaesKey::new(&subkey)
        };
        RingKey {
            id: id_from(&hkdf),
            cookie_cipher: subkey(LABEL_COOKIE),
            store_cipher: subkey(LABEL_STORE),
            opens: AtomicU64::new(0),
            seals: AtomicU64::new(0),
            fingerprint,
        }
    }

    pub(crate) fn count_open(&self) {
        self.opens.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn count_seal(&self) {
        self.seals.fetch_add(1, Ordering::Relaxed);
    }
}

/// A key ring: the primary key seals every new cookie; older keys only open
/// cookies they sealed before a rotation.
///
/// A cookie opened under an older key is re-sealed under the primary on the
/// same response, so older keys drain by themselves within one session
/// lifetime. The ring counts opens (and seals) per key id; read them with
/// [`Keyring::stats`] to see an old key reach zero before removing it.
///
/// The text form, for the `SESSION_KEYS` environment variable, is the keys'
/// text forms separated by commas, primary first:
/// `SESSION_KEYS=primary,older,...`.
///
/// # Example
///
/// ```
/// use sealed_session::{Key, Keyring};
///
/// let (new, old) = (Key::generate(), Key::generate());
/// let text = format!("{},{}", new.to_base64url(), old.to_base64url());
/// let ring: Keyring = text.parse()?;
/// assert_eq!(ring.primary_id(), new.id());
/// assert_eq!(ring.stats().len(), 2);
/// # Ok::<(), sealed_session::KeyError>(())
/// ```
pub struct Keyring {
    /// `keys[0]` is the primary.
    keys: Vec<RingKey>,
}

impl Keyring {
    /// A ring with one key, the primary.
    ///
    /// # Example
    ///
    /// ```
    /// let key = sealed_session::Key::generate();
    /// let id = key.id();
    /// let ring = sealed_session::Keyring::new(key);
    /// assert_eq!(ring.primary_id(), id);
    /// ```
    pub fn new(primary: Key) -> Keyring {
        Keyring {
            keys: vec![RingKey::new(primary)],
        }
    }

    /// Adds an older key that opens cookies but never seals.
    ///
    /// # Errors
    ///
    /// [`KeyError::Duplicate`] if the key is already in the ring, and
    /// [`KeyError::IdCollision`] in the one-in-four-billion case that a
    /// different key has the same id (generate another key).
    ///
    /// # Example
    ///
    /// ```
    /// use sealed_session::{Key, KeyError, Keyring};
    ///
    /// let ring = Keyring::new(Key::from_bytes([1; 32])?).with_older(Key::from_bytes([2; 32])?)?;
    /// assert_eq!(ring.stats().len(), 2);
    /// let dup = ring.with_older(Key::from_bytes([1; 32])?);
    /// assert_eq!(dup.unwrap_err(), KeyError::Duplicate { position: 3 });
    /// # Ok::<(), KeyError>(())
    /// ```
    pub fn with_older(mut self, key: Key) -> Result<Keyring, KeyError> {
        let position = self.keys.len() + 1;
        let candidate = RingKey::new(key);
        for existing in &self.keys {
            if bool::from(existing.fingerprint.ct_eq(&**candidate.fingerprint)) {
                return Err(KeyError::Duplicate { position });
            }
            if existing.id == candidate.id {
                return Err(KeyError::IdCollision { position });
            }
        }
        self.keys.push(candidate);
        Ok(self)
    }

    /// The id of the key that seals.
    ///
    /// # Example
    ///
    /// ```
    /// let key = sealed_session::Key::generate();
    /// let id = key.id();
    /// assert_eq!(sealed_session::Keyring::new(key).primary_id(), id);
    /// ```
    pub fn primary_id(&self) -> KeyId {
        self.keys[0].id
    }

    /// Per-key figures, primary first: id, whether it is the primary, and
    /// how many cookies it has opened and sealed since this process started.
    ///
    /// An older key whose `opens` stays at zero across all instances for a
    /// while is no longer in use and can be removed.
    ///
    /// # Example
    ///
    /// ```
    /// let ring = sealed_session::Keyring::new(sealed_session::Key::generate());
    /// let stats = ring.stats();
    /// assert!(stats[0].primary);
    /// assert_eq!(stats[0].opens, 0);
    /// ```
    pub fn stats(&self) -> Vec<KeyStats> {
        self.keys
            .iter()
            .enumerate()
            .map(|(i, k)| KeyStats {
                id: k.id,
                primary: i == 0,
                opens: k.opens.load(Ordering::Relaxed),
                seals: k.seals.load(Ordering::Relaxed),
            })
            .collect()
    }

    pub(crate) fn primary(&self) -> &RingKey {
        &self.keys[0]
    }

    pub(crate) fn keys(&self) -> &[RingKey] {
        &self.keys
    }

    /// The position of the key with this id (0 is the primary).
    pub(crate) fn position(&self, id: &[u8]) -> Option<usize> {
        self.keys.iter().position(|k| k.id.0 == id)
    }
}

impl FromStr for Keyring {
    type Err = KeyError;

    /// Parses `primary,older,...`: comma-separated key text forms, primary
    /// first, white space around each ignored.
    ///
    /// Errors name the 1-based position of the offending key.
    fn from_str(text: &str) -> Result<Keyring, KeyError> {
        if text.trim().is_empty() {
            return Err(KeyError::Empty);
        }
        let mut parts = text.split(',').enumerate().map(|(i, part)| {
            part.parse::<Key>().map_err(|e| KeyError::Entry {
                position: i + 1,
                cause: Box::new(e),
            })
        });
        let primary = parts.next().ok_or(KeyError::Empty)??;
        parts.try_fold(Keyring::new(primary), |ring, key| ring.with_older(key?))
    }
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("primary", &self.primary_id())
            .field(
                "older",
                &self.keys[1..].iter().map(|k| k.id).collect::<Vec<_>>(),
            )
            .finish()
    }
}

/// Figures for one key of a [`Keyring`], from [`Keyring::stats`].
///
/// # Example
///
/// ```
/// let ring = sealed_session::Keyring::new(sealed_session::Key::generate());
/// let s = &ring.stats()[0];
/// println!("{} primary={} opens={} seals={}", s.id, s.primary, s.opens, s.seals);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyStats {
    /// The key's public id.
    pub id: KeyId,
    /// Whether this key seals new cookies.
    pub primary: bool,
    /// Cookies this key opened successfully in this process.
    pub opens: u64,
    /// Cookies this key sealed in this process.
    pub seals: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// HKDF's state, an HMAC keyed with the pseudorandom key (two SHA-256
    /// states and a block buffer), is zeroized on drop only with `sha2`'s
    /// `zeroize` feature: without it this does not compile.
    #[test]
    fn hkdf_state_is_zeroized_on_drop() {
        fn zeroized_on_drop<T: zeroize::ZeroizeOnDrop>() {}
        zeroized_on_drop::<<Sha256 as hkdf::hmac::EagerHash>::Core>();
        zeroized_on_drop::<Sha256>();
    }

    /// One HKDF extract now serves every label: the id, fingerprint and
    /// subkeys are those of separate extracts.
    #[test]
    fn one_extract_derives_what_separate_ones_did() {
        let master = || Key::from_bytes(core::array::from_fn(|i| i as u8 * 3)).unwrap();
        let ring_key = RingKey::new(master());
        let separate = Hkdf::<Sha256>::new(None, master().bytes());
        let mut fingerprint = [0u8; 32];
        separate
            .expand(LABEL_FINGERPRINT, &mut fingerprint)
            .unwrap();
        assert_eq!(**ring_key.fingerprint, fingerprint);
        assert_eq!(ring_key.id, master().id());
        let mut subkey = [0u8; 32];
        separate.expand(LABEL_COOKIE, &mut subkey).unwrap();
        let reference = XaesKey::new(&subkey);
        let mut buf = *b"same subkey";
        let (nonce, tag) = reference.seal(b"", &mut buf);
        ring_key
            .cookie_cipher
            .open(&nonce, b"", &mut buf, &tag)
            .unwrap();
        assert_eq!(&buf, b"same subkey");
    }
}
