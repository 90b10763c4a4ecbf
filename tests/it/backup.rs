//! `sealpost admin backup` and `restore`: a backup of a running gateway taken while uploads go
//! on, restored into a new data directory and served by a real gateway; backups damaged, cut
//! short or made without the secrets; a blob gone before the backup could copy it.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::common::deployment::{Served, admin_token, printed, sealpost};
use crate::common::{assert_exit, code, decrypt, encrypt, noise, status_json};

fn text(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// A copy of a directory, as an operator's `cp -a` makes it.
fn copy_dir(from: &Path, to: &Path) {
    let out = std::process::Command::new("cp").arg("-a").arg(from).arg(to).output().expect("cp runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// The one file in a backup's `blobs/` (or the first).
fn a_blob(backup: &Path) -> std::path::PathBuf {
    let mut blobs: Vec<_> =
        std::fs::read_dir(backup.join("blobs")).expect("blobs").map(|e| e.expect("entry").path()).collect();
    blobs.sort();
    blobs.into_iter().next().expect("a blob")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_while_uploads_go_on_restores_into_a_gateway_that_verifies_and_serves_waiting_links() {
    let work = tempfile::tempdir().expect("tempdir");
    let (data, backup, restored) = (work.path().join("data"), work.path().join("backup"), work.path().join("restored"));
    let state = work.path().join("verifier-state");
    let gateway = Served::start(&data, &[], &[]);
    let admin = admin_token(&data);
    let (bob, alice, identity) = gateway.parties(&admin).await;
    let recipient = identity.to_public().to_string();
    let mut waiting = Vec::new();
    for size in [1_000, 200_000, 3_000_000] {
        let plaintext = noise(size);
        let (status, body) = gateway.upload(&bob, encrypt(&[&recipient], &plaintext)).await;
        assert_eq!(status, 201, "{body}");
        waiting.push((body["links"][0]["url"].as_str().expect("link").to_owned(), plaintext));
    }
    let key = gateway.log_key().await;
    gateway.settle(&admin).await;
    assert_exit(&gateway.log_verify(&key, &state).await, 0);

    // Two senders keep uploading while the backup runs.
    let going = Arc::new(AtomicBool::new(true));
    let senders: Vec<_> = (0..2)
        .map(|_| {
            let (going, http, bob) = (going.clone(), gateway.http.clone(), bob.clone());
            let url = format!("{}/api/v1/transfers?to=hmpps/alice", gateway.url);
            let bundle = encrypt(&[&recipient], &noise(50_000));
            tokio::spawn(async move {
                let mut links = Vec::new();
                while going.load(Ordering::Relaxed) {
                    let (status, body) =
                        status_json(http.post(&url).bearer_auth(&bob).body(bundle.clone()).send().await.expect("send"))
                            .await;
                    assert_eq!(status, 201, "{body}");
                    links.push(body["links"][0]["url"].as_str().expect("link").to_owned());
                }
                links
            })
        })
        .collect();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let out = sealpost(&["admin", "backup", "--data-dir", &text(&data), "--to", &text(&backup)], &[]).await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    going.store(false, Ordering::Relaxed);
    let mut during = Vec::new();
    for sender in senders {
        during.extend(sender.await.expect("sender"));
    }
    assert_exit(&out, 0);
    assert!(printed(&out).contains("secrets gateway.key and admin.token"), "{}", printed(&out));
    assert!(!during.is_empty(), "uploads went on during the backup");
    let mode = |p: &Path| {
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(p).expect("metadata").permissions()) & 0o777
    };
    assert_eq!(mode(&backup), 0o700);
    for file in ["gateway.key", "admin.token", "sealpost.db"] {
        assert_eq!(mode(&backup.join(file)), 0o600, "{file}");
    }

    // Collected after the backup: the restore brings the link back (the README says so).
    let (status, _) = gateway.redeem(&alice, &waiting[0].0).await;
    assert_eq!(status, 200);
    gateway.stop();

    let out = sealpost(&["admin", "restore", &text(&backup), "--data-dir", &text(&restored)], &[]).await;
    assert_exit(&out, 0);
    let back = Served::start(&restored, &[], &[]);
    assert_eq!(back.log_key().await, key);
    assert_exit(&back.log_verify(&key, &state).await, 0);
    for (link, plaintext) in &waiting {
        let (status, bytes) = back.redeem(&alice, link).await;
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&bytes));
        assert_eq!(&decrypt(&identity, &bytes), plaintext);
    }
    // An upload answered during the backup is in it (committed before the snapshot) or not
    // (after): its link works whole or is unknown, nothing in between.
    let mut kept = 0;
    for link in &during {
        let (status, bytes) = back.redeem(&alice, link).await;
        match status {
            200 => {
                decrypt(&identity, &bytes);
                kept += 1;
            }
            404 => {}
            other => panic!("{other}: {}", String::from_utf8_lossy(&bytes)),
        }
    }
    let (status, body) = back.upload(&bob, encrypt(&[&recipient], b"after the restore")).await;
    assert_eq!(status, 201, "{body}");
    back.settle(&admin).await;
    assert_exit(&back.log_verify(&key, &state).await, 0);
    back.stop();
    eprintln!("{kept} of {} uploads answered during the backup were in it", during.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_or_truncated_backup_is_refused_and_leaves_nothing_behind() {
    let work = tempfile::tempdir().expect("tempdir");
    let (data, backup) = (work.path().join("data"), work.path().join("backup"));
    let gateway = Served::start(&data, &[], &[]);
    let admin = admin_token(&data);
    let (bob, _alice, identity) = gateway.parties(&admin).await;
    let (status, body) = gateway.upload(&bob, encrypt(&[&identity.to_public().to_string()], &noise(10_000))).await;
    assert_eq!(status, 201, "{body}");
    assert_exit(&sealpost(&["admin", "backup", "--data-dir", &text(&data), "--to", &text(&backup)], &[]).await, 0);
    gateway.stop();

    let restore_into = |from: &Path, to: &Path| {
        let (from, to) = (text(from), text(to));
        async move { sealpost(&["admin", "restore", &from, "--data-dir", &to], &[]).await }
    };
    let refused = |out: &std::process::Output, exit: i32, error: &str| {
        assert_exit(out, exit);
        assert!(printed(out).starts_with(&format!("sealpost: error: {error}\n")), "{}", printed(out));
    };

    let truncated = work.path().join("truncated");
    copy_dir(&backup, &truncated);
    let blob = a_blob(&truncated);
    let size = std::fs::metadata(&blob).expect("blob").len();
    std::fs::OpenOptions::new().write(true).open(&blob).expect("open").set_len(size / 2).expect("truncate");
    let name = format!("blobs/{}", blob.file_name().expect("name").to_string_lossy());
    let into = work.path().join("from-truncated");
    let out = restore_into(&truncated, &into).await;
    refused(
        &out,
        4,
        &format!("the backup is damaged: `{name}` is {} bytes long, and `inventory.json` says {size}", size / 2),
    );
    assert!(printed(&out).contains("sealpost: hint: this backup is damaged or incomplete: restore another one"));
    assert!(!into.exists(), "nothing was written");

    let tampered = work.path().join("tampered");
    copy_dir(&backup, &tampered);
    let db = tampered.join("sealpost.db");
    let mut bytes = std::fs::read(&db).expect("db");
    let at = bytes.len() / 2;
    bytes[at] ^= 1;
    std::fs::write(&db, bytes).expect("write");
    let out = restore_into(&tampered, &into).await;
    refused(&out, 4, "the backup is damaged: `sealpost.db` does not match its digest in `inventory.json`");
    assert!(!into.exists(), "nothing was written");

    let unfinished = work.path().join("unfinished");
    copy_dir(&backup, &unfinished);
    std::fs::remove_file(unfinished.join("inventory.json")).expect("remove");
    let out = restore_into(&unfinished, &into).await;
    refused(&out, 4, &format!("`{}` is not a whole sealpost backup: it has no `inventory.json`", text(&unfinished)));

    // A data directory in use is never overwritten.
    let out = restore_into(&backup, &data).await;
    refused(&out, 3, &format!("`{}` is not empty", text(&data)));

    // The backup itself is whole.
    let out = restore_into(&backup, &into).await;
    assert_exit(&out, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_blob_gone_before_the_backup_took_it_comes_back_revoked_and_the_log_says_so() {
    let work = tempfile::tempdir().expect("tempdir");
    let (data, backup, restored) = (work.path().join("data"), work.path().join("backup"), work.path().join("restored"));
    let state = work.path().join("verifier-state");
    let gateway = Served::start(&data, &[], &[]);
    let admin = admin_token(&data);
    let (bob, alice, identity) = gateway.parties(&admin).await;
    let recipient = identity.to_public().to_string();
    let mut links = Vec::new();
    for plaintext in [b"kept".as_slice(), b"lost"] {
        let (status, body) = gateway.upload(&bob, encrypt(&[&recipient], plaintext)).await;
        assert_eq!(status, 201, "{body}");
        links.push((
            body["id"].as_str().expect("id").to_owned(),
            body["links"][0]["url"].as_str().expect("link").to_owned(),
        ));
    }
    let key = gateway.log_key().await;
    gateway.settle(&admin).await;
    assert_exit(&gateway.log_verify(&key, &state).await, 0);

    // As if the sweeper purged it between the snapshot and the copy.
    std::fs::remove_file(data.join("blobs").join(format!("{}.age", links[1].0))).expect("remove the blob");
    let out =
        sealpost(&["admin", "backup", "--data-dir", &text(&data), "--to", &text(&backup), "--without-secrets"], &[])
            .await;
    assert_exit(&out, 0);
    assert!(printed(&out).contains("lost    1 blob(s) purged while the backup ran"), "{}", printed(&out));
    assert!(printed(&out).contains("secrets left out"), "{}", printed(&out));
    assert!(!backup.join("gateway.key").exists() && !backup.join("admin.token").exists());
    gateway.stop();

    let out = sealpost(&["admin", "restore", &text(&backup), "--data-dir", &text(&restored)], &[]).await;
    assert_exit(&out, 3);
    let no_key = format!(
        "sealpost: error: the backup holds no signing key, and there is none at `{}`\n\
         sealpost: hint: the backup was made --without-secrets: give the deployment's signing key with --signing-key\n",
        text(&restored.join("gateway.key"))
    );
    assert_eq!(printed(&out), no_key);
    assert!(!restored.exists());

    let key_file = text(&data.join("gateway.key"));
    let out = sealpost(
        &["admin", "restore", &text(&backup), "--data-dir", &text(&restored), "--signing-key", &key_file],
        &[],
    )
    .await;
    assert_exit(&out, 0);
    assert!(
        printed(&out).contains("lost    1 blob(s) purged while the backup ran: 1 link(s) revoked"),
        "{}",
        printed(&out)
    );
    let back = Served::start(&restored, &["--signing-key", &key_file], &[]);
    let (status, bytes) = back.redeem(&alice, &links[0].1).await;
    assert_eq!(status, 200);
    assert_eq!(decrypt(&identity, &bytes), b"kept");
    let (status, body) = back.redeem(&alice, &links[1].1).await;
    let body: serde_json::Value = serde_json::from_slice(&body).expect("json");
    assert_eq!((status, code(&body)), (410, "link_revoked"));
    let (status, audit) = back.get(&admin, &format!("/api/v1/audit?transfer={}", links[1].0)).await;
    assert_eq!(status, 200, "{audit}");
    let mut recorded: Vec<&str> = audit["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["entry"].as_str().is_some_and(|t| t.contains("\ncode not_in_backup\n")))
        .map(|e| e["event"].as_str().unwrap_or_default())
        .collect();
    recorded.sort_unstable();
    assert_eq!(recorded, ["link.revoked", "object.purged"], "{audit}");
    back.settle(&admin).await;
    assert_exit(&back.log_verify(&key, &state).await, 0);
    back.stop();
}
