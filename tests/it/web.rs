//! The browser pages and their sessions, over HTTP as a browser without JavaScript speaks it:
//! cookies kept by hand, forms posted with their hidden CSRF field.

use std::time::{Duration, Instant};

use crate::common::{TestServer, code, encrypt, parties, values};
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use serde_json::json;

const SESSION: &str = "__Host-sealpost-session";
const SIGN_IN: &str = "__Host-sealpost-sign-in";

/// A browser with its cookie jar, following no redirects.
struct Browser {
    http: reqwest::Client,
    base: String,
    cookies: Vec<(String, String)>,
}

struct Page {
    status: u16,
    headers: HeaderMap,
    body: String,
}

impl Page {
    fn location(&self) -> &str {
        self.headers.get(LOCATION).and_then(|v| v.to_str().ok()).unwrap_or_default()
    }

    /// The value of the first hidden `csrf` field.
    fn csrf(&self) -> String {
        let at = self.body.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
        self.body[at..].split('"').next().unwrap().to_owned()
    }
}

impl Browser {
    fn new(server: &TestServer) -> Self {
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
        Self { http, base: server.url.clone(), cookies: Vec::new() }
    }

    fn cookie_header(&self) -> String {
        self.cookies.iter().map(|(n, v)| format!("{n}={v}")).collect::<Vec<_>>().join("; ")
    }

    async fn keep(&mut self, r: reqwest::Response) -> Page {
        for set in r.headers().get_all(SET_COOKIE) {
            let text = set.to_str().unwrap();
            let (pair, _) = text.split_once(';').unwrap_or((text, ""));
            let (name, value) = pair.split_once('=').unwrap();
            self.cookies.retain(|(n, _)| n != name);
            if !text.contains("Max-Age=0") {
                self.cookies.push((name.to_owned(), value.to_owned()));
            }
        }
        let (status, headers) = (r.status().as_u16(), r.headers().clone());
        Page { status, headers, body: r.text().await.unwrap() }
    }

    async fn get(&mut self, path: &str) -> Page {
        let r = self.http.get(format!("{}{path}", self.base)).header("cookie", self.cookie_header()).send().await;
        self.keep(r.unwrap()).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let r = self.http.post(format!("{}{path}", self.base)).header("cookie", self.cookie_header()).form(form);
        self.keep(r.send().await.unwrap()).await
    }

    /// Signs in through the form; returns the answer to the post.
    async fn sign_in(&mut self, token: &str) -> Page {
        let form = self.get("/sign-in").await;
        assert_eq!(form.status, 200);
        let csrf = form.csrf();
        self.post("/sign-in", &[("csrf", &csrf), ("token", token)]).await
    }

    /// The CSRF token of the signed-in pages.
    async fn csrf(&mut self) -> String {
        let page = self.get("/keys").await;
        let at = page.body.find("name=\"csrf-token\" content=\"").expect("meta csrf-token") + 27;
        page.body[at..].split('"').next().unwrap().to_owned()
    }
}

/// Pages carry the strict CSP, are never cached, and run no inline script or style.
fn assert_locked_down(page: &Page) {
    let csp = page.headers.get("content-security-policy").expect("a CSP").to_str().unwrap();
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(page.headers.get("cache-control").unwrap(), "no-store");
    assert_eq!(
        page.body.matches("<script").count(),
        page.body.matches("<script type=\"module\" src=\"/assets/app.js\"></script>").count()
    );
    assert!(!page.body.contains("<style") && !page.body.contains(" style=\""), "inline style");
}

