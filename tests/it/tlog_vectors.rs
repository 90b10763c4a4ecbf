//! Published test vectors for `sealpost::transparency::tlog`, read from `tests/vectors/tlog/`:
//! the RFC 6962 reference tree and proofs of transparency-dev/merkle, the Go
//! `golang.org/x/mod/sumdb/note` example, and the examples of the C2SP signed-note and
//! tlog-cosignature specifications.

use std::path::PathBuf;

use sealpost::transparency::tlog::checkpoint::Checkpoint;
use sealpost::transparency::tlog::cosignature;
use sealpost::transparency::tlog::frontier::Frontier;
use sealpost::transparency::tlog::merkle::{self, Hash, MerkleError};
use sealpost::transparency::tlog::note::{self, Note, NoteError, NoteSigner, NoteVerifier, Signer, Verifier};
use sealpost::transparency::tlog::tiles::{TileReader, build_tiles};

fn vector(name: &str) -> String {
    let path: PathBuf = [env!("CARGO_MANIFEST_DIR"), "tests", "vectors", "tlog", name].iter().collect();
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn h(hex: &str) -> Hash {
    Hash::from_slice(&hex::decode(hex).unwrap()).unwrap()
}

#[derive(Default)]
struct Rfc6962 {
    leaves: Vec<Vec<u8>>,
    nodes: Vec<(u8, u64, Hash)>,
    roots: Vec<(u64, Hash)>,
    inclusion: Vec<(u64, u64, Vec<Hash>)>,
    consistency: Vec<(u64, u64, Vec<Hash>)>,
}

fn rfc6962() -> Rfc6962 {
    let mut v = Rfc6962::default();
    for line in vector("rfc6962.txt").lines().filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let f: Vec<&str> = line.split(' ').collect();
        let n = |i: usize| f[i].parse::<u64>().unwrap();
        let hashes = |from: usize| f[from..].iter().map(|x| h(x)).collect::<Vec<_>>();
        match f[0] {
            "leaf" => v.leaves.push(if f[1] == "-" { Vec::new() } else { hex::decode(f[1]).unwrap() }),
            "node" => v.nodes.push((n(1) as u8, n(2), h(f[3]))),
            "root" => v.roots.push((n(1), h(f[2]))),
            "inclusion" => v.inclusion.push((n(1), n(2), hashes(3))),
            "consistency" => v.consistency.push((n(1), n(2), hashes(3))),
            other => panic!("unknown vector line `{other}`"),
        }
    }
    v
}

fn leaf_hashes(v: &Rfc6962) -> Vec<Hash> {
    v.leaves.iter().map(|l| merkle::leaf_hash(l)).collect()
}

fn root_of(v: &Rfc6962, size: u64) -> Hash {
    v.roots.iter().find(|(s, _)| *s == size).map(|(_, r)| *r).unwrap()
}

#[test]
fn reference_tree_roots_for_sizes_0_to_8_match() {
    let v = rfc6962();
    let leaves = leaf_hashes(&v);
    assert_eq!(v.roots.len(), 9);
    let mut frontier = Frontier::new();
    for (size, want) in &v.roots {
        assert_eq!(merkle::root(&leaves[..*size as usize]), *want, "size {size}");
        assert_eq!(frontier.root(), *want, "frontier at size {size}");
        if let Some(leaf) = leaves.get(*size as usize) {
            frontier.append(*leaf, |_, _, _| {});
        }
    }
    assert_eq!(merkle::empty_root(), root_of(&v, 0));
}

#[test]
fn reference_tree_node_hashes_match() {
    let v = rfc6962();
    let leaves = leaf_hashes(&v);
    assert_eq!(v.nodes.len(), 15);
    for (level, index, want) in &v.nodes {
        assert_eq!(merkle::perfect_subtree_hash(&leaves, *level, *index), Ok(*want), "node {level} {index}");
    }
}

