//! [`Schema`]: the version of a session type, and how values of its older
//! versions are converted, so that a release that changes the type logs
//! nobody out.

use std::any::{Any, TypeId};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{ConfigError, SaveError};
use crate::rejection::Rejection;
use crate::schema::trailing::{self, Undecodable};

type Step = Box<dyn Fn(&[u8]) -> Result<Vec<u8>, Unread> + Send + Sync>;
type Downgrade<T> = Box<dyn Fn(&T) -> Result<Vec<u8>, postcard::Error> + Send + Sync>;

/// The schema of a session type `T`: its version, how a value of each
/// older version converts to the next one, and (during a rolling deploy)
/// which version to write. Registered with
/// [`SessionConfig::with_schema`](crate::SessionConfig::with_schema).
///
/// A session type without a registered schema is at version 0, and its
/// values are sealed in wire format version 1, as before schemas
/// existed. With one, the value is sealed with its schema version (wire
/// format version 2), and a value of an older version is converted step
/// by step on load (`1 → 2 → 3`) and re-sealed at the version written on
/// that response, like a cookie under an older key. What happens to each
/// kind of value:
///
/// | the cookie's schema | on load | on save |
/// |---|---|---|
/// | the current version | decoded | written at the write version (or kept at its own, if newer) |
/// | older, with migrations to the current one | converted step by step | re-sealed at the write version |
/// | older, no migration | new session, [`Rejection::OldSchema`] | overwritten |
/// | newer than the current | new session, [`Rejection::NewerSchema`] | **refused**: [`SaveError::NewerSchema`], the browser keeps its cookie |
///
/// A migration that returns an error gives [`Rejection::MigrationFailed`];
/// bytes that do not decode as the type registered for their version give
/// [`Rejection::Incompatible`]. A conversion function must not panic.
///
/// **Fields added at the end** of the session struct with
/// `#[serde(default)]` need no version at all: values encoded before
/// they existed decode, the new fields taking their defaults (see the
/// README's "Changing the session type").
///
/// **Rolling deploys** take two phases, like a key rotation: first every
/// instance reads both versions but writes the old one
/// ([`write_as`](Schema::write_as)); once every instance runs that, the
/// next release drops `write_as` and writes the new version. An instance
/// never writes a session back at an older schema than the one it was
/// loaded at.
///
/// # Example
///
/// ```
/// use sealed_session::{Schema, SessionConfig};
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Serialize, Deserialize)]
/// struct LoginV1 { user: String, count: u64 }
///
/// #[derive(Default, Serialize, Deserialize)]
/// struct Login { user: String, visits: u64, theme: Option<String> }
///
/// // Version 2 renamed `count`; version 1 cookies convert on load.
/// let schema = Schema::<Login>::new(2).migrate(1, |old: LoginV1| Login {
///     user: old.user,
///     visits: old.count,
///     theme: None,
/// });
/// let config = SessionConfig::default().with_schema(schema);
/// # let _ = config;
/// ```
pub struct Schema<T> {
    version: u32,
    steps: BTreeMap<u32, Step>,
    write: Option<(u32, Downgrade<T>)>,
    counts: Counts,
}

/// Opens per schema version.
#[derive(Default)]
struct Counts {
    /// The oldest version counted.
    oldest: u32,
    /// One counter per known version, from `oldest` to the current.
    opens: Vec<AtomicU64>,
    newer: AtomicU64,
}

impl<T> Schema<T> {
    /// The schema of `T` at `version` (1 or more: 0 is the version of a
    /// type without a schema).
    ///
    /// # Example
    ///
    /// ```
    /// let schema = sealed_session::Schema::<u32>::new(3);
    /// assert_eq!(schema.version(), 3);
    /// assert_eq!(schema.write_version(), 3);
    /// ```
    pub fn new(version: u32) -> Schema<T> {
        Schema {
            version,
            steps: BTreeMap::new(),
            write: None,
            counts: Counts::default(),
        }
    }

    /// The current version: what loads end up as.
    ///
    /// # Example
    ///
    /// ```
    /// assert_eq!(sealed_session::Schema::<u32>::new(2).version(), 2);
    /// ```
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The version written on responses: the current one, or the one
    /// [`write_as`](Schema::write_as) names.
    ///
    /// # Example
    ///
    /// ```
    /// let schema = sealed_session::Schema::<u64>::new(2).write_as(1, |v: &u64| *v as u32);
    /// assert_eq!(schema.write_version(), 1);
    /// ```
    pub fn write_version(&self) -> u32 {
        self.write.as_ref().map_or(self.version, |(v, _)| *v)
    }

