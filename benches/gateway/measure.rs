//! Timing, statistics and memory readings.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

/// Repeated readings of one quantity.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub(crate) struct Samples {
    pub(crate) values: Vec<f64>,
}

impl Samples {
    pub(crate) fn push(&mut self, v: f64) {
        self.values.push(v);
    }

    fn sorted(&self) -> Vec<f64> {
        let mut v = self.values.clone();
        v.sort_by(f64::total_cmp);
        v
    }

    pub(crate) fn median(&self) -> f64 {
        let v = self.sorted();
        match v.len() {
            0 => f64::NAN,
            n if n % 2 == 1 => v[n / 2],
            n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
        }
    }

    pub(crate) fn min(&self) -> f64 {
        self.sorted().first().copied().unwrap_or(f64::NAN)
    }

    pub(crate) fn max(&self) -> f64 {
        self.sorted().last().copied().unwrap_or(f64::NAN)
    }

    /// The `p`th percentile (0–100), nearest rank.
    pub(crate) fn percentile(&self, p: f64) -> f64 {
        let v = self.sorted();
        if v.is_empty() {
            return f64::NAN;
        }
        let rank = ((p / 100.0) * v.len() as f64).ceil().max(1.0) as usize;
        v[rank.min(v.len()) - 1]
    }
}

/// One finished command.
#[derive(Debug)]
pub(crate) struct Run {
    /// Wall time from start to exit.
    pub(crate) elapsed: Duration,
    /// Peak resident set, in bytes.
    pub(crate) peak: u64,
    pub(crate) stdout: String,
}

impl Run {
    pub(crate) fn seconds(&self) -> f64 {
        self.elapsed.as_secs_f64()
    }
}

/// Runs a command to completion and returns its wall time, its peak resident set and its
/// output; fails, with its output, if it does not exit 0. The peak is the kernel's high-water
/// mark (`VmHWM`), read every few milliseconds while it runs: the last reading before exit is
/// the peak unless memory grew in the final milliseconds.
pub(crate) fn run(cmd: &mut Command) -> anyhow::Result<Run> {
    let what = format!("{:?}", cmd);
    let start = Instant::now();
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start {what}"))?;
    let pid = child.id();
    // Drain the pipes on threads so a chatty child never blocks on a full pipe.
    let mut stdout = child.stdout.take().context("stdout")?;
    let mut stderr = child.stderr.take().context("stderr")?;
    let out = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = std::io::Read::read_to_end(&mut stdout, &mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = Vec::new();
        let _ = std::io::Read::read_to_end(&mut stderr, &mut s);
        s
    });
    let mut peak = 0;
    let status = loop {
        if let Some(hwm) = vm_hwm(pid) {
            peak = peak.max(hwm);
        }
        if let Some(status) = child.try_wait()? {
            break status;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let elapsed = start.elapsed();
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    if !status.success() {
        bail!("{what} failed ({status}):\n{}{}", String::from_utf8_lossy(&stdout), String::from_utf8_lossy(&stderr));
    }
    Ok(Run { elapsed, peak, stdout: String::from_utf8_lossy(&stdout).into_owned() })
}

/// Runs a command and returns its standard output; fails with its standard error.
pub(crate) fn output(cmd: &mut Command) -> anyhow::Result<String> {
    let out = cmd.stdin(Stdio::null()).output().with_context(|| format!("cannot start {cmd:?}"))?;
    if !out.status.success() {
        bail!("{cmd:?} failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The kernel's record of a process's peak resident set, in bytes.
pub(crate) fn vm_hwm(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Resets a process's peak resident set to its current one (`clear_refs` value 5), so the next
/// reading is the peak of what happens from now on.
pub(crate) fn reset_hwm(pid: u32) -> anyhow::Result<()> {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").context("cannot reset the peak resident set")
}

/// Flushes dirty pages, so one repetition's write-back does not land on the next one's clock.
pub(crate) fn sync_disk() {
    let _ = Command::new("sync").status();
}

/// `sha256:` and the hex digest of a file.
pub(crate) fn file_digest(path: &Path) -> anyhow::Result<String> {
    use sha2::Digest as _;
    let mut file = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut hasher = sha2::Sha256::new();
    std::io::copy(&mut file, &mut hasher)?;
    Ok(format!("sha256:{}", hex::encode(hasher.finalize())))
}

/// Bytes per second as MB/s (10^6).
pub(crate) fn mb_per_s(bytes: u64, seconds: f64) -> f64 {
    bytes as f64 / seconds / 1e6
}
