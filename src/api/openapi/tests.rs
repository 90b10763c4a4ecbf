use std::collections::HashSet;
use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;
use utoipa::openapi::path::Operation;

use super::*;
use crate::model::KeyInfo;
use crate::wire::accounts::*;
use crate::wire::audit::*;
use crate::wire::deliveries::*;
use crate::wire::health::*;
use crate::wire::keys::*;
use crate::wire::log::*;
use crate::wire::manifests::*;
use crate::wire::notifications::*;
use crate::wire::routes::*;
use crate::wire::transfers::*;

/// Every operation of the contract: path, method, operation.
fn operations(doc: &utoipa::openapi::OpenApi) -> Vec<(String, &'static str, Operation)> {
    let mut out = Vec::new();
    for (path, item) in &doc.paths.paths {
        let methods = [
            ("get", &item.get),
            ("put", &item.put),
            ("post", &item.post),
            ("delete", &item.delete),
            ("options", &item.options),
            ("head", &item.head),
            ("patch", &item.patch),
            ("trace", &item.trace),
        ];
        for (method, operation) in methods {
            if let Some(operation) = operation {
                out.push((path.clone(), method, operation.clone()));
            }
        }
    }
    out
}

#[test]
fn the_committed_contract_is_the_one_the_code_generates() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/openapi.json");
    let generated = contract_text();
    if std::env::var_os("SEALPOST_UPDATE_OPENAPI").is_some() {
        std::fs::write(&path, &generated).expect("write docs/openapi.json");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "docs/openapi.json is not the contract the code generates: regenerate it with \
         `SEALPOST_UPDATE_OPENAPI=1 cargo test openapi` and commit it"
    );
}

#[test]
fn the_contract_is_openapi_3_1_named_after_the_crate() {
    let doc = serde_json::to_value(document()).expect("serialise");
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["info"]["title"], "sealpost");
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(doc.get("servers"), None, "paths are relative to wherever the gateway runs");
    assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
}

#[test]
fn every_operation_has_its_own_id_a_summary_and_says_who_may_call_it() {
    let doc = document();
    let mut ids = HashSet::new();
    for (path, method, op) in operations(&doc) {
        let id = op.operation_id.clone().unwrap_or_default();
        assert!(!id.is_empty() && ids.insert(id.clone()), "{method} {path}: operation id `{id}` missing or taken");
        assert!(op.summary.as_deref().is_some_and(|s| !s.is_empty()), "{method} {path}: no summary");
        let who = op.description.as_deref().unwrap_or_default();
        assert!(!who.is_empty(), "{method} {path}: the description does not say who may call it");
        assert!(op.tags.as_ref().is_some_and(|t| t.len() == 1), "{method} {path}: one tag");
    }
}

#[test]
fn every_authenticated_operation_documents_the_answers_a_token_check_can_give() {
    let doc = document();
    for (path, method, op) in operations(&doc) {
        let statuses: Vec<&str> = op.responses.responses.keys().map(String::as_str).collect();
        if takes_token(&op) {
            for status in ["401", "500", "503"] {
                assert!(statuses.contains(&status), "{method} {path} lacks {status}");
            }
            if !matches!(method, "get" | "head" | "options") {
                assert!(statuses.contains(&"507"), "{method} {path} writes but lacks 507");
            }
        } else {
            assert!(!statuses.contains(&"401"), "{method} {path} takes no token yet answers 401");
        }
    }
}

/// The description of an answer, inline or shared.
fn description<'a>(doc: &'a utoipa::openapi::OpenApi, answer: &'a RefOr<ResponseDoc>) -> &'a ResponseDoc {
    match answer {
        RefOr::T(answer) => answer,
        RefOr::Ref(r) => {
            let name = r.ref_location.rsplit('/').next().unwrap_or_default();
            match doc.components.as_ref().and_then(|c| c.responses.get(name)) {
                Some(RefOr::T(answer)) => answer,
                _ => panic!("no shared answer `{name}`"),
            }
        }
    }
}