    /// Registers the conversion of a value of version `from` (type `Old`)
    /// to version `from + 1` (type `New`, which is `T` when `from + 1` is
    /// the current version). Chains (`0 → 1 → 2`) are one call per step.
    /// `Old` decodes like the session type itself: fields added at its
    /// end take their defaults.
    ///
    /// # Example
    ///
    /// ```
    /// use sealed_session::Schema;
    /// // Version 0 stored a count as u32, version 1 as u64, version 2 as a pair.
    /// let schema = Schema::<(u64, bool)>::new(2)
    ///     .migrate(0, |old: u32| u64::from(old))
    ///     .migrate(1, |old: u64| (old, false));
    /// # let _ = schema;
    /// ```
    pub fn migrate<Old, New>(
        self,
        from: u32,
        convert: impl Fn(Old) -> New + Send + Sync + 'static,
    ) -> Schema<T>
    where
        Old: DeserializeOwned,
        New: Serialize,
    {
        self.try_migrate(from, move |old: Old| {
            Ok::<New, std::convert::Infallible>(convert(old))
        })
    }

    /// [`migrate`](Schema::migrate) with a conversion that can fail: an
    /// error refuses the cookie with [`Rejection::MigrationFailed`] (a new
    /// session), and its message is logged at `debug`.
    ///
    /// # Example
    ///
    /// ```
    /// use sealed_session::Schema;
    /// let schema = Schema::<u8>::new(1).try_migrate(0, |old: u32| u8::try_from(old));
    /// # let _ = schema;
    /// ```
    pub fn try_migrate<Old, New, E>(
        mut self,
        from: u32,
        convert: impl Fn(Old) -> Result<New, E> + Send + Sync + 'static,
    ) -> Schema<T>
    where
        Old: DeserializeOwned,
        New: Serialize,
        E: fmt::Display,
    {
        let step: Step = Box::new(move |bytes| {
            let old: Old = trailing::decode_checked(bytes).map_err(|e| Unread::at(from, e))?;
            let new = convert(old).map_err(|error| {
                tracing::debug!(%error, from, "session schema migration failed");
                Unread::from(Rejection::MigrationFailed(from))
            })?;
            postcard::to_allocvec(&new).map_err(|_| Unread::from(Rejection::MigrationFailed(from)))
        });
        self.steps.insert(from, step);
        self
    }

    /// Phase 1 of a rolling deploy: write `version` (older than the
    /// current one), converting the value with `convert` on every save,
    /// while every instance still reads it. A session loaded at a newer
    /// version than this is written back at its own version, never lower;
    /// the next release drops this call. `version` must have migrations
    /// up to the current version, so that this instance reads what it
    /// writes.
    ///
    /// # Example
    ///
    /// ```
    /// use sealed_session::Schema;
    /// use serde::{Deserialize, Serialize};
    ///
    /// #[derive(Serialize, Deserialize)]
    /// struct LoginV1 { user: String }
    /// #[derive(Default, Serialize, Deserialize)]
    /// struct Login { user: String, theme: Option<String> }
    ///
    /// let phase_1 = Schema::<Login>::new(2)
    ///     .migrate(1, |old: LoginV1| Login { user: old.user, theme: None })
    ///     .write_as(1, |login: &Login| LoginV1 { user: login.user.clone() });
    /// assert_eq!(phase_1.write_version(), 1);
    /// ```
    pub fn write_as<Old: Serialize>(
        mut self,
        version: u32,
        convert: impl Fn(&T) -> Old + Send + Sync + 'static,
    ) -> Schema<T> {
        let downgrade: Downgrade<T> = Box::new(move |value| postcard::to_allocvec(&convert(value)));
        self.write = Some((version, downgrade));
        self
    }

    /// Checks the chain and sets up the counters (at `Sessions::new`).
    fn check(&self) -> Result<(), ConfigError> {
        let problem = |what: String| {
            Err(ConfigError::Schema {
                type_name: std::any::type_name::<T>(),
                problem: what,
            })
        };
        if self.version == 0 {
            return problem("the version must be 1 or more (0 is a type without a schema)".into());
        }
        if let Some((&from, _)) = self.steps.range(self.version..).next() {
            return problem(format!(
                "a migration from version {from} is not older than the current version {}",
                self.version
            ));
        }
        for &from in self.steps.keys() {
            if let Some(gap) = (from + 1..self.version).find(|v| !self.steps.contains_key(v)) {
                return problem(format!(
                    "no migration from version {gap}: version {from} cannot reach {}",
                    self.version
                ));
            }
        }
        if let Some((write, _)) = &self.write {
            if *write >= self.version {
                return problem(format!(
                    "write_as({write}) must name a version older than the current {}",
                    self.version
                ));
            }
            if !self.steps.contains_key(write) {
                return problem(format!(
                    "write_as({write}) needs a migration from version {write}, so that what is written can be read"
                ));
            }
        }
        Ok(())
    }