#[tokio::test]
async fn signing_in_sets_a_strict_host_only_session_cookie_and_leads_to_the_roles_page() {
    let server = TestServer::start().await;
    let (bob, alice, _) = parties(&server).await;
    let (status, body) =
        server.upload(&bob, &["hmpps/alice"], "", encrypt(&[&alice_key(&server, &alice).await], b"x")).await;
    assert_eq!(status, 201, "{body}");
    let id = body["id"].as_str().unwrap().to_owned();

    let mut browser = Browser::new(&server);
    let form = browser.get("/sign-in").await;
    assert_locked_down(&form);
    assert!(form.body.contains("<label class=\"govuk-label govuk-label--s\" for=\"token\">API token</label>"));
    let signed_in = browser.sign_in(&alice).await;
    assert_eq!((signed_in.status, signed_in.location()), (303, "/"));
    let cookie =
        signed_in.headers.get_all(SET_COOKIE).iter().map(|v| v.to_str().unwrap()).find(|c| c.starts_with(SESSION));
    let cookie = cookie.expect("a session cookie");
    for attribute in ["Path=/", "HttpOnly", "SameSite=Strict", "Secure"] {
        assert!(cookie.contains(attribute), "{cookie} lacks {attribute}");
    }
    assert!(!cookie.contains("Domain"), "{cookie}");
    assert!(!browser.cookies.iter().any(|(n, _)| n == SIGN_IN), "the sign-in cookie is spent");

    assert_eq!(browser.get("/").await.location(), "/inbox");
    let inbox = browser.get("/inbox").await;
    assert_eq!(inbox.status, 200);
    assert_locked_down(&inbox);
    assert!(inbox.body.contains(&format!("href=\"/inbox/{id}\"")), "{}", inbox.body);
    assert!(inbox.body.contains("acme/bob") && inbox.body.contains("Sign out"));
    let collect = browser.get(&format!("/inbox/{id}")).await;
    assert!(collect.body.contains(&format!("data-page=\"collect\" data-transfer=\"{id}\"")));
    for id in ["identity", "collect", "collect-status", "collect-error", "collected-files", "use-browser-key"] {
        assert!(collect.body.contains(&format!("id=\"{id}\"")), "no #{id}");
    }
    server.stop().await;
}

