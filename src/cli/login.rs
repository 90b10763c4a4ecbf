//! `sealpost login` and `sealpost logout`: keep a profile's API token in a 0600 file beside the
//! config file, and the profile (url, token file) in the config file, edited in place so that
//! comments and other profiles stay as they were.

use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::os::unix::fs::DirBuilderExt as _;
use std::path::{Path, PathBuf};

use clap::Args;
use toml_edit::{DocumentMut, Item, Table, value};

use super::client::Client;
use super::profile::{self, CONFIG_FILE_ENV};
use super::{ClientArgs, EXIT_CONFIG, Failure};
use crate::wire::accounts::Whoami;

/// Options for `sealpost login`.
#[derive(Debug, Args)]
pub(super) struct LoginArgs {
    /// The gateway's base URL (default: the profile's, if it has one).
    #[arg(long, env = "SEALPOST_URL")]
    url: Option<String>,
    /// Sign in through your organisation's identity provider instead of giving a token: prints a
    /// code and an address to enter it at, then waits; the gateway gives this CLI a short-lived
    /// token tied to you.
    #[arg(long)]
    sso: bool,
    /// Which identity provider, when the gateway has several (`GET /api/v1/sso` lists them).
    #[arg(long, requires = "sso")]
    provider: Option<String>,
}

/// The longest `login --sso` waits for the person, whatever the provider says.
const DEVICE_WAIT_CEILING: std::time::Duration = std::time::Duration::from_secs(30 * 60);

/// Signs this CLI in through the gateway's identity provider (RFC 8628 device flow, with the
/// gateway as the provider's client): shows the code, polls, and returns the token.
async fn sso_token(url: &str, provider: Option<String>) -> Result<crate::wire::sso::SsoToken, Failure> {
    use crate::wire::ErrorCode;
    use crate::wire::sso::{DevicePoll, DeviceRequest, DeviceStarted, SsoToken};
    let client = Client::anonymous(url)?;
    let started: DeviceStarted = client.post("/api/v1/sso/device", DeviceRequest { provider }).await?;
    eprintln!("Open this address in a browser and enter the code {}:", started.user_code);
    eprintln!();
    eprintln!("    {}", started.verification_uri);
    eprintln!();
    if let Some(complete) = &started.verification_uri_complete {
        eprintln!("(or open {complete})");
    }
    eprintln!(
        "Waiting for you to finish signing in (the code expires in {} minutes)…",
        started.expires_in.div_ceil(60)
    );
    let poll = DevicePoll { provider: started.provider.clone(), device_code: started.device_code.clone() };
    let mut interval = std::time::Duration::from_secs(started.interval.max(1));
    let deadline =
        std::time::Instant::now() + std::time::Duration::from_secs(started.expires_in).min(DEVICE_WAIT_CEILING);
    loop {
        tokio::time::sleep(interval).await;
        match client.post_coded::<SsoToken>("/api/v1/sso/device/token", &poll).await? {
            Ok(token) => return Ok(token),
            Err(e) if e.code == ErrorCode::AuthorizationPending => {}
            Err(e) if e.code == ErrorCode::SlowDown => interval += std::time::Duration::from_secs(5),
            Err(e) => {
                let hint = match e.code {
                    ErrorCode::ExpiredToken => "run `sealpost login --sso` again and enter the new code sooner",
                    ErrorCode::SsoUnavailable => "the identity provider may be down: try again later",
                    _ => "ask your administrator if you should have access",
                };
                return Err(Failure::new(format!("not signed in: {}", e.message)).hint(hint));
            }
        }
        if std::time::Instant::now() >= deadline {
            return Err(Failure::new("not signed in: the code expired before the sign-in was finished")
                .hint("run `sealpost login --sso` again"));
        }
    }
}

