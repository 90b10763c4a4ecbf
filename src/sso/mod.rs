//! Single sign-on: sealpost as an OpenID Connect relying party of each configured provider.
//!
//! The pages use the authorization code flow with PKCE (S256), a nonce and a state bound to the
//! browser ([`crate::web`]'s `sso` module keeps them in the database); the CLI uses the device
//! authorization grant (RFC 8628) through the gateway, which alone holds the client secret, so the
//! CLI never talks to the provider. Either way an ID token is checked in full here: signature
//! against the provider's JWKS (fetched again once when a token names a key it does not hold, so
//! a key rotation at the provider just works), issuer, audience, expiry, and (pages) the nonce.
//! `openidconnect` does the discovery, the PKCE challenge, the authorization URL and the ID-token
//! verification; the two token-endpoint calls are plain form posts, so that one poll of a device
//! code is one request (the crate's device poll loops until done).

pub mod config;

use std::str::FromStr as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use openidconnect::core::{
    CoreAuthDisplay, CoreAuthenticationFlow, CoreClaimName, CoreClaimType, CoreClient, CoreClientAuthMethod,
    CoreGenderClaim, CoreGrantType, CoreJsonWebKey, CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm,
    CoreJwsSigningAlgorithm, CoreResponseMode, CoreResponseType, CoreSubjectIdentifierType,
};
use openidconnect::{
    AdditionalClaims, AdditionalProviderMetadata, ClaimsVerificationError, ClientId, ClientSecret, CsrfToken, IdToken,
    IdTokenClaims, IdTokenVerifier, IssuerUrl, Nonce, PkceCodeChallenge, PkceCodeVerifier, ProviderMetadata,
    RedirectUrl, Scope, SignatureVerificationError,
};
use secrecy::ExposeSecret as _;
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

pub use config::{Provider, Provisioning, RoleRule};

use crate::model::{AuthMethod, Authentication, Role, UserRef, check_name};

/// Claims beyond the standard ones (`groups`, `roles`, …), kept for the role rules.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ExtraClaims {
    #[serde(flatten)]
    other: serde_json::Map<String, serde_json::Value>,
}

impl AdditionalClaims for ExtraClaims {}

/// Discovery fields beyond OpenID Connect Discovery 1.0: the device authorization endpoint
/// (RFC 8628, section 4).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct DeviceEndpoint {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    device_authorization_endpoint: Option<String>,
}

impl AdditionalProviderMetadata for DeviceEndpoint {}

type Metadata = ProviderMetadata<
    DeviceEndpoint,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

type Token = IdToken<ExtraClaims, CoreGenderClaim, CoreJweContentEncryptionAlgorithm, CoreJwsSigningAlgorithm>;
type Claims = IdTokenClaims<ExtraClaims, CoreGenderClaim>;

/// How long discovery (and the JWKS with it) is trusted before it is read again.
const METADATA_TTL: Duration = Duration::from_secs(3600);
/// The least time between two JWKS refreshes forced by an unknown key id.
const REFRESH_FLOOR: Duration = Duration::from_secs(2);
/// Every call to a provider gives up after this long.
const PROVIDER_TIMEOUT: Duration = Duration::from_secs(10);

/// Why a sign-in through a provider did not happen. Each has the audit code of its
/// `session.refused` event.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SsoError {
    /// The provider could not be reached, or answered something that is not OpenID Connect.
    #[error("cannot reach {provider}: {detail}")]
    Unreachable {
        /// The provider's display name.
        provider: String,
        /// What went wrong.
        detail: String,
    },
    /// The provider refused (the person cancelled, is disabled, or the code was not accepted).
    #[error("{provider} did not sign you in: {detail}")]
    Denied {
        /// The provider's display name.
        provider: String,
        /// The provider's error and description.
        detail: String,
    },
    /// The ID token failed a check: signature, issuer, audience, expiry or nonce.
    #[error("the sign-in from {provider} could not be verified: {detail}")]
    Invalid {
        /// The provider's display name.
        provider: String,
        /// Which check failed.
        detail: String,
    },
    /// A device code still waits for its person (RFC 8628 `authorization_pending`).
    #[error("the sign-in is not finished yet")]
    Pending,
    /// The CLI polls too often (RFC 8628 `slow_down`).
    #[error("polling too fast")]
    SlowDown,
    /// The device code expired before anyone used it.
    #[error("the code expired before the sign-in was finished")]
    Expired,
}

