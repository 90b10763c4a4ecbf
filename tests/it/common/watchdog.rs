//! Clean-up that survives the test process: a server a test starts (PostgreSQL, Garage) runs
//! detached, so a test binary killed mid-run, or a cluster held in a `static` (never dropped),
//! would leave it running. A watchdog shell waits for this process to exit, then runs the clean-up.

use std::path::Path;
use std::process::{Child, Command, Stdio};

/// Watches this process; once it has exited and `dir` still exists, runs `cleanup` (a shell
/// command) and removes `dir`. Kill the returned child when cleaning up in `Drop` instead.
pub(crate) fn after_exit(dir: &Path, cleanup: &str) -> Child {
    let dir = shell_quote(&dir.to_string_lossy());
    let script = format!(
        "while kill -0 {pid} 2>/dev/null && [ -d {dir} ]; do sleep 1; done; \
         if [ -d {dir} ]; then {cleanup}; rm -rf {dir}; fi",
        pid = std::process::id(),
    );
    // Standard streams closed: a watchdog outliving the tests must not hold the output pipe of
    // whoever reads them (cargo, CI), or that reader waits for it.
    Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the watchdog shell starts")
}

/// Stops a watchdog once `Drop` does its work.
pub(crate) fn dismiss(mut watchdog: Child) {
    let _ = watchdog.kill();
    let _ = watchdog.wait();
}

/// `s` as one shell word.
pub(crate) fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}
