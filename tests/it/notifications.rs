//! Notifications by email against a real SMTP server (aiosmtpd from PyPI, see
//! `common::notify`): the "bundle waiting" mail and what it must never carry, the outbox riding
//! out a server that is down or refusing, `notification.sent` in the audit trail, and users'
//! choices of optional kinds.

use std::time::Duration;

use serde_json::{Value, json};

use crate::common::notify::{Smtp, TestCa, free_port};
use crate::common::{TestServer, assert_exit, encrypt, keypair, link_token, output_text, sealpost_cli, values};

/// A gateway mailing through `smtp://127.0.0.1:PORT`, retrying fast.
async fn gateway(port: u16, adjust: impl FnOnce(&mut sealpost::config::Config)) -> TestServer {
    TestServer::start_with(|c| {
        c.smtp_url = Some(sealpost::config::SmtpUrl::parse(&format!("smtp://127.0.0.1:{port}")).unwrap());
        c.mail_from = Some("sealpost <sealpost@gateway.test>".to_owned());
        c.notification_interval = Duration::from_millis(100);
        c.notification_retry_base = Duration::from_millis(200);
        c.notification_retry_max = Duration::from_millis(800);
        adjust(c);
    })
    .await
}

/// Creates `user` with `role` and, when given, an email address; returns its token.
async fn user(server: &TestServer, user: &str, role: &str, email: Option<&str>) -> String {
    let mut body = json!({"user": user, "role": role});
    if let Some(email) = email {
        body["email"] = json!(email);
    }
    let (status, answer) = server.post(&server.admin, "/api/v1/users", body).await;
    assert_eq!(status, 201, "{answer}");
    answer["token"].as_str().unwrap().to_owned()
}

/// acme/bob (sender, bob@acme.test) and hmpps/alice (recipient, alice@hmpps.test, with a key).
async fn parties(server: &TestServer) -> (String, String, age::x25519::Identity, String) {
    server.org("acme", "contractor").await;
    server.org("hmpps", "agency").await;
    server.route("acme", "hmpps").await;
    let bob = user(server, "acme/bob", "sender", Some("bob@acme.test")).await;
    let alice = user(server, "hmpps/alice", "recipient", Some("alice@hmpps.test")).await;
    let (identity, recipient) = keypair();
    server.add_key(&alice, &recipient).await;
    (bob, alice, identity, recipient)
}

/// The user id of `token`'s user.
async fn id_of(server: &TestServer, token: &str) -> String {
    let pool = server.database().await;
    let (status, me) = server.get(token, "/api/v1/whoami").await;
    assert_eq!(status, 200, "{me}");
    let name = me["user"].as_str().unwrap();
    let (org, user) = name.split_once('/').unwrap();
    sqlx::query_scalar("SELECT u.id FROM users u JOIN orgs o ON o.id = u.org_id WHERE o.name = $1 AND u.name = $2")
        .bind(org)
        .bind(user)
        .fetch_one(&pool)
        .await
        .unwrap()
}

