//! Single sign-on in the store, on the pass's database (SQLite, or PostgreSQL in the PostgreSQL
//! pass): a person bound by their verified email then by their subject, the session and CLI token
//! a sign-in starts carrying how they authenticated, just-in-time users with roles from the
//! provider's rules, and a browser attempt used once. (The flows through a real provider and a
//! real browser are in e2e/tests/sso*.test.mjs and device.test.mjs.)

use std::time::Duration;

use chrono::Utc;
use sealpost::ids::BearerSecret;
use sealpost::model::{AuthMethod, Authentication, OrgKind, Role, UserRef};
use sealpost::sso::Person;
use sealpost::store::{PendingSignIn, SessionLookup, SsoGrant, SsoGranted, SsoRefusal, Store};

use crate::common::database_url;

const HOUR: Duration = Duration::from_secs(3600);

fn person(subject: &str, email: Option<&str>, mfa: bool, rule: Option<Result<(Role, Option<String>), ()>>) -> Person {
    Person {
        provider: "sso".into(),
        issuer: "https://idp.example".into(),
        subject: subject.into(),
        email: email.map(str::to_owned),
        name: None,
        rule,
        auth: Authentication {
            method: AuthMethod::Oidc,
            mfa,
            amr: if mfa { vec!["pwd".into(), "otp".into(), "mfa".into()] } else { vec!["pwd".into()] },
            acr: "urn:test".into(),
        },
    }
}

