//! Loading: from a request's `Cookie` values to a session's state.
//!
//! One candidate value goes through, in order: the size bound, base64 and
//! the AEAD (`seal`), the envelope, the lifetime check, then (with a
//! store) the revocation marker and the store entry, and last the
//! application's type. The first refusal is the session's
//! [`Rejection`]; a store that fails is an error, never a refusal.
//!
//! ## Which refused cookies are removed
//!
//! A cookie that can never open again is removed, so the browser stops
//! sending it (in server mode each such request would cost a store read):
//! when no cookie of the request opened and every one refused is dead for
//! good, a save that writes nothing else sends the removal cookie. Only
//! under a `__Host-` name (the default): it guarantees the cookie is the
//! host-only, `Path=/` one the removal reaches; a cookie of another name
//! may sit in another slot (a parent domain's, another path's, or tossed
//! there by a sibling subdomain), where a removal would never reach it and
//! would land on ours on every request. A
//! cookie that another instance of the application may still open is
//! never removed. Where the cookie died because of another request (a
//! renew, a logout, a session moving back into its cookie, an idle
//! deadline passing while a request re-issued it), that request may have
//! sent the browser a new cookie while this one was in flight, and a
//! removal answered later would delete it; such cookies are removed only
//! once they have been dead for [`DEAD_FOR`] seconds plus the clock skew.
//!
//! | Refusal | Removed | Why |
//! |---|---|---|
//! | `Malformed` | yes | not base64, or too short: nothing of ours |
//! | `Forged` | yes | a key of the ring refuses it: no instance opens it |
//! | `BeforeCutoff` | yes | the cut-off ends it on every instance that has it |
//! | `AbsoluteExpired`, `IdleExpired` | after [`DEAD_FOR`], if it carries that timeout | past a deadline sealed in it (a lifetime of its own), ignoring this instance's bounds; a cookie following the configured timeouts is kept (a rollout may lengthen them; the browser drops it by its `Max-Age`) |
//! | `Revoked` | after [`DEAD_FOR`] | the marker records when the id ended; a marker written by an earlier release records nothing: kept |
//! | `MissingStoreEntry` | after [`DEAD_FOR`] | an entry this library deletes leaves a note with the time, for as long as a cookie pointing at it could open (a save that sends a session cookie fails if the note cannot be written, unless a marker protects the id); no note: flushed, expired or evicted (logged at `warn`) (an instance on another store would open it: move stores all at once) |
//! | `UnknownKey` | no | a rotation under way: another instance may hold the key |
//! | `UnknownVersion` | no | a newer release's wire format |
//! | `NewerSchema` | no | a newer release's session (and protected from overwriting) |
//! | `Incompatible`, `OldSchema`, `MigrationFailed` | no | authentic: another release may read it |
//! | `TooLarge` | no | an instance with a higher size limit may open it |
//! | any, with more than four values of the name | no | the ones after the fourth are not looked at, and one may be live |
//! | `FromFuture` | no | another instance's clock may be ahead |
//! | `StoreNotConfigured`, `StoreEntryInvalid` | no | an instance with the store, or with the key of the entry, may open it |
//!
//! What is left (SECURITY.md): a browser that still holds a cookie of a
//! removed row (past the wait, for the rows that have one) when it sends
//! a login in parallel with another request can have the login's new
//! cookie removed by that other request's answer. The first answer to any
//! request carrying such a cookie removes it, so this needs the login to
//! be among the first requests after the cookie died (or after the
//! browser came back with it).

use std::ops::Range;

use serde::de::DeserializeOwned;

use crate::lifetime::session_lifetime::SessionLifetime;
use crate::rejection::Rejection;
use crate::session::{Origin, Session, State};
use crate::sessions::Inner;
use crate::store::{StoreError, StoreKey};
use crate::wire::envelope::{self, Body, Envelope, SessionId};
use crate::wire::seal;

/// Seconds a cookie that another request may have just replaced must be
/// dead before it is removed (plus the clock skew): longer than a request
/// sent before that other request's answer arrived takes to reach us.
pub(crate) const DEAD_FOR: u64 = 60;

