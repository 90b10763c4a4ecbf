//! Client profiles: `~/.config/sealpost/config.toml` (or `$XDG_CONFIG_HOME/sealpost/config.toml`,
//! or `SEALPOST_CONFIG_FILE`) names gateways, token files, identities and log keys, so that a
//! user types `sealpost inbox` instead of repeating `--url` and `--token`.
//!
//! ```toml
//! default_profile = "work"
//! [profiles.work]
//! url = "https://sealpost.example.gov.uk"
//! token_file = "~/.config/sealpost/work.token"   # 0600
//! identity = "~/.config/sealpost/alice.txt"
//! log_key = "origin+hexid+base64"
//! ```
//!
//! Precedence is flags > environment > profile > built-in defaults. It is applied in one place,
//! before the real parse: the selected profile's values become the clap defaults of every
//! argument that reads the matching environment variable (`SEALPOST_URL`, `SEALPOST_TOKEN`,
//! `SEALPOST_IDENTITY`, `SEALPOST_LOG_KEY`, `SEALPOST_SIGNING_KEY`), so clap's own
//! flag > env > default order does the rest, for `send`, `fetch` and every other client command
//! alike. The token file is read only when neither `--token` nor `SEALPOST_TOKEN` gives one.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::ErrorKind;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use clap::{ArgMatches, Command};
use serde::Deserialize;

use super::{EXIT_CONFIG, Failure};

/// Overrides the config file's path (tests, several setups side by side). `SEALPOST_CONFIG` is
/// the server's configuration, not this.
pub(super) const CONFIG_FILE_ENV: &str = "SEALPOST_CONFIG_FILE";

/// Commands that never read the client profile (the server, local-only tools, and the commands
/// that manage profiles themselves).
const NOT_CLIENT: &[&str] =
    &["serve", "keygen", "policy", "inspect", "witness", "completions", "man", "login", "logout", "help"];

/// The config file as written by the user.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ConfigFile {
    /// The profile used when neither `--profile` nor `SEALPOST_PROFILE` names one.
    pub(super) default_profile: Option<String>,
    /// Profiles by name.
    #[serde(default)]
    pub(super) profiles: BTreeMap<String, Profile>,
}

/// One gateway and the caller's credentials for it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct Profile {
    /// The gateway's base URL.
    pub(super) url: Option<String>,
    /// A file holding the API token, mode 0600.
    pub(super) token_file: Option<String>,
    /// The age identity `fetch` decrypts with.
    pub(super) identity: Option<String>,
    /// The Ed25519 signing key `send` signs manifests with and `fetch` signs for deliveries with.
    pub(super) signing_key: Option<String>,
    /// The log's verifier key that receipts are checked against (a pin).
    pub(super) log_key: Option<String>,
    /// A C2SP tlog-policy file (log key, witnesses, quorum) receipts and key entries are checked
    /// against instead.
    pub(super) log_policy: Option<String>,
}

/// The config file's path: `SEALPOST_CONFIG_FILE`, else `$XDG_CONFIG_HOME/sealpost/config.toml`,
/// else `~/.config/sealpost/config.toml`.
pub(super) fn config_path() -> Option<PathBuf> {
    let nonempty = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(path) = nonempty(CONFIG_FILE_ENV) {
        return Some(path);
    }
    let base = nonempty("XDG_CONFIG_HOME").or_else(|| nonempty("HOME").map(|home| home.join(".config")))?;
    Some(base.join("sealpost").join("config.toml"))
}

/// Expands a leading `~/` to `$HOME`.
pub(super) fn expand(path: &str) -> PathBuf {
    match (path.strip_prefix("~/"), std::env::var_os("HOME")) {
        (Some(rest), Some(home)) => PathBuf::from(home).join(rest),
        _ => PathBuf::from(path),
    }
}

/// Reads the config file; a missing file is an empty one.
pub(super) fn load(path: &Path) -> Result<ConfigFile, Failure> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(ConfigFile::default()),
        Err(e) => {
            return Err(
                Failure::new(format!("cannot read the config file `{}`: {e}", path.display())).exit(EXIT_CONFIG)
            );
        }
    };
    toml::from_str(&text).map_err(|e| {
        let line = e.span().map(|span| text[..span.start].matches('\n').count() + 1);
        let at = line.map_or_else(String::new, |line| format!(" (line {line})"));
        Failure::new(format!("bad config file `{}`{at}: {}", path.display(), e.message().trim()))
            .hint("the keys are `default_profile` and, under `[profiles.NAME]`, `url`, `token_file`, `identity`, `signing_key`, `log_key`, `log_policy`")
            .exit(EXIT_CONFIG)
    })
}

/// The profile to use: `name` (from `--profile` or `SEALPOST_PROFILE`), else the file's
/// `default_profile`, else none. Naming a profile the file lacks is an error.
pub(super) fn select(config: &ConfigFile, name: Option<&str>, path: &Path) -> Result<Option<Profile>, Failure> {
    let Some(name) = name.or(config.default_profile.as_deref()) else {
        return Ok(None);
    };
    match config.profiles.get(name) {
        Some(profile) => Ok(Some(profile.clone())),
        None => Err(Failure::new(format!("no profile `{name}` in `{}`", path.display()))
            .hint("create it with `sealpost login --profile NAME --url URL`, or pick another with --profile")
            .exit(EXIT_CONFIG)),
    }
}

