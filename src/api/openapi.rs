//! The OpenAPI 3.1 contract, generated: each route module registers its handlers through
//! `utoipa_axum`'s `routes!`, which mounts a handler at the path and methods its
//! `#[utoipa::path]` documents, so no route exists outside the contract. The bodies' schemas
//! are the [`crate::wire`] types themselves. It is served at `GET /api/v1/openapi.json` and
//! committed as `docs/openapi.json`; a test fails when the two differ
//! (`SEALPOST_UPDATE_OPENAPI=1 cargo test openapi` rewrites the file).
//!
//! A handler's annotation lists the answers particular to it. [`conventions`] adds, in one place,
//! the ones every authenticated route shares: `401 unauthenticated`, `500 internal` and
//! `503 unavailable` (the token is checked against the database), and `507
//! insufficient_storage` for those that write. It also gives each error answer one example per
//! code its description names, so the codes a route can answer are read, and tested, from one
//! place.

use std::sync::{Arc, LazyLock};

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use utoipa::OpenApi;
use utoipa::openapi::content::Content;
use utoipa::openapi::example::Example;
use utoipa::openapi::header::Header;
use utoipa::openapi::path::{HttpMethod, Operation, ParameterIn};
use utoipa::openapi::response::Response as ResponseDoc;
use utoipa::openapi::schema::{KnownFormat, Schema, SchemaFormat, SchemaType};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::{ObjectBuilder, RefOr, Type};
use utoipa::{PartialSchema, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::gateway::Gateway;
use crate::wire::{ErrorBody, ErrorCode, ErrorDetail};

/// What the route modules do not say themselves: the description, the tags, the tile route
/// (whose path parameter holds slashes, so it is mounted by hand) and the error code list.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "sealpost",
        version = env!("CARGO_PKG_VERSION"),
        description = "A secure data-transfer gateway: senders upload age-encrypted bundles, which the gateway inspects without any key; each recipient collects theirs once, through a one-time link, with their own token; every step is in an append-only transparency log.\n\nAuthenticate with `Authorization: Bearer TOKEN` (an API token from `sealpost admin user add` or `sealpost admin token issue`). What a token's owner may do depends on its role and, for transfers, on the gateway's Cedar policies; each operation says who may call it. Errors are `{\"error\":{\"code\":…,\"message\":…}}` with a stable `code` (see `ErrorCode`)."
    ),
    paths(super::transparency::tile),
    components(schemas(ErrorCode)),
    tags(
        (name = "accounts", description = "Who the caller is; organisations, users and API tokens (administrators)."),
        (name = "keys", description = "The key directory: recipients' public keys, each registration in the log."),
        (name = "transfers", description = "Uploading a bundle, following it, recalling it; approval of held transfers; manifests and delivery reports."),
        (name = "uploads", description = "Resumable uploads (tus 1.0.0 with `creation` and `termination`)."),
        (name = "collect", description = "What waits for the caller, and collecting it by its link."),
        (name = "audit", description = "The audit trail."),
        (name = "routes", description = "Which organisation may send to which, and the policy set."),
        (name = "log", description = "The transparency log (C2SP tlog-tiles and signed notes), receipts and log keys."),
        (name = "health", description = "Health, and this contract."),
    )
)]
pub(super) struct Base;

/// The route that serves the contract.
pub(super) fn router() -> OpenApiRouter<Arc<Gateway>> {
    OpenApiRouter::new().routes(routes!(contract))
}

/// The contract's text, as committed in `docs/openapi.json`: pretty JSON and a final newline.
static CONTRACT: LazyLock<String> = LazyLock::new(contract_text);

/// This contract (OpenAPI 3.1).
///
/// No token needed.
#[utoipa::path(get, path = "/api/v1/openapi.json", operation_id = "openapi", tag = "health",
    responses((status = 200, description = "The OpenAPI 3.1 document.", body = Object, content_type = "application/json",
        example = json!({"openapi": "3.1.0", "info": {"title": "sealpost", "version": "0.1.0"}, "paths": {}}))))]
async fn contract() -> Response {
    let mut response = CONTRACT.as_str().into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// The whole contract.
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = super::routes().into_openapi();
    conventions(&mut doc);
    doc
}

/// The contract as pretty JSON with a final newline (the form of `docs/openapi.json`).
pub fn contract_text() -> String {
    let mut text = document().to_pretty_json().unwrap_or_default();
    text.push('\n');
    text
}

