//! Host facts for heartbeats, read from `/proc`, `/etc/os-release`, uname
//! and statvfs. Each source is optional: a missing file leaves its fields at
//! zero or empty rather than failing the heartbeat.

use std::path::Path;

use protocol::agent::HostFacts;

/// Reads the facts of this machine. Blocking (small file reads); call it
/// from `spawn_blocking` inside the runtime.
pub fn collect() -> HostFacts {
    let (hostname, kernel) = uname();
    let (memory_total_bytes, memory_available_bytes) = read("/proc/meminfo")
        .and_then(|text| parse_meminfo(&text))
        .unwrap_or_default();
    let (disk_total_bytes, disk_available_bytes) = disk("/").unwrap_or_default();
    HostFacts {
        hostname,
        os: read("/etc/os-release")
            .or_else(|| read("/usr/lib/os-release"))
            .and_then(|text| parse_os_release(&text))
            .unwrap_or_default(),
        kernel,
        arch: std::env::consts::ARCH.to_owned(),
        uptime_secs: read("/proc/uptime")
            .and_then(|text| parse_uptime(&text))
            .unwrap_or_default(),
        load: read("/proc/loadavg")
            .and_then(|text| parse_loadavg(&text))
            .unwrap_or_default(),
        cpus: std::thread::available_parallelism()
            .map(|n| u32::try_from(n.get()).unwrap_or(u32::MAX))
            .unwrap_or(1),
        memory_total_bytes,
        memory_available_bytes,
        disk_total_bytes,
        disk_available_bytes,
        // Filled in by the heartbeat loop, which keeps the previous sample.
        cpu_percent: None,
    }
}

fn read(path: &str) -> Option<String> {
    std::fs::read_to_string(path).ok()
}

/// Cumulative CPU time of the whole machine from the `cpu` line of
/// `/proc/stat`, in clock ticks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuTimes {
    /// Every tick counted.
    pub total: u64,
    /// Ticks doing nothing (idle and waiting for I/O).
    pub idle: u64,
}

impl CpuTimes {
    /// Reads this machine's counters now.
    pub fn sample() -> Option<Self> {
        read("/proc/stat").and_then(|text| parse_proc_stat(&text))
    }

    /// Percent of CPU time busy between `earlier` and `self`; `None` when
    /// no time passed (or the counters went backwards).
    pub fn busy_percent_since(&self, earlier: &CpuTimes) -> Option<f64> {
        let total = self.total.checked_sub(earlier.total)?;
        let idle = self.idle.checked_sub(earlier.idle)?;
        if total == 0 {
            return None;
        }
        let busy = total.saturating_sub(idle) as f64 / total as f64 * 100.0;
        Some((busy * 10.0).round() / 10.0)
    }
}

/// The aggregate `cpu` line: user nice system idle iowait irq softirq
/// steal (guest time is already inside user and nice, so it is not added).
pub fn parse_proc_stat(text: &str) -> Option<CpuTimes> {
    let line = text.lines().find(|line| line.starts_with("cpu "))?;
    let fields: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .take(8)
        .map(|field| field.parse().ok())
        .collect::<Option<_>>()?;
    if fields.len() < 4 {
        return None;
    }
    let idle = fields[3] + fields.get(4).copied().unwrap_or(0);
    Some(CpuTimes {
        total: fields.iter().sum(),
        idle,
    })
}

/// Hostname and kernel release.
fn uname() -> (String, String) {
    match nix::sys::utsname::uname() {
        Ok(name) => (
            name.nodename().to_string_lossy().into_owned(),
            name.release().to_string_lossy().into_owned(),
        ),
        Err(_) => (
            read("/proc/sys/kernel/hostname")
                .map(|s| s.trim().to_owned())
                .unwrap_or_default(),
            read("/proc/sys/kernel/osrelease")
                .map(|s| s.trim().to_owned())
                .unwrap_or_default(),
        ),
    }
}

/// Total and available bytes of the filesystem holding `path`; available is
/// what an unprivileged user may still write, as `df` shows it.
// The statvfs field types are u32 on some targets and u64 on others.
#[allow(clippy::useless_conversion)]
pub fn disk(path: impl AsRef<Path>) -> Option<(u64, u64)> {
    let stat = nix::sys::statvfs::statvfs(path.as_ref()).ok()?;
    let unit = u64::from(stat.fragment_size());
    Some((
        u64::from(stat.blocks()).saturating_mul(unit),
        u64::from(stat.blocks_available()).saturating_mul(unit),
    ))
}

/// `PRETTY_NAME` from an os-release file, unquoted.
pub fn parse_os_release(text: &str) -> Option<String> {
    let value = text
        .lines()
        .find_map(|line| line.trim().strip_prefix("PRETTY_NAME="))?
        .trim();
    let unquoted = ['"', '\'']
        .iter()
        .find_map(|q| value.strip_prefix(*q).and_then(|v| v.strip_suffix(*q)))
        .unwrap_or(value);
    // os-release allows shell escapes inside double quotes.
    let mut out = String::with_capacity(unquoted.len());
    let mut chars = unquoted.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            c => out.push(c),
        }
    }
    (!out.is_empty()).then_some(out)
}

