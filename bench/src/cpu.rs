//! Where the CPU went during a phase (Linux `/proc`): how busy the whole machine was,
//! and how much CPU the server process used. On a small machine the load generator,
//! the server and PostgreSQL share the cores, and other work may run too.

use std::collections::HashMap;
use std::time::Instant;

/// Clock ticks per second of `/proc` times (USER_HZ, 100 on every mainstream Linux).
const TICKS_PER_SEC: f64 = 100.0;

/// A reading taken at the start of a phase.
#[derive(Debug, Clone)]
pub struct Sample {
    at: Instant,
    busy: u64,
    total: u64,
    process: Option<u64>,
    /// Ticks of the PostgreSQL postmaster and each of its children, when local.
    postgres: Option<HashMap<u32, u64>>,
}

/// CPU use between two samples.
#[derive(Debug, Clone, Copy, Default)]
pub struct Usage {
    /// Share of all CPUs that were busy (0 to 1).
    pub machine_busy: f64,
    /// CPU seconds of the process, and the same as cores used on average.
    pub process_secs: Option<f64>,
    pub process_cores: Option<f64>,
    /// CPU seconds of PostgreSQL (postmaster and backends, those that lived until the
    /// end of the phase), and the same as cores used on average.
    pub postgres_secs: Option<f64>,
    pub postgres_cores: Option<f64>,
}

impl Usage {
    pub fn describe(&self, who: &str) -> String {
        let mut s = format!("machine CPU {:.0}% busy", self.machine_busy * 100.0);
        if let (Some(secs), Some(cores)) = (self.process_secs, self.process_cores) {
            s.push_str(&format!(", {who} {secs:.1} CPU-s ({cores:.2} cores)"));
        }
        if let (Some(secs), Some(cores)) = (self.postgres_secs, self.postgres_cores) {
            s.push_str(&format!(", PostgreSQL {secs:.1} CPU-s ({cores:.2} cores)"));
        }
        s
    }
}

impl Sample {
    /// Reads `/proc/stat`, for `pid` `/proc/<pid>/stat`, and for `postmaster` that
    /// process and its children; `None` off Linux.
    pub fn now(pid: Option<u32>, postmaster: Option<u32>) -> Option<Self> {
        let (busy, total) = machine()?;
        Some(Self { at: Instant::now(), busy, total, process: pid.and_then(process), postgres: postmaster.map(family) })
    }

    /// Usage from this sample until now (for the same `pid` and `postmaster`).
    pub fn usage(&self, pid: Option<u32>, postmaster: Option<u32>) -> Option<Usage> {
        let later = Self::now(pid, postmaster)?;
        let total = later.total.saturating_sub(self.total).max(1) as f64;
        let machine_busy = later.busy.saturating_sub(self.busy) as f64 / total;
        let wall = later.at.duration_since(self.at).as_secs_f64().max(1e-9);
        let process_secs = match (self.process, later.process) {
            (Some(a), Some(b)) => Some(b.saturating_sub(a) as f64 / TICKS_PER_SEC),
            _ => None,
        };
        let postgres_secs = match (&self.postgres, &later.postgres) {
            (Some(a), Some(b)) => Some(
                b.iter().map(|(pid, t)| t.saturating_sub(a.get(pid).copied().unwrap_or(0))).sum::<u64>() as f64
                    / TICKS_PER_SEC,
            ),
            _ => None,
        };
        Some(Usage {
            machine_busy,
            process_secs,
            process_cores: process_secs.map(|s| s / wall),
            postgres_secs,
            postgres_cores: postgres_secs.map(|s| s / wall),
        })
    }
}

/// The postmaster of a local PostgreSQL: the first line of `postmaster.pid` in its data
/// directory (`SHOW data_directory` needs superuser or pg_read_all_settings).
pub async fn postmaster(pool: &sqlx::PgPool) -> Option<u32> {
    let dir: String = sqlx::query_scalar("SHOW data_directory").fetch_one(pool).await.ok()?;
    let text = std::fs::read_to_string(std::path::Path::new(&dir).join("postmaster.pid")).ok()?;
    let pid: u32 = text.lines().next()?.trim().parse().ok()?;
    std::path::Path::new(&format!("/proc/{pid}")).exists().then_some(pid)
}

/// Ticks of `parent` and of every process whose parent it is.
fn family(parent: u32) -> HashMap<u32, u64> {
    let mut out = HashMap::new();
    let Ok(dir) = std::fs::read_dir("/proc") else { return out };
    for e in dir.flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else { continue };
        let Some((ppid, ticks)) = parse_stat(&stat) else { continue };
        if pid == parent || ppid == parent {
            out.insert(pid, ticks);
        }
    }
    out
}

/// (busy, total) ticks of all CPUs from the first line of `/proc/stat`.
fn machine() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let fields: Vec<u64> = stat.lines().next()?.split_whitespace().skip(1).filter_map(|f| f.parse().ok()).collect();
    let total: u64 = fields.iter().sum();
    // idle and iowait
    let idle = fields.get(3).copied().unwrap_or(0) + fields.get(4).copied().unwrap_or(0);
    Some((total - idle, total))
}

/// utime + stime ticks of a process.
fn process(pid: u32) -> Option<u64> {
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?).map(|(_, t)| t)
}

/// (parent pid, utime + stime ticks) from a `/proc/<pid>/stat` line.
fn parse_stat(stat: &str) -> Option<(u32, u64)> {
    // The command name may hold spaces; fields resume after its closing parenthesis,
    // starting with field 3 (state): ppid is field 4, utime and stime 14 and 15.
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ppid = fields.get(1)?.parse().ok()?;
    Some((ppid, fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?))
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_proc_stat_lines() {
        let line = "4242 (post gres) S 17 4242 4242 0 -1 4194560 1000 0 0 0 250 50 0 0 20 0 1 0 100 0 0";
        assert_eq!(super::parse_stat(line), Some((17, 300)));
    }
}
