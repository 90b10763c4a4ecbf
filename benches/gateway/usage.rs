//! Where the machine's time goes during a measurement: CPU time of each group of processes (the
//! gateways, PostgreSQL, Garage, the clients) and the bytes each group wrote, from `/proc`, with
//! the whole machine's busy and I/O-wait time beside them. Read before and after each timed
//! transfer, so only what happened while the clock ran counts.

use std::collections::{BTreeMap, HashMap};
use std::process::Command;

/// A group of processes whose use is added up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
pub(crate) enum Group {
    /// The `sealpost serve` processes.
    Gateways,
    /// The postmaster and its children (one backend per pooled connection, the WAL writer…).
    Postgres,
    /// The three Garage nodes.
    Garage,
    /// This process (the small transfers' HTTP clients) and the `curl` it ran and waited for.
    Clients,
}

impl Group {
    pub(crate) const ALL: [Self; 4] = [Self::Gateways, Self::Postgres, Self::Garage, Self::Clients];

    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::Gateways => "gateways",
            Self::Postgres => "PostgreSQL",
            Self::Garage => "Garage",
            Self::Clients => "clients",
        }
    }
}

/// Which processes make each group: each named process with its live descendants (and what
/// they reaped); the clients are this process alone (its live children are the servers).
#[derive(Debug, Clone, Default)]
pub(crate) struct Meter {
    roots: Vec<(Group, u32)>,
}

/// One reading: CPU ticks and bytes written per group, and the machine's counters.
#[derive(Debug, Clone, Default)]
pub(crate) struct Reading {
    ticks: HashMap<Group, u64>,
    written: HashMap<Group, u64>,
    machine_busy: u64,
    machine_iowait: u64,
}

/// What happened between readings, added up over the timed windows of one measurement.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub(crate) struct Usage {
    /// How many timed windows were added up (one per repetition).
    pub(crate) windows: u32,
    /// Wall-clock seconds.
    pub(crate) seconds: f64,
    /// CPU seconds per group.
    pub(crate) cpu: BTreeMap<Group, f64>,
    /// Megabytes (10^6) written per group (counted when the pages are dirtied, synced or not).
    pub(crate) written_mb: BTreeMap<Group, f64>,
    /// CPU seconds the whole machine was busy, and waiting for I/O.
    pub(crate) machine_busy: f64,
    pub(crate) machine_iowait: f64,
}

impl Usage {
    /// The average number of cores `group` kept busy.
    pub(crate) fn cores(&self, group: Group) -> Option<f64> {
        self.cpu.get(&group).map(|c| c / self.seconds)
    }

    /// The average number of cores busy with anything else: other processes on the machine
    /// (a shared machine's other users), and the kernel's own threads (write-back).
    pub(crate) fn other_cores(&self) -> f64 {
        ((self.machine_busy - self.cpu.values().sum::<f64>()) / self.seconds).max(0.0)
    }
}

impl Meter {
    pub(crate) fn add(&mut self, group: Group, pid: u32) {
        self.roots.push((group, pid));
    }

    pub(crate) fn has(&self, group: Group) -> bool {
        group == Group::Clients || self.roots.iter().any(|(g, _)| *g == group)
    }

    pub(crate) fn read(&self) -> Reading {
        let procs = processes();
        let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
        for (pid, p) in &procs {
            children.entry(p.ppid).or_default().push(*pid);
        }
        let mut reading = Reading::default();
        for (group, root) in &self.roots {
            let mut stack = vec![*root];
            while let Some(pid) = stack.pop() {
                if let Some(p) = procs.get(&pid) {
                    *reading.ticks.entry(*group).or_default() += p.ticks + p.child_ticks;
                    *reading.written.entry(*group).or_default() += written(pid);
                }
                stack.extend(children.get(&pid).into_iter().flatten());
            }
        }
        let me = std::process::id();
        if let Some(p) = procs.get(&me) {
            reading.ticks.insert(Group::Clients, p.ticks + p.child_ticks);
            reading.written.insert(Group::Clients, written(me));
        }
        (reading.machine_busy, reading.machine_iowait) = machine();
        reading
    }
}

impl Usage {
    /// Adds what happened between `before` and `after`, `seconds` apart.
    pub(crate) fn add(&mut self, meter: &Meter, before: &Reading, after: &Reading, seconds: f64) {
        let hz = clock_ticks();
        self.windows += 1;
        self.seconds += seconds;
        for group in Group::ALL.into_iter().filter(|g| meter.has(*g)) {
            let ticks = after
                .ticks
                .get(&group)
                .copied()
                .unwrap_or(0)
                .saturating_sub(before.ticks.get(&group).copied().unwrap_or(0));
            *self.cpu.entry(group).or_default() += ticks as f64 / hz;
            let bytes = after
                .written
                .get(&group)
                .copied()
                .unwrap_or(0)
                .saturating_sub(before.written.get(&group).copied().unwrap_or(0));
            *self.written_mb.entry(group).or_default() += bytes as f64 / 1e6;
        }
        self.machine_busy += after.machine_busy.saturating_sub(before.machine_busy) as f64 / hz;
        self.machine_iowait += after.machine_iowait.saturating_sub(before.machine_iowait) as f64 / hz;
    }
}

/// One process's parent and CPU ticks: its own (user + system) and its reaped children's.
struct Proc {
    ppid: u32,
    ticks: u64,
    child_ticks: u64,
}

/// Every process, from `/proc/PID/stat`.
fn processes() -> HashMap<u32, Proc> {
    let mut all = HashMap::new();
    let Ok(entries) = std::fs::read_dir("/proc") else { return all };
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        // The command name (field 2) may hold spaces; the fields after its `)` are fixed.
        let Some((_, rest)) = stat.rsplit_once(')') else { continue };
        let f: Vec<&str> = rest.split_whitespace().collect();
        let num = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
        // After `)`: state(0) ppid(1) … utime(11) stime(12) cutime(13) cstime(14).
        let ppid = u32::try_from(num(1)).unwrap_or(0);
        all.insert(pid, Proc { ppid, ticks: num(11) + num(12), child_ticks: num(13) + num(14) });
    }
    all
}

/// The bytes a process caused to be written to storage (`/proc/PID/io`, `write_bytes`).
fn written(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/io"))
        .ok()
        .and_then(|io| io.lines().find_map(|l| l.strip_prefix("write_bytes:").and_then(|v| v.trim().parse().ok())))
        .unwrap_or(0)
}

/// The machine's busy ticks (everything but idle and I/O wait) and I/O-wait ticks, all cores.
fn machine() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = stat.lines().find(|l| l.starts_with("cpu ")) else { return (0, 0) };
    let v: Vec<u64> = line.split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
    // user nice system idle iowait irq softirq steal (guest time is already in user).
    let at = |i: usize| v.get(i).copied().unwrap_or(0);
    (at(0) + at(1) + at(2) + at(5) + at(6) + at(7), at(4))
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 on Linux).
fn clock_ticks() -> f64 {
    static HZ: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *HZ.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    })
}