    /// Converts `bytes` of version `from` (older than the current) to the
    /// current version's bytes.
    fn upgrade(&self, from: u32, bytes: &[u8]) -> Result<Vec<u8>, Unread> {
        let mut bytes = bytes.to_vec();
        for version in from..self.version {
            let step = self
                .steps
                .get(&version)
                .ok_or(Unread::from(Rejection::OldSchema(from)))?;
            bytes = step(&bytes)?;
        }
        Ok(bytes)
    }
}

impl<T> fmt::Debug for Schema<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Schema")
            .field("type", &std::any::type_name::<T>())
            .field("version", &self.version)
            .field("write_version", &self.write_version())
            .field("migrations_from", &self.steps.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// Opens per schema version of one session type, from
/// [`Sessions::schema_stats`](crate::Sessions::schema_stats): an operator
/// waits for an old version's count to stop growing (or for one absolute
/// timeout) before removing its migration, as for an old key.
///
/// # Example
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// use sealed_session::{Key, Keyring, Schema, SessionConfig, Sessions};
///
/// let config = SessionConfig::default().with_schema(Schema::<u64>::new(1).migrate(0, |v: u32| u64::from(v)));
/// let sessions = Sessions::new(Keyring::new(Key::generate()), config).unwrap();
/// let stats = sessions.schema_stats();
/// assert_eq!(stats[0].version, 1);
/// assert_eq!(stats[0].opens, vec![(0, 0), (1, 0)]);
/// # }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SchemaStats {
    /// The session type (`std::any::type_name`).
    pub type_name: &'static str,
    /// Its current version.
    pub version: u32,
    /// The version written on responses.
    pub write_version: u32,
    /// `(version, sessions opened from a value of that version)`, for
    /// each version from the oldest with a migration to the current one.
    pub opens: Vec<(u32, u64)>,
    /// Cookies refused because their schema is newer than this
    /// instance's (a rolling deploy out of order).
    pub newer: u64,
}

/// Why a value did not read as the session type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Unread {
    /// The refusal a load gives.
    pub(crate) reason: Rejection,
    /// For bytes that did not decode: the schema version whose type they
    /// were decoded as, and why they did not.
    pub(crate) problem: Option<(u32, Undecodable)>,
}

impl Unread {
    /// Bytes that did not decode as the type of schema version `version`.
    fn at(version: u32, problem: Undecodable) -> Unread {
        Unread {
            reason: Rejection::Incompatible,
            problem: Some((version, problem)),
        }
    }
}

impl From<Rejection> for Unread {
    fn from(reason: Rejection) -> Unread {
        Unread {
            reason,
            problem: None,
        }
    }
}

impl fmt::Display for Unread {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.problem {
            Some((version, problem)) => write!(
                f,
                "does not decode as the type of schema version {version}: {problem}"
            ),
            None => write!(f, "refused as {}", self.reason),
        }
    }
}

/// A [`Schema`] of some type, as the configuration holds it.
pub(crate) trait AnySchema: Send + Sync {
    fn as_any(&self) -> &dyn Any;
    fn session_type(&self) -> TypeId;
    fn type_name(&self) -> &'static str;
    fn check(&self) -> Result<(), ConfigError>;
    fn stats(&self) -> SchemaStats;
}

impl<T: 'static> AnySchema for Schema<T> {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn session_type(&self) -> TypeId {
        TypeId::of::<T>()
    }

    fn type_name(&self) -> &'static str {
        std::any::type_name::<T>()
    }

    fn check(&self) -> Result<(), ConfigError> {
        Schema::check(self)
    }

    fn stats(&self) -> SchemaStats {
        let oldest = self.steps.keys().next().copied().unwrap_or(self.version);
        SchemaStats {
            type_name: std::any::type_name::<T>(),
            version: self.version,
            write_version: self.write_version(),
            opens: (oldest..=self.version)
                .map(|v| (v, self.counts.count(v)))
                .collect(),
            newer: self.counts.newer.load(Ordering::Relaxed),
        }
    }
}

impl Counts {
    /// Counters for `oldest..=current`.
    fn new(oldest: u32, current: u32) -> Counts {
        Counts {
            oldest,
            opens: (oldest..=current).map(|_| AtomicU64::new(0)).collect(),
            newer: AtomicU64::new(0),
        }
    }

    fn counter(&self, version: u32) -> Option<&AtomicU64> {
        let index = version.checked_sub(self.oldest)?;
        self.opens.get(usize::try_from(index).ok()?)
    }

    fn count(&self, version: u32) -> u64 {
        self.counter(version)
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }

    fn record(&self, version: u32) {
        if let Some(counter) = self.counter(version) {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The registered schemas of a configuration (usually none).
#[derive(Clone, Default)]
pub(crate) struct Schemas(Vec<Arc<dyn AnySchema>>);

impl Schemas {
    pub(crate) fn add<T: 'static>(&mut self, mut schema: Schema<T>) {
        // A counter per version with a migration, and the current one
        // (as many as the registered steps, plus one).
        let oldest = schema
            .steps
            .keys()
            .next()
            .copied()
            .unwrap_or(schema.version);
        schema.counts = Counts::new(oldest.min(schema.version), schema.version);
        let schema: Arc<dyn AnySchema> = Arc::new(schema);
        self.0.retain(|s| s.session_type() != schema.session_type());
        self.0.push(schema);
    }

    pub(crate) fn check(&self) -> Result<(), ConfigError> {
        self.0.iter().try_for_each(|s| s.check())
    }

    pub(crate) fn stats(&self) -> Vec<SchemaStats> {
        self.0.iter().map(|s| s.stats()).collect()
    }

    #[inline]
    fn of<T: 'static>(&self) -> Option<&Schema<T>> {
        if self.0.is_empty() {
            return None;
        }
        self.0.iter().find_map(|s| s.as_any().downcast_ref())
    }

    /// Reads a value of schema version `version` as `T`: decoded, or
    /// converted from an older version.
    #[inline]
    pub(crate) fn read<T: DeserializeOwned + 'static>(
        &self,
        version: u32,
        bytes: &[u8],
    ) -> Result<T, Rejection> {
        self.read_counted(version, bytes, true)
            .map_err(|unread| unread.reason)
    }

    /// What [`read`](Schemas::read) does, uncounted, saying why bytes do
    /// not read: the check of every value `save` writes, so that a value
    /// saved is one that loads (the same path, byte for byte), and the
    /// problem logged for an authentic cookie that does not load.
    pub(crate) fn verify<T: DeserializeOwned + 'static>(
        &self,
        version: u32,
        bytes: &[u8],
    ) -> Result<(), Unread> {
        self.read_counted::<T>(version, bytes, false).map(drop)
    }

    #[inline]
    fn read_counted<T: DeserializeOwned + 'static>(
        &self,
        version: u32,
        bytes: &[u8],
        count: bool,
    ) -> Result<T, Unread> {
        let Some(schema) = self.of::<T>() else {
            return match version {
                0 => trailing::decode_checked(bytes).map_err(|e| Unread::at(0, e)),
                newer => Err(Unread::from(Rejection::NewerSchema(newer))),
            };
        };
        let current = schema.version;
        let value = match version.cmp(&current) {
            std::cmp::Ordering::Equal => {
                trailing::decode_checked(bytes).map_err(|e| Unread::at(current, e))
            }
            std::cmp::Ordering::Less => {
                let upgraded = schema.upgrade(version, bytes)?;
                trailing::decode_checked(&upgraded).map_err(|e| Unread::at(current, e))
            }
            std::cmp::Ordering::Greater => {
                if count {
                    schema.counts.newer.fetch_add(1, Ordering::Relaxed);
                }
                Err(Unread::from(Rejection::NewerSchema(version)))
            }
        }?;
        if count {
            schema.counts.record(version);
        }
        Ok(value)
    }

    /// The schema version to write a value at: the write version, or the
    /// current one for a value loaded at a newer version than the write
    /// version (never lower a session's schema). Only those two can be
    /// encoded: a value loaded at a version between them is written at
    /// the current one.
    #[inline]
    pub(crate) fn target<T: 'static>(&self, loaded: Option<u32>) -> u32 {
        match self.of::<T>() {
            None => 0,
            Some(schema) if loaded.unwrap_or(0) > schema.write_version() => schema.version,
            Some(schema) => schema.write_version(),
        }
    }

    /// Appends `value`'s postcard bytes at schema version `version` (from
    /// [`target`](Schemas::target)) to `out`.
    pub(crate) fn encode<T: Serialize + 'static>(
        &self,
        value: &T,
        version: u32,
        out: Vec<u8>,
    ) -> Result<Vec<u8>, SaveError> {
        let encode_error = |e: postcard::Error| SaveError::Encode(e.to_string());
        let current = self.of::<T>().map_or(0, |schema| schema.version);
        if version == current {
            return postcard::to_extend(value, out).map_err(encode_error);
        }
        // Only the write version remains, converted to its own type: never
        // the current type's bytes under another version's number.
        match self.of::<T>().and_then(|schema| schema.write.as_ref()) {
            Some((write, downgrade)) if *write == version => {
                let mut out = out;
                out.extend_from_slice(&downgrade(value).map_err(encode_error)?);
                Ok(out)
            }
            _ => Err(SaveError::Encode(format!(
                "no encoding of the session type at schema version {version}"
            ))),
        }
    }
}

impl fmt::Debug for Schemas {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|s| s.type_name()))
            .finish()
    }
}