#[tokio::test]
async fn people_are_bound_to_users_and_their_sessions_and_tokens_carry_how_they_signed_in() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::connect(&database_url(dir.path())).await.expect("store");
    let now = Utc::now();
    let admin_token = BearerSecret::generate("sp_");
    store.bootstrap(&admin_token.hash(), now + chrono::TimeDelta::days(1), now).await.expect("bootstrap");
    let admin = store.authenticate(&admin_token.hash(), now).await.expect("auth").expect("admin");
    assert_eq!(admin.auth, Authentication::token(), "an administrator's token is a token");
    store.create_org(&admin.id, "hmpps", OrgKind::Agency, now).await.expect("org");
    let alice = UserRef::new("hmpps", "alice").expect("name");
    let token = BearerSecret::generate("sp_").hash();
    store
        .create_user(&admin.id, &alice, Role::Recipient, Some("alice@hmpps.example"), &token, None, now)
        .await
        .expect("alice");
    let taken = store
        .create_user(
            &admin.id,
            &UserRef::new("hmpps", "alias").expect("name"),
            Role::Recipient,
            Some("alice@hmpps.example"),
            &token,
            None,
            now,
        )
        .await;
    assert!(taken.is_err(), "two users with one email address");

    // A browser session through the provider: found by email, then bound.
    let p = person("sub-1", Some("alice@hmpps.example"), false, None);
    let secret = BearerSecret::generate("").hash();
    let granted = store.sso_sign_in(&p, None, SsoGrant::Session { secret: &secret, lifetime: HOUR }, now).await;
    assert!(matches!(granted, Ok(Ok(SsoGranted::Session(_)))), "{granted:?}");
    let SessionLookup::Live(s) = store.session(&secret, HOUR, now).await.expect("lookup") else { panic!("no session") };
    assert_eq!((s.principal.user.clone(), s.principal.auth.clone()), (alice.clone(), p.auth.clone()));
    let other = store
        .sso_sign_in(
            &person("sub-2", Some("alice@hmpps.example"), true, None),
            None,
            SsoGrant::Session { secret: &BearerSecret::generate("").hash(), lifetime: HOUR },
            now,
        )
        .await
        .expect("sign in");
    assert!(matches!(other, Err(SsoRefusal::Conflict(_))), "{other:?}");
    let nobody = store
        .sso_sign_in(
            &person("sub-3", Some("eve@hmpps.example"), true, None),
            None,
            SsoGrant::Session { secret: &BearerSecret::generate("").hash(), lifetime: HOUR },
            now,
        )
        .await
        .expect("sign in");
    assert_eq!(nobody, Err(SsoRefusal::UnknownUser));
    let filter =
        sealpost::store::AuditFilter { event: Some("session.started".into()), limit: 100, ..Default::default() };
    let started: Vec<String> = store.audit(&filter).await.expect("audit").into_iter().map(|e| e.entry).collect();
    assert!(
        started.iter().any(|e| e.contains("method oidc") && e.contains("provider sso") && e.contains("mfa false")),
        "{started:?}"
    );

    // A CLI token through the device flow: kind sso, the person's own, with the multi-factor sign-in.
    let cli = BearerSecret::generate("sp_");
    let p = person("sub-1", None, true, None);
    let granted = store.sso_sign_in(&p, None, SsoGrant::Token { token: &cli.hash(), lifetime: HOUR }, now).await;
    assert!(matches!(granted, Ok(Ok(SsoGranted::Token { .. }))), "{granted:?}");
    let caller = store.authenticate(&cli.hash(), now).await.expect("auth").expect("live");
    assert_eq!((caller.user.clone(), caller.auth.clone()), (alice.clone(), p.auth.clone()));
    let later = now + chrono::Duration::hours(2);
    assert_eq!(store.authenticate(&cli.hash(), later).await.expect("auth"), None, "outlived its lifetime");
    let tokens = store.list_tokens(Some(&alice)).await.expect("tokens");
    let kinds: Vec<(&str, Option<String>)> =
        tokens.iter().map(|t| (t.kind.as_str(), t.created_by.as_ref().map(ToString::to_string))).collect();
    assert!(kinds.contains(&("sso", Some("hmpps/alice".into()))), "{kinds:?}");
    assert!(kinds.contains(&("service", Some("sealpost/admin".into()))), "{kinds:?}");
    // A page session started with that token keeps its authentication.
    let pasted = BearerSecret::generate("").hash();
    let s = store.start_session(&cli.hash(), &pasted, HOUR, now).await.expect("start").expect("live");
    assert_eq!(s.principal.auth, p.auth);

    // Just in time, with roles from the provider's rules.
    let mut bob = person("sub-9", Some("bob@hmpps.example"), true, Some(Ok((Role::Sender, None))));
    let name = UserRef::new("hmpps", "bob").expect("name");
    let made = store
        .sso_sign_in(
            &bob,
            Some((name.clone(), Role::Sender)),
            SsoGrant::Session { secret: &BearerSecret::generate("").hash(), lifetime: HOUR },
            now,
        )
        .await
        .expect("sign in");
    let Ok(SsoGranted::Session(s)) = made else { panic!("{made:?}") };
    assert_eq!((s.principal.user.clone(), s.principal.role), (name, Role::Sender));
    bob.rule = Some(Ok((Role::Compliance, None)));
    let moved = store
        .sso_sign_in(&bob, None, SsoGrant::Session { secret: &BearerSecret::generate("").hash(), lifetime: HOUR }, now)
        .await
        .expect("sign in");
    let Ok(SsoGranted::Session(s)) = moved else { panic!("{moved:?}") };
    assert_eq!(s.principal.role, Role::Compliance, "the role follows the provider's rules");
    let mut namesake = person("sub-10", Some("other@elsewhere.example"), true, Some(Ok((Role::Recipient, None))));
    namesake.name = Some("alice".into());
    let taken = store
        .sso_sign_in(
            &namesake,
            Some((alice.clone(), Role::Recipient)),
            SsoGrant::Session { secret: &BearerSecret::generate("").hash(), lifetime: HOUR },
            now,
        )
        .await
        .expect("sign in");
    assert!(matches!(taken, Err(SsoRefusal::Conflict(_))), "a taken name is refused, not merged: {taken:?}");
    bob.rule = Some(Err(()));
    let gone = store
        .sso_sign_in(&bob, None, SsoGrant::Session { secret: &BearerSecret::generate("").hash(), lifetime: HOUR }, now)
        .await
        .expect("sign in");
    assert_eq!(gone, Err(SsoRefusal::NoRole));

    // A browser attempt is taken back once.
    let state = BearerSecret::generate("").hash();
    let pending = PendingSignIn {
        browser_hash: vec![1; 32],
        provider: "sso".into(),
        nonce: "n".into(),
        pkce_verifier: "v".into(),
    };
    store.begin_sso_sign_in(&state, &pending, now).await.expect("begin");
    assert_eq!(store.take_sso_sign_in(&state, now).await.expect("take"), Some(pending.clone()));
    assert_eq!(store.take_sso_sign_in(&state, now).await.expect("take"), None);
    store.begin_sso_sign_in(&state, &pending, now).await.expect("begin");
    let late = now + chrono::Duration::from_std(sealpost::store::SIGN_IN_WINDOW).expect("window");
    assert_eq!(store.take_sso_sign_in(&state, late).await.expect("take"), None, "taken after its window");
}
