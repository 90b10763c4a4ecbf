//! CLI transcripts pinned as files (`tests/cmd/*.toml`, in the style of rage's): usage errors,
//! keys that exist or are missing, and other runs that need no gateway, among them the typed exit
//! codes 3 (an invalid policy directory) and 4 (a tampered receipt, beside the same receipt
//! verifying). Runs that need one (wrong identity, used link, swapped bundle, and exit 2, which
//! only a gateway's policy denial gives) are in `client.rs`, which asserts their exact error
//! lines. `TRYCMD=overwrite cargo test --test it cli_transcripts` rewrites the files.

#[test]
fn cli_transcripts_match_their_pinned_files() {
    trycmd::TestCases::new()
        .register_bin("sealpost", std::path::PathBuf::from(env!("CARGO_BIN_EXE_sealpost")))
        .env("NO_COLOR", "1")
        // A developer's own client config must not change what the transcripts pin.
        .env("SEALPOST_CONFIG_FILE", "/nonexistent/sealpost-config.toml")
        .case("tests/cmd/*.toml");
}