/// The corruptions of transparency-dev/merkle `corruptInclusionProof`, each of which must fail.
fn inclusion_probes(
    index: u64,
    size: u64,
    proof: &[Hash],
    root: &Hash,
    leaf: &Hash,
) -> Vec<(String, u64, u64, Vec<Hash>, Hash, Hash)> {
    let some = h("abacaba000000000000000000000000000000000000000000060061e00123456");
    let garbage = Hash([0; 32]);
    let with = |extra: Hash, front: bool| {
        let mut p = proof.to_vec();
        if front {
            p.insert(0, extra)
        } else {
            p.push(extra)
        }
        p
    };
    let mut out = vec![
        ("index - 1".to_owned(), index.wrapping_sub(1), size, proof.to_vec(), *root, *leaf),
        ("index + 1".to_owned(), index + 1, size, proof.to_vec(), *root, *leaf),
        ("index ^ 2".to_owned(), index ^ 2, size, proof.to_vec(), *root, *leaf),
        ("size * 2".to_owned(), index, size * 2, proof.to_vec(), *root, *leaf),
        ("size / 2".to_owned(), index, size / 2, proof.to_vec(), *root, *leaf),
        ("wrong leaf".to_owned(), index, size, proof.to_vec(), *root, merkle::leaf_hash(b"WrongLeaf")),
        ("empty root".to_owned(), index, size, proof.to_vec(), merkle::empty_root(), *leaf),
        ("random root".to_owned(), index, size, proof.to_vec(), some, *leaf),
        ("trailing garbage".to_owned(), index, size, with(garbage, false), *root, *leaf),
        ("trailing root".to_owned(), index, size, with(*root, false), *root, *leaf),
        ("preceding garbage".to_owned(), index, size, with(garbage, true), *root, *leaf),
        ("preceding root".to_owned(), index, size, with(*root, true), *root, *leaf),
    ];
    for i in 0..proof.len() {
        let mut p = proof.to_vec();
        p[i].0[0] ^= 8;
        out.push((format!("proof[{i}] bit 3"), index, size, p, *root, *leaf));
    }
    if !proof.is_empty() {
        out.push(("removed component".to_owned(), index, size, proof[..proof.len() - 1].to_vec(), *root, *leaf));
    }
    if proof.len() > 1 {
        let mut p = vec![proof[0], some];
        p.extend_from_slice(&proof[1..]);
        out.push(("inserted component".to_owned(), index, size, p, *root, *leaf));
    }
    out
}

#[test]
fn reference_inclusion_proofs_are_generated_verified_and_corruptions_refused() {
    let v = rfc6962();
    let leaves = leaf_hashes(&v);
    assert_eq!(v.inclusion.len(), 5);
    for (index, size, want) in &v.inclusion {
        let tree = &leaves[..*size as usize];
        let root = root_of(&v, *size);
        let leaf = leaves[*index as usize];
        assert_eq!(merkle::inclusion_proof(*index, tree).as_ref(), Ok(want), "generate {index} in {size}");
        assert_eq!(merkle::verify_inclusion(&leaf, *index, *size, want, &root), Ok(()), "verify {index} in {size}");
        let tiles = build_tiles(tree);
        let mut reader = TileReader::new(*size, |t: &sealpost::transparency::tlog::tiles::Tile| {
            tiles.iter().find(|(x, _)| x == t).map(|(_, b)| b.clone()).ok_or(std::fmt::Error)
        });
        assert_eq!(reader.inclusion_proof(*index).unwrap(), *want, "from tiles {index} in {size}");
        for (desc, i, s, p, r, l) in inclusion_probes(*index, *size, want, &root, &leaf) {
            assert!(merkle::verify_inclusion(&l, i, s, &p, &r).is_err(), "{desc} verified for {index} in {size}");
        }
    }
}

#[test]
fn reference_consistency_proofs_are_generated_verified_and_corruptions_refused() {
    let v = rfc6962();
    let leaves = leaf_hashes(&v);
    assert_eq!(v.consistency.len(), 5);
    for (old, new, want) in &v.consistency {
        let (r1, r2) = (root_of(&v, *old), root_of(&v, *new));
        assert_eq!(merkle::consistency_proof(*old, &leaves[..*new as usize]).as_ref(), Ok(want), "{old} to {new}");
        assert_eq!(merkle::verify_consistency(*old, *new, want, &r1, &r2), Ok(()), "{old} to {new}");
        if want.is_empty() {
            continue;
        }
        // The corruptions of transparency-dev/merkle `corruptConsistencyProof`.
        let wrong = merkle::leaf_hash(b"WrongRoot");
        let garbage = Hash([0; 32]);
        let mut probes: Vec<(String, u64, u64, Hash, Hash, Vec<Hash>)> = vec![
            ("old - 1".into(), old - 1, *new, r1, r2, want.clone()),
            ("old + 1".into(), old + 1, *new, r1, r2, want.clone()),
            ("old ^ 2".into(), old ^ 2, *new, r1, r2, want.clone()),
            ("new * 2".into(), *old, new * 2, r1, r2, want.clone()),
            ("new / 2".into(), *old, new / 2, r1, r2, want.clone()),
            ("wrong root1".into(), *old, *new, wrong, r2, want.clone()),
            ("wrong root2".into(), *old, *new, r1, wrong, want.clone()),
            ("swapped roots".into(), *old, *new, r2, r1, want.clone()),
            ("empty proof".into(), *old, *new, r1, r2, Vec::new()),
            ("truncated".into(), *old, *new, r1, r2, want[..want.len() - 1].to_vec()),
        ];
        for (desc, extra, front) in [
            ("trailing garbage", garbage, false),
            ("trailing root1", r1, false),
            ("trailing root2", r2, false),
            ("preceding garbage", garbage, true),
            ("preceding root1", r1, true),
            ("preceding root2", r2, true),
            ("preceding proof[0]", want[0], true),
        ] {
            let mut p = want.clone();
            if front {
                p.insert(0, extra)
            } else {
                p.push(extra)
            }
            probes.push((desc.into(), *old, *new, r1, r2, p));
        }
        for i in 0..want.len() {
            let mut p = want.clone();
            p[i].0[0] ^= 16;
            probes.push((format!("proof[{i}] bit 4"), *old, *new, r1, r2, p));
        }
        for (desc, o, n, a, b, p) in probes {
            assert!(merkle::verify_consistency(o, n, &p, &a, &b).is_err(), "{desc} verified for {old} to {new}");
        }
    }
}