impl SsoError {
    /// The `session.refused` code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unreachable { .. } => "sso_unreachable",
            Self::Denied { .. } => "sso_denied",
            Self::Invalid { .. } => "sso_invalid",
            Self::Pending | Self::SlowDown => "sso_pending",
            Self::Expired => "sso_expired",
        }
    }
}

/// A started browser sign-in: where to send the browser, and the secrets to keep until it comes
/// back.
#[derive(Debug)]
pub struct AuthStart {
    /// The provider's authorization URL, with state, nonce and PKCE challenge.
    pub url: String,
    /// The state sent (its hash finds the attempt again).
    pub state: String,
    /// The nonce the ID token must carry.
    pub nonce: String,
    /// The PKCE verifier for the code exchange.
    pub pkce_verifier: String,
}

/// A device authorization, as the CLI shows it (RFC 8628, section 3.2).
#[derive(Debug, Clone, Deserialize)]
pub struct DeviceStart {
    /// The code the CLI polls with.
    pub device_code: String,
    /// The code the person types.
    pub user_code: String,
    /// Where they type it.
    pub verification_uri: String,
    /// A URL with the code in it, when the provider gives one.
    #[serde(default)]
    pub verification_uri_complete: Option<String>,
    /// Seconds until the codes expire.
    pub expires_in: u64,
    /// Seconds between polls (default 5).
    #[serde(default)]
    pub interval: Option<u64>,
}

/// A person, as a verified ID token describes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Person {
    /// The provider's id (configuration).
    pub provider: String,
    /// The token's issuer.
    pub issuer: String,
    /// The token's subject: the provider's stable id for the person.
    pub subject: String,
    /// The email address, only when the provider says it is verified; lower-cased.
    pub email: Option<String>,
    /// The name a user made just in time would get, when the claims give a valid one.
    pub name: Option<String>,
    /// The role and organisation the provider's rules give, when it has rules; `Err` when it has
    /// rules and none matches (the person is refused).
    pub rule: Option<Result<(Role, Option<String>), ()>>,
    /// How they authenticated.
    pub auth: Authentication,
}

impl Person {
    /// The user to make for this person when the provider makes users just in time and has no
    /// user for them yet: `None` when it does not, or the claims give no usable name or
    /// organisation.
    pub fn new_user(&self, provider: &Provider) -> Option<(UserRef, Role)> {
        if provider.users != Provisioning::JustInTime {
            return None;
        }
        let Some(Ok((role, org))) = &self.rule else { return None };
        let org = org.clone().or_else(|| provider.org.clone())?;
        let name = self.name.as_deref()?;
        Some((UserRef::new(&org, name).ok()?, *role))
    }
}

#[derive(Debug)]
struct Cached {
    metadata: Arc<Metadata>,
    fetched: Instant,
}

/// One provider at run time: its configuration and its discovered metadata.
#[derive(Debug)]
pub struct ProviderClient {
    /// The configuration.
    pub config: Provider,
    cached: Mutex<Option<Cached>>,
}

/// Every configured provider, and the HTTP client that reaches them.
#[derive(Debug)]
pub struct Sso {
    providers: Vec<ProviderClient>,
    http: reqwest::Client,
    redirect_uri: String,
}

#[derive(Debug, Deserialize)]
struct TokenAnswer {
    #[serde(default)]
    id_token: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    error_description: Option<String>,
}