/// Whether a cookie refused for `reason` is dead for good whatever the
/// time (the rule table above); the rows that wait [`DEAD_FOR`] are
/// decided where the refusal is.
fn dead_at_once(reason: Rejection) -> bool {
    matches!(
        reason,
        Rejection::Malformed | Rejection::Forged | Rejection::BeforeCutoff
    )
}

impl Inner {
    /// A new session holding `T::default()`, after no cookie opened.
    pub(crate) fn fresh<T: Default>(&self, now: u64, refusals: Refusals) -> Session<T> {
        // A cookie of a newer schema: the session is new, but a logout
        // can still end the id the browser holds.
        let unreadable = refusals.unreadable;
        let is_unreadable = unreadable.is_some();
        let dead = refusals.dead == Some(true) && !is_unreadable && refusals.newer_schema.is_none();
        Session::from_state(State {
            data: T::default(),
            id: SessionId::random(),
            created: unreadable
                .as_ref()
                .map_or(self.config.lifetime.start(now), |u| u.created),
            issued: unreadable.as_ref().map_or(now, |u| u.issued),
            loaded_at: now,
            new: true,
            origin: unreadable.map(|u| Origin {
                id: u.id,
                key_position: u.key_position,
                stored: u.stored,
                buf: Vec::new(),
                body: 0..0,
                lifetime: u.lifetime,
            }),
            changed: false,
            restart: false,
            end_origin: false,
            destroyed: false,
            generation: 0,
            rejection: refusals.first,
            lifetime: SessionLifetime::default(),
            schema: None,
            newer_schema: refusals.newer_schema,
            unreadable: is_unreadable,
            imported: false,
            import: None,
            dead,
            import_given_up: false,
            dead_removed: false,
            newer_too: None,
            unchecked: false,
        })
    }

    /// Records a cookie that did not open: a `debug` event, the first
    /// reason for [`Session::rejection`], and whether it was of a newer
    /// schema (the new session must not be saved over it, unless the
    /// configuration says to replace such cookies).
    pub(crate) fn rejected(&self, failed: Failed, refusals: &mut Refusals) {
        let Failed {
            refused: (reason, key_id),
            unreadable,
            dead,
        } = failed;
        // Only a `__Host-` name guarantees the cookie is the host-only,
        // `Path=/` one the removal reaches: a cookie of another name may
        // sit in another slot (a parent domain's, another path's, tossed
        // there by a sibling subdomain), and would be answered with a
        // removal that lands on ours on every request.
        refusals.dead =
            Some(refusals.dead.unwrap_or(true) && self.host_only && (dead || dead_at_once(reason)));
        self.rejections.count(reason);
        tracing::debug!(
            reason = %reason,
            key_id = key_id.map(tracing::field::display),
            cookie = %self.config.attributes.name,
            "session cookie rejected"
        );
        refusals.first.get_or_insert(reason);
        self.note_newer(reason, unreadable, refusals);
    }

    /// The first cookie of a newer schema among those refused, whatever
    /// was refused before it or opened: a logout ends its session (its
    /// `unreadable` travels with the refusal), and unless such cookies may
    /// be replaced, nothing else is written over it.
    fn note_newer(
        &self,
        reason: Rejection,
        unreadable: Option<Box<Unreadable>>,
        refusals: &mut Refusals,
    ) {
        let first = refusals.unreadable.is_none() && refusals.newer_schema.is_none();
        if let (Rejection::NewerSchema(version), true, Some(_)) = (reason, first, &unreadable) {
            refusals.unreadable = unreadable;
            if !self.config.replace_newer_schemas {
                refusals.newer_schema = Some(version);
            }
        }
    }

    /// A session opened from one cookie, with what the request's other
    /// cookies said: a cookie of a newer schema, before it (already in
    /// `refusals`) or after it (`later`, the refusals of the cookies after
    /// it), is protected as if it were the only one, and its id is ended
    /// with a logout (or with any write, when such cookies may be
    /// replaced): the `Set-Cookie` may land on it.
    pub(crate) fn opened_among<T>(
        &self,
        state: &mut State<T>,
        refusals: Refusals,
        later: impl IntoIterator<Item = Failed>,
    ) {
        let mut refusals = refusals;
        for failed in later {
            self.note_newer(failed.refused.0, failed.unreadable, &mut refusals);
        }
        state.newer_schema = refusals.newer_schema;
        state.newer_too = refusals.unreadable;
    }