/// Whether an answer's JSON body, if it has one, is an [`ErrorBody`] (a `HEAD` answer has none).
fn is_error_body(answer: &ResponseDoc) -> bool {
    let Some(content) = answer.content.get("application/json") else { return true };
    match &content.schema {
        Some(RefOr::Ref(r)) => r.ref_location.rsplit('/').next() == Some("ErrorBody"),
        _ => false,
    }
}

#[test]
fn every_error_answer_names_codes_of_its_own_status_with_an_example_each() {
    let doc = document();
    for (path, method, op) in operations(&doc) {
        for (status, answer) in &op.responses.responses {
            let Ok(number) = status.parse::<u16>() else { panic!("{method} {path}: status `{status}`") };
            if number < 400 {
                continue;
            }
            let answer = description(&doc, answer);
            if !is_error_body(answer) {
                // A 503 from `/readyz` is the readiness report itself, not an error object.
                continue;
            }
            let named: Vec<ErrorCode> = answer
                .description
                .split('`')
                .skip(1)
                .step_by(2)
                .filter_map(|w| serde_json::from_value::<ErrorCode>(serde_json::Value::from(w)).ok())
                .collect();
            assert!(!named.is_empty(), "{method} {path} {status}: the description names no error code");
            for code in &named {
                assert_eq!(code.status(), number, "{method} {path} {status} names `{code}`");
            }
            if method == "head" {
                assert!(answer.content.is_empty(), "{method} {path} {status}: a HEAD answer has no body");
                continue;
            }
            let content = answer.content.get("application/json").expect("an error answer is JSON");
            let examples: HashSet<&str> = content.examples.keys().map(String::as_str).collect();
            let wanted: HashSet<&str> = named.iter().map(|c| c.as_str()).collect();
            assert_eq!(examples, wanted, "{method} {path} {status}: one example per code");
        }
    }
}

#[test]
fn error_examples_take_their_message_from_the_description() {
    let text = "`link_in_use`: a download of this link is running; `awaiting_approval`: the transfer waits.";
    assert_eq!(message_for(ErrorCode::LinkInUse, text), "a download of this link is running");
    assert_eq!(message_for(ErrorCode::AwaitingApproval, text), "the transfer waits");
    assert_eq!(message_for(ErrorCode::NotFound, text), ErrorCode::NotFound.meaning());
    assert_eq!(named_codes("409", text), [ErrorCode::LinkInUse, ErrorCode::AwaitingApproval]);
    assert_eq!(named_codes("404", text), []);
}

#[test]
fn every_answer_with_a_body_has_an_example() {
    let doc = document();
    let schemas = &doc.components.as_ref().expect("components").schemas;
    let has_example = |schema: &RefOr<Schema>| {
        let schema = match schema {
            RefOr::Ref(r) => schemas.get(r.ref_location.rsplit('/').next().unwrap_or_default()),
            inline => Some(inline),
        };
        let v = serde_json::to_value(schema).unwrap_or_default();
        v.get("example").is_some() || v.get("examples").is_some()
    };
    for (path, method, op) in operations(&doc) {
        for (status, answer) in &op.responses.responses {
            for (media, content) in &description(&doc, answer).content {
                if media == "application/octet-stream" {
                    continue;
                }
                let documented = content.example.is_some()
                    || !content.examples.is_empty()
                    || content.schema.as_ref().is_some_and(has_example);
                assert!(documented, "{method} {path} {status} {media}: no example");
            }
        }
    }
}

/// Checks that the schema example of `T` is a value `T` reads and writes back unchanged.
fn example_round_trips<T: ToSchema + DeserializeOwned + Serialize>(checked: &mut HashSet<String>) {
    let name = T::name().into_owned();
    let schema = serde_json::to_value(T::schema()).expect("schema");
    let example = schema.get("example").or_else(|| schema.get("examples")?.get(0)).cloned();
    let example = example.unwrap_or_else(|| panic!("`{name}` has no example"));
    let value: T = serde_json::from_value(example.clone()).unwrap_or_else(|e| panic!("`{name}`'s example: {e}"));
    assert_eq!(serde_json::to_value(value).expect("serialise"), example, "`{name}`'s example round trip");
    checked.insert(name);
}

