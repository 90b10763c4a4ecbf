//! Requests with two readings are refused with 400 `ambiguous_request`, never resolved by
//! taking one of them: a header that carries one value given twice, a query parameter given
//! twice that is not a list, an expiry of zero.

use crate::common::{TestServer, code, encrypt, noise, parties};

#[tokio::test]
async fn two_authorization_headers_a_repeated_parameter_and_a_zero_expiry_are_refused() {
    let server = TestServer::start().await;
    let (bob, alice, id) = parties(&server).await;
    let http = server.http();

    // Two Authorization headers, even the same token twice.
    let r = http
        .get(format!("{}/api/v1/inbox", server.url))
        .header("authorization", format!("Bearer {alice}"))
        .header("authorization", format!("Bearer {bob}"))
        .send()
        .await
        .unwrap();
    let (status, body) = crate::common::status_json(r).await;
    assert_eq!((status, code(&body)), (400, "ambiguous_request"), "{body}");
    assert!(body.to_string().contains("`authorization` header"), "{body}");
    // Two Range headers on a redemption.
    let r = http
        .post(format!("{}/api/v1/redeem", server.url))
        .bearer_auth(&alice)
        .header("range", "bytes=0-9")
        .header("range", "bytes=10-19")
        .json(&serde_json::json!({"token": "x"}))
        .send()
        .await
        .unwrap();
    let (status, body) = crate::common::status_json(r).await;
    assert_eq!((status, code(&body)), (400, "ambiguous_request"), "{body}");

    // A repeated query parameter that is not a list.
    let (status, body) = server.get(&alice, "/api/v1/inbox?limit=1&limit=2").await;
    assert_eq!((status, code(&body)), (400, "ambiguous_request"), "{body}");
    let ciphertext = encrypt(&[&id.to_public().to_string()], &noise(1000));
    for extra in [
        "&expires=1h&expires=2h",
        "&classification=OFFICIAL&classification=OFFICIAL-SENSITIVE",
        "&expires=0s",
        "&expires=0d",
    ] {
        let (status, body) = server.upload(&bob, &["hmpps/alice"], extra, ciphertext.clone()).await;
        assert_eq!((status, code(&body)), (400, "ambiguous_request"), "{extra}: {body}");
    }
    // Nothing was accepted; `to` is a list and may repeat.
    assert!(!server.events().await.iter().any(|e| e == "upload.accepted"));
    let (status, body) = server.upload(&bob, &["hmpps/alice"], "&expires=1h", ciphertext).await;
    assert_eq!(status, 201, "{body}");
    server.stop().await;
}