    /// A request with more values of the cookie's name than are looked
    /// at (`more`: one was left after the first [`MAX_CANDIDATES`]): one
    /// not looked at may be live, and the removal would reach it.
    ///
    /// [`MAX_CANDIDATES`]: crate::sessions::MAX_CANDIDATES
    pub(crate) fn not_all_seen(&self, more: bool, refusals: &mut Refusals) {
        if more && refusals.dead == Some(true) {
            refusals.dead = Some(false);
        }
    }

    /// Opens one candidate cookie value: cryptography and lifetime only.
    pub(crate) fn open_cookie(
        &self,
        value: &[u8],
        now: u64,
        buf: &mut Vec<u8>,
    ) -> Result<Opened, Failed> {
        let opened = self.unseal(value, buf).map_err(Failed::from)?;
        let lifetime = &self.config.lifetime;
        let checked = match &opened.lifetime {
            None => lifetime.check(opened.created, opened.issued, now),
            Some(chosen) => lifetime
                .of(chosen)
                .check(opened.created, opened.issued, now),
        };
        if let Err(reason) = checked {
            if reason == Rejection::FromFuture {
                // Authentic: another instance's clock, or a cut-off set
                // in the future, which new sessions are sealed as created
                // at (`Lifetime::start`; `rejection_log.rs`).
                let ahead = opened.created.max(opened.issued).saturating_sub(now);
                let at_cutoff = lifetime.cutoff == Some(opened.created)
                    && opened.created > now.saturating_add(lifetime.skew);
                self.rejections
                    .issued_ahead(now, ahead, lifetime.skew, at_cutoff);
            }
            // Expired for good: past the deadline sealed with it (not
            // capped by this instance's bounds) already DEAD_FOR seconds
            // plus the skew ago.
            let dead = matches!(reason, Rejection::AbsoluteExpired | Rejection::IdleExpired) && {
                // Only the timeouts the cookie carries: one that follows
                // the configuration may follow a longer one elsewhere (a
                // rollout that lengthens it).
                let sealed = lifetime.sealed_only(&opened.lifetime.unwrap_or_default());
                let then = now.saturating_sub(DEAD_FOR.saturating_add(lifetime.skew));
                matches!(
                    sealed.check(opened.created, opened.issued, then),
                    Err(Rejection::AbsoluteExpired | Rejection::IdleExpired)
                )
            };
            return Err(Failed {
                refused: (reason, Some(opened.key_id)),
                unreadable: None,
                dead,
            });
        }
        Ok(opened)
    }

    /// Whether an id or entry ended at the time `note` records (a
    /// revocation marker's or a moved entry's value) is dead for good.
    fn ended_long_ago(&self, note: &[u8], now: u64) -> bool {
        let Ok(at) = <[u8; 8]>::try_from(note) else {
            return false;
        };
        let grace = DEAD_FOR.saturating_add(self.config.lifetime.skew);
        u64::from_be_bytes(at).saturating_add(grace) < now
    }

    /// Opens a cookie value into its envelope: size bound, cryptography,
    /// envelope decoding. No lifetime check (`inspect` reports it instead).
    pub(crate) fn unseal(&self, value: &[u8], buf: &mut Vec<u8>) -> Result<Opened, seal::Refused> {
        let name = &self.config.attributes.name;
        if name.len() + value.len() > self.config.size_limit {
            return Err((Rejection::TooLarge, None));
        }
        let (position, version, plaintext) = seal::open(&self.keyring, &self.aads, value, buf)?;
        let key_id = self.keyring.keys()[position].id;
        let envelope = Envelope::decode(&buf[plaintext.clone()], version)
            .ok_or((Rejection::Incompatible, Some(key_id)))?;
        let body = match envelope.body {
            // The inline body is the envelope's last field and decoding
            // used every byte, so it ends where the plaintext ends.
            Body::Inline(body) => OpenedBody::Inline(plaintext.end - body.len()..plaintext.end),
            Body::Stored(store_ref) => OpenedBody::Stored(StoreKey::from_bytes(store_ref.id)),
        };
        Ok(Opened {
            key_position: position,
            key_id,
            version,
            id: envelope.id,
            created: envelope.created,
            issued: envelope.issued,
            lifetime: envelope.lifetime,
            body,
            buf: std::mem::take(buf),
        })
    }

