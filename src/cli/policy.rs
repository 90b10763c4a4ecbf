//! `sealpost policy check|test|explain`: work on a policy set locally, before deploying it.

use std::path::{Path, PathBuf};

use clap::Subcommand;

use super::{EXIT_CONFIG, Failure};
use crate::policy::testing::{self, CaseResult};
use crate::policy::{Policies, PolicySource};

/// `sealpost policy …`
#[derive(Debug, Subcommand)]
pub(super) enum PolicyCommand {
    /// Validate a policy directory against its schema (exit 0 valid, 3 invalid).
    Check {
        /// The directory (default: `policies`).
        dir: Option<PathBuf>,
    },
    /// Run the policy tests in `DIR/tests/*.toml` (exit 0 all pass, 1 otherwise).
    Test {
        /// The directory (default: `policies`).
        dir: Option<PathBuf>,
    },
    /// Evaluate the requests described in a test file and print each decision and the
    /// policies that made it.
    Explain {
        /// A file in the policy-test format (a world and `[[case]]`s).
        file: PathBuf,
        /// The policy directory (default: the built-in policies).
        #[arg(long)]
        policies: Option<PathBuf>,
    },
}

fn load(source: &PolicySource) -> Result<Policies, Failure> {
    Policies::load(source).map_err(|e| {
        Failure::new(format!("invalid policy: {e}")).hint("fix the file and line named above").exit(EXIT_CONFIG)
    })
}

fn describe(r: &CaseResult) -> String {
    let verdict = if r.decision.allowed { "allow" } else { "deny" };
    let by = if r.decision.policies.is_empty() {
        "no policy applied (default deny)".to_owned()
    } else {
        format!("by {}", r.decision.policies.join(", "))
    };
    format!("{verdict} {by}")
}

/// Runs `sealpost policy …`.
pub(super) fn run(command: PolicyCommand) -> Result<(), Failure> {
    match command {
        PolicyCommand::Check { dir } => {
            let dir = dir.unwrap_or_else(|| PathBuf::from("policies"));
            let policies = load(&PolicySource::Dir(dir.clone()))?;
            println!("{}: {} policies valid ({})", dir.display(), policies.ids().len(), policies.digest());
            Ok(())
        }
        PolicyCommand::Test { dir } => {
            let dir = dir.unwrap_or_else(|| PathBuf::from("policies"));
            let policies = load(&PolicySource::Dir(dir.clone()))?;
            let results = testing::run_dir(&policies, &dir.join("tests")).map_err(|e| Failure::new(e.to_string()))?;
            let failed: Vec<&CaseResult> = results.iter().filter(|r| !r.passed()).collect();
            for r in &results {
                println!("{} {}: {}", if r.passed() { "ok  " } else { "FAIL" }, r.case.name, describe(r));
            }
            let uncovered = testing::uncovered(&policies, &results);
            for (id, outcome) in &uncovered {
                println!("MISSING a test where policy `{id}` is exercised with outcome {outcome}");
            }
            println!("{} passed, {} failed", results.len() - failed.len(), failed.len() + uncovered.len());
            if failed.is_empty() && uncovered.is_empty() {
                Ok(())
            } else {
                Err(Failure::new("policy tests failed")
                    .hint(format!("see the cases above, in {}", dir.join("tests").display())))
            }
        }
        PolicyCommand::Explain { file, policies } => {
            let source = policies.map_or(PolicySource::Embedded, PolicySource::Dir);
            let loaded = load(&source)?;
            let results = testing::run_file(&loaded, Path::new(&file)).map_err(|e| Failure::new(e.to_string()))?;
            for r in &results {
                println!("{}: {}", r.case.name, describe(r));
                for e in &r.decision.errors {
                    println!("  error: {e}");
                }
                if !r.passed() {
                    println!("  (this differs from the case's expectation)");
                }
            }
            Ok(())
        }
    }
}