/// Adds what every route shares: the `bearer` scheme, the answers of authenticated routes (as
/// shared components), and an example per error code named in each error answer's description.
fn conventions(doc: &mut utoipa::openapi::OpenApi) {
    let components = doc.components.get_or_insert_with(Default::default);
    let bearer = Http::builder()
        .scheme(HttpAuthScheme::Bearer)
        .description(Some(
            "An API token (`sp_…`) from `sealpost admin user add` or `sealpost admin token issue`, sent as `Authorization: Bearer TOKEN`.",
        ))
        .build();
    components.add_security_scheme("bearer", SecurityScheme::Http(bearer));
    for shared in SHARED {
        let mut answer = shared.answer(true);
        error_examples(&shared.code.status().to_string(), &mut answer);
        components.responses.insert(shared.name.to_owned(), RefOr::T(answer));
    }
    let mut limited = RATE_LIMITED.answer(true);
    error_examples("429", &mut limited);
    components.responses.insert(RATE_LIMITED.name.to_owned(), RefOr::T(limited));
    for (path, item) in &mut doc.paths.paths {
        let operations = [
            (HttpMethod::Get, &mut item.get),
            (HttpMethod::Put, &mut item.put),
            (HttpMethod::Post, &mut item.post),
            (HttpMethod::Delete, &mut item.delete),
            (HttpMethod::Options, &mut item.options),
            (HttpMethod::Head, &mut item.head),
            (HttpMethod::Patch, &mut item.patch),
            (HttpMethod::Trace, &mut item.trace),
        ];
        for (method, operation) in operations {
            if let Some(operation) = operation {
                headers_are_never_null(operation);
                rate_limited_answer(path, &method, operation);
                shared_answers(method, operation);
                for (status, answer) in &mut operation.responses.responses {
                    if let RefOr::T(answer) = answer {
                        error_examples(status, answer);
                    }
                }
            }
        }
    }
}

/// An answer every authenticated operation can give.
struct Shared {
    /// Its name among the components' responses.
    name: &'static str,
    code: ErrorCode,
    /// What it means, after the code.
    text: &'static str,
    /// The `Retry-After` it carries, if any.
    retry_after: Option<u32>,
    /// Whether only operations that write give it.
    writes_only: bool,
}

const SHARED: [Shared; 4] = [
    Shared {
        name: "Unauthenticated",
        code: ErrorCode::Unauthenticated,
        text: "a valid API token is needed: send `Authorization: Bearer TOKEN` (it may be missing, mistyped, expired or revoked)",
        retry_after: None,
        writes_only: false,
    },
    Shared {
        name: "Internal",
        code: ErrorCode::Internal,
        text: "the gateway failed to handle this request; nothing was changed, try again or tell the operator",
        retry_after: None,
        writes_only: false,
    },
    Shared {
        name: "Unavailable",
        code: ErrorCode::ServiceUnavailable,
        text: "the gateway is busy; nothing was changed, try again in a moment",
        retry_after: Some(2),
        writes_only: false,
    },
    Shared {
        name: "InsufficientStorage",
        code: ErrorCode::InsufficientStorage,
        text: "the gateway is out of storage space; nothing was kept, try again later or tell the operator",
        retry_after: Some(300),
        writes_only: true,
    },
];

impl Shared {
    /// The answer, with an `ErrorBody` or (for `HEAD`) without a body.
    fn answer(&self, with_body: bool) -> ResponseDoc {
        let mut answer = ResponseDoc::new(format!("`{}`: {}.", self.code, self.text));
        if with_body {
            answer.content.insert("application/json".to_owned(), Content::new(Some(ErrorBody::schema_ref())));
        }
        if let Some(seconds) = self.retry_after {
            let schema = ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(0)).examples([seconds]);
            let mut retry = Header::new(schema);
            retry.description = Some("Seconds to wait before trying again.".to_owned());
            answer.headers.insert("Retry-After".to_owned(), retry);
        }
        answer
    }
}

/// utoipa marks an optional header parameter nullable, but a header is absent or a string: the
/// contract says absent (not required) only.
fn headers_are_never_null(operation: &mut Operation) {
    for parameter in operation.parameters.iter_mut().flatten() {
        if parameter.parameter_in != ParameterIn::Header {
            continue;
        }
        if let Some(RefOr::T(Schema::Object(object))) = &mut parameter.schema
            && let SchemaType::Array(types) = &object.schema_type
            && let [only] = types.iter().filter(|t| **t != Type::Null).collect::<Vec<_>>()[..]
        {
            object.schema_type = SchemaType::Type(only.clone());
        }
    }
}