#[test]
fn every_example_in_the_contract_is_a_value_its_wire_type_accepts() {
    let mut checked = HashSet::new();
    let c = &mut checked;
    example_round_trips::<Whoami>(c);
    example_round_trips::<NewOrg>(c);
    example_round_trips::<OrgInfo>(c);
    example_round_trips::<OrgList>(c);
    example_round_trips::<NewUser>(c);
    example_round_trips::<Claim>(c);
    example_round_trips::<UserInfo>(c);
    example_round_trips::<UserList>(c);
    example_round_trips::<NewToken>(c);
    example_round_trips::<IssuedToken>(c);
    example_round_trips::<TokenInfo>(c);
    example_round_trips::<TokenList>(c);
    example_round_trips::<Revoked>(c);
    example_round_trips::<KeyInfo>(c);
    example_round_trips::<NewKey>(c);
    example_round_trips::<OwnKeys>(c);
    example_round_trips::<PublishedKey>(c);
    example_round_trips::<UserKeys>(c);
    example_round_trips::<KeyRemoved>(c);
    example_round_trips::<AuditRow>(c);
    example_round_trips::<AuditPage>(c);
    example_round_trips::<ReportDelivery>(c);
    example_round_trips::<DeliveryRecorded>(c);
    example_round_trips::<SignManifest>(c);
    example_round_trips::<ManifestSigned>(c);
    example_round_trips::<ManifestKey>(c);
    example_round_trips::<SignedManifest>(c);
    example_round_trips::<NewRoute>(c);
    example_round_trips::<RouteInfo>(c);
    example_round_trips::<RouteList>(c);
    example_round_trips::<RouteEnds>(c);
    example_round_trips::<RouteRemoved>(c);
    example_round_trips::<PolicyInfo>(c);
    example_round_trips::<Receipt>(c);
    example_round_trips::<ReceiptList>(c);
    example_round_trips::<KeyRotation>(c);
    example_round_trips::<NotificationSetting>(c);
    example_round_trips::<NotificationSettings>(c);
    example_round_trips::<NotificationChoice>(c);
    example_round_trips::<NewWebhook>(c);
    example_round_trips::<WebhookInfo>(c);
    example_round_trips::<WebhookCreated>(c);
    example_round_trips::<WebhookList>(c);
    example_round_trips::<WebhookRemoved>(c);
    example_round_trips::<RetireKey>(c);
    example_round_trips::<KeyRetired>(c);
    example_round_trips::<LinkAnswer>(c);
    example_round_trips::<UploadAnswer>(c);
    example_round_trips::<LinkView>(c);
    example_round_trips::<TransferView>(c);
    example_round_trips::<InboxItem>(c);
    example_round_trips::<Inbox>(c);
    example_round_trips::<RecallAnswer>(c);
    example_round_trips::<DecisionAnswer>(c);
    example_round_trips::<RedeemRequest>(c);
    example_round_trips::<UploadProgress>(c);
    example_round_trips::<UploadLookup>(c);
    example_round_trips::<Health>(c);
    example_round_trips::<Readiness>(c);
    example_round_trips::<ErrorBody>(c);
    example_round_trips::<crate::model::UserRef>(c);
    example_round_trips::<crate::wire::Digest>(c);
    example_round_trips::<crate::wire::directory::Directory>(c);
    example_round_trips::<crate::wire::sent::Sent>(c);
    example_round_trips::<crate::wire::transfers::SignedFor>(c);
    example_round_trips::<crate::wire::sso::ProviderInfo>(c);
    example_round_trips::<crate::wire::sso::ProviderList>(c);
    example_round_trips::<crate::wire::sso::DeviceRequest>(c);
    example_round_trips::<crate::wire::sso::DeviceStarted>(c);
    example_round_trips::<crate::wire::sso::DevicePoll>(c);
    example_round_trips::<crate::wire::sso::SsoToken>(c);
    let doc = document();
    for (name, schema) in &doc.components.as_ref().expect("components").schemas {
        let v = serde_json::to_value(schema).expect("schema");
        if v.get("example").is_some() || v.get("examples").is_some() {
            assert!(checked.contains(name), "`{name}`'s example is not checked here: add it to the list");
        }
    }
}
