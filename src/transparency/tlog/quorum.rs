//! C2SP tlog-policy (<https://c2sp.org/tlog-policy>): which log keys and witness keys to trust,
//! and the witness quorum a checkpoint needs; and checkpoint verification under a policy.

use super::checkpoint::{Checkpoint, CheckpointError};
use super::cosignature::{self, CosignatureError, CosignatureVerifier};
use super::note::{Note, NoteError, NoteVerifier, Opened, Verifier};

/// Why a policy file was refused, or a checkpoint did not satisfy a policy.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// A byte outside tab, newline, printable ASCII and 0x80 to 0xff.
    #[error("policy line {line} contains a forbidden character")]
    ForbiddenCharacter { line: usize },
    /// A line that starts with an unknown keyword.
    #[error("policy line {line} starts with unknown keyword `{word}`")]
    UnknownKeyword { line: usize, word: String },
    /// A line with too few or too many items.
    #[error("policy line {line} has the wrong number of items")]
    WrongArity { line: usize },
    /// A log or witness key that cannot be read.
    #[error("policy line {line} has an unusable key")]
    BadKey {
        line: usize,
        #[source]
        source: NoteError,
    },
    /// The same public key listed twice among logs, or twice among witnesses.
    #[error("policy line {line} repeats a public key")]
    DuplicateKey { line: usize },
    /// A witness or group name defined twice, or the reserved name `none`.
    #[error("policy line {line} redefines the name `{name}`")]
    DuplicateName { line: usize, name: String },
    /// A reference to a name not defined on an earlier line.
    #[error("policy line {line} refers to `{name}`, which is not defined above it")]
    UndefinedName { line: usize, name: String },
    /// A group listing a member twice.
    #[error("policy line {line} lists `{name}` twice")]
    DuplicateMember { line: usize, name: String },
    /// A group threshold that is not `all`, `any` or a number from 1 to the member count.
    #[error("policy line {line} has threshold `{text}`, expected `all`, `any` or 1 to the member count")]
    BadThreshold { line: usize, text: String },
    /// More than one quorum line.
    #[error("policy line {line} is a second quorum line")]
    SecondQuorum { line: usize },
    /// No quorum line.
    #[error("policy has no quorum line")]
    MissingQuorum,
    /// A policy without any log key cannot verify a checkpoint.
    #[error("policy lists no log key")]
    NoLogs,
    /// The checkpoint or its note was refused.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// No log key of the policy signed the checkpoint.
    #[error("checkpoint is not signed by any log key of the policy")]
    NoLogSignature,
    /// Too few witnesses cosigned.
    #[error("checkpoint cosignatures do not meet the witness quorum")]
    QuorumNotMet,
}

/// A witness of the policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Witness {
    /// The policy-local name.
    pub name: String,
    /// The cosignature verifier key.
    pub key: CosignatureVerifier,
    /// The optional submission URL.
    pub url: Option<String>,
}

/// A log of the policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Log {
    /// The checkpoint verifier key, named after the log's origin.
    pub key: Verifier,
    /// The optional URL.
    pub url: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Member {
    Witness(usize),
    Group(usize),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Group {
    name: String,
    threshold: usize,
    members: Vec<Member>,
}

/// A parsed policy: logs, witnesses, groups and the quorum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    logs: Vec<Log>,
    witnesses: Vec<Witness>,
    groups: Vec<Group>,
    quorum: Option<Member>,
}

/// A witness cosignature that verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cosigned {
    /// The witness's policy name.
    pub witness: String,
    /// When it cosigned, in seconds since the epoch.
    pub timestamp: u64,
}

/// A checkpoint that satisfied a policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedCheckpoint {
    /// The checkpoint.
    pub checkpoint: Checkpoint,
    /// The witnesses whose cosignatures verified, in note order.
    pub cosigned: Vec<Cosigned>,
    /// The opened note, with all verified and unknown signatures.
    pub note: Opened,
}

fn is_space(c: char) -> bool {
    c == ' ' || c == '\t'
}

impl Policy {
    /// A policy trusting one log key and requiring no witnesses (`quorum none`).
    pub fn log_only(key: Verifier) -> Self {
        Policy { logs: vec![Log { key, url: None }], witnesses: Vec::new(), groups: Vec::new(), quorum: None }
    }