/// `(MemTotal, MemAvailable)` in bytes. Kernels before 3.14 lack
/// `MemAvailable`; `MemFree` is the closest they offer.
pub fn parse_meminfo(text: &str) -> Option<(u64, u64)> {
    let field = |name: &str| {
        text.lines().find_map(|line| {
            let rest = line.strip_prefix(name)?.strip_prefix(':')?;
            let kib: u64 = rest.split_whitespace().next()?.parse().ok()?;
            Some(kib.saturating_mul(1024))
        })
    };
    let total = field("MemTotal")?;
    let available = field("MemAvailable").or_else(|| field("MemFree"))?;
    Some((total, available))
}

/// Whole seconds since boot, from `/proc/uptime`.
pub fn parse_uptime(text: &str) -> Option<u64> {
    let secs: f64 = text.split_whitespace().next()?.parse().ok()?;
    // Truncation is the point: uptime is shown in whole seconds.
    (secs.is_finite() && secs >= 0.0).then_some(secs as u64)
}

/// The 1, 5 and 15 minute load averages from `/proc/loadavg`.
pub fn parse_loadavg(text: &str) -> Option<[f64; 3]> {
    let mut fields = text.split_whitespace().map(str::parse::<f64>);
    let mut load = [0.0; 3];
    for slot in &mut load {
        *slot = fields.next()?.ok()?;
    }
    Some(load)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_machine() {
        let facts = collect();
        assert!(!facts.hostname.is_empty());
        assert!(!facts.kernel.is_empty());
        assert_eq!(facts.arch, std::env::consts::ARCH);
        assert!(facts.cpus >= 1);
        assert!(facts.memory_total_bytes > 0);
        assert!(facts.memory_available_bytes > 0);
        assert!(facts.memory_available_bytes <= facts.memory_total_bytes);
        assert!(facts.disk_total_bytes > 0);
        assert!(facts.disk_available_bytes <= facts.disk_total_bytes);
        assert!(facts.uptime_secs > 0);
        assert!(facts.load.iter().all(|l| *l >= 0.0));
    }

    #[test]
    fn os_release_pretty_name_is_unquoted_and_unescaped() {
        let text = "NAME=\"Debian GNU/Linux\"\nPRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\n";
        assert_eq!(
            parse_os_release(text).as_deref(),
            Some("Debian GNU/Linux 12 (bookworm)")
        );
        assert_eq!(
            parse_os_release("PRETTY_NAME='Alpine Linux v3.20'").as_deref(),
            Some("Alpine Linux v3.20")
        );
        assert_eq!(
            parse_os_release(r#"PRETTY_NAME="Say \"hi\"""#).as_deref(),
            Some(r#"Say "hi""#)
        );
        assert_eq!(parse_os_release("NAME=x\n"), None);
    }

    #[test]
    fn meminfo_is_converted_to_bytes() {
        let text = "MemTotal:       16318012 kB\nMemFree:          512000 kB\nMemAvailable:   8159006 kB\nBuffers: 1 kB\n";
        assert_eq!(
            parse_meminfo(text),
            Some((16_318_012 * 1024, 8_159_006 * 1024))
        );
        let old_kernel = "MemTotal: 1000 kB\nMemFree: 300 kB\n";
        assert_eq!(parse_meminfo(old_kernel), Some((1_024_000, 307_200)));
        assert_eq!(parse_meminfo("garbage"), None);
    }

    #[test]
    fn cpu_percent_comes_from_proc_stat_deltas() {
        let before =
            parse_proc_stat("cpu  100 0 100 700 100 0 0 0 0 0\ncpu0 50 0 50 350 50 0 0 0 0 0\n")
                .expect("parse");
        assert_eq!(
            before,
            CpuTimes {
                total: 1000,
                idle: 800
            }
        );
        let after = parse_proc_stat("cpu  250 0 150 1300 100 0 0 0 0 0\n").expect("parse");
        assert_eq!(after.busy_percent_since(&before), Some(25.0));
        assert_eq!(before.busy_percent_since(&before), None);
        assert_eq!(before.busy_percent_since(&after), None);
        assert_eq!(parse_proc_stat("intr 1 2 3\n"), None);
        assert!(CpuTimes::sample().is_some());
    }

    #[test]
    fn uptime_and_load_parse() {
        assert_eq!(parse_uptime("350735.47 234388.90\n"), Some(350_735));
        assert_eq!(parse_uptime(""), None);
        assert_eq!(
            parse_loadavg("0.20 0.18 1.12 1/80 11206\n"),
            Some([0.20, 0.18, 1.12])
        );
        assert_eq!(parse_loadavg("0.20 0.18"), None);
    }
}