/// The config file's path, or a failure saying how to name one.
fn config_path() -> Result<PathBuf, Failure> {
    profile::config_path().ok_or_else(|| {
        Failure::new("cannot tell where the config file lives")
            .hint(format!("set HOME, XDG_CONFIG_HOME or {CONFIG_FILE_ENV}"))
            .exit(EXIT_CONFIG)
    })
}

/// The profile's name: the one asked for, else the file's default, else `default`.
fn profile_name(asked: Option<String>, config: &profile::ConfigFile) -> String {
    asked.or_else(|| config.default_profile.clone()).unwrap_or_else(|| "default".to_owned())
}

/// Where the profile keeps its token: its `token_file`, else `NAME.token` beside the config file.
fn token_path(config_path: &Path, name: &str, existing: Option<&profile::Profile>) -> PathBuf {
    match existing.and_then(|p| p.token_file.as_deref()) {
        Some(file) => profile::expand(file),
        None => config_path.parent().unwrap_or(Path::new(".")).join(format!("{name}.token")),
    }
}

/// Reads the token: a prompt without echo on a terminal, else the first line of standard input.
fn read_token() -> Result<String, Failure> {
    let token = if std::io::stdin().is_terminal() {
        rpassword::prompt_password("sealpost: API token: ")
            .map_err(|e| Failure::new(format!("cannot read the token: {e}")))?
    } else {
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| Failure::new(format!("cannot read the token: {e}")))?;
        line
    };
    let token = token.trim().to_owned();
    if token.is_empty() {
        return Err(Failure::new("no token given on standard input")
            .hint("pipe it in (`sealpost login --url URL < token.txt`) or type it at the prompt"));
    }
    Ok(token)
}

/// Writes `contents` to `path` atomically, mode 0600, creating its directory (0700).
fn write_private(path: &Path, contents: &str) -> Result<(), Failure> {
    let fail = |e: std::io::Error| Failure::new(format!("cannot write `{}`: {e}", path.display())).exit(EXIT_CONFIG);
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::DirBuilder::new().recursive(true).mode(0o700).create(dir).map_err(fail)?;
    // NamedTempFile is created 0600, and the rename keeps the mode.
    let mut file = tempfile::NamedTempFile::new_in(dir).map_err(fail)?;
    file.write_all(contents.as_bytes()).map_err(fail)?;
    file.as_file().sync_all().map_err(fail)?;
    file.persist(path).map_err(|e| fail(e.error))?;
    Ok(())
}

/// `~/…` for paths under the home directory, so the config file reads as the user would write it.
fn shown_path(path: &Path) -> String {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    match home.as_deref().and_then(|home| path.strip_prefix(home).ok()) {
        Some(rest) => format!("~/{}", rest.display()),
        None => path.display().to_string(),
    }
}

/// Sets the profile's `url` and `token_file` in the config file's text, keeping everything else.
fn update_config(text: &str, name: &str, url: &str, token_file: &str) -> Result<String, String> {
    let mut doc: DocumentMut = text.parse().map_err(|e: toml_edit::TomlError| e.message().to_owned())?;
    if doc.get("default_profile").is_none() {
        doc["default_profile"] = value(name);
    }
    let profiles = doc.entry("profiles").or_insert(Item::Table(Table::new()));
    let profiles = profiles.as_table_mut().ok_or("`profiles` is not a table")?;
    profiles.set_implicit(true);
    let table = profiles.entry(name).or_insert(Item::Table(Table::new()));
    let table = table.as_table_mut().ok_or_else(|| format!("`profiles.{name}` is not a table"))?;
    set_keeping_comment(table, "url", url);
    set_keeping_comment(table, "token_file", token_file);
    Ok(doc.to_string())
}

/// Sets a string value, keeping the comment and spacing around an existing one.
fn set_keeping_comment(table: &mut Table, key: &str, new: &str) {
    match table.get_mut(key).and_then(Item::as_value_mut) {
        Some(old) => {
            let decor = old.decor().clone();
            *old = new.into();
            *old.decor_mut() = decor;
        }
        None => table[key] = value(new),
    }
}