/// Waits (bounded) until the outbox is empty.
async fn outbox_drained(server: &TestServer) {
    let pool = server.database().await;
    for _ in 0..300 {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox").fetch_one(&pool).await.unwrap();
        if n == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let left: Vec<(String, String, i64, Option<String>)> =
        sqlx::query_as("SELECT kind, channel, attempts, last_error FROM outbox").fetch_all(&pool).await.unwrap();
    panic!("the outbox did not drain within 30 s: {left:?}");
}

/// The most attempts any outbox row has had, once it reaches `at_least` (or after 30 s of
/// looking, whatever it is then).
async fn outbox_attempts(pool: &sqlx::AnyPool, at_least: i64) -> i64 {
    let mut attempts = 0;
    for _ in 0..300 {
        attempts = sqlx::query_scalar::<_, i64>("SELECT COALESCE(MAX(attempts), 0) FROM outbox")
            .fetch_one(pool)
            .await
            .unwrap();
        if attempts >= at_least {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    attempts
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn body(mail: &Value) -> String {
    mail["body"].as_str().unwrap().replace("\r\n", "\n")
}

#[tokio::test]
async fn the_recipient_is_told_a_bundle_waits_with_the_inbox_link_and_never_the_link() {
    let smtp = Smtp::start(free_port(), 0);
    let server = gateway(smtp.port, |_| {}).await;
    let (bob, alice, _identity, recipient) = parties(&server).await;
    // carol has no address: she gets nothing, and nothing fails.
    let carol = user(&server, "hmpps/carol", "recipient", None).await;
    let (_, carol_key) = keypair();
    server.add_key(&carol, &carol_key).await;

    let (status, sent) = server
        .upload(&bob, &["hmpps/alice", "hmpps/carol"], "", encrypt(&[&recipient, &carol_key], b"case notes"))
        .await;
    assert_eq!(status, 201, "{sent}");
    let transfer = sent["id"].as_str().unwrap().to_owned();
    let links: Vec<String> =
        sent["links"].as_array().unwrap().iter().map(|l| l["url"].as_str().unwrap().to_owned()).collect();

    let mail = &smtp.wait_subject("A bundle from acme/bob is waiting for you").await;
    assert_eq!(mail["to"], json!(["alice@hmpps.test"]));
    assert_eq!(mail["content_type"], "text/plain");
    let text = body(mail);
    assert!(text.contains(&format!("{}/inbox\n", server.url)), "{text}");
    assert!(text.contains(&format!("Transfer: {transfer}\n")), "{text}");
    assert!(text.contains("From: acme/bob\n") && text.contains("Classification: OFFICIAL\n"), "{text}");
    for link in &links {
        let token = link_token(link);
        assert!(!text.contains(token) && !mail["raw"].as_str().unwrap().contains(token), "a link token in the mail");
        assert!(!text.contains(link.as_str()), "a link in the mail");
    }
    assert!(!text.contains("case notes"));

    // Every notification sent is an audit event with the recipient's id, the kind and the
    // channel: no content.
    outbox_drained(&server).await;
    let alice_id = id_of(&server, &alice).await;
    let sent_events: Vec<String> = server
        .entries("notification.sent")
        .await
        .into_iter()
        .filter(|e| e.contains("\nkind transfer.waiting\n"))
        .collect();
    assert_eq!(values(&sent_events, "subject"), vec![alice_id.clone()], "{sent_events:?}");
    assert_eq!(values(&sent_events, "channel"), vec!["email"]);
    assert_eq!(values(&sent_events, "transfer"), vec![transfer.clone()]);
    let to: Vec<Value> = smtp.messages().iter().map(|m| m["to"].clone()).collect();
    assert_eq!(to, vec![json!(["alice@hmpps.test"]); 2], "alice's key and bundle; carol has no address");

    // Alice collects: bob hears that it was collected, with a link to the transfer's page.
    let (status, _) = server.redeem(&alice, &links[0]).await;
    assert_eq!(status, 200);
    let collected = &smtp.wait_subject("hmpps/alice has collected your transfer").await;
    assert_eq!(collected["to"], json!(["bob@acme.test"]));
    assert!(body(collected).contains(&format!("{}/sent/{transfer}\n", server.url)), "{}", body(collected));
    assert!(body(collected).contains("sealpost notifications off transfer.collected"));

    // Alice reports it opened (without signing for it): bob hears that too.
    let (status, answer) =
        server.post(&alice, &format!("/api/v1/transfers/{transfer}/delivery"), json!({"status": "decrypted"})).await;
    assert_eq!(status, 201, "{answer}");
    let opened = smtp.wait_subject("hmpps/alice has opened your transfer").await;
    assert_eq!(opened["to"], json!(["bob@acme.test"]));
    assert!(body(&opened).contains("opened the bundle you sent (without signing for it)"), "{}", body(&opened));
    server.stop().await;
}

#[tokio::test]
async fn mail_for_a_mail_server_that_is_down_waits_in_the_outbox_and_arrives_when_it_is_up() {
    let port = free_port();
    let server = gateway(port, |_| {}).await;
    let (bob, _alice, _identity, recipient) = parties(&server).await;
    // The transfer does not wait for, or fail because of, the mail server.
    let (status, sent) = server.upload(&bob, &["hmpps/alice"], "", encrypt(&[&recipient], b"x")).await;
    assert_eq!(status, 201, "{sent}");
    let pool = server.database().await;
    let attempts = outbox_attempts(&pool, 2).await;
    assert!(attempts >= 2, "the outbox did not retry: {attempts} attempt(s)");
    assert!(server.entries("notification.sent").await.is_empty());

    let smtp = Smtp::start(port, 0);
    let mail = smtp.wait_subject("A bundle from acme/bob is waiting for you").await;
    assert_eq!(mail["to"], json!(["alice@hmpps.test"]));
    outbox_drained(&server).await;
    assert_eq!(sorted(values(&server.entries("notification.sent").await, "kind")), ["key.added", "transfer.waiting"]);
    assert_eq!(smtp.messages().len(), 2, "each sent once");
    server.stop().await;
}

#[tokio::test]
async fn a_mail_server_that_refuses_is_tried_again_and_nothing_is_lost() {
    let smtp = Smtp::start(free_port(), 2);
    let server = gateway(smtp.port, |_| {}).await;
    let (bob, _alice, _identity, recipient) = parties(&server).await;
    let (status, sent) = server.upload(&bob, &["hmpps/alice"], "", encrypt(&[&recipient], b"x")).await;
    assert_eq!(status, 201, "{sent}");
    smtp.wait_subject("A bundle from acme/bob is waiting for you").await;
    outbox_drained(&server).await;
    assert_eq!(smtp.refused(), 2, "a permanent refusal (550) is retried until the give-up time");
    assert_eq!(smtp.messages().len(), 2, "alice's key and bundle, each once");
    assert_eq!(sorted(values(&server.entries("notification.sent").await, "kind")), ["key.added", "transfer.waiting"]);
    server.stop().await;
}

#[tokio::test]
async fn a_notification_failing_past_the_give_up_time_is_recorded_as_failed() {
    let port = free_port();
    let server = gateway(port, |c| c.notification_give_up = Duration::from_millis(600)).await;
    let (bob, alice, _identity, recipient) = parties(&server).await;
    let (status, sent) = server.upload(&bob, &["hmpps/alice"], "", encrypt(&[&recipient], b"x")).await;
    assert_eq!(status, 201, "{sent}");
    outbox_drained(&server).await;
    let failed = server.entries("notification.failed").await;
    assert_eq!(values(&failed, "code"), vec!["gave_up"; 2], "{failed:?}");
    assert_eq!(values(&failed, "subject"), vec![id_of(&server, &alice).await; 2]);
    assert_eq!(sorted(values(&failed, "kind")), ["key.added", "transfer.waiting"]);
    assert!(server.entries("notification.sent").await.is_empty());
    server.stop().await;
}

#[tokio::test]
async fn a_user_who_turned_an_optional_kind_off_gets_none_of_it() {
    let smtp = Smtp::start(free_port(), 0);
    let server = gateway(smtp.port, |_| {}).await;
    let (bob, alice, _identity, recipient) = parties(&server).await;

    let out = sealpost_cli(&server, &bob, &["notifications", "off", "transfer.collected"]).await;
    assert_exit(&out, 0);
    let (stdout, _) = output_text(&out);
    assert!(stdout.contains("email goes to bob@acme.test"), "{stdout}");
    assert!(stdout.lines().any(|l| l.starts_with("transfer.collected") && l.contains(" off ")), "{stdout}");
    assert!(stdout.lines().any(|l| l.starts_with("transfer.waiting") && l.contains("on (always)")), "{stdout}");
    // What tells someone to act, or about their keys, cannot be turned off.
    let out = sealpost_cli(&server, &bob, &["notifications", "off", "key.added"]).await;
    assert_exit(&out, 1);
    assert!(output_text(&out).1.contains("`key.added` cannot be turned off"), "{}", output_text(&out).1);
    let (status, answer) = server.http_put(&bob, "/api/v1/notifications", json!({"off": ["transfer.nothing"]})).await;
    assert_eq!((status, answer["error"]["code"].as_str()), (400, Some("bad_request")), "{answer}");
    let (status, settings) = server.get(&bob, "/api/v1/notifications").await;
    assert_eq!(status, 200);
    let off: Vec<&str> = settings["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["on"] == false)
        .map(|n| n["kind"].as_str().unwrap())
        .collect();
    assert_eq!(off, vec!["transfer.collected"]);
    assert_eq!(values(&server.entries("notifications.changed").await, "off"), vec!["transfer.collected"]);

    let (status, sent) = server.upload(&bob, &["hmpps/alice"], "", encrypt(&[&recipient], b"x")).await;
    assert_eq!(status, 201, "{sent}");
    let (status, _) = server.redeem(&alice, sent["links"][0]["url"].as_str().unwrap()).await;
    assert_eq!(status, 200);
    // The outbox is written with the event that causes it: once the download is recorded and
    // the outbox is empty, anything bob was owed has been sent.
    assert_eq!(server.entries("download.completed").await.len(), 1);
    outbox_drained(&server).await;
    let kinds = sorted(values(&server.entries("notification.sent").await, "kind"));
    assert_eq!(kinds, ["key.added", "transfer.waiting"], "bob turned `transfer.collected` off");
    assert!(smtp.messages().iter().all(|m| m["to"] != json!(["bob@acme.test"])));

    // On again: the next collection tells him.
    let out = sealpost_cli(&server, &bob, &["notifications", "on", "transfer.collected"]).await;
    assert_exit(&out, 0);
    let (status, sent) = server.upload(&bob, &["hmpps/alice"], "", encrypt(&[&recipient], b"y")).await;
    assert_eq!(status, 201, "{sent}");
    let (status, _) = server.redeem(&alice, sent["links"][0]["url"].as_str().unwrap()).await;
    assert_eq!(status, 200);
    let mail = smtp.wait_subject("hmpps/alice has collected your transfer").await;
    assert_eq!(mail["to"], json!(["bob@acme.test"]));
    server.stop().await;
}

#[tokio::test]
async fn key_owners_hear_of_keys_added_under_their_name_and_recipients_of_expiry_soon() {
    let smtp = Smtp::start(free_port(), 0);
    // Every bundle "expires soon" when the reminder comes 100 days ahead.
    let server = gateway(smtp.port, |c| c.expiry_reminder = Duration::from_secs(100 * 86400)).await;
    let (bob, alice, _identity, recipient) = parties(&server).await;
    // The key alice registered in `parties`.
    let mails = smtp.wait_for(1).await;
    assert_eq!(mails[0]["to"], json!(["alice@hmpps.test"]));
    assert_eq!(mails[0]["subject"], "A key was registered under your name");
    let text = body(&mails[0]);
    assert!(text.contains("by hmpps/alice") && text.contains(&format!("{}/keys\n", server.url)), "{text}");

    let (status, sent) = server.upload(&bob, &["hmpps/alice"], "", encrypt(&[&recipient], b"x")).await;
    assert_eq!(status, 201, "{sent}");
    outbox_drained(&server).await;
    // The reminder is written once per link, however often the worker looks.
    tokio::time::sleep(Duration::from_millis(500)).await;
    outbox_drained(&server).await;
    let mut subjects: Vec<String> =
        smtp.messages().iter().skip(1).map(|m| m["subject"].as_str().unwrap().to_owned()).collect();
    subjects.sort();
    assert_eq!(subjects, vec!["A bundle from acme/bob expires soon", "A bundle from acme/bob is waiting for you"]);
    let _ = alice;
    server.stop().await;
}

#[tokio::test]
async fn compliance_officers_hear_of_held_transfers_and_senders_of_rejections() {
    let smtp = Smtp::start(free_port(), 0);
    let server = gateway(smtp.port, |_| {}).await;
    let (bob, _alice, _identity, recipient) = parties(&server).await;
    server.org("ico", "compliance").await;
    let olga = user(&server, "ico/olga", "compliance", Some("olga@ico.test")).await;
    let signer = server.signing_key(&bob).await;

    let file = encrypt(&[&recipient], b"held");
    let (status, held) = server.upload_signed(&bob, &signer, &["hmpps/alice"], "OFFICIAL-SENSITIVE", 3600, file).await;
    assert_eq!(status, 202, "{held}");
    let id = held["id"].as_str().unwrap();
    let mail = smtp.wait_subject("A transfer from acme/bob is waiting for approval").await;
    assert_eq!(mail["to"], json!(["olga@ico.test"]));
    let text = body(&mail);
    assert!(text.contains(&format!("{}/compliance/held\n", server.url)), "{text}");
    assert!(text.contains("Classification: OFFICIAL-SENSITIVE\n") && text.contains(id), "{text}");

    // Held, the recipient is told nothing yet; rejected, the sender is told and she never is.
    let (status, answer) = server.post(&olga, &format!("/api/v1/transfers/{id}/reject"), json!({})).await;
    assert_eq!(status, 200, "{answer}");
    let mail = smtp.wait_subject("Your transfer was rejected").await;
    assert_eq!(mail["to"], json!(["bob@acme.test"]));
    assert!(body(&mail).contains(&format!("{}/sent/{id}\n", server.url)));
    outbox_drained(&server).await;
    let waiting = smtp.messages().into_iter().filter(|m| m["subject"].as_str().unwrap().contains("waiting for you"));
    assert_eq!(waiting.count(), 0, "a held transfer is not waiting for anyone");
    server.stop().await;
}

#[tokio::test]
async fn mail_goes_over_tls_to_a_server_whose_certificate_a_private_ca_issued() {
    let Some(ca) = TestCa::make() else { return };
    let smtp = Smtp::start_tls(free_port(), &ca);
    // `?tls=required`: STARTTLS or nothing; the private CA from `smtp_ca_file`.
    let server = gateway(smtp.port, |c| {
        c.smtp_url =
            Some(sealpost::config::SmtpUrl::parse(&format!("smtp://127.0.0.1:{}?tls=required", smtp.port)).unwrap());
        c.smtp_ca_file = Some(ca.dir.path().join("ca.pem"));
    })
    .await;
    let (bob, _alice, _identity, recipient) = parties(&server).await;
    let (status, sent) = server.upload(&bob, &["hmpps/alice"], "", encrypt(&[&recipient], b"x")).await;
    assert_eq!(status, 201, "{sent}");
    let mail = smtp.wait_subject("A bundle from acme/bob is waiting for you").await;
    assert_eq!(mail["to"], json!(["alice@hmpps.test"]));
    server.stop().await;

    // Without the CA the certificate is not trusted, and nothing is sent in the clear.
    let smtp = Smtp::start_tls(free_port(), &ca);
    let server = gateway(smtp.port, |c| {
        c.smtp_url =
            Some(sealpost::config::SmtpUrl::parse(&format!("smtp://127.0.0.1:{}?tls=required", smtp.port)).unwrap());
    })
    .await;
    let (_bob, _alice, _identity, _recipient) = parties(&server).await;
    let pool = server.database().await;
    let attempts = outbox_attempts(&pool, 2).await;
    assert!(attempts >= 2, "an untrusted certificate is a failure to retry: {attempts}");
    assert!(smtp.messages().is_empty());
    let error: String = sqlx::query_scalar("SELECT last_error FROM outbox").fetch_one(&pool).await.unwrap();
    assert!(error.contains("127.0.0.1"), "{error}");
    server.stop().await;
}

#[tokio::test]
async fn senders_hear_of_recalls_and_of_bundles_that_expired_unused() {
    let smtp = Smtp::start(free_port(), 0);
    let server = gateway(smtp.port, |c| c.sweep_interval = Duration::from_secs(1)).await;
    let (bob, _alice, _identity, recipient) = parties(&server).await;

    let (status, sent) = server.upload(&bob, &["hmpps/alice"], "&expires=2s", encrypt(&[&recipient], b"x")).await;
    assert_eq!(status, 201, "{sent}");
    let mail = smtp.wait_subject("hmpps/alice did not collect your transfer in time").await;
    assert_eq!(mail["to"], json!(["bob@acme.test"]));
    assert!(body(&mail).contains(sent["id"].as_str().unwrap()));

    let (status, sent) = server.upload(&bob, &["hmpps/alice"], "", encrypt(&[&recipient], b"y")).await;
    assert_eq!(status, 201, "{sent}");
    let id = sent["id"].as_str().unwrap();
    let (status, answer) = server.delete(&bob, &format!("/api/v1/transfers/{id}")).await;
    assert_eq!(status, 200, "{answer}");
    let mail = smtp.wait_subject("Your transfer was recalled").await;
    assert_eq!(mail["to"], json!(["bob@acme.test"]));
    assert!(body(&mail).contains(&format!("{}/sent/{id}\n", server.url)));
    server.stop().await;
}

#[tokio::test]
async fn two_gateways_sharing_a_database_send_each_mail_once() {
    let smtp = Smtp::start(free_port(), 0);
    let shared = tempfile::tempdir().unwrap();
    let database = sealpost::config::DatabaseUrl::parse(&crate::common::database_url(shared.path())).unwrap();
    let first = gateway(smtp.port, |c| c.database_url = Some(database.clone())).await;
    // The second gateway joins the first one's database, as a deployment's gateways do: one
    // signing key, and the first one's administrator.
    let second_dir = tempfile::tempdir().unwrap();
    std::fs::write(second_dir.path().join("admin.token"), format!("{}\n", first.admin)).unwrap();
    let second = TestServer::start_in(second_dir.path(), |c| {
        c.database_url = Some(database.clone());
        c.signing_key = Some(first.data_dir.join("gateway.key"));
        c.smtp_url = Some(sealpost::config::SmtpUrl::parse(&format!("smtp://127.0.0.1:{}", smtp.port)).unwrap());
        c.mail_from = Some("sealpost <sealpost@gateway.test>".to_owned());
        c.notification_interval = Duration::from_millis(100);
    })
    .await;
    let (bob, _alice, _identity, recipient) = parties(&first).await;
    let mut transfers = Vec::new();
    for i in 0..8 {
        let gateway = if i % 2 == 0 { &first } else { &second };
        let (status, sent) = gateway.upload(&bob, &["hmpps/alice"], "", encrypt(&[&recipient], b"x")).await;
        assert_eq!(status, 201, "{sent}");
        transfers.push(sent["id"].as_str().unwrap().to_owned());
    }
    outbox_drained(&first).await;
    // Both gateways kept looking meanwhile: a row claimed twice would show as a second mail.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mails = smtp.messages();
    assert_eq!(mails.len(), 9, "alice's key and eight bundles, each mailed once");
    let mut mailed: Vec<String> = mails
        .iter()
        .filter_map(|m| body(m).lines().find_map(|l| l.strip_prefix("Transfer: ")).map(str::to_owned))
        .collect();
    mailed.sort();
    transfers.sort();
    assert_eq!(mailed, transfers);
    assert_eq!(first.entries("notification.sent").await.len(), 9);
    second.stop().await;
    first.stop().await;
}