/// Reads a token file, refusing one that group or others can read.
pub(super) fn read_token(path: &Path) -> Result<String, Failure> {
    let shown = path.display();
    let meta = std::fs::metadata(path).map_err(|e| {
        Failure::new(format!("cannot read the token file `{shown}`: {e}"))
            .hint("log in again with `sealpost login`")
            .exit(EXIT_CONFIG)
    })?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(Failure::new(format!("the token file `{shown}` is readable by other users"))
            .hint(format!("chmod 600 {shown}, and revoke the token if others may have read it"))
            .exit(EXIT_CONFIG));
    }
    let token = std::fs::read_to_string(path)
        .map_err(|e| Failure::new(format!("cannot read the token file `{shown}`: {e}")).exit(EXIT_CONFIG))?;
    Ok(token.trim().to_owned())
}

/// Applies the selected profile (if any) to `cmd` as defaults, looking at `argv` only to learn
/// the subcommand, the profile's name and whether a token was given. Usage errors are left for
/// the real parse to report.
pub(super) fn apply(cmd: Command, argv: &[OsString]) -> Result<Command, Failure> {
    // `--help` stops even a lenient parse; without it the probe still sees the subcommand, so
    // help shows the profile's values as defaults.
    let no_help = argv.iter().filter(|a| !matches!(a.to_str(), Some("-h" | "--help")));
    let Ok(probe) = cmd.clone().ignore_errors(true).try_get_matches_from(no_help) else {
        return Ok(cmd);
    };
    match probe.subcommand_name() {
        Some(name) if !NOT_CLIENT.contains(&name) => {}
        _ => return Ok(cmd),
    }
    let Some(path) = config_path() else {
        return Ok(cmd);
    };
    let config = load(&path)?;
    let name = probe.try_get_one::<String>("profile").ok().flatten().map(String::as_str);
    let Some(profile) = select(&config, name, &path)? else {
        return Ok(cmd);
    };
    let token = match &profile.token_file {
        Some(file) if !given(&probe, "token") => Some(read_token(&expand(file))?),
        _ => None,
    };
    let path_value = |p: &Option<String>| p.as_deref().map(|p| expand(p).to_string_lossy().into_owned());
    // clap takes defaults as `&'static str` (without its `string` feature); these few strings live
    // as long as the process anyway.
    let defaults: Vec<(&str, &'static str)> = [
        ("SEALPOST_URL", profile.url.clone()),
        ("SEALPOST_TOKEN", token),
        ("SEALPOST_IDENTITY", path_value(&profile.identity)),
        ("SEALPOST_SIGNING_KEY", path_value(&profile.signing_key)),
        ("SEALPOST_LOG_KEY", profile.log_key.clone()),
        ("SEALPOST_LOG_POLICY", path_value(&profile.log_policy)),
    ]
    .into_iter()
    .filter_map(|(env, value)| value.map(|v| (env, &*Box::leak(v.into_boxed_str()))))
    .collect();
    Ok(with_defaults(cmd, &defaults))
}

/// Whether an argument has a value (from a flag or the environment) at any level of `matches`.
fn given(matches: &ArgMatches, id: &str) -> bool {
    let mut current = Some(matches);
    while let Some(m) = current {
        if matches!(m.try_get_raw(id), Ok(Some(_))) {
            return true;
        }
        current = m.subcommand().map(|(_, sub)| sub);
    }
    false
}

/// Sets `value` as the default of every argument, in `cmd` and all its subcommands, that reads
/// the environment variable it is paired with.
fn with_defaults(cmd: Command, defaults: &[(&str, &'static str)]) -> Command {
    let mut cmd = cmd.mut_args(|arg| {
        let env = arg.get_env().and_then(|e| e.to_str()).map(str::to_owned);
        match defaults.iter().find(|(name, _)| env.as_deref() == Some(*name)) {
            Some((name, value)) => {
                let arg = arg.default_value(*value).required(false);
                if *name == "SEALPOST_TOKEN" { arg.hide_default_value(true) } else { arg }
            }
            None => arg,
        }
    });
    for sub in cmd.get_subcommands_mut() {
        *sub = with_defaults(std::mem::take(sub), defaults);
    }
    cmd
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_refused_with_the_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "[profiles.work]\nurl = \"http://x\"\ncolour = \"blue\"\n").unwrap();
        let failure = load(&path).unwrap_err();
        assert_eq!(failure.exit, EXIT_CONFIG);
        assert!(
            failure
                .message
                .starts_with(&format!("bad config file `{}` (line 3): unknown field `colour`", path.display())),
            "{}",
            failure.message
        );
    }

    #[test]
    fn a_token_file_readable_by_others_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("work.token");
        std::fs::write(&path, "secret\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let failure = read_token(&path).unwrap_err();
        assert_eq!(failure.exit, EXIT_CONFIG);
        assert_eq!(
            failure.hint.as_deref(),
            Some(&*format!("chmod 600 {}, and revoke the token if others may have read it", path.display()))
        );
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(read_token(&path).unwrap(), "secret");
    }

    #[test]
    fn a_missing_profile_is_named() {
        let config = ConfigFile::default();
        let failure = select(&config, Some("home"), Path::new("c.toml")).unwrap_err();
        assert_eq!(failure.message, "no profile `home` in `c.toml`");
        assert!(select(&config, None, Path::new("c.toml")).unwrap().is_none());
    }
}