/// Registers a fresh key for the recipient and returns it (the fixture's own key's identity
/// is not needed by these tests).
async fn alice_key(server: &TestServer, _alice: &str) -> String {
    let (_, body) = server.get(&server.admin, "/api/v1/keys/hmpps/alice").await;
    body["keys"][0]["recipient"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn failed_sign_ins_are_audited_slowed_and_never_echo_the_token() {
    let server = TestServer::start().await;
    let mut browser = Browser::new(&server);
    let started = Instant::now();
    let refused = browser.sign_in("sp_not-a-real-token").await;
    assert!(started.elapsed() >= Duration::from_millis(200), "{:?}", started.elapsed());
    assert_eq!(refused.status, 422);
    assert!(refused.body.contains("govuk-error-summary") && refused.body.contains("href=\"#token\""));
    assert!(!refused.body.contains("sp_not-a-real-token"));
    // A form posted without the sign-in cookie (from another site, say) is refused too.
    let mut stranger = Browser::new(&server);
    let forged = stranger.post("/sign-in", &[("csrf", "x"), ("token", &server.admin)]).await;
    assert_eq!(forged.status, 422);
    assert!(!stranger.cookies.iter().any(|(n, _)| n == SESSION));
    assert_eq!(values(&server.entries("session.refused").await, "code"), ["invalid_token", "csrf"]);
    server.stop().await;
}

#[tokio::test]
async fn page_scripts_use_the_session_and_need_the_csrf_header_to_change_anything() {
    let server = TestServer::start().await;
    let (_, alice, _) = parties(&server).await;
    let mut browser = Browser::new(&server);
    browser.sign_in(&alice).await;
    let csrf = browser.csrf().await;
    let api = |path: &str| format!("{}{path}", server.url);
    let cookie = browser.cookie_header();
    let me = server.http().get(api("/api/v1/whoami")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(me.json::<serde_json::Value>().await.unwrap()["user"], "hmpps/alice");
    let (_, key) = crate::common::keypair();
    let add = |csrf: Option<&str>| {
        let mut r = server.http().post(api("/api/v1/keys")).header("cookie", &cookie).json(&json!({"recipient": key}));
        if let Some(csrf) = csrf {
            r = r.header("x-csrf-token", csrf);
        }
        r.send()
    };
    let (status, body) = crate::common::status_json(add(None).await.unwrap()).await;
    assert_eq!((status, code(&body)), (403, "forbidden"));
    let (status, body) = crate::common::status_json(add(Some("wrong")).await.unwrap()).await;
    assert_eq!((status, code(&body)), (403, "forbidden"));
    let (status, body) = crate::common::status_json(add(Some(&csrf)).await.unwrap()).await;
    assert_eq!(status, 201, "{body}");
    let r = server.http().get(api("/api/v1/whoami")).header("cookie", format!("{SESSION}=forged")).send().await;
    assert_eq!(r.unwrap().status().as_u16(), 401);
    server.stop().await;
}

#[tokio::test]
async fn revoking_the_token_ends_its_sessions_and_signing_out_ends_one_at_once() {
    let server = TestServer::start().await;
    server.org("acme", "contractor").await;
    let bob = server.user("acme/bob", "sender").await;
    let mut first = Browser::new(&server);
    let mut second = Browser::new(&server);
    first.sign_in(&bob).await;
    second.sign_in(&bob).await;
    assert_eq!(first.get("/sent").await.status, 200);

    let csrf = second.csrf().await;
    let out = second.post("/sign-out", &[("csrf", &csrf)]).await;
    assert_eq!((out.status, out.location()), (303, "/sign-in?signed-out"));
    assert_eq!(second.get("/sent").await.location(), "/sign-in");
    assert_eq!(first.get("/sent").await.status, 200, "the other session lives on");

    let (_, tokens) = server.get(&server.admin, "/api/v1/tokens?user=acme/bob").await;
    let token_id = tokens["tokens"][0]["id"].as_str().unwrap().to_owned();
    let (status, _) = server.delete(&server.admin, &format!("/api/v1/tokens/{token_id}")).await;
    assert_eq!(status, 200);
    assert_eq!(first.get("/sent").await.location(), "/sign-in");
    assert_eq!(values(&server.entries("session.ended").await, "code"), ["signed_out", "token_revoked"]);
    server.stop().await;
}

#[tokio::test]
async fn an_idle_session_ends_after_the_idle_timeout() {
    let server = TestServer::start_with(|c| c.session_idle_timeout = Duration::from_secs(1)).await;
    let mut browser = Browser::new(&server);
    browser.sign_in(&server.admin.clone()).await;
    assert_eq!(browser.get("/admin").await.status, 200);
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(browser.get("/admin").await.location(), "/sign-in");
    assert_eq!(values(&server.entries("session.ended").await, "code"), ["idle"]);
    server.stop().await;
}

#[tokio::test]
async fn the_link_page_consumes_nothing_and_runs_no_inline_script() {
    let server = TestServer::start().await;
    let mut browser = Browser::new(&server);
    let page = browser.get("/d").await;
    assert_eq!(page.status, 200);
    assert_locked_down(&page);
    assert!(page.body.contains("data-page=\"collect\"") && page.body.contains("href=\"/sign-in\""));
    let head = server.http().head(format!("{}/d", server.url)).send().await.unwrap();
    assert_eq!(head.status().as_u16(), 200);
    let missing = server.http().get(format!("{}/no-such-page", server.url)).header("accept", "text/html").send().await;
    let missing = missing.unwrap();
    assert_eq!(missing.status().as_u16(), 404);
    assert!(missing.text().await.unwrap().contains("Page not found"), "a person gets a page, not JSON");
    let asset = browser.get("/assets/app.js").await;
    assert_eq!(asset.headers.get("content-type").unwrap(), "text/javascript; charset=utf-8");
    assert_eq!(asset.headers.get("cache-control").unwrap(), "public, max-age=3600");
    server.stop().await;
}

#[tokio::test]
async fn senders_see_what_they_sent_and_recall_it_through_a_form() {
    let server = TestServer::start().await;
    let (bob, alice, _) = parties(&server).await;
    let key = alice_key(&server, &alice).await;
    let (_, sent) = server.upload(&bob, &["hmpps/alice"], "", encrypt(&[&key], b"x")).await;
    let id = sent["id"].as_str().unwrap().to_owned();
    let (status, list) = server.get(&bob, "/api/v1/transfers").await;
    assert_eq!((status, list["transfers"][0]["state"].as_str()), (200, Some("waiting")));
    let (_, directory) = server.get(&bob, "/api/v1/directory").await;
    assert_eq!(directory, json!({"orgs": [{"name": "hmpps", "kind": "agency", "users": ["alice"]}]}));

    let mut browser = Browser::new(&server);
    browser.sign_in(&bob).await;
    let send = browser.get("/send").await;
    for id in ["recipients", "files", "drop-zone", "classification", "expires", "send", "send-progress", "send-result"]
    {
        assert!(send.body.contains(&format!("id=\"{id}\"")), "no #{id}");
    }
    assert!(send.body.contains("<option value=\"hmpps/alice\">"));
    let page = browser.get("/sent").await;
    assert!(page.body.contains(&format!("action=\"/sent/{id}/recall\"")));
    let forged = browser.post(&format!("/sent/{id}/recall"), &[("csrf", "forged")]).await;
    assert_eq!(forged.status, 403);
    let recalled = browser.post(&format!("/sent/{id}/recall"), &[("csrf", &page.csrf())]).await;
    assert_eq!((recalled.status, recalled.location()), (303, format!("/sent?recalled={id}").as_str()));
    let (_, list) = server.get(&bob, "/api/v1/transfers").await;
    assert_eq!(list["transfers"][0]["state"], "recalled");
    server.stop().await;
}

#[tokio::test]
async fn a_senders_transfer_page_shows_each_recipients_delivery() {
    let server = TestServer::start().await;
    let (bob, alice, _) = parties(&server).await;
    let key = alice_key(&server, &alice).await;
    let (_, sent) = server.upload(&bob, &["hmpps/alice"], "", encrypt(&[&key], b"x")).await;
    let id = sent["id"].as_str().unwrap().to_owned();

    let mut browser = Browser::new(&server);
    browser.sign_in(&bob).await;
    let list = browser.get("/sent").await;
    assert!(list.body.contains(&format!("href=\"/sent/{id}\"")), "the sent list does not link the transfer");
    let page = browser.get(&format!("/sent/{id}")).await;
    assert_eq!(page.status, 200);
    assert_locked_down(&page);
    assert!(page.body.contains("hmpps/alice") && page.body.contains("Not collected yet"), "{}", page.body);

    // Collected and reported without a signature: delivered, not signed for.
    let link = sent["links"][0]["url"].as_str().unwrap();
    assert_eq!(server.redeem(&alice, link).await.0, 200);
    let path = format!("/api/v1/transfers/{id}/delivery");
    assert_eq!(server.post(&alice, &path, json!({"status": "decrypted"})).await.0, 201);
    let page = browser.get(&format!("/sent/{id}")).await;
    assert!(page.body.contains("Delivered, not signed for"), "{}", page.body);
    assert!(!page.body.contains("Signed for by"));

    // Nobody else's transfer, and no transfer at all, is a page.
    let mut other = Browser::new(&server);
    other.sign_in(&alice).await;
    assert_eq!(other.get(&format!("/sent/{id}")).await.status, 404);
    assert_eq!(browser.get("/sent/0123456789abcdef0123456789abcdef").await.status, 404);
    assert_eq!(browser.get("/sent/not-an-id").await.status, 404);
    server.stop().await;
}

#[tokio::test]
async fn compliance_officers_approve_through_a_form_and_the_reason_is_audited() {
    let server = TestServer::start().await;
    let (bob, alice, _) = parties(&server).await;
    server.org("oversight", "compliance").await;
    let carol = server.user("oversight/carol", "compliance").await;
    let key = alice_key(&server, &alice).await;
    let signer = server.signing_key(&bob).await;
    let file = encrypt(&[&key], b"x");
    let (status, held) = server.upload_signed(&bob, &signer, &["hmpps/alice"], "OFFICIAL-SENSITIVE", 3600, file).await;
    assert_eq!(status, 202, "{held}");
    let id = held["id"].as_str().unwrap().to_owned();

    let mut browser = Browser::new(&server);
    browser.sign_in(&carol).await;
    assert_eq!(browser.get("/").await.location(), "/compliance/held");
    let queue = browser.get("/compliance/held").await;
    assert!(queue.body.contains(&format!("for=\"reason-{id}\">Reason</label>")));
    let csrf = queue.csrf();
    let unexplained = browser.post(&format!("/compliance/held/{id}/reject"), &[("csrf", &csrf), ("reason", "")]).await;
    assert_eq!(unexplained.status, 422);
    assert!(unexplained.body.contains(&format!("href=\"#reason-{id}\"")));
    let approved = browser
        .post(&format!("/compliance/held/{id}/approve"), &[("csrf", &csrf), ("reason", "checked the route")])
        .await;
    assert_eq!(approved.location(), format!("/compliance/held?approved={id}"));
    assert_eq!(values(&server.entries("transfer.approved").await, "reason"), ["checked the route"]);

    let audit = browser.get("/compliance/audit?event=transfer.approved").await;
    assert_eq!(audit.status, 200);
    assert!(audit.body.contains("checked the route"));
    let record = browser.get(&format!("/compliance/transfers/{id}")).await;
    assert!(record.body.contains("id=\"verify-status\"") && record.body.contains("four-eyes-hold"));
    assert!(record.body.contains("Not collected yet"), "the delivery column says where each link stands");
    let csv = browser.get(&format!("/compliance/audit.csv?transfer={id}")).await;
    assert_eq!(csv.headers.get("content-type").unwrap(), "text/csv; charset=utf-8");
    assert!(csv.body.starts_with("seq,time,event,") && csv.body.contains("\"transfer.approved\""));
    assert_eq!(browser.get("/compliance/log").await.status, 200);
    server.stop().await;
}

#[tokio::test]
async fn an_administrator_removes_a_users_key_through_a_form_and_the_removal_is_logged() {
    let server = TestServer::start().await;
    let (_bob, alice, _) = parties(&server).await;
    let (_, keys) = server.get(&alice, "/api/v1/keys").await;
    let fingerprint = keys["keys"][0]["fingerprint"].as_str().unwrap().to_owned();

    let mut browser = Browser::new(&server);
    browser.sign_in(&server.admin).await;
    let page = browser.get("/admin").await;
    assert_locked_down(&page);
    assert!(page.body.contains(&format!("name=\"fingerprint\" value=\"{fingerprint}\"")));
    let form = [("user", "hmpps/alice"), ("fingerprint", fingerprint.as_str())];
    let forged = browser.post("/admin/keys/remove", &[form[0], form[1], ("csrf", "forged")]).await;
    assert_eq!(forged.status, 403);
    let csrf = page.csrf();
    let removed = browser.post("/admin/keys/remove", &[form[0], form[1], ("csrf", &csrf)]).await;
    assert_eq!((removed.status, removed.location()), (303, "/admin?done=key-removed"));
    let (_, keys) = server.get(&alice, "/api/v1/keys").await;
    assert_eq!(keys["keys"], json!([]));
    assert_eq!(server.events().await.last().map(String::as_str), Some("key.removed"));

    // The organisation form: its kind is a select, and a mistake keeps what was chosen.
    let page = browser.get("/admin").await;
    assert!(page.body.contains("<select class=\"govuk-select\" id=\"org_kind\" name=\"org_kind\">"));
    let csrf = page.csrf();
    let wrong =
        browser.post("/admin/orgs", &[("csrf", &csrf), ("org_name", "Not A Name"), ("org_kind", "agency")]).await;
    assert_eq!(wrong.status, 422);
    assert!(wrong.body.contains("<option value=\"agency\" selected>agency</option>"), "the kind chosen is kept");
    let added = browser.post("/admin/orgs", &[("csrf", &csrf), ("org_name", "dwp"), ("org_kind", "agency")]).await;
    assert_eq!(added.status, 303);
    let (_, orgs) = server.get(&server.admin, "/api/v1/orgs").await;
    assert!(orgs["orgs"].as_array().unwrap().iter().any(|o| o["name"] == "dwp" && o["kind"] == "agency"), "{orgs}");
    server.stop().await;
}

#[tokio::test]
async fn people_choose_their_optional_emails_on_the_notifications_page() {
    let server = TestServer::start().await;
    let (bob, _alice, _identity) = parties(&server).await;
    let mut browser = Browser::new(&server);
    assert_eq!(browser.sign_in(&bob).await.status, 303);
    let page = browser.get("/notifications").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_locked_down(&page);
    assert!(page.body.contains("You have no email address"), "{}", page.body);
    assert!(page.body.contains("name=\"transfer.collected\" type=\"checkbox\" value=\"on\" checked"), "{}", page.body);
    assert!(!page.body.contains("name=\"key.added\""), "mandatory kinds have no box");

    // Every box but `transfer.expiring` ticked: that one is turned off.
    let csrf = page.csrf();
    let form = [
        ("csrf", csrf.as_str()),
        ("transfer.collected", "on"),
        ("transfer.acknowledged", "on"),
        ("transfer.expired", "on"),
        ("transfer.recalled", "on"),
    ];
    let saved = browser.post("/notifications", &form).await;
    assert_eq!((saved.status, saved.location()), (303, "/notifications?saved"));
    let (_, settings) = server.get(&bob, "/api/v1/notifications").await;
    let off: Vec<&str> = settings["notifications"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["on"] == false)
        .map(|n| n["kind"].as_str().unwrap())
        .collect();
    assert_eq!(off, vec!["transfer.expiring"]);
    let page = browser.get("/notifications?saved").await;
    assert!(page.body.contains("Your choices are saved."));
    assert!(page.body.contains("name=\"transfer.expiring\" type=\"checkbox\" value=\"on\">"), "{}", page.body);
    // A forged form changes nothing.
    let forged = browser.post("/notifications", &[("csrf", "forged")]).await;
    assert_eq!(forged.status, 403);
    assert_eq!(server.entries("notifications.changed").await.len(), 1);
    server.stop().await;
}

#[tokio::test]
async fn an_administrator_adds_a_user_with_an_email_address_and_a_taken_one_is_refused_beside_its_field() {
    let server = TestServer::start().await;
    let mut browser = Browser::new(&server);
    browser.sign_in(&server.admin).await;
    let page = browser.get("/admin").await;
    assert!(page.body.contains("Email address (optional)"), "the form has no email field");
    let csrf = page.csrf();
    let added = browser
        .post(
            "/admin/users",
            &[("csrf", &csrf), ("user", "sealpost/ops"), ("role", "admin"), ("email", " Ops@Example.GOV.uk ")],
        )
        .await;
    assert_eq!(added.status, 200, "{}", added.body);
    let (_, users) = server.get(&server.admin, "/api/v1/users").await;
    assert!(
        users["users"]
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["user"] == "sealpost/ops" && u["email"] == "ops@example.gov.uk"),
        "{users}"
    );
    for (email, says) in
        [("ops@example.gov.uk", "already has the email address"), ("not an address", "Enter an email address")]
    {
        let refused = browser
            .post("/admin/users", &[("csrf", &csrf), ("user", "sealpost/ops2"), ("role", "admin"), ("email", email)])
            .await;
        assert_eq!(refused.status, 422, "{}", refused.body);
        assert!(refused.body.contains(says) && refused.body.contains("id=\"email-error\""), "{}", refused.body);
    }
    server.stop().await;
}

#[tokio::test]
async fn signed_in_with_the_first_start_token_an_administrator_makes_their_own_account_through_a_form() {
    let server = TestServer::start().await;
    let file = server.data_dir.join("admin.token");
    let mut browser = Browser::new(&server);
    browser.sign_in(&server.admin.clone()).await;
    let page = browser.get("/admin").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("You signed in with the first-start token"), "{}", page.body);
    assert!(page.body.contains("Make my administrator account"));
    let csrf = page.csrf();

    // A mistake is shown beside its field, and nothing changes.
    let wrong = browser.post("/admin/claim", &[("csrf", &csrf), ("claim_user", "jane"), ("claim_email", "")]).await;
    assert_eq!(wrong.status, 422, "{}", wrong.body);
    assert!(wrong.body.contains("id=\"claim_user-error\""), "{}", wrong.body);
    assert!(file.exists());

    let made = browser
        .post(
            "/admin/claim",
            &[("csrf", &csrf), ("claim_user", "sealpost/jane"), ("claim_email", "jane@example.gov.uk")],
        )
        .await;
    assert_eq!(made.status, 200, "{}", made.body);
    assert!(made.body.contains("Sign in again with the token above"), "{}", made.body);
    let token = made.body.split("<code id=\"issued-token\">").nth(1).and_then(|r| r.split('<').next()).unwrap();
    assert!(token.starts_with("sp_"), "{token}");
    assert!(!file.exists(), "the first-start token left the disk");
    // The session signed in with the first-start token ended with it.
    assert_eq!(browser.get("/admin").await.location(), "/sign-in");
    let (status, me) = server.get(token, "/api/v1/whoami").await;
    assert_eq!((status, me["user"].as_str()), (200, Some("sealpost/jane")));

    // Signed in as herself, there is nothing to exchange.
    let mut jane = Browser::new(&server);
    jane.sign_in(token).await;
    let page = jane.get("/admin").await;
    assert_eq!(page.status, 200);
    assert!(!page.body.contains("Make my administrator account"));
    let again = jane.post("/admin/claim", &[("csrf", &page.csrf()), ("claim_user", "sealpost/eve")]).await;
    assert_eq!(again.status, 403, "{}", again.body);
    server.stop().await;
}
