//! Cookie attributes: name, Path, Domain, Secure, HttpOnly, SameSite,
//! Partitioned; their validation and their rendering.

use http::HeaderValue;

use crate::error::ConfigError;

/// The cookie's `SameSite` attribute.
///
/// # Example
///
/// ```
/// use sealed_session::{SameSite, SessionConfig};
///
/// let config = SessionConfig::default().with_same_site(SameSite::Strict);
/// assert_eq!(config.same_site(), SameSite::Strict);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum SameSite {
    /// Sent only with same-site requests.
    Strict,
    /// Sent with same-site requests and top-level cross-site navigations
    /// (the default, and browsers' own default).
    #[default]
    Lax,
    /// Sent with all requests; requires `Secure`.
    None,
}

impl From<SameSite> for cookie::SameSite {
    fn from(value: SameSite) -> cookie::SameSite {
        match value {
            SameSite::Strict => cookie::SameSite::Strict,
            SameSite::Lax => cookie::SameSite::Lax,
            SameSite::None => cookie::SameSite::None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CookieAttributes {
    pub(crate) name: String,
    pub(crate) path: String,
    pub(crate) domain: Option<String>,
    pub(crate) secure: bool,
    pub(crate) http_only: bool,
    pub(crate) same_site: SameSite,
    pub(crate) partitioned: bool,
}

impl Default for CookieAttributes {
    fn default() -> CookieAttributes {
        CookieAttributes {
            name: "__Host-session".to_owned(),
            path: "/".to_owned(),
            domain: None,
            secure: true,
            http_only: true,
            same_site: SameSite::Lax,
            partitioned: false,
        }
    }
}

/// Attributes rendered once when a [`Sessions`](crate::Sessions) is built.
#[derive(Clone, Debug)]
pub(crate) struct Rendered {
    /// Everything after `name=value` (without `Max-Age`), starting `; `.
    pub(crate) suffix: String,
    /// The whole `Set-Cookie` that removes the cookie.
    pub(crate) removal: HeaderValue,
}

/// RFC 6265 `token`: visible ASCII except separators.
fn is_token(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b))
}

fn is_attribute_value(value: &str) -> bool {
    value.bytes().all(|b| b.is_ascii_graphic() || b == b' ') && !value.contains(';')
}

impl CookieAttributes {
    pub(crate) fn validate(&self) -> Result<(), ConfigError> {
        if !is_token(&self.name) {
            return Err(ConfigError::InvalidName);
        }
        if !is_attribute_value(&self.path) {
            return Err(ConfigError::InvalidAttribute { attribute: "path" });
        }
        if self
            .domain
            .as_deref()
            .is_some_and(|d| !is_attribute_value(d) || d.is_empty())
        {
            return Err(ConfigError::InvalidAttribute {
                attribute: "domain",
            });
        }
        // Prefixes are matched case-insensitively by browsers (RFC 6265bis).
        let lower = self.name.to_ascii_lowercase();
        if lower.starts_with("__host-") {
            if !self.secure {
                return Err(ConfigError::HostPrefixNeedsSecure);
            }
            if self.domain.is_some() {
                return Err(ConfigError::HostPrefixWithDomain);
            }
            if self.path != "/" {
                return Err(ConfigError::HostPrefixNeedsRootPath);
            }
        }
        if lower.starts_with("__secure-") && !self.secure {
            return Err(ConfigError::SecurePrefixNeedsSecure);
        }
        if self.same_site == SameSite::None && !self.secure {
            return Err(ConfigError::SameSiteNoneNeedsSecure);
        }
        if self.partitioned && !self.secure {
            return Err(ConfigError::PartitionedNeedsSecure);
        }
        Ok(())
    }

    fn cookie(&self) -> cookie::Cookie<'static> {
        let mut builder = cookie::Cookie::build((self.name.clone(), String::new()))
            .path(self.path.clone())
            .secure(self.secure)
            .http_only(self.http_only)
            .same_site(self.same_site.into())
            .partitioned(self.partitioned);
        if let Some(domain) = &self.domain {
            builder = builder.domain(domain.clone());
        }
        builder.build()
    }

    /// Renders the attributes once, with the `cookie` crate. Call only on
    /// validated attributes.
    pub(crate) fn render(&self) -> Rendered {
        let full = self.cookie().to_string();
        let suffix = full[self.name.len() + 1..].to_owned();
        let mut removal = self.cookie();
        removal.make_removal();
        let removal = HeaderValue::try_from(removal.to_string())
            .expect("validated attributes render to a valid header value");
        Rendered { suffix, removal }
    }
}
