//! The sweeper, driven at the library level: expiry and purge with paused tokio time, and the
//! purge of a delivered transfer at the next sweep.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use sealpost::blobs::{BlobError, BlobStore};
use sealpost::clock::Clock;
use sealpost::directory::RecipientKey;
use sealpost::envelope::Limits;
use sealpost::ids::{BearerSecret, LinkId, TransferId, UserId};
use sealpost::intake::{UploadRules, addressees, receive};
use sealpost::model::{Classification, OrgKind, Role, UserRef};
use sealpost::policy::{Action, Permit, PolicyGate, PolicySource, UploadRequest, principal_facts};
use sealpost::store::{AuditFilter, LeaseEnd, NewLink, NewTransfer, Store};
use sealpost::sweeper::{self, SweepReport};
use sealpost::wire::Digest;

use crate::common;

/// How long the fixture's link lives.
const LINK_LIFETIME: Duration = Duration::from_secs(86_400);
/// The sweeper's interval in the paused-time test.
const SWEEP_INTERVAL: Duration = Duration::from_secs(60);

/// A data directory holding one committed transfer from `acme/bob` to `hmpps/alice`.
struct Fixture {
    dir: tempfile::TempDir,
    store: Store,
    blobs: BlobStore,
    alice: UserId,
    link: BearerSecret,
    transfer: TransferId,
    object_key: String,
    expires_at: DateTime<Utc>,
    /// The `download` policy's permit for alice on the transfer.
    download: Permit,
}

impl Fixture {
    /// Builds the fixture through the same store, gate and blob calls the upload route makes.
    async fn new(clock: &Clock) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("sealpost.db")).await.expect("store opens");
        let blobs = BlobStore::open(dir.path()).await.expect("blobs open");
        let now = clock.now();

        let admin = store
            .bootstrap(&BearerSecret::generate("sp_").hash(), now + chrono::TimeDelta::days(1), now)
            .await
            .expect("bootstrap")
            .expect("first");
        let admin = store.user_id(&admin).await.expect("admin id");
        store.create_org(&admin, "acme", OrgKind::Contractor, now).await.expect("acme");
        store.create_org(&admin, "hmpps", OrgKind::Agency, now).await.expect("hmpps");
        store.add_route(&admin, "acme", "hmpps", now).await.expect("route");
        let bob = UserRef::new("acme", "bob").expect("name");
        let bob_token = BearerSecret::generate("sp_");
        store.create_user(&admin, &bob, Role::Sender, None, &bob_token.hash(), None, now).await.expect("bob");
        let alice = UserRef::new("hmpps", "alice").expect("name");
        let alice_token = BearerSecret::generate("sp_");
        store.create_user(&admin, &alice, Role::Recipient, None, &alice_token.hash(), None, now).await.expect("alice");
        let alice_id = store.user_id(&alice).await.expect("alice id");
        let (_identity, recipient) = common::keypair();
        let key = RecipientKey::parse(&recipient, false).expect("recipient key");
        store.add_key(&alice_id, &alice, &key, now).await.expect("key added");

        let sender = store.authenticate(&bob_token.hash(), now).await.expect("authenticate").expect("bob's token");
        let recipients = store.recipients(&[alice]).await.expect("recipients");
        let orgs = store.org_facts(&["acme", "hmpps"]).await.expect("org facts");
        let gate = PolicyGate::load(PolicySource::Embedded, Duration::from_secs(14 * 86_400)).expect("policies");
        let approval = gate
            .authorize_upload(&UploadRequest {
                sender: &sender,
                recipients: &recipients,
                orgs: &orgs,
                expires_in: LINK_LIFETIME,
                classification: Classification::Official,
                size: None,
                signed: false,
                now,
            })
            .expect("approved");

        let ciphertext = common::encrypt(&[&recipient], &common::noise(4096));
        let transfer = TransferId::generate();
        let object_key = BlobStore::key_for(&transfer);
        let staged = blobs.stage(&transfer).await.expect("stage");
        let rules = UploadRules { max_size: 1 << 20, envelope: Limits::default(), allow_unknown_stanzas: false };
        let mut body = futures_util::stream::iter([Ok::<_, std::io::Error>(bytes::Bytes::from(ciphertext.clone()))]);
        let (staged, inspected) =
            receive(&mut body, staged, &addressees(&recipients), &rules).await.expect("inspected");
        assert_eq!(inspected.digest(), Digest::of(&ciphertext));
        blobs.commit(staged, &object_key).await.expect("commit");

        let link = BearerSecret::generate("");
        let new_transfer = NewTransfer { id: transfer.clone(), object_key: object_key.clone(), manifest: None };
        let links = [NewLink { id: LinkId::generate(), recipient: alice_id.clone(), token_hash: link.hash() }];
        let facts = PolicyGate::transfer_facts(&approval, transfer.as_str(), ciphertext.len() as u64);
        let context = serde_json::Map::from_iter([
            ("armored".to_owned(), serde_json::json!(false)),
            ("recipient_stanzas".to_owned(), serde_json::json!(1)),
        ]);
        let release = gate.release(approval.sender_facts(), &facts, approval.orgs(), context, now);
        assert!(!release.held(), "an OFFICIAL transfer is released at once");
        store.insert_transfer(&approval, &release, &inspected, &new_transfer, &links, now).await.expect("recorded");
        let alice = store.authenticate(&alice_token.hash(), now).await.expect("authenticate").expect("alice");
        let record = store.transfer_record(&transfer).await.expect("record");
        let download = gate
            .permit(Action::Download, principal_facts(&alice), &record.facts, &record.orgs, "download", now)
            .expect("alice may download");

        Self {
            dir,
            store,
            blobs,
            alice: alice_id,
            link,
            transfer,
            object_key,
            expires_at: approval.expires_at(),
            download,
        }
    }

    /// The transfer's audit events as (event, code), oldest first.
    async fn transfer_events(&self) -> Vec<(String, Option<String>)> {
        let filter = AuditFilter { transfer: Some(self.transfer.clone()), limit: 100, ..AuditFilter::default() };
        self.store.audit(&filter).await.expect("audit").into_iter().map(|row| (row.event, row.code)).collect()
    }

    /// True when the blob store no longer has the transfer's ciphertext.
    async fn blob_is_gone(&self) -> bool {
        match self.blobs.get(&self.object_key).await {
            Ok(_) => false,
            Err(BlobError::NotFound { .. }) => true,
            Err(other) => panic!("reading the blob failed in an unexpected way: {other}"),
        }
    }

    /// File names under `DATA/blobs`.
    fn blob_files(&self) -> Vec<String> {
        std::fs::read_dir(self.dir.path().join("blobs"))
            .expect("blobs dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect()
    }
}

