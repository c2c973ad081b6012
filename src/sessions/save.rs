//! Saving: from what a request did to a session to at most one
//! `Set-Cookie`, and the store writes that must hold first.
//!
//! The rules, all decided in [`Inner::plan`] and carried out in this order
//! by [`Sessions::save`](crate::Sessions::save):
//!
//! 1. **What the browser gets.** Nothing when nothing changed (same
//!    encoding, same key, rolling threshold not reached), nor for a
//!    brand-new session still at `T::default()` with no lifetime of its
//!    own; a removal cookie after `destroy` with no value (or only the
//!    default) set after it, and when nothing else is sent and every
//!    cookie the request carried is dead for good (`load.rs`); otherwise
//!    the value
//!    sealed into the cookie, or into the store (too large for the cookie,
//!    or server mode) with a sealed pointer in the cookie. A cookie written
//!    is issued at the time the session was loaded; a request that ran
//!    past the deadline that gives is [`SaveError::Ended`].
//! 2. **Store writes are conditional.** A session that continues its store
//!    entry *replaces* it only if it is still there; a new entry (a move
//!    into the store, a renewed or new session) is *created* under a fresh
//!    random key; a session that moves back into its cookie *takes* its
//!    entry (a note, then a delete that must find it), last of all the
//!    store writes, after every id the save ends is ended: a save that
//!    fails before leaves the entry the browser's pointer still points
//!    at; a save with ids to end first checks that the entry is still
//!    there, so that one finding it taken ends nothing. Finding the entry
//!    gone means another request ended the session (or moved it back):
//!    [`SaveError::Ended`], nothing written, the session is never brought
//!    back.
//! 3. **Ending an id sticks.** `destroy` and `renew` end the id the
//!    request loaded, whatever the handler did afterwards: with revocation
//!    on, a marker is created (holding the time) that lives as long as any
//!    copy of that id could still open, then a note with the time is left
//!    where its store entry was, then the entry is deleted. A newer-schema
//!    cookie the request carried beside the one loaded is ended the same
//!    way on a logout (or any write, when such cookies may be replaced). Both must succeed
//!    before any cookie is sent, or the save fails. A renew whose old id
//!    was ended (or whose entry was taken) meanwhile by another request
//!    fails with [`SaveError::Ended`] rather than carry the value into a
//!    new id, and revokes nothing.
//!    With revocation on, a write that keeps the id loaded first reads
//!    that id's marker again: when it is there (a
//!    parallel logout or login revoked it), a re-issue sends nothing and
//!    a changed value is [`SaveError::Ended`]
//!    ([`Inner::ended_meanwhile`]).
//! 4. **A failed save changes nothing the browser sees.** On any error no
//!    `Set-Cookie` is written; an entry created for the new value is
//!    deleted again (best effort: it would expire with its time to live).

use std::time::Duration;

use http::header::SET_COOKIE;
use http::{HeaderMap, HeaderValue};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::SaveError;
use crate::lifetime::session_lifetime::SessionLifetime;
use crate::session::{Origin, Session, State};
use crate::sessions::Inner;
use crate::sessions::load::DEAD_FOR;
use crate::store::{SessionStore, StoreError, StoreKey, StoreMode};
use crate::wire::envelope::{self, Body, Envelope, SessionId, StoreRef};
use crate::wire::seal;

/// What `save` has to do, decided under the session's lock.
pub(crate) struct Plan {
    /// The id the request loaded, when `destroy` or `renew` ended it.
    pub(crate) end: Option<End>,
    pub(crate) next: Next,
    /// The session's change count when this was decided.
    pub(crate) generation: u64,
    /// Another id that must end: a newer-schema cookie the browser holds
    /// beside the one loaded, on which this response's cookie may land.
    pub(crate) also: Option<Box<End>>,
}

/// What the browser gets.
pub(crate) enum Next {
    /// Nothing: the cookie it has stays right.
    Keep,
    /// The removal cookie.
    Remove,
    /// A cookie for this value.
    Write(Write),
}

/// An id that must end: its marker and its store entry.
pub(crate) struct End {
    /// The revocation marker and its time to live, with revocation on.
    marker: Option<(StoreKey, Duration)>,
    /// The store entry it held.
    stored: Option<StoreKey>,
    /// The value carries on under a new id (`renew`): finding the old id
    /// already ended by another request is then a conflict.
    carried: bool,
    /// When it ends (unix seconds): the marker's value, and the note
    /// left where its entry was (`load.rs`, which refused cookies are
    /// removed).
    at: u64,
    /// How long the note lives: as long as a copy of a cookie pointing
    /// at the entry could open (no shorter than the entry had left), so
    /// that an entry found gone with no note was not deleted by this
    /// library (`rejection_log.rs`, the store lost it); and at least
    /// [`DEAD_FOR`] plus the skew.
    note_ttl: Duration,
}