    /// Completes an opened cookie: revocation, store entry, value. The
    /// outer `Err` is a store failure; the inner one a refusal.
    pub(crate) async fn resolve<T: DeserializeOwned + 'static>(
        &self,
        opened: Opened,
        now: u64,
        count: bool,
    ) -> Result<Result<State<T>, Failed>, StoreError> {
        let key_id = opened.key_id;
        let fail = |reason, dead| {
            Ok(Err(Failed {
                refused: (reason, Some(key_id)),
                unreadable: None,
                dead,
            }))
        };
        let store = self.config.store.as_deref();
        if let (true, Some(store)) = (self.config.revocation, store) {
            let marker = StoreKey::revocation(&self.binding, opened.id.as_bytes());
            if let Some(ended) = store.load(&marker).await? {
                return fail(Rejection::Revoked, self.ended_long_ago(&ended, now));
            }
        }
        let entry = match &opened.body {
            OpenedBody::Inline(_) => None,
            &OpenedBody::Stored(key) => {
                let Some(store) = store else {
                    return fail(Rejection::StoreNotConfigured, false);
                };
                let Some(mut buf) = store.load(&key).await? else {
                    // Gone: when this library deleted it, a note says
                    // when (kept if the note cannot be read).
                    let dead = match store.load(&StoreKey::moved(&key)).await {
                        Ok(Some(moved)) => self.ended_long_ago(&moved, now),
                        Ok(None) => {
                            // No note: not deleted by this library, so
                            // lost (`rejection_log.rs`).
                            self.rejections.vanished_entry::<T>(now);
                            true
                        }
                        Err(_) => false,
                    };
                    return fail(Rejection::MissingStoreEntry, dead);
                };
                let opened_entry =
                    seal::open_raw(&self.keyring, seal::Purpose::Store, &mut buf, |_, id, v| {
                        seal::store_associated_data(v, id, &key, &self.binding)
                    });
                let Ok((position, version, body)) = opened_entry else {
                    self.rejections.invalid_entry::<T>(now);
                    return fail(Rejection::StoreEntryInvalid, false);
                };
                Some(Entry {
                    key,
                    position,
                    version,
                    buf,
                    body,
                })
            }
        };
        Ok(self.decode(opened, entry, now, count))
    }

    /// Decodes the value, from the cookie (`entry` is `None`) or from its
    /// opened store entry, into the session's state. Without an entry, a
    /// store-held cookie is `StoreNotConfigured`. `count`: a session that
    /// opens counts for its key (`Keyring` statistics).
    pub(crate) fn decode<T: DeserializeOwned + 'static>(
        &self,
        opened: Opened,
        entry: Option<Entry>,
        now: u64,
        count: bool,
    ) -> Result<State<T>, Failed> {
        let (buf, body, stored, key_position, version) = match (entry, opened.body) {
            (Some(entry), _) => (
                entry.buf,
                entry.body,
                Some(entry.key),
                opened.key_position.max(entry.position),
                entry.version,
            ),
            (None, OpenedBody::Inline(body)) => {
                (opened.buf, body, None, opened.key_position, opened.version)
            }
            (None, OpenedBody::Stored(_)) => {
                self.rejections.no_store::<T>(now);
                return Err(Failed::from((
                    Rejection::StoreNotConfigured,
                    Some(opened.key_id),
                )));
            }
        };
        let refused = |reason| Failed::from((reason, Some(opened.key_id)));
        // Version 2 values start with their schema version.
        let (schema, value) = match version {
            seal::V1 => (0, &buf[body.clone()]),
            _ => envelope::split_schema(&buf[body.clone()])
                .ok_or(refused(Rejection::Incompatible))?,
        };
        let lifetime = opened.lifetime.unwrap_or_default();
        let data = match self.config.schemas.read::<T>(schema, value) {
            Ok(data) => data,
            // Authentic, but of a newer release: what a logout needs to
            // end it travels with the refusal.
            Err(reason @ Rejection::NewerSchema(newer)) => {
                self.rejections.newer_schema::<T>(now, newer);
                let unreadable = Unreadable {
                    id: opened.id,
                    created: opened.created,
                    issued: opened.issued,
                    key_position,
                    stored,
                    lifetime,
                };
                return Err(Failed {
                    refused: (reason, Some(opened.key_id)),
                    unreadable: Some(Box::new(unreadable)),
                    dead: false,
                });
            }
            Err(reason) => {
                // Authentic: written by an instance of ours (`rejection_log.rs`).
                match reason {
                    Rejection::Incompatible => {
                        let schemas = &self.config.schemas;
                        self.rejections
                            .undecodable::<T>(schemas, now, schema, value);
                    }
                    Rejection::OldSchema(_) | Rejection::MigrationFailed(_) => {
                        self.rejections.old_schema::<T>(now, reason)
                    }
                    _ => {}
                }
                return Err(refused(reason));
            }
        };
        // (Not for a duplicate opened only to look for a newer schema:
        // the key's count is the sessions it served.)
        if count {
            self.keyring.keys()[opened.key_position].count_open();
        }
        Ok(State {
            data,
            id: opened.id,
            created: opened.created,
            issued: opened.issued,
            loaded_at: now,
            new: false,
            origin: Some(Origin {
                id: opened.id,
                key_position,
                stored,
                buf,
                body,
                lifetime,
            }),
            changed: false,
            restart: false,
            end_origin: false,
            destroyed: false,
            generation: 0,
            rejection: None,
            lifetime,
            schema: Some(schema),
            newer_schema: None,
            unreadable: false,
            imported: false,
            import: None,
            dead: false,
            import_given_up: false,
            dead_removed: false,
            newer_too: None,
            unchecked: false,
        })
    }
}