#[test]
fn sumdb_note_example_is_reproduced_byte_for_byte() {
    let keys = vector("sumdb-peterneumann-keys.txt");
    let key = |k: &str| keys.lines().find_map(|l| l.strip_prefix(k)).unwrap().trim().to_owned();
    let (skey, vkey) = (key("skey "), key("vkey "));
    let signed = vector("sumdb-peterneumann.note");
    let text = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n";

    let signer = Signer::from_skey(&skey).unwrap();
    assert_eq!(NoteSigner::key_id(&signer), 0xc74f_20a3);
    assert_eq!(signer.verifier().to_vkey(), vkey);
    assert_eq!(signer.to_skey(), skey);
    assert_eq!(note::sign(text, &[&signer]).unwrap(), signed);

    let verifier = Verifier::from_vkey(&vkey).unwrap();
    let opened = note::open(&signed, &[&verifier]).unwrap();
    assert_eq!(opened.text, text);
    assert_eq!((opened.verified[0].name.as_str(), opened.verified[0].key_id), ("PeterNeumann", 0xc74f_20a3));
    assert!(verifier.verify(text, &opened.verified[0].signature));

    let tampered = signed.replace("cryptography", "cryptographY");
    assert_eq!(
        note::open(&tampered, &[&verifier]),
        Err(NoteError::InvalidSignature { name: "PeterNeumann".into(), key_id: 0xc74f_20a3 })
    );
    assert_eq!(note::open(&signed, &[]), Err(NoteError::NoVerifiedSignature));
}

#[test]
fn c2sp_signed_note_example_splits_at_the_last_blank_line() {
    let n = Note::parse(&vector("c2sp-signed-note.note")).unwrap();
    assert_eq!(n.text(), "Ognuno sta solo sul cuor della terra\ntrafitto da un raggio di sole:\n\ned è subito sera.\n");
    assert_eq!(n.signatures().len(), 1);
    assert_eq!(n.signatures()[0].name, "quasimodo.example/salvatore");
    assert_eq!(n.signatures()[0].signature.len(), 64);
    assert_eq!(n.to_string(), vector("c2sp-signed-note.note"));
    let unrelated = Signer::from_seed("quasimodo.example/salvatore", &[1; 32]).unwrap().verifier();
    assert_eq!(n.verify(&[&unrelated]), Err(NoteError::NoVerifiedSignature));
}

#[test]
fn c2sp_cosignature_example_carries_the_spec_timestamp() {
    let n = Note::parse(&vector("c2sp-cosigned-checkpoint.note")).unwrap();
    let c = Checkpoint::parse(n.text()).unwrap();
    assert_eq!((c.origin(), c.size()), ("example.com/behind-the-sofa", 20_852_163));
    let [log, witness] = n.signatures() else { panic!("expected two signatures") };
    assert_eq!((log.name.as_str(), log.signature.len()), ("example.com/behind-the-sofa", 64));
    assert_eq!(witness.name, "witness.example.com/w1");
    // The spec's signed-message example shows `time 1679315147` for this cosignature.
    assert_eq!(cosignature::timestamp(witness), Ok(1_679_315_147));
    assert_eq!(
        cosignature::signed_message(n.text(), 1_679_315_147),
        "cosignature/v1\ntime 1679315147\nexample.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    );
}

#[test]
fn inclusion_index_outside_the_tree_is_refused() {
    let v = rfc6962();
    let leaves = leaf_hashes(&v);
    assert_eq!(
        merkle::verify_inclusion(&leaves[0], 8, 8, &[], &root_of(&v, 8)),
        Err(MerkleError::IndexOutOfRange { index: 8, size: 8 })
    );
}