    /// The logs.
    pub fn logs(&self) -> &[Log] {
        &self.logs
    }

    /// The witnesses.
    pub fn witnesses(&self) -> &[Witness] {
        &self.witnesses
    }

    fn lookup(&self, name: &str) -> Option<Member> {
        if let Some(i) = self.witnesses.iter().position(|w| w.name == name) {
            return Some(Member::Witness(i));
        }
        self.groups.iter().position(|g| g.name == name).map(Member::Group)
    }

    /// Parses a policy file (tlog-policy "Policy file syntax and structure").
    pub fn parse(text: &str) -> Result<Self, PolicyError> {
        let mut p = Policy { logs: Vec::new(), witnesses: Vec::new(), groups: Vec::new(), quorum: None };
        let mut quorum_seen = false;
        for (i, raw) in text.split('\n').enumerate() {
            let line = i + 1;
            if raw.bytes().any(|b| b != b'\t' && (b < 0x20 || b == 0x7f)) {
                return Err(PolicyError::ForbiddenCharacter { line });
            }
            let items: Vec<&str> = raw.split(is_space).filter(|s| !s.is_empty()).collect();
            let Some((keyword, args)) = items.split_first() else { continue };
            if keyword.starts_with('#') {
                continue;
            }
            let arity = |min: usize, max: usize| {
                if args.len() < min || args.len() > max { Err(PolicyError::WrongArity { line }) } else { Ok(()) }
            };
            let url = |at: usize| args.get(at).map(|u| (*u).to_owned());
            match *keyword {
                "log" => {
                    arity(1, 2)?;
                    let key = Verifier::from_vkey(args[0]).map_err(|source| PolicyError::BadKey { line, source })?;
                    if p.logs.iter().any(|l| l.key.public_key() == key.public_key()) {
                        return Err(PolicyError::DuplicateKey { line });
                    }
                    p.logs.push(Log { key, url: url(1) });
                }
                "witness" => {
                    arity(2, 3)?;
                    let name = args[0];
                    if name == "none" || p.lookup(name).is_some() {
                        return Err(PolicyError::DuplicateName { line, name: name.to_owned() });
                    }
                    let key = CosignatureVerifier::from_vkey(args[1]).map_err(|e| match e {
                        CosignatureError::Note(source) => PolicyError::BadKey { line, source },
                        _ => PolicyError::BadKey { line, source: NoteError::MalformedKey },
                    })?;
                    if p.witnesses.iter().any(|w| w.key.public_key() == key.public_key()) {
                        return Err(PolicyError::DuplicateKey { line });
                    }
                    p.witnesses.push(Witness { name: name.to_owned(), key, url: url(2) });
                }
                "group" => {
                    if args.len() < 3 {
                        return Err(PolicyError::WrongArity { line });
                    }
                    let (name, threshold, names) = (args[0], args[1], &args[2..]);
                    if name == "none" || p.lookup(name).is_some() {
                        return Err(PolicyError::DuplicateName { line, name: name.to_owned() });
                    }
                    let mut members = Vec::new();
                    for m in names {
                        let member =
                            p.lookup(m).ok_or_else(|| PolicyError::UndefinedName { line, name: (*m).to_owned() })?;
                        if members.contains(&member) {
                            return Err(PolicyError::DuplicateMember { line, name: (*m).to_owned() });
                        }
                        members.push(member);
                    }
                    let bad = || PolicyError::BadThreshold { line, text: threshold.to_owned() };
                    let k = match threshold {
                        "all" => members.len(),
                        "any" => 1,
                        t if t.bytes().all(|b| b.is_ascii_digit()) && !t.starts_with('0') => {
                            t.parse::<usize>().map_err(|_| bad())?
                        }
                        _ => return Err(bad()),
                    };
                    if k == 0 || k > members.len() {
                        return Err(bad());
                    }
                    p.groups.push(Group { name: name.to_owned(), threshold: k, members });
                }
                "quorum" => {
                    arity(1, 1)?;
                    if quorum_seen {
                        return Err(PolicyError::SecondQuorum { line });
                    }
                    quorum_seen = true;
                    p.quorum = match args[0] {
                        "none" => None,
                        name => Some(
                            p.lookup(name).ok_or_else(|| PolicyError::UndefinedName { line, name: name.to_owned() })?,
                        ),
                    };
                }
                word => return Err(PolicyError::UnknownKeyword { line, word: word.to_owned() }),
            }
        }
        if !quorum_seen {
            return Err(PolicyError::MissingQuorum);
        }
        Ok(p)
    }

