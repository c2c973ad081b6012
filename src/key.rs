//! A master key: 32 secret bytes from the OS random number generator.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::TryRng as _;
use zeroize::{Zeroize, Zeroizing};

use crate::error::KeyError;
use crate::keyring::KeyId;

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
    bytes: Zeroizing<[u8; Key::LEN]>,
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
        let mut bytes = Zeroizing::new([0u8; Key::LEN]);
        rand::rngs::SysRng
            .try_fill_bytes(&mut *bytes)
            .expect("the operating system's random number generator failed");
        Key { bytes }
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
        let key = Key {
            bytes: Zeroizing::new(bytes),
        };
        bytes.zeroize();
        if key.bytes.iter().all(|&b| b == 0) {
            return Err(KeyError::AllZero);
        }
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
        URL_SAFE_NO_PAD.encode(*self.bytes)
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
        crate::keyring::derive_id(self)
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
        let bytes: [u8; Key::LEN] =
            decoded
                .as_slice()
                .try_into()
                .map_err(|_| KeyError::Length {
                    actual: decoded.len(),
                })?;
        Key::from_bytes(bytes)
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Key")
            .field("id", &self.id())
            .finish_non_exhaustive()
    }
}