impl Sso {
    /// The providers, reached with redirects off and a timeout; `public_url` gives the redirect
    /// URI `PUBLIC_URL/sign-in/callback`.
    pub fn new(providers: Vec<Provider>, public_url: &str) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(PROVIDER_TIMEOUT)
            .user_agent(concat!("sealpost/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            providers: providers
                .into_iter()
                .map(|config| ProviderClient { config, cached: Mutex::new(None) })
                .collect(),
            http,
            redirect_uri: format!("{}/sign-in/callback", public_url.trim_end_matches('/')),
        })
    }

    /// The configured providers, in configuration order.
    pub fn providers(&self) -> impl Iterator<Item = &Provider> {
        self.providers.iter().map(|p| &p.config)
    }

    /// True when any provider is configured.
    pub fn enabled(&self) -> bool {
        !self.providers.is_empty()
    }

    /// The provider with this id.
    pub fn provider(&self, id: &str) -> Option<&ProviderClient> {
        self.providers.iter().find(|p| p.config.id == id)
    }

    /// The one provider, when only one is configured and none is named.
    pub fn only(&self) -> Option<&ProviderClient> {
        match self.providers.as_slice() {
            [one] => Some(one),
            _ => None,
        }
    }

    fn unreachable(p: &Provider, detail: impl std::fmt::Display) -> SsoError {
        SsoError::Unreachable { provider: p.name.clone(), detail: detail.to_string() }
    }

    /// The provider's metadata, discovered now when there is none or it is old (or `refresh`).
    async fn metadata(&self, p: &ProviderClient, refresh: bool) -> Result<Arc<Metadata>, SsoError> {
        let mut cached = p.cached.lock().await;
        if let Some(c) = cached.as_ref() {
            let age = c.fetched.elapsed();
            if age < METADATA_TTL && !(refresh && age >= REFRESH_FLOOR) {
                return Ok(c.metadata.clone());
            }
        }
        let issuer = IssuerUrl::new(p.config.issuer.clone()).map_err(|e| Self::unreachable(&p.config, e))?;
        let metadata = Metadata::discover_async(issuer, &self.http).await.map_err(|e| {
            tracing::warn!(provider = %p.config.id, error = %e, "identity provider discovery failed");
            Self::unreachable(&p.config, discovery_detail(&e))
        })?;
        let metadata = Arc::new(metadata);
        *cached = Some(Cached { metadata: metadata.clone(), fetched: Instant::now() });
        Ok(metadata)
    }

    /// Starts a browser sign-in: the authorization URL with a fresh state, nonce and PKCE pair.
    pub async fn start(&self, p: &ProviderClient) -> Result<AuthStart, SsoError> {
        let metadata = self.metadata(p, false).await?;
        let redirect = RedirectUrl::new(self.redirect_uri.clone()).map_err(|e| Self::unreachable(&p.config, e))?;
        let client = CoreClient::from_provider_metadata(
            (*metadata).clone(),
            ClientId::new(p.config.client_id.clone()),
            Some(ClientSecret::new(p.config.client_secret.expose_secret().to_owned())),
        )
        .set_redirect_uri(redirect);
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut request = client
            .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
            .set_pkce_challenge(challenge);
        for scope in &p.config.scopes {
            request = request.add_scope(Scope::new(scope.clone()));
        }
        let (url, state, nonce) = request.url();
        Ok(AuthStart {
            url: url.to_string(),
            state: state.secret().clone(),
            nonce: nonce.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
        })
    }

    /// Finishes a browser sign-in: exchanges the code (with the PKCE verifier) and verifies the
    /// ID token, nonce included.
    pub async fn finish(
        &self,
        p: &ProviderClient,
        code: &str,
        pkce_verifier: &str,
        nonce: &str,
    ) -> Result<Person, SsoError> {
        let metadata = self.metadata(p, false).await?;
        let verifier = PkceCodeVerifier::new(pkce_verifier.to_owned());
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", self.redirect_uri.as_str()),
            ("code_verifier", verifier.secret().as_str()),
        ];
        let answer = self.token_request(p, &metadata, &form).await?;
        if let Some(error) = answer.error {
            return Err(SsoError::Denied {
                provider: p.config.name.clone(),
                detail: described(&error, answer.error_description.as_deref()),
            });
        }
        let token = answer.id_token.ok_or_else(|| SsoError::Invalid {
            provider: p.config.name.clone(),
            detail: "the provider answered without an ID token".to_owned(),
        })?;
        let nonce = Nonce::new(nonce.to_owned());
        self.verify(p, &token, Some(&nonce)).await
    }

    /// Starts a device authorization for the CLI (RFC 8628, section 3.1).
    pub async fn start_device(&self, p: &ProviderClient) -> Result<DeviceStart, SsoError> {
        let metadata = self.metadata(p, false).await?;
        let Some(endpoint) = metadata.additional_metadata().device_authorization_endpoint.clone() else {
            return Err(SsoError::Denied {
                provider: p.config.name.clone(),
                detail: "the provider does not offer the device authorization grant (RFC 8628): sign in on the pages, or ask for a token".to_owned(),
            });
        };
        let mut scopes = vec!["openid".to_owned()];
        scopes.extend(p.config.scopes.iter().cloned());
        let scope = scopes.join(" ");
        let response = self
            .http
            .post(endpoint)
            .header(reqwest::header::AUTHORIZATION, basic_auth(&p.config))
            .header(reqwest::header::ACCEPT, "application/json")
            .form(&[("client_id", p.config.client_id.as_str()), ("scope", scope.as_str())])
            .send()
            .await
            .map_err(|e| Self::unreachable(&p.config, e))?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| Self::unreachable(&p.config, e))?;
        if !status.is_success() {
            let answer: TokenAnswer = serde_json::from_slice(&body)
                .map_err(|_| Self::unreachable(&p.config, format!("the device endpoint answered {status}")))?;
            return Err(SsoError::Denied {
                provider: p.config.name.clone(),
                detail: described(answer.error.as_deref().unwrap_or("error"), answer.error_description.as_deref()),
            });
        }
        serde_json::from_slice(&body)
            .map_err(|e| Self::unreachable(&p.config, format!("the device endpoint's answer is not RFC 8628: {e}")))
    }

    /// Polls once for a device code's token (RFC 8628, section 3.4) and verifies its ID token.
    pub async fn poll_device(&self, p: &ProviderClient, device_code: &str) -> Result<Person, SsoError> {
        let metadata = self.metadata(p, false).await?;
        let form = [("grant_type", "urn:ietf:params:oauth:grant-type:device_code"), ("device_code", device_code)];
        let answer = self.token_request(p, &metadata, &form).await?;
        match answer.error.as_deref() {
            None => {}
            Some("authorization_pending") => return Err(SsoError::Pending),
            Some("slow_down") => return Err(SsoError::SlowDown),
            Some("expired_token") => return Err(SsoError::Expired),
            Some(other) => {
                return Err(SsoError::Denied {
                    provider: p.config.name.clone(),
                    detail: described(other, answer.error_description.as_deref()),
                });
            }
        }
        let token = answer.id_token.ok_or_else(|| SsoError::Invalid {
            provider: p.config.name.clone(),
            detail: "the provider answered without an ID token".to_owned(),
        })?;
        self.verify(p, &token, None).await
    }

    /// One form post to the token endpoint with the client's credentials (`client_secret_basic`).
    async fn token_request(
        &self,
        p: &ProviderClient,
        metadata: &Metadata,
        form: &[(&str, &str)],
    ) -> Result<TokenAnswer, SsoError> {
        let endpoint = metadata
            .token_endpoint()
            .ok_or_else(|| Self::unreachable(&p.config, "the provider's discovery names no token endpoint"))?;
        let response = self
            .http
            .post(endpoint.url().clone())
            .header(reqwest::header::AUTHORIZATION, basic_auth(&p.config))
            .header(reqwest::header::ACCEPT, "application/json")
            .form(form)
            .send()
            .await
            .map_err(|e| Self::unreachable(&p.config, e))?;
        let status = response.status();
        let body = response.bytes().await.map_err(|e| Self::unreachable(&p.config, e))?;
        serde_json::from_slice(&body).map_err(|_| {
            Self::unreachable(&p.config, format!("the token endpoint answered {status} without an OAuth 2.0 JSON body"))
        })
    }

    /// Verifies an ID token against the provider's keys; a key it does not know sends for the
    /// JWKS again (once) before the token is refused.
    async fn verify(&self, p: &ProviderClient, token: &str, nonce: Option<&Nonce>) -> Result<Person, SsoError> {
        let invalid = |detail: String| SsoError::Invalid { provider: p.config.name.clone(), detail };
        let token = Token::from_str(token).map_err(|e| invalid(format!("the ID token is malformed: {e}")))?;
        let mut refreshed = false;
        loop {
            let metadata = self.metadata(p, refreshed).await?;
            let verifier = IdTokenVerifier::new_confidential_client(
                ClientId::new(p.config.client_id.clone()),
                ClientSecret::new(p.config.client_secret.expose_secret().to_owned()),
                metadata.issuer().clone(),
                metadata.jwks().clone(),
            )
            .set_allowed_algs(metadata.id_token_signing_alg_values_supported().clone());
            let result = match nonce {
                Some(nonce) => token.claims(&verifier, nonce).cloned(),
                None => token.claims(&verifier, |_: Option<&Nonce>| Ok(())).cloned(),
            };
            match result {
                Ok(claims) => return Ok(person(&p.config, &claims)),
                Err(ClaimsVerificationError::SignatureVerification(SignatureVerificationError::NoMatchingKey))
                    if !refreshed =>
                {
                    tracing::info!(provider = %p.config.id, "ID token signed by a key not in the cached JWKS: fetching it again");
                    refreshed = true;
                }
                Err(e) => return Err(invalid(e.to_string())),
            }
        }
    }
}