    fn member_satisfied(&self, member: Member, cosigned: &[bool]) -> bool {
        match member {
            Member::Witness(i) => cosigned.get(i).copied().unwrap_or(false),
            Member::Group(g) => self.groups.get(g).is_some_and(|group| {
                group.members.iter().filter(|m| self.member_satisfied(**m, cosigned)).count() >= group.threshold
            }),
        }
    }

    /// Whether the witnesses named in `cosigned` (policy names) meet the quorum.
    pub fn quorum_met<'a>(&self, cosigned: impl IntoIterator<Item = &'a str>) -> bool {
        let mut flags = vec![false; self.witnesses.len()];
        for name in cosigned {
            if let Some(i) = self.witnesses.iter().position(|w| w.name == name) {
                flags[i] = true;
            }
        }
        self.quorum.is_none_or(|q| self.member_satisfied(q, &flags))
    }

    /// Verifies a signed checkpoint: a log of the policy signed it and is named after its
    /// origin, every signature by a known key is valid, and the verified witness
    /// cosignatures meet the quorum.
    pub fn verify_checkpoint(&self, signed: &str) -> Result<VerifiedCheckpoint, PolicyError> {
        if self.logs.is_empty() {
            return Err(PolicyError::NoLogs);
        }
        let note = Note::parse(signed).map_err(CheckpointError::from)?;
        let mut verifiers: Vec<&dyn NoteVerifier> = Vec::new();
        verifiers.extend(self.logs.iter().map(|l| &l.key as &dyn NoteVerifier));
        verifiers.extend(self.witnesses.iter().map(|w| &w.key as &dyn NoteVerifier));
        let opened = note.verify(&verifiers).map_err(CheckpointError::from)?;
        let signed_by = |name: &str, id: u32| opened.verified.iter().find(|s| s.name == name && s.key_id == id);
        let log = self
            .logs
            .iter()
            .find(|l| signed_by(NoteVerifier::name(&l.key), NoteVerifier::key_id(&l.key)).is_some())
            .ok_or(PolicyError::NoLogSignature)?;
        let (checkpoint, _) = Checkpoint::open_note(&note, &log.key, &verifiers)?;
        let mut cosigned = Vec::new();
        for w in &self.witnesses {
            if let Some(sig) = signed_by(NoteVerifier::name(&w.key), NoteVerifier::key_id(&w.key)) {
                let timestamp = cosignature::timestamp(sig).map_err(|_| PolicyError::QuorumNotMet)?;
                cosigned.push(Cosigned { witness: w.name.clone(), timestamp });
            }
        }
        if !self.quorum_met(cosigned.iter().map(|c| c.witness.as_str())) {
            return Err(PolicyError::QuorumNotMet);
        }
        Ok(VerifiedCheckpoint { checkpoint, cosigned, note: opened })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transparency::tlog::cosignature::Cosigner;
    use crate::transparency::tlog::merkle::empty_root;
    use crate::transparency::tlog::note::Signer;

    fn witness(i: u8) -> Cosigner {
        Cosigner::from_seed(&format!("w{i}.example"), &[i; 32]).unwrap()
    }

    fn policy_text(log: &Signer, quorum: &str) -> String {
        let w: Vec<String> = (1..=6).map(|i| witness(i).verifier().to_vkey()).collect();
        format!(
            "# example from the spec\nlog {}\n\nwitness X1 {}\nwitness X2 {}\nwitness X3 {} https://x3.example/\n\
             group X-witnesses 2 X1 X2 X3\n  witness Y1 {}\nwitness Y2 {}\twitness-url\nwitness Y3 {}\n\
             group Y-witnesses any Y1 Y2 Y3\ngroup X-and-Y all X-witnesses Y-witnesses\nquorum {quorum}\n",
            log.verifier().to_vkey(),
            w[0],
            w[1],
            w[2],
            w[3],
            w[4],
            w[5]
        )
    }

    #[test]
    fn the_spec_example_quorum_needs_two_x_and_one_y() {
        let log = Signer::from_seed("example.com/log", &[9; 32]).unwrap();
        let p = Policy::parse(&policy_text(&log, "X-and-Y")).unwrap();
        assert!(p.quorum_met(["X1", "X3", "Y2"]));
        assert!(!p.quorum_met(["X1", "Y2", "Y3"]));
        assert!(!p.quorum_met(["X1", "X2", "X3"]));
        assert_eq!(p.witnesses()[2].url.as_deref(), Some("https://x3.example/"));

        let c = Checkpoint::new("example.com/log", 0, empty_root()).unwrap();
        let mut note = Note::parse(&c.sign(&[&log]).unwrap()).unwrap();
        assert_eq!(p.verify_checkpoint(&note.to_string()), Err(PolicyError::QuorumNotMet));
        for i in [1, 2, 5] {
            note.add_signature(witness(i).cosign(&c, 100 + u64::from(i)).unwrap()).unwrap();
        }
        let v = p.verify_checkpoint(&note.to_string()).unwrap();
        let names: Vec<_> = v.cosigned.iter().map(|c| (c.witness.as_str(), c.timestamp)).collect();
        assert_eq!(names, vec![("X1", 101), ("X2", 102), ("Y2", 105)]);
        assert!(
            Policy::parse(&policy_text(&log, "none")).unwrap().verify_checkpoint(&c.sign(&[&log]).unwrap()).is_ok()
        );
    }

    #[test]
    fn malformed_policies_are_refused_precisely() {
        let log = Signer::from_seed("l", &[9; 32]).unwrap().verifier().to_vkey();
        let w1 = witness(1).verifier().to_vkey();
        let cases = [
            ("quorum none\nquorum none\n".to_owned(), PolicyError::SecondQuorum { line: 2 }),
            (format!("log {log}\n"), PolicyError::MissingQuorum),
            (format!("log {log}\nlog {log}\nquorum none\n"), PolicyError::DuplicateKey { line: 2 }),
            (
                format!("witness a {w1}\nwitness a {}\nquorum a\n", witness(2).verifier().to_vkey()),
                PolicyError::DuplicateName { line: 2, name: "a".into() },
            ),
            (format!("witness none {w1}\nquorum none\n"), PolicyError::DuplicateName { line: 1, name: "none".into() }),
            ("quorum b\n".to_owned(), PolicyError::UndefinedName { line: 1, name: "b".into() }),
            (
                format!("witness a {w1}\ngroup g 2 a\nquorum g\n"),
                PolicyError::BadThreshold { line: 2, text: "2".into() },
            ),
            (
                format!("witness a {w1}\ngroup g 01 a\nquorum g\n"),
                PolicyError::BadThreshold { line: 2, text: "01".into() },
            ),
            (
                format!("witness a {w1}\ngroup g any a a\nquorum g\n"),
                PolicyError::DuplicateMember { line: 2, name: "a".into() },
            ),
            ("witness a\nquorum none\n".to_owned(), PolicyError::WrongArity { line: 1 }),
            ("cosigner a\n".to_owned(), PolicyError::UnknownKeyword { line: 1, word: "cosigner".into() }),
            ("quorum none\r\n".to_owned(), PolicyError::ForbiddenCharacter { line: 1 }),
            (
                format!("witness a {log}\nquorum a\n"),
                PolicyError::BadKey { line: 1, source: NoteError::WrongKeyType { expected: 4, actual: 1 } },
            ),
        ];
        for (text, want) in cases {
            assert_eq!(Policy::parse(&text), Err(want), "{text:?}");
        }
        assert_eq!(Policy::parse("quorum none").map(|p| p.logs().len()), Ok(0));
        assert_eq!(
            Policy::parse("quorum none").unwrap().verify_checkpoint("x\n\n— a AAAAAAA=\n"),
            Err(PolicyError::NoLogs)
        );
    }
}