impl End {
    /// Whether ending this id writes to the store at all.
    pub(crate) fn needs_store(&self) -> bool {
        self.marker.is_some() || self.stored.is_some()
    }
}

/// A session to seal, copied out of its state.
pub(crate) struct Write {
    id: SessionId,
    /// The wire format version of the cookie and of a store entry.
    version: u8,
    /// The session's own lifetime (sealed in version 2).
    lifetime: SessionLifetime,
    /// The lifetime the cookie loaded carries (`lifetime` for a new
    /// session): copies of a pointer to the entry `continues` carry it,
    /// so the note of that entry's delete must outlive them too, even
    /// when this write shortens the lifetime.
    loaded_lifetime: SessionLifetime,
    /// The schema version `body` is at.
    schema: u32,
    created: u64,
    /// When the cookie written is issued: the time of the load.
    issue_at: u64,
    /// `issued` of the cookie loaded; it stays when the cookie is not
    /// written again.
    old_issued: u64,
    /// The cookie must be sealed again even if nothing else changes.
    must_reissue: bool,
    /// The value's encoding differs from the one loaded (else this write
    /// is only a re-issue: rolling, or a key rotation).
    changed: bool,
    /// With revocation on, the id the request loaded, kept (no `renew`
    /// or `destroy`): its marker is read again before the write
    /// ([`Inner::ended_meanwhile`]).
    recheck_marker: bool,
    /// The value bytes: in version 2, the schema version and then the
    /// postcard bytes of the value; in version 1, the postcard bytes.
    body: Vec<u8>,
    /// The store entry the value continues in, if any: it is replaced
    /// (only if still there) or taken back, never re-created.
    continues: Option<StoreKey>,
}

impl Write {
    /// The envelope of a cookie for this session.
    fn envelope<'a>(&self, body: Body<'a>) -> Envelope<'a> {
        Envelope {
            id: self.id,
            created: self.created,
            issued: self.issue_at,
            lifetime: (self.version == seal::V2).then_some(self.lifetime),
            body,
        }
    }

    /// The outcome of a move back that finds its entry taken by another
    /// request: [`SaveError::Ended`] for a changed value, else nothing to
    /// send (`Ok(false)`).
    fn taken(&self) -> Result<bool, SaveError> {
        if self.changed {
            Err(SaveError::Ended)
        } else {
            Ok(false)
        }
    }
}

/// What `write` did.
pub(crate) struct Written {
    /// The cookie to send, if it changed.
    set_cookie: Option<HeaderValue>,
    /// The store entry now holding the value.
    stored: Option<StoreKey>,
    /// Whether `stored` was created by this save (to undo on failure).
    created_entry: bool,
    /// `issued` of the cookie the browser now has.
    issued: u64,
}

/// The entry a value moved out of, back into its cookie (it continued a
/// store entry, and `write` put it in the cookie): taken by
/// [`Inner::take_moved`] once every id the save ends is ended, so a save
/// that fails before leaves it where the browser's pointer finds it.
fn takes(write: &Write, written: &Written) -> Option<StoreKey> {
    write.continues.filter(|_| written.stored.is_none())
}