/// The `Authorization` header of `client_secret_basic`: id and secret form-encoded, then Base64
/// (RFC 6749, section 2.3.1).
fn basic_auth(p: &Provider) -> String {
    let enc = |s: &str| form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let pair = format!("{}:{}", enc(&p.client_id), enc(p.client_secret.expose_secret()));
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(pair))
}

/// An OAuth error code with its description, as people read it.
fn described(error: &str, description: Option<&str>) -> String {
    match description {
        Some(d) if !d.is_empty() => format!("{d} ({error})"),
        _ => error.to_owned(),
    }
}

fn discovery_detail<E: std::error::Error>(e: &openidconnect::DiscoveryError<E>) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// The person a verified token describes, with the provider's rules applied.
fn person(p: &Provider, claims: &Claims) -> Person {
    let email = match (claims.email(), claims.email_verified()) {
        (Some(email), Some(true)) => crate::model::normalise_email(email.as_str()).ok(),
        _ => None,
    };
    let extra = &claims.additional_claims().other;
    let claim_text = |name: &str| -> Option<String> {
        match name {
            "preferred_username" => claims.preferred_username().map(|u| u.as_str().to_owned()),
            "email" => email.clone(),
            "sub" => Some(claims.subject().as_str().to_owned()),
            other => extra.get(other).and_then(|v| v.as_str()).map(str::to_owned),
        }
    };
    let name = claim_text(&p.name_claim)
        .map(|n| n.split('@').next().unwrap_or_default().to_ascii_lowercase())
        .or_else(|| email.as_deref().and_then(|e| e.split('@').next()).map(str::to_owned))
        .filter(|n| check_name(n).is_ok());
    let has = |claim: &str, value: &str| match extra.get(claim) {
        Some(serde_json::Value::String(s)) => s == value,
        Some(serde_json::Value::Array(items)) => items.iter().any(|i| i.as_str() == Some(value)),
        _ => claim_text(claim).is_some_and(|v| v == value),
    };
    let rule = (!p.roles.is_empty())
        .then(|| p.roles.iter().find(|r| has(&r.claim, &r.value)).map(|r| (r.role, r.org.clone())).ok_or(()));
    let amr: Vec<String> =
        claims.auth_method_refs().map(|v| v.iter().map(|a| a.as_str().to_owned()).collect()).unwrap_or_default();
    let acr = claims.auth_context_ref().map(|a| a.as_str().to_owned()).unwrap_or_default();
    let mfa = p.is_mfa(&amr, &acr);
    Person {
        provider: p.id.clone(),
        issuer: claims.issuer().as_str().to_owned(),
        subject: claims.subject().as_str().to_owned(),
        email,
        name,
        rule,
        auth: Authentication { method: AuthMethod::Oidc, mfa, amr, acr },
    }
}
