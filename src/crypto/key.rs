//! A master key: 32 secret bytes from the OS random number generator.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::TryRng as _;
use subtle::ConstantTimeEq as _;
use zeroize::{Zeroize, Zeroizing};

use crate::crypto::keyring::KeyId;
use crate::error::KeyError;

/// A 32-byte master key.
///
/// The master key never touches a cipher directly: every purpose (sealing
/// cookies, the public key id) gets its own subkey derived with
/// HKDF-SHA256 when the key joins a [`Keyring`](crate::Keyring).
///
/// The text form (for `SESSION_KEYS`) is base64url without padding: 43
/// characters. Anything that does not decode to exactly 32 bytes, and the
/// all-zero key, is refused with a [`KeyError`].
///
/// `Debug` prints only the public key id, never the bytes, and the bytes are
/// zeroized when the key is dropped.
///
/// # Example
///
/// ```
/// use sealed_session::Key;
///
/// let key = Key::generate();
/// let text = key.to_base64url();
/// assert_eq!(text.len(), 43);
/// let again: Key = text.parse()?;
/// assert_eq!(key.id(), again.id());
/// assert!(!format!("{key:?}").contains(&*text));
/// # Ok::<(), sealed_session::KeyError>(())
/// ```
pub struct Key {
    /// Boxed so that moving a `Key` copies a pointer, not the secret: the
    /// one copy is zeroized when the key drops.
    bytes: Box<Zeroizing<[u8; Key::LEN]>>,
}

impl Key {
    /// The length of a key in bytes.
    pub const LEN: usize = 32;

    /// Generates a fresh key from the operating system's random number
    /// generator.
    ///
    /// # Panics
    ///
    /// Panics if the operating system cannot provide random bytes: there is
    /// no safe way to go on without them.
    ///
    /// # Example
    ///
    /// ```
    /// let a = sealed_session::Key::generate();
    /// let b = sealed_session::Key::generate();
    /// assert_ne!(a.id(), b.id());
    /// ```
    pub fn generate() -> Key {
        let mut key = Key::zeroed();
        rand::rngs::SysRng
            .try_fill_bytes(&mut **key.bytes)
            .expect("the operating system's random number generator failed");
        key
    }

    /// Makes a key from raw bytes.
    ///
    /// # Errors
    ///
    /// [`KeyError::AllZero`] for the all-zero key.
    ///
    /// # Example
    ///
    /// ```
    /// use sealed_session::{Key, KeyError};
    ///
    /// assert!(Key::from_bytes([7; 32]).is_ok());
    /// assert_eq!(Key::from_bytes([0; 32]).unwrap_err(), KeyError::AllZero);
    /// ```
    pub fn from_bytes(mut bytes: [u8; Key::LEN]) -> Result<Key, KeyError> {
        let key = Key::copied_from(&bytes);
        bytes.zeroize();
        key
    }

    fn zeroed() -> Key {
        Key {
            bytes: Box::new(Zeroizing::new([0; Key::LEN])),
        }
    }

    /// Copies `bytes` into a new key; the all-zero key is refused.
    fn copied_from(bytes: &[u8; Key::LEN]) -> Result<Key, KeyError> {
        if bool::from(bytes.ct_eq(&[0; Key::LEN])) {
            return Err(KeyError::AllZero);
        }
        let mut key = Key::zeroed();
        key.bytes.copy_from_slice(bytes);
        Ok(key)
    }

    /// The key's text form: base64url without padding (43 characters).
    ///
    /// This is the secret itself: write it to a secret store, never to a
    /// log.
    ///
    /// # Example
    ///
    /// ```
    /// let key = sealed_session::Key::from_bytes([1; 32])?;
    /// assert_eq!(key.to_base64url(), "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE");
    /// # Ok::<(), sealed_session::KeyError>(())
    /// ```
    pub fn to_base64url(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.bytes())
    }

    /// The key's public 4-byte id, as written into every cookie it seals.
    ///
    /// # Example
    ///
    /// ```
    /// let key = sealed_session::Key::from_bytes([1; 32])?;
    /// assert_eq!(key.id().to_string().len(), 8);
    /// # Ok::<(), sealed_session::KeyError>(())
    /// ```
    pub fn id(&self) -> KeyId {
        crate::crypto::keyring::derive_id(self)
    }

    pub(crate) fn bytes(&self) -> &[u8; Key::LEN] {
        &self.bytes
    }
}

impl FromStr for Key {
    type Err = KeyError;

    /// Parses the text form: base64url without padding, surrounding white
    /// space ignored.
    fn from_str(text: &str) -> Result<Key, KeyError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(KeyError::Empty);
        }
        // A correct key is 43 characters; refuse anything far longer before
        // decoding it.
        if text.len() > 64 {
            return Err(KeyError::Length {
                actual: text.len() / 4 * 3,
            });
        }
        let decoded = Zeroizing::new(
            URL_SAFE_NO_PAD
                .decode(text)
                .map_err(|_| KeyError::NotBase64url)?,
        );
        let bytes: &[u8; Key::LEN] =
            decoded
                .as_slice()
                .try_into()
                .map_err(|_| KeyError::Length {
                    actual: decoded.len(),
                })?;
        Key::copied_from(bytes)
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("id", &self.id())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Moving a key copies a pointer, not the secret bytes.
    #[test]
    fn a_key_holds_its_bytes_behind_a_pointer() {
        assert_eq!(size_of::<Key>(), size_of::<usize>());
    }

    /// Bytes and text give the same key, and the all-zero key is refused in
    /// both forms.
    #[test]
    fn bytes_and_text_agree() {
        let bytes: [u8; Key::LEN] = core::array::from_fn(|i| i as u8 + 1);
        let from_bytes = Key::from_bytes(bytes).unwrap();
        let from_text: Key = from_bytes.to_base64url().parse().unwrap();
        assert_eq!(from_text.bytes(), &bytes);
        let zero_text = URL_SAFE_NO_PAD.encode([0u8; Key::LEN]);
        assert_eq!(zero_text.parse::<Key>().unwrap_err(), KeyError::AllZero);
        assert_eq!(
            Key::from_bytes([0; Key::LEN]).unwrap_err(),
            KeyError::AllZero
        );
    }
}