/// `sealpost login`: check a token against the gateway, then store it and the profile.
pub(super) async fn login(args: LoginArgs, asked: Option<String>) -> Result<(), Failure> {
    let path = config_path()?;
    let config = profile::load(&path)?;
    let name = profile_name(asked, &config);
    let existing = config.profiles.get(&name);
    let url = args.url.or_else(|| existing.and_then(|p| p.url.clone())).ok_or_else(|| {
        Failure::new(format!("no gateway URL for profile `{name}`"))
            .hint("pass --url https://sealpost.example.gov.uk")
            .exit(EXIT_CONFIG)
    })?;
    let (token, sso) = if args.sso {
        let issued = sso_token(&url, args.provider).await?;
        (issued.token.clone(), Some(issued))
    } else {
        (read_token()?, None)
    };
    let who = Client::new(&ClientArgs { url: url.clone(), token: Some(token.clone()) })?
        .get::<Whoami>("/api/v1/whoami")
        .await?;

    let token_file = token_path(&path, &name, existing);
    write_private(&token_file, &format!("{token}\n"))?;
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => {
            return Err(
                Failure::new(format!("cannot read the config file `{}`: {e}", path.display())).exit(EXIT_CONFIG)
            );
        }
    };
    let updated = update_config(&text, &name, &url, &shown_path(&token_file)).map_err(|e| {
        Failure::new(format!("cannot update the config file `{}`: {e}", path.display())).exit(EXIT_CONFIG)
    })?;
    write_private(&path, &updated)?;

    match sso {
        Some(issued) => println!(
            "Signed in as {} ({}) at {url}; the token expires at {}{}; profile `{name}` saved in {}",
            who.user,
            who.role,
            issued.expires_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            if issued.mfa { " (multi-factor sign-in)" } else { "" },
            path.display()
        ),
        None => println!(
            "logged in to {url} as {} ({}, {} organisation); profile `{name}` saved in {}",
            who.user,
            who.role,
            who.org_kind,
            path.display()
        ),
    }
    Ok(())
}

/// `sealpost logout`: delete the profile's token file (the profile itself stays).
pub(super) fn logout(asked: Option<String>) -> Result<(), Failure> {
    let path = config_path()?;
    let config = profile::load(&path)?;
    let name = profile_name(asked, &config);
    let token_file = token_path(&path, &name, config.profiles.get(&name));
    match std::fs::remove_file(&token_file) {
        Ok(()) => {
            println!("logged out of profile `{name}`: deleted {}", token_file.display());
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            println!("profile `{name}` was not logged in (no {})", token_file.display());
            Ok(())
        }
        Err(e) => Err(Failure::new(format!("cannot delete `{}`: {e}", token_file.display()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn updating_one_profile_keeps_the_others_and_the_comments() {
        let before = "# mine\ndefault_profile = \"work\"\n\n[profiles.work]\nurl = \"https://a\" # work\ntoken_file = \"~/w.token\"\n";
        let after = update_config(before, "home", "https://b", "~/h.token").unwrap();
        assert_eq!(
            after,
            "# mine\ndefault_profile = \"work\"\n\n[profiles.work]\nurl = \"https://a\" # work\ntoken_file = \"~/w.token\"\n\n[profiles.home]\nurl = \"https://b\"\ntoken_file = \"~/h.token\"\n"
        );
        let again = update_config(&after, "work", "https://c", "~/w.token").unwrap();
        assert!(again.contains("[profiles.work]\nurl = \"https://c\" # work\n"), "{again}");
    }

    #[test]
    fn a_new_config_file_gets_a_default_profile() {
        let text = update_config("", "work", "https://a", "/t").unwrap();
        assert_eq!(text, "default_profile = \"work\"\n\n[profiles.work]\nurl = \"https://a\"\ntoken_file = \"/t\"\n");
    }
}
