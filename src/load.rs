//! Loading: from a request's `Cookie` values to a session's state.
//!
//! One candidate value goes through, in order: the size bound, base64 and
//! the AEAD (`seal`), the envelope, the lifetime check, then (with a
//! store) the revocation marker and the store entry, and last the
//! application's type. The first refusal is the session's
//! [`Rejection`]; a store that fails is an error, never a refusal.

use std::ops::Range;

use serde::de::DeserializeOwned;

use crate::envelope::{Body, Envelope, SessionId};
use crate::rejection::Rejection;
use crate::seal;
use crate::session::{Origin, Session, State};
use crate::sessions::Inner;
use crate::store::{StoreError, StoreKey};

impl Inner {
    /// A new session holding `T::default()`, after no cookie opened.
    pub(crate) fn fresh<T: Default>(&self, now: u64, rejection: Option<Rejection>) -> Session<T> {
        Session::from_state(State {
            data: T::default(),
            id: SessionId::random(),
            created: self.config.lifetime.start(now),
            issued: now,
            loaded_at: now,
            new: true,
            origin: None,
            changed: false,
            restart: false,
            end_origin: false,
            destroyed: false,
            generation: 0,
            rejection,
        })
    }

    /// Records a cookie that did not open: a `debug` event, and the first
    /// reason for [`Session::rejection`].
    pub(crate) fn rejected(&self, (reason, key_id): seal::Refused, first: &mut Option<Rejection>) {
        tracing::debug!(
            reason = %reason,
            key_id = key_id.map(tracing::field::display),
            cookie = %self.config.attributes.name,
            "session cookie rejected"
        );
        first.get_or_insert(reason);
    }

    /// Opens one candidate cookie value: cryptography and lifetime only.
    pub(crate) fn open_cookie(
        &self,
        value: &[u8],
        now: u64,
        buf: &mut Vec<u8>,
    ) -> Result<Opened, seal::Refused> {
        let opened = self.unseal(value, buf)?;
        self.config
            .lifetime
            .check(opened.created, opened.issued, now)
            .map_err(|reason| (reason, Some(opened.key_id)))?;
        Ok(opened)
    }

    /// Opens a cookie value into its envelope: size bound, cryptography,
    /// envelope decoding. No lifetime check (`inspect` reports it instead).
    pub(crate) fn unseal(&self, value: &[u8], buf: &mut Vec<u8>) -> Result<Opened, seal::Refused> {
        let name = &self.config.attributes.name;
        if name.len() + value.len() > self.config.size_limit {
            return Err((Rejection::TooLarge, None));
        }
        let (position, plaintext) = seal::open(&self.keyring, &self.aads, value, buf)?;
        let key_id = self.keyring.keys()[position].id;
        let envelope = Envelope::decode(&buf[plaintext.clone()])
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
            id: envelope.id,
            created: envelope.created,
            issued: envelope.issued,
            body,
            buf: std::mem::take(buf),
        })
    }

    /// Completes an opened cookie: revocation, store entry, value. The
    /// outer `Err` is a store failure; the inner one a refusal.
    pub(crate) async fn resolve<T: DeserializeOwned>(
        &self,
        opened: Opened,
        now: u64,
    ) -> Result<Result<State<T>, seal::Refused>, StoreError> {
        let fail = |reason| Ok(Err((reason, Some(opened.key_id))));
        let store = self.config.store.as_deref();
        if let (true, Some(store)) = (self.config.revocation, store) {
            let marker = StoreKey::revocation(&self.binding, &opened.id);
            if store.load(&marker).await?.is_some() {
                return fail(Rejection::Revoked);
            }
        }
        let entry = match &opened.body {
            OpenedBody::Inline(_) => None,
            &OpenedBody::Stored(key) => {
                let Some(store) = store else {
                    return fail(Rejection::StoreNotConfigured);
                };
                let Some(mut buf) = store.load(&key).await? else {
                    return fail(Rejection::MissingStoreEntry);
                };
                let opened_entry =
                    seal::open_raw(&self.keyring, seal::Purpose::Store, &mut buf, |_, id| {
                        seal::store_associated_data(id, &key, &self.binding)
                    });
                let Ok((position, body)) = opened_entry else {
                    tracing::warn!(store_key = %key, "session store entry did not authenticate");
                    return fail(Rejection::StoreEntryInvalid);
                };
                Some(Entry {
                    key,
                    position,
                    buf,
                    body,
                })
            }
        };
        Ok(self.decode(opened, entry, now))
    }

    /// Decodes the value, from the cookie (`entry` is `None`) or from its
    /// opened store entry, into the session's state. Without an entry, a
    /// store-held cookie is `StoreNotConfigured`.
    pub(crate) fn decode<T: DeserializeOwned>(
        &self,
        opened: Opened,
        entry: Option<Entry>,
        now: u64,
    ) -> Result<State<T>, seal::Refused> {
        let (buf, body, stored, key_position) = match (entry, opened.body) {
            (Some(entry), _) => (
                entry.buf,
                entry.body,
                Some(entry.key),
                opened.key_position.max(entry.position),
            ),
            (None, OpenedBody::Inline(body)) => (opened.buf, body, None, opened.key_position),
            (None, OpenedBody::Stored(_)) => {
                return Err((Rejection::StoreNotConfigured, Some(opened.key_id)));
            }
        };
        let data = match postcard::take_from_bytes::<T>(&buf[body.clone()]) {
            Ok((data, [])) => data,
            _ => return Err((Rejection::Incompatible, Some(opened.key_id))),
        };
        self.keyring.keys()[opened.key_position].count_open();
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
            }),
            changed: false,
            restart: false,
            end_origin: false,
            destroyed: false,
            generation: 0,
            rejection: None,
        })
    }
}

/// A cookie that opened, before the store is asked.
pub(crate) struct Opened {
    pub(crate) key_position: usize,
    pub(crate) key_id: crate::keyring::KeyId,
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
    /// The opened entry; the value lies at `body`.
    buf: Vec<u8>,
    body: Range<usize>,
}

pub(crate) enum OpenedBody {
    /// Where the value lies in `Opened::buf`.
    Inline(Range<usize>),
    Stored(StoreKey),
}
