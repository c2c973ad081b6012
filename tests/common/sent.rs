//! What a response told the browser about the session cookie, for the
//! tests of dead-cookie removal and of the reviews that attacked it.

use http::HeaderMap;
use sealed_session::{Rejection, Sessions};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{DEFAULT_NAME, set_cookies};

/// What a response told the browser about the session cookie.
#[derive(Debug, PartialEq)]
pub enum Sent {
    Nothing,
    Removal,
    Cookie,
}

impl Sent {
    /// For the default cookie name (`__Host-session`) only: any other
    /// `Set-Cookie`, or more than one, is a panic.
    pub fn of(response: &HeaderMap) -> Sent {
        let all = set_cookies(response);
        let removal = format!("{DEFAULT_NAME}=;");
        let cookie = format!("{DEFAULT_NAME}=");
        match all.as_slice() {
            [] => Sent::Nothing,
            [one] if one.starts_with(&removal) && one.contains("Max-Age=0") => Sent::Removal,
            [one] if one.starts_with(&cookie) => Sent::Cookie,
            other => panic!("unexpected Set-Cookie: {other:?}"),
        }
    }

    /// For any cookie name: more than one `Set-Cookie` is a panic.
    pub fn of_any(response: &HeaderMap) -> Sent {
        let all = set_cookies(response);
        match all.as_slice() {
            [] => Sent::Nothing,
            [one] if one.contains("=;") && one.contains("Max-Age=0") => Sent::Removal,
            [_] => Sent::Cookie,
            other => panic!("unexpected Set-Cookie: {other:?}"),
        }
    }
}

/// Loads `request` as a `T`, only reads, saves: the refusal and what the
/// browser is told, as `classify` reads the response.
pub async fn read_only<T>(
    sessions: &Sessions,
    request: &HeaderMap,
    classify: fn(&HeaderMap) -> Sent,
) -> (Option<Rejection>, Sent)
where
    T: Serialize + DeserializeOwned + Default + Clone + 'static,
{
    let session = sessions.load::<T>(request).await.unwrap();
    session.get();
    let mut response = HeaderMap::new();
    sessions.save(&session, &mut response).await.unwrap();
    (session.rejection(), classify(&response))
}
