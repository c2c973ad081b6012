//! The size limit on the final cookie: name plus value after sealing, as
//! browsers count it (RFC 6265bis §5.6; web-platform-tests
//! cookies/size/name-and-value: 1 + 4095 is set, 1 + 4096 is dropped).

mod common;

use common::*;
use http::HeaderMap;
use sealed_session::{ManualClock, SaveError, Sessions};

/// Sessions whose cookie name has `len` characters.
fn named(len: usize, clock: &ManualClock) -> Sessions {
    let name = format!("s{}", "x".repeat(len - 1));
    Sessions::new(ring(&[1]), config(clock).with_cookie_name(name)).unwrap()
}

#[tokio::test]
async fn exactly_4096_is_written_and_4097_is_refused() {
    let clock = ManualClock::new(START);
    let (payload, name_len) = exact_fit(&named(1, &clock)).await;

    let fits = named(name_len, &clock);
    let (_, response, ()) = round(&fits, &HeaderMap::new(), |s| s.set(vec![7u8; payload])).await;
    let cookie = the_cookie(&response);
    assert_eq!(cookie.name().len() + cookie.value().len(), 4096);
    // And it opens.
    let (again, _, ()) = round::<Vec<u8>, _>(&fits, &request_after(&response), |_| ()).await;
    assert_eq!(again.get().len(), payload);

    let over = named(name_len + 1, &clock);
    let session = over.load::<Vec<u8>>(&HeaderMap::new()).await.unwrap();
    session.set(vec![7u8; payload]);
    let mut response = HeaderMap::new();
    let err = over.save(&session, &mut response).await.unwrap_err();
    assert_eq!(
        err,
        SaveError::TooLarge {
            size: 4097,
            limit: 4096
        }
    );
    assert!(
        response.is_empty(),
        "no Set-Cookie: the browser keeps its previous cookie"
    );
    assert!(err.to_string().contains("4097") && err.to_string().contains("4096"));
}

#[tokio::test]
async fn an_oversized_save_leaves_the_previous_cookie_valid() {
    let clock = ManualClock::new(START);
    let sessions = sessions(&[1], &clock);
    let (_, first, ()) = round(&sessions, &HeaderMap::new(), |s| s.set(vec![1u8; 10])).await;
    let session = sessions
        .load::<Vec<u8>>(&request_after(&first))
        .await
        .unwrap();
    session.set(vec![1u8; 5000]);
    let mut response = HeaderMap::new();
    assert!(matches!(
        sessions.save(&session, &mut response).await,
        Err(SaveError::TooLarge { limit: 4096, .. })
    ));
    assert!(response.is_empty());
    let (still, _, ()) = round::<Vec<u8>, _>(&sessions, &request_after(&first), |_| ()).await;
    assert_eq!(still.get(), vec![1u8; 10]);
}

#[tokio::test]
async fn a_configured_limit_applies_to_saving_and_loading() {
    let clock = ManualClock::new(START);
    let small = Sessions::new(ring(&[1]), config(&clock).with_size_limit(200)).unwrap();
    let large = sessions(&[1], &clock);
    let value = sealed(&large, vec![0u8; 200]).await;
    let session = small
        .load::<Vec<u8>>(&request(&[("__Host-session", &value)]))
        .await
        .unwrap();
    assert_eq!(
        session.rejection(),
        Some(sealed_session::Rejection::TooLarge)
    );
    session.set(vec![0u8; 200]);
    let err = small
        .save(&session, &mut HeaderMap::new())
        .await
        .unwrap_err();
    assert!(matches!(err, SaveError::TooLarge { limit: 200, .. }));
}