impl Inner {
    /// Decides what `save` must do.
    pub(crate) fn plan<T: Serialize + DeserializeOwned + Default + 'static>(
        &self,
        state: &mut State<T>,
        now: u64,
    ) -> Result<Plan, SaveError> {
        let mut plan = self.decide(state, now)?;
        // Nothing else to send, and the browser sent only cookies that
        // will never open again: remove them (`load.rs` has the rules).
        state.dead_removed =
            matches!(plan.next, Next::Keep) && state.dead && state.origin.is_none();
        if state.dead_removed {
            plan.next = Next::Remove;
        }
        // A cookie of the request could not be checked for a newer schema
        // (the store failed on it): anything sent may land on a session
        // this save cannot end, so nothing is, until the store answers.
        if state.unchecked && !matches!(plan.next, Next::Keep) {
            return Err(SaveError::Store(StoreError::Unavailable(
                "a session cookie of this request could not be checked (the store failed)".into(),
            )));
        }
        // A cookie of a newer schema beside the one loaded: whatever this
        // response sends may land on it, so its id ends too (a write gets
        // here only when such cookies may be replaced).
        let Some(newer) = state.newer_too.as_deref() else {
            return Ok(plan);
        };
        if matches!(plan.next, Next::Keep) {
            return Ok(plan);
        }
        // Not when it is this very session (a newer release migrated it
        // and kept its id or entry): ending it would end the cookie sent.
        let continued = state.origin.as_ref().and_then(|o| o.stored);
        let own = newer.id == state.id
            || state.origin.as_ref().is_some_and(|o| o.id == newer.id)
            || (newer.stored.is_some() && newer.stored == continued);
        if !own {
            let also = self.ending(
                &newer.id,
                newer.created,
                &newer.lifetime,
                newer.stored,
                false,
                now,
            );
            plan.also = Some(Box::new(also));
        } else {
            // The same id: the marker that ends it must also outlive the
            // newer copy, which may carry a longer lifetime (sealed by an
            // instance with higher bounds), and an entry of its own goes
            // too.
            if let Some(end) = &mut plan.end {
                let newer_ttl = self
                    .config
                    .lifetime
                    .uncapped(&newer.lifetime)
                    .copies_ttl(newer.created, now);
                if let Some((_, ttl)) = &mut end.marker {
                    *ttl = (*ttl).max(newer_ttl);
                }
            }
            let ended = plan.end.as_ref().and_then(|end| end.stored);
            if newer.stored.is_some() && newer.stored != ended && newer.stored != continued {
                plan.also = Some(Box::new(End {
                    marker: None,
                    stored: newer.stored,
                    carried: false,
                    at: now,
                    note_ttl: self.note_ttl(newer.created, &newer.lifetime, now),
                }));
            }
        }
        Ok(plan)
    }

    /// What ending the id `id` of a session created at `created`, whose
    /// cookie carries `lifetime`, takes.
    fn ending(
        &self,
        id: &SessionId,
        created: u64,
        lifetime: &SessionLifetime,
        stored: Option<StoreKey>,
        carried: bool,
        now: u64,
    ) -> End {
        let config_lifetime = &self.config.lifetime;
        End {
            marker: self.config.revocation.then(|| {
                // Any copy of the id may carry the longest lifetime the
                // configuration allows, or the one sealed in the cookie
                // loaded (an instance with higher bounds wrote it).
                let longest = config_lifetime.longest().copies_ttl(created, now);
                let sealed = config_lifetime.uncapped(lifetime).copies_ttl(created, now);
                (
                    StoreKey::revocation(&self.binding, id.as_bytes()),
                    longest.max(sealed),
                )
            }),
            stored,
            carried,
            at: now,
            note_ttl: self.note_ttl(created, lifetime, now),
        }
    }

    /// How long the note of an entry deleted `now` lives, for a session
    /// created at `created` whose cookie carries `lifetime`: as long as a
    /// copy of its pointer could open under that lifetime (no shorter
    /// than its entry had left), and at least the wait before such a cookie is
    /// removed ([`DEAD_FOR`] plus the skew, plus a second).
    fn note_ttl(&self, created: u64, lifetime: &SessionLifetime, now: u64) -> Duration {
        let config_lifetime = &self.config.lifetime;
        let wait = DEAD_FOR
            .saturating_add(config_lifetime.skew)
            .saturating_add(1);
        config_lifetime
            .uncapped(lifetime)
            .copies_ttl(created, now)
            .max(Duration::from_secs(wait))
    }

    /// Whether the session is a brand-new one (no cookie, or destroyed)
    /// that holds nothing: its value still encodes as `T::default()` and
    /// it chose no lifetime of its own. The browser then needs no cookie
    /// for it, as for a new session nobody touched.
    fn blank<T: Serialize + Default + 'static>(&self, state: &State<T>) -> bool {
        let fresh = state.origin.is_none() || state.destroyed;
        if !fresh
            || !state.lifetime.is_configured()
            || state.imported
            || state.import.is_some()
            || state.import_given_up
        {
            return false;
        }
        let schemas = &self.config.schemas;
        let schema = schemas.target::<T>(None);
        // A value or default that does not encode is not blank: the write
        // goes on, and fails (or not) on the value itself.
        let value = schemas.encode(&state.data, schema, Vec::new()).ok();
        let default = schemas.encode(&T::default(), schema, Vec::new()).ok();
        value.is_some() && value == default
    }

    fn decide<T: Serialize + DeserializeOwned + Default + 'static>(
        &self,
        state: &mut State<T>,
        now: u64,
    ) -> Result<Plan, SaveError> {
        let generation = state.generation;
        // The browser holds a session of a newer schema: nothing may be
        // written over it (a value set on the new session, a renew),
        // except a logout, which ends that id as any other.
        if let Some(version) = state.newer_schema {
            if !state.destroyed && (state.changed || state.restart) {
                return Err(SaveError::NewerSchema { version });
            }
            if !state.destroyed {
                return Ok(Plan {
                    also: None,
                    end: None,
                    next: Next::Keep,
                    generation,
                });
            }
        }
        // A session that could not be read (a cookie of a newer schema,
        // allowed to be replaced) is always written over (the new session
        // has no schema yet, so even a handler that changed nothing
        // re-seals), and that starts a new one and ends that id, as a
        // renew would: it must not carry on under the replaced id or in its
        // store entry, where a copy of the replaced cookie would find it.
        if state.unreadable && !state.end_origin {
            state.id = SessionId::random();
            state.end_origin = true;
            state.restart = true;
        }
        // A lifetime newly chosen is sealed within this configuration's
        // bounds; one loaded is kept as sealed (it is capped where it is
        // applied), so an instance with lower bounds does not shorten what
        // copies sealed elsewhere carry, nor the markers that outlast them.
        let config_lifetime = &self.config.lifetime;
        let lifetime_changed = state
            .origin
            .as_ref()
            .is_none_or(|o| o.lifetime != state.lifetime);
        if lifetime_changed {
            state.lifetime = config_lifetime.cap(state.lifetime);
            // A lifetime shortened below the session's age ends the
            // session, as destroy does: its copies must not go on under
            // the old one.
            if let Some(origin) = &state.origin {
                if !state.end_origin
                    && origin.lifetime != state.lifetime
                    && config_lifetime.of(&state.lifetime).expired(
                        state.created,
                        state.loaded_at,
                        now,
                    )
                {
                    state.destroy();
                }
            }
        }
        let lifetime = config_lifetime.of(&state.lifetime);
        let end = match &state.origin {
            Some(origin) if state.end_origin => Some(self.ending(
                &origin.id,
                state.created,
                &origin.lifetime,
                origin.stored,
                !state.destroyed,
                now,
            )),
            _ => None,
        };
        // A value set to `T::default()` (or one `update` left as it was)
        // on a brand-new session is no value: nothing to write for it.
        let blank =
            (state.changed || (state.restart && state.origin.is_none())) && self.blank(state);
        if state.destroyed && (!state.changed || blank) {
            return Ok(Plan {
                also: None,
                end,
                next: Next::Remove,
                generation,
            });
        }
        if blank && state.origin.is_none() {
            state.changed = false;
            return Ok(Plan {
                also: None,
                end,
                next: Next::Keep,
                generation,
            });
        }
        // The schema version to write at; a value loaded at another one
        // is re-sealed (migrated) on this response.
        let schemas = &self.config.schemas;
        let schema = schemas.target::<T>(state.schema);
        // Reasons to write even an unchanged value.
        let must_reissue = state.restart
            || state.origin.as_ref().is_some_and(|origin| {
                origin.key_position != 0
                    || (lifetime_changed && origin.lifetime != state.lifetime)
                    || state.schema != Some(schema)
                    || lifetime.reissue_due(state.issued, now)
            });
        if !must_reissue && !state.changed {
            return Ok(Plan {
                also: None,
                end,
                next: Next::Keep,
                generation,
            });
        }
        let hint = state.origin.as_ref().map_or(64, |o| o.body.len() + 16);
        let mut body = Vec::with_capacity(hint);
        // Version 1 whenever it can say everything: what a release
        // without schemas or per-session lifetimes wrote.
        let version = if schema == 0 && state.lifetime.is_configured() {
            seal::V1
        } else {
            envelope::put_schema(&mut body, schema);
            seal::V2
        };
        let body = schemas.encode(&state.data, schema, body)?;
        // A new lifetime counts as a change: a save that finds its entry
        // taken must not drop it silently.
        let changed = state
            .origin
            .as_ref()
            .is_none_or(|o| o.body() != body || o.lifetime != state.lifetime);
        // A write that left the encoding as it was needs nothing.
        if !must_reissue && !changed {
            state.changed = false;
            return Ok(Plan {
                also: None,
                end,
                next: Next::Keep,
                generation,
            });
        }
        // Bytes other than those loaded, or loaded at another schema
        // version (a migration, a replaced newer-schema cookie), must load
        // back at the version they are written at (`save_check.rs`).
        if changed || state.schema != Some(schema) {
            self.check_loads::<T>(version, &body)?;
        }
        let issue_at = state.loaded_at;
        let created = if state.restart {
            lifetime.start(issue_at)
        } else {
            state.created
        };
        // A request that ran past the session's deadline (idle counted from
        // its load) would write a cookie that is already over: the session
        // ended while it ran. A value renewed into a new id must also not
        // outlive the session it was loaded from: a slow request must not
        // renew a session past that session's own deadline (under the
        // lifetime it was loaded with), when its revocation marker may be
        // gone. The new lifetime runs from the renewal, as `renew` says: a
        // login that shortens the absolute timeout below the age of the
        // anonymous session it renews is no conflict.
        let past_deadline = if state.restart && !state.destroyed {
            let loaded = state
                .origin
                .as_ref()
                .map_or(lifetime.clone(), |o| config_lifetime.of(&o.lifetime));
            loaded.expired(state.created, issue_at, now) || lifetime.expired(created, issue_at, now)
        } else {
            lifetime.expired(created, issue_at, now)
        };
        if past_deadline {
            return Err(SaveError::Ended);
        }
        // After renew or destroy the value starts afresh.
        let continues = match &state.origin {
            Some(origin) if !state.restart => origin.stored,
            _ => None,
        };
        // With revocation on, a write that keeps the id loaded reads its
        // marker again (`ended_meanwhile`).
        let recheck_marker = self.config.revocation && !state.restart && state.origin.is_some();
        Ok(Plan {
            also: None,
            end,
            generation,
            next: Next::Write(Write {
                id: state.id,
                version,
                lifetime: state.lifetime,
                loaded_lifetime: state.origin.as_ref().map_or(state.lifetime, |o| o.lifetime),
                schema,
                created,
                issue_at,
                old_issued: state.issued,
                must_reissue,
                changed,
                recheck_marker,
                body,
                continues,
            }),
        })
    }

    /// Whether another request ended the id this write keeps while this
    /// one ran. With revocation on, a parallel logout or login (`renew`)
    /// revokes the id; this request's cookie, answered after that
    /// request's, would replace the cookie it sent with a copy of the
    /// revoked id, logging the user out. The store entry is no guide: a
    /// request that loaded a cookie-held copy of the id ends it without
    /// knowing of the entry a store-held copy (a pointer from a request
    /// that grew the value into the store) points at, and a logout whose
    /// delete failed leaves it too; a change written into that entry
    /// would be answered as saved and lost. So the marker is read again:
    /// one store read per write that keeps its id, with revocation only
    /// (never for a new session, whose id is fresh).
    ///
    /// `Ok(true)`: send nothing, for a write that only re-issues the
    /// cookie (rolling, a key rotation), when the marker is there or the
    /// store cannot answer (the cookie the browser holds stays valid, a
    /// later request re-issues it). A changed value is
    /// [`SaveError::Ended`] when the marker is there (as when a
    /// store-held one finds its entry taken) and a store error when the
    /// store cannot answer: never dropped silently. The window left is
    /// the time from this read to the browser taking the answer.
    pub(crate) async fn ended_meanwhile(&self, write: &Write) -> Result<bool, SaveError> {
        let (true, Some(store)) = (write.recheck_marker, self.config.store.as_deref()) else {
            return Ok(false);
        };
        let marker = StoreKey::revocation(&self.binding, write.id.as_bytes());
        match (store.load(&marker).await, write.changed) {
            (Ok(None), _) => Ok(false),
            (Ok(Some(_)), true) => Err(SaveError::Ended),
            (Err(error), true) => Err(SaveError::Store(error)),
            (_, false) => Ok(true),
        }
    }

    /// The configured store. `Sessions::new` refuses what would need a
    /// missing store, and a store-held session can only be loaded with
    /// one: a typed error rather than a panic all the same.
    pub(crate) fn store(&self) -> Result<&dyn SessionStore, SaveError> {
        self.config
            .store
            .as_deref()
            .ok_or(SaveError::Store(StoreError::Unavailable(
                "no store configured".into(),
            )))
    }

    /// Seals a session into the cookie, or into the store with a pointer
    /// in the cookie, and writes the store entry (conditionally, rule 2).
    ///
    /// `Ok(None)`: nothing to write after all. A write that only re-issues
    /// the cookie (rolling, key rotation) of a store-held value this
    /// request did not change, and finds the entry taken meanwhile by
    /// another request (moved back into the cookie, or ended), leaves the
    /// browser's cookie alone rather than fail a request that changed
    /// nothing.
    pub(crate) async fn write(
        &self,
        write: &Write,
        now: u64,
    ) -> Result<Option<Written>, SaveError> {
        let gone = || write.taken().map(|_| None);
        if self.config.store_mode == StoreMode::Cookie {
            match self.write_cookie(write, now) {
                Err(SaveError::TooLarge { .. }) if self.config.store.is_some() => {}
                Ok(written) => {
                    // Moving back into the cookie takes the entry, last
                    // (`take_moved`).
                    if write.continues.is_some() {
                        self.store()?;
                    }
                    return Ok(Some(written));
                }
                Err(error) => return Err(error),
            }
        }
        let store = self.store()?;
        let lifetime = self.config.lifetime.of(&write.lifetime);
        let key = write.continues.unwrap_or_else(StoreKey::random);
        let cookie_stays = write.continues.is_some() && !write.must_reissue;
        let issued = if cookie_stays {
            write.old_issued
        } else {
            write.issue_at
        };
        // The pointer cookie first: a cookie that cannot be written (over
        // the size limit) must not leave an entry behind.
        let set_cookie = if cookie_stays {
            None
        } else {
            let pointer = write.envelope(Body::Stored(StoreRef {
                id: *key.as_bytes(),
            }));
            let max_age = lifetime.max_age(write.created, issued, now);
            Some(self.seal(&pointer, 0, max_age)?)
        };
        let primary = self.keyring.primary();
        let aad = seal::store_associated_data(write.version, primary.id, &key, &self.binding);
        let mut plaintext = seal::buffer(write.body.len());
        plaintext.extend_from_slice(&write.body);
        let entry = seal::seal_raw(
            primary,
            seal::Purpose::Store,
            write.version,
            &aad,
            plaintext,
        );
        let ttl = lifetime.copies_ttl(write.created, now);
        if write.continues.is_some() {
            if !store
                .replace(&key, &entry, ttl)
                .await
                .map_err(SaveError::Store)?
            {
                return gone();
            }
        } else if !store
            .create(&key, &entry, ttl)
            .await
            .map_err(SaveError::Store)?
        {
            // A fresh 256-bit key already in use: not a session of ours.
            return Err(SaveError::Store(StoreError::Corrupt(
                "a new store key is already in use".into(),
            )));
        }
        Ok(Some(Written {
            set_cookie,
            stored: Some(key),
            created_entry: write.continues.is_none(),
            issued,
        }))
    }

    /// Seals a session whole into its cookie.
    pub(crate) fn write_cookie(&self, write: &Write, now: u64) -> Result<Written, SaveError> {
        let max_age =
            self.config
                .lifetime
                .of(&write.lifetime)
                .max_age(write.created, write.issue_at, now);
        let inline = write.envelope(Body::Inline(&write.body));
        Ok(Written {
            set_cookie: Some(self.seal(&inline, write.body.len(), max_age)?),
            stored: None,
            created_entry: false,
            issued: write.issue_at,
        })
    }

    /// Ends an id (rule 3): the revocation marker first, then the entry,
    /// so that a store refusing the marker leaves everything as it was.
    /// Once the marker is written every copy is dead, so a delete that
    /// then fails is only logged (the entry expires with its time to
    /// live) rather than fail a save whose old id is already over;
    /// without revocation the delete is what ends the id, and its failure
    /// fails the save. A renew first checks that its entry is still
    /// there: one taken meanwhile (the session moved back into its
    /// cookie, or was ended) fails the renew before anything is revoked.
    /// (Between that check and the delete lies one store round trip; a
    /// request that takes the entry in that window makes this renew fail
    /// with `Ended` after the marker is written, which ends that session
    /// too: it fails closed.) `sends_cookie`: the save sends a session
    /// cookie; without a marker, the note is then what keeps a parallel
    /// request from removing it, so the delete waits for the note (a
    /// logout sends only the removal: a note that cannot be written does
    /// not stop it).
    pub(crate) async fn end(&self, end: &End, sends_cookie: bool) -> Result<(), SaveError> {
        if !end.needs_store() {
            return Ok(());
        }
        let store = self.store()?;
        let ended = |gone: bool| {
            if gone && end.carried {
                Err(SaveError::Ended)
            } else {
                Ok(())
            }
        };
        if let (Some(stored), true) = (&end.stored, end.carried) {
            ended(
                store
                    .load(stored)
                    .await
                    .map_err(SaveError::Store)?
                    .is_none(),
            )?;
        }
        if let Some((marker, ttl)) = &end.marker {
            // A marker already there: another request revoked this id.
            let created = store
                .create(marker, &end.at.to_be_bytes(), *ttl)
                .await
                .map_err(SaveError::Store)?;
            ended(!created)?;
        }
        if let Some(stored) = &end.stored {
            // Without a marker, the note is what keeps a parallel request
            // from removing the cookie this save sends: no note, no delete.
            if let Err(error) = self.leave_note(store, stored, end.at, end.note_ttl).await {
                if end.marker.is_none() && sends_cookie {
                    return Err(SaveError::Store(error));
                }
                tracing::warn!(%error, "note of a deleted session store entry not written");
            }
            match store.delete(stored).await {
                Ok(deleted) => ended(!deleted)?,
                Err(error) if end.marker.is_some() => tracing::warn!(
                    %error,
                    "store entry of a revoked session not deleted; it expires with its TTL"
                ),
                Err(error) => return Err(SaveError::Store(error)),
            }
        }
        Ok(())
    }

    /// Before the ends of a save whose value moves back into its cookie
    /// (`takes`): whether its entry is still there. Gone (another
    /// request moved or ended the session), the save ends nothing, and a
    /// changed value fails with [`SaveError::Ended`] and an unchanged one
    /// sends nothing (`Ok(false)`), as [`Inner::take_moved`] would. (One
    /// store round trip lies between this check and the take; a request
    /// that takes the entry in that window makes this save fail after the
    /// ends, which stick: it fails closed.)
    pub(crate) async fn can_take(
        &self,
        write: &Write,
        written: &Written,
    ) -> Result<bool, SaveError> {
        let Some(old) = takes(write, written) else {
            return Ok(true);
        };
        let store = self.store()?;
        if store.load(&old).await.map_err(SaveError::Store)?.is_some() {
            Ok(true)
        } else {
            write.taken()
        }
    }

    /// Takes the entry a value moved out of, back into its cookie
    /// (`takes`), once the save has ended every id it ends: a
    /// note, then the delete. `Ok(true)`: send the cookie. The entry must
    /// still be there: gone (another request moved or ended the session
    /// meanwhile), a changed value fails with [`SaveError::Ended`] and an
    /// unchanged one sends nothing (`Ok(false)`), as a write into the
    /// store would. A store error fails the save with the entry (at worst
    /// its note) left: the browser's pointer still opens.
    pub(crate) async fn take_moved(
        &self,
        write: &Write,
        written: &Written,
        now: u64,
    ) -> Result<bool, SaveError> {
        let Some(old) = takes(write, written) else {
            return Ok(true);
        };
        let store = self.store()?;
        // Copies of the pointer carry the lifetime loaded, which this
        // write may have shortened.
        let ttl = self
            .note_ttl(write.created, &write.lifetime, now)
            .max(self.note_ttl(write.created, &write.loaded_lifetime, now));
        self.leave_note(store, &old, now, ttl)
            .await
            .map_err(SaveError::Store)?;
        if store.delete(&old).await.map_err(SaveError::Store)? {
            Ok(true)
        } else {
            write.taken()
        }
    }

    /// Leaves the note that `entry` is deleted at `at`, for `ttl`, before
    /// deleting it: a request that then finds it gone knows when it went,
    /// and leaves the browser's cookie alone for a while rather than
    /// remove the one this save is about to send (`load.rs`); and that it
    /// was not lost (`rejection_log.rs`). A note already there (an
    /// earlier attempt whose delete failed) holds an earlier time and is
    /// replaced by this one: kept, it would tell a request racing this
    /// delete that the entry died long ago, and that request would remove
    /// the cookie this save sends (review 9). The replace is an ordinary
    /// write (under `with_wait` it waits for replicas, and its failure
    /// fails the save as a note not written does); it is sent only when a
    /// note is already there.
    async fn leave_note(
        &self,
        store: &dyn SessionStore,
        entry: &StoreKey,
        at: u64,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let note = StoreKey::moved(entry);
        let value = at.to_be_bytes();
        if store.create_hint(&note, &value, ttl).await? || store.replace(&note, &value, ttl).await?
        {
            return Ok(());
        }
        // The earlier note expired between the two calls.
        store.create_hint(&note, &value, ttl).await.map(drop)
    }

    /// Undoes the entry a failed save created (best effort).
    pub(crate) async fn undo(&self, written: &Written) {
        let (Some(key), true, Some(store)) = (
            written.stored,
            written.created_entry,
            self.config.store.as_deref(),
        ) else {
            return;
        };
        if let Err(error) = store.delete(&key).await {
            tracing::warn!(%error, "session store entry of a failed save not deleted; it expires with its TTL");
        }
    }

    /// Sends the removal cookie of a destroyed session and records that
    /// the browser now holds none.
    pub(crate) fn removed<T>(
        &self,
        session: &Session<T>,
        headers: &mut HeaderMap,
        generation: u64,
    ) {
        headers.append(SET_COOKIE, self.rendered.removal.clone());
        let mut state = session.lock();
        state.origin = None;
        // A value saved later in this request starts a lifetime of its own.
        state.created = self.config.lifetime.start(state.loaded_at);
        state.issued = state.loaded_at;
        state.schema = None;
        // Nothing the browser held is left to protect.
        state.newer_schema = None;
        state.unreadable = false;
        state.dead = false;
        state.newer_too = None;
        if state.generation == generation {
            state.destroyed = false;
            state.restart = false;
            state.end_origin = false;
        }
    }

    /// Sends the cookie `write` produced, if any, and records what the
    /// browser now holds.
    pub(crate) fn written<T>(
        &self,
        session: &Session<T>,
        headers: &mut HeaderMap,
        write: Write,
        written: Written,
        generation: u64,
    ) {
        if let Some(set_cookie) = written.set_cookie {
            headers.append(SET_COOKIE, set_cookie);
        }
        let mut state = session.lock();
        state.created = write.created;
        state.issued = written.issued;
        state.schema = Some(write.schema);
        state.newer_schema = None;
        state.unreadable = false;
        state.dead = false;
        state.newer_too = None;
        state.origin = Some(Origin {
            id: write.id,
            key_position: 0,
            stored: written.stored,
            body: 0..write.body.len(),
            buf: write.body,
            lifetime: write.lifetime,
        });
        // A change that came in while this save did its store I/O (from a
        // clone in another task) stays to be saved next time.
        if state.generation == generation {
            state.changed = false;
            state.restart = false;
            state.end_origin = false;
            state.destroyed = false;
        }
    }

    /// Seals an envelope under the primary key into a whole `Set-Cookie`
    /// value, enforcing the size limit on name plus value.
    fn seal(
        &self,
        envelope: &Envelope<'_>,
        body_len: usize,
        max_age: Option<u64>,
    ) -> Result<HeaderValue, SaveError> {
        let name = &self.config.attributes.name;
        let mut plaintext = seal::buffer(body_len + envelope::MAX_OVERHEAD);
        envelope.encode_into(&mut plaintext);
        let value_len = seal::encoded_len(plaintext.len() + seal::OVERHEAD - seal::HEADER_LEN);
        let size = name.len() + value_len;
        if size > self.config.size_limit {
            return Err(SaveError::TooLarge {
                size,
                limit: self.config.size_limit,
            });
        }
        let suffix = &self.rendered.suffix;
        const MAX_AGE: &str = "; Max-Age=";
        let max_age_len = max_age.map_or(0, |n| {
            MAX_AGE.len() + n.checked_ilog10().unwrap_or(0) as usize + 1
        });
        // Exactly the final length: the header value then takes this buffer
        // as it is, with no second allocation. Bytes, not a `String`: the
        // base64 engine writes into it directly.
        let mut cookie = Vec::with_capacity(size + 1 + suffix.len() + max_age_len);
        cookie.extend_from_slice(name.as_bytes());
        cookie.push(b'=');
        let version = envelope.version();
        seal::seal_into(
            self.keyring.primary(),
            version,
            &self.aads[0][usize::from(version - 1)],
            plaintext,
            &mut cookie,
        );
        debug_assert_eq!(cookie.len(), size + 1);
        cookie.extend_from_slice(suffix.as_bytes());
        if let Some(max_age) = max_age {
            cookie.extend_from_slice(MAX_AGE.as_bytes());
            push_decimal(&mut cookie, max_age);
        }
        debug_assert_eq!(cookie.len(), cookie.capacity());
        HeaderValue::try_from(cookie).map_err(|e| SaveError::Encode(e.to_string()))
    }
}

/// Appends `n` in decimal (what `write!` does, without the formatting
/// machinery, on every cookie written).
fn push_decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut start = digits.len();
    loop {
        start -= 1;
        digits[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[start..]);
}

#[cfg(test)]
mod tests {
    use super::push_decimal;

    #[test]
    fn decimal_digits_are_those_of_display() {
        for n in [
            0,
            7,
            9,
            10,
            99,
            100,
            86_400,
            1 << 40,
            u64::MAX - 1,
            u64::MAX,
        ] {
            let mut out = b"x".to_vec();
            push_decimal(&mut out, n);
            assert_eq!(out, format!("x{n}").as_bytes());
        }
    }
}