/// True when the operation accepts (or needs) a bearer token.
fn takes_token(operation: &Operation) -> bool {
    operation
        .security
        .iter()
        .flatten()
        .any(|requirement| serde_json::to_value(requirement).is_ok_and(|v| v.get("bearer").is_some()))
}

/// The answers every authenticated operation can give, unless it documents them itself.
fn shared_answers(method: HttpMethod, operation: &mut Operation) {
    if !takes_token(operation) {
        return;
    }
    let writes = !matches!(method, HttpMethod::Get | HttpMethod::Head | HttpMethod::Options);
    let responses = &mut operation.responses.responses;
    for shared in SHARED.iter().filter(|s| writes || !s.writes_only) {
        let status = shared.code.status().to_string();
        if responses.contains_key(&status) {
            continue;
        }
        // A `HEAD` answer has no body, so it cannot be the shared one.
        let answer = if method == HttpMethod::Head {
            RefOr::T(shared.answer(false))
        } else {
            RefOr::Ref(utoipa::openapi::Ref::from_response_name(shared.name))
        };
        responses.insert(status, answer);
    }
}

/// The answer of the operations `crate::limits` limits, beyond their quota.
const RATE_LIMITED: Shared = Shared {
    name: "RateLimited",
    code: ErrorCode::RateLimited,
    text: "too many requests of this kind came from this client address or with this token; nothing was done, try again after `Retry-After` seconds",
    retry_after: Some(1),
    writes_only: true,
};

/// Adds the 429 answer to the operations with a rate limit.
fn rate_limited_answer(path: &str, method: &HttpMethod, operation: &mut Operation) {
    let method = match method {
        HttpMethod::Get => axum::http::Method::GET,
        HttpMethod::Post => axum::http::Method::POST,
        HttpMethod::Patch => axum::http::Method::PATCH,
        _ => return,
    };
    if crate::limits::Class::of(&method, path).is_some() {
        let answer = RefOr::Ref(utoipa::openapi::Ref::from_response_name(RATE_LIMITED.name));
        operation.responses.responses.entry("429".to_owned()).or_insert(answer);
    }
}

/// The error codes a description names (in backticks) that have the status `status`.
fn named_codes(status: &str, description: &str) -> Vec<ErrorCode> {
    let Ok(status) = status.parse::<u16>() else { return Vec::new() };
    description
        .split('`')
        .skip(1)
        .step_by(2)
        .filter_map(|word| serde_json::from_value::<ErrorCode>(serde_json::Value::from(word)).ok())
        .filter(|code| code.status() == status)
        .collect()
}

/// What a description says about `code`: the words after "`code`: " up to the next code's
/// clause or the end, without the final period; else what the code means.
fn message_for(code: ErrorCode, description: &str) -> String {
    let marker = format!("`{code}`: ");
    let said = description.split_once(&marker).map(|(_, rest)| {
        let clause = rest.split_once("; `").map_or(rest, |(clause, _)| clause);
        let clause = clause.split_once(". ").map_or(clause, |(sentence, _)| sentence);
        clause.trim_end_matches('.').to_owned()
    });
    said.unwrap_or_else(|| code.meaning().to_owned())
}

/// One example per code a JSON error answer's description names.
fn error_examples(status: &str, answer: &mut ResponseDoc) {
    let codes = named_codes(status, &answer.description);
    let Some(content) = answer.content.get_mut("application/json") else { return };
    if codes.is_empty() || content.example.is_some() || !content.examples.is_empty() {
        return;
    }
    for code in codes {
        let message = message_for(code, &answer.description);
        let body = ErrorBody { error: ErrorDetail { code, message, policies: None, reason: None } };
        let value = serde_json::to_value(&body).unwrap_or_default();
        let example = Example::builder().summary(code.meaning()).value(Some(value)).build();
        content.examples.insert(code.as_str().to_owned(), RefOr::T(example));
    }
}

/// Raw bytes: an age file going up or down, a log tile.
#[derive(Debug)]
pub(super) struct Binary;

impl PartialSchema for Binary {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary)))
            .content_media_type("application/octet-stream")
            .description(Some("Raw bytes."))
            .into()
    }
}

impl ToSchema for Binary {}

/// A reference to a wire type's schema in the components.
trait SchemaRef {
    fn schema_ref() -> RefOr<utoipa::openapi::schema::Schema>;
}

impl<T: ToSchema> SchemaRef for T {
    fn schema_ref() -> RefOr<utoipa::openapi::schema::Schema> {
        RefOr::Ref(utoipa::openapi::Ref::from_schema_name(T::name()))
    }
}

#[cfg(test)]
mod tests;