/// A cookie that opened, before the store is asked.
pub(crate) struct Opened {
    pub(crate) key_position: usize,
    pub(crate) key_id: crate::crypto::keyring::KeyId,
    /// The wire format version of the cookie.
    pub(crate) version: u8,
    /// The session's own lifetime (version 2 only).
    pub(crate) lifetime: Option<SessionLifetime>,
    pub(crate) id: SessionId,
    pub(crate) created: u64,
    pub(crate) issued: u64,
    pub(crate) body: OpenedBody,
    /// The decoded cookie: every sealed byte (holds an inline body).
    pub(crate) buf: Vec<u8>,
}

/// A store entry that opened.
pub(crate) struct Entry {
    key: StoreKey,
    /// The ring position of the key that sealed it.
    position: usize,
    /// Its wire format version (independent of the cookie's).
    version: u8,
    /// The opened entry; the value lies at `body`.
    buf: Vec<u8>,
    body: Range<usize>,
}

pub(crate) enum OpenedBody {
    /// Where the value lies in `Opened::buf`.
    Inline(Range<usize>),
    Stored(StoreKey),
}

/// The cookies of a request that did not open.
#[derive(Default)]
pub(crate) struct Refusals {
    /// The first one's reason.
    pub(crate) first: Option<Rejection>,
    /// The schema version of the first one that was newer than known
    /// (whatever was refused before it).
    pub(crate) newer_schema: Option<u32>,
    /// That cookie's session, for a logout to end.
    pub(crate) unreadable: Option<Box<Unreadable>>,
    /// Whether every cookie refused is dead for good (`None`: none was
    /// refused).
    pub(crate) dead: Option<bool>,
}

/// A refusal.
pub(crate) struct Failed {
    pub(crate) refused: seal::Refused,
    /// The session of a cookie refused as of a newer schema.
    pub(crate) unreadable: Option<Box<Unreadable>>,
    /// Dead for good, for a row of the table above that waits
    /// [`DEAD_FOR`] (the other rows: [`dead_at_once`]).
    pub(crate) dead: bool,
}

impl From<seal::Refused> for Failed {
    fn from(refused: seal::Refused) -> Failed {
        Failed {
            refused,
            unreadable: None,
            dead: false,
        }
    }
}

/// An authentic session of a newer schema than this instance knows: its
/// value cannot be read, but its id can be ended.
pub(crate) struct Unreadable {
    pub(crate) id: SessionId,
    pub(crate) created: u64,
    issued: u64,
    key_position: usize,
    pub(crate) stored: Option<StoreKey>,
    pub(crate) lifetime: SessionLifetime,
}