fn event(name: &str, code: Option<&str>) -> (String, Option<String>) {
    (name.to_owned(), code.map(str::to_owned))
}

#[tokio::test(start_paused = true)]
async fn the_sweeper_expires_links_and_purges_their_ciphertext_with_paused_time() {
    // SQLite answers from its own thread. With the runtime idle while it does, paused time would
    // auto-advance to the next timer, which can be sqlx's own acquire timeout. A task that only
    // yields keeps the runtime busy, so time moves only when this test advances it.
    let awake = tokio::spawn(async {
        loop {
            tokio::task::yield_now().await;
        }
    });
    let clock = Clock::system();
    let f = Fixture::new(&clock).await;
    assert_eq!(sweeper::sweep_once(&f.store, &f.blobs, &clock).await, SweepReport::default());
    assert_eq!(f.blob_files(), vec![f.object_key.clone()]);

    let shutdown = CancellationToken::new();
    let task = tokio::spawn(sweeper::run(f.store.clone(), f.blobs.clone(), clock, SWEEP_INTERVAL, shutdown.clone()));

    // Two days in one-hour steps: each step wakes the sweeper once. Time only ever moves forward,
    // and a sweep that an advance interrupts is simply retried at the next one, so the outcome
    // below does not depend on where within these steps the expiry is noticed.
    let step = Duration::from_secs(3600);
    for _ in 0..48 {
        tokio::time::advance(step).await;
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
    }
    let expected = vec![
        event("upload.accepted", None),
        event("link.issued", None),
        event("link.expired", None),
        event("object.purged", Some("expired")),
    ];
    let mut polls = 0;
    while f.transfer_events().await != expected || !f.blob_is_gone().await {
        polls += 1;
        assert!(polls < 1000, "the sweeper did not expire and purge: {:?}", f.transfer_events().await);
        tokio::time::advance(SWEEP_INTERVAL).await;
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
    }
    assert_eq!(f.transfer_events().await, expected);
    assert_eq!(f.blob_files(), Vec::<String>::new());
    let filter = AuditFilter { transfer: Some(f.transfer.clone()), limit: 100, ..AuditFilter::default() };
    let rows = f.store.audit(&filter).await.expect("audit");
    let (expired_at, expires_at) = (rows[2].at.timestamp_millis(), f.expires_at.timestamp_millis());
    assert!(expired_at >= expires_at, "expired at {expired_at} ms, before the link's expiry at {expires_at} ms");

    shutdown.cancel();
    task.await.expect("the sweeper stops on the shutdown signal");
    awake.abort();
}

#[tokio::test]
async fn a_delivered_transfer_is_purged_at_the_next_sweep() {
    let clock = Clock::system();
    let f = Fixture::new(&clock).await;
    let lease =
        f.store.lease(&f.download, &f.alice, &f.link.hash(), clock.now()).await.expect("store").expect("leased");
    assert_eq!(lease.transfer, f.transfer);
    f.store.end_lease(&lease, LeaseEnd::Completed, lease.size, clock.now()).await.expect("lease ended");

    assert_eq!(sweeper::sweep_once(&f.store, &f.blobs, &clock).await, SweepReport { expired: 0, purged: 1 });
    assert_eq!(
        f.transfer_events().await,
        vec![
            event("upload.accepted", None),
            event("link.issued", None),
            event("download.started", None),
            event("download.completed", None),
            event("object.purged", Some("delivered")),
        ]
    );
    assert!(f.blob_is_gone().await);
    assert_eq!(f.blob_files(), Vec::<String>::new());
    assert_eq!(sweeper::sweep_once(&f.store, &f.blobs, &clock).await, SweepReport::default());
}
