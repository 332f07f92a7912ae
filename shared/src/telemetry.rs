//! Telemetry: what a bridge reports about its machine every few seconds ([`Sample`], pushed as
//! the `sys.sample` event), and the scalar series the backend keeps of it ([`Metric`]).
//!
//! A sample carries the detail of the moment (each core, mount, interface, the busiest
//! processes); the backend's time series keep only the [`Metric`] values, so what a server
//! costs to store does not grow with its number of disks or processes.

use serde::{Deserialize, Serialize};

/// One measurement of a machine.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Sample {
    /// When it was taken, Unix time in milliseconds (the backend stores its own clock's time).
    pub ts_ms: u64,
    /// Milliseconds since the previous sample, over which the rates were measured.
    pub interval_ms: u64,
    /// CPU busy, percent of all cores together (0–100).
    pub cpu: f32,
    /// Each core's busy percentage.
    #[serde(default)]
    pub cores: Vec<f32>,
    /// Load average over 1, 5 and 15 minutes.
    pub load: [f32; 3],
    pub memory_total: u64,
    pub memory_used: u64,
    pub swap_total: u64,
    pub swap_used: u64,
    #[serde(default)]
    pub disks: Vec<DiskSample>,
    /// Bytes per second read from and written to the disks, all together.
    pub disk_read_bps: f64,
    pub disk_write_bps: f64,
    #[serde(default)]
    pub nets: Vec<NetSample>,
    pub uptime_s: u64,
    pub processes: u32,
    /// The busiest processes: the top by CPU and the top by memory.
    #[serde(default)]
    pub top: Vec<ProcessSample>,
    /// What is wrong with the machine's containers now, when it has an engine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker: Option<Box<crate::docker::DockerHealth>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiskSample {
    pub mount: String,
    pub total: u64,
    pub used: u64,
}

/// One network interface's rates, in bytes per second.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetSample {
    pub name: String,
    pub rx_bps: f64,
    pub tx_bps: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessSample {
    pub pid: u32,
    pub name: String,
    /// Percent of one core (may exceed 100 on several).
    pub cpu: f32,
    /// Resident memory, bytes.
    pub memory: u64,
}

impl Sample {
    /// How many processes of each ranking (by CPU, by memory) a sample names.
    pub const TOP: usize = 8;
    /// Fewest and most milliseconds between samples a bridge may be told to use.
    pub const MIN_INTERVAL_MS: u64 = 1_000;
    pub const MAX_INTERVAL_MS: u64 = 3_600_000;

    fn percent(used: u64, total: u64) -> f32 {
        if total == 0 { 0.0 } else { (used as f64 * 100.0 / total as f64) as f32 }
    }

    /// The fullest mount's used percentage.
    pub fn disk_percent(&self) -> f32 {
        self.disks.iter().map(|d| Self::percent(d.used, d.total)).fold(0.0, f32::max)
    }

    /// This sample's value of `metric`.
    pub fn value(&self, metric: Metric) -> f32 {
        match metric {
            Metric::Cpu => self.cpu,
            Metric::Load => self.load[0],
            Metric::Memory => Self::percent(self.memory_used, self.memory_total),
            Metric::Swap => Self::percent(self.swap_used, self.swap_total),
            Metric::Disk => self.disk_percent(),
            Metric::DiskRead => self.disk_read_bps as f32,
            Metric::DiskWrite => self.disk_write_bps as f32,
            Metric::NetRx => self.nets.iter().map(|n| n.rx_bps).sum::<f64>() as f32,
            Metric::NetTx => self.nets.iter().map(|n| n.tx_bps).sum::<f64>() as f32,
            Metric::Processes => self.processes as f32,
        }
    }

    /// Every metric's value, in [`Metric::ALL`] order.
    pub fn values(&self) -> [f32; Metric::COUNT] {
        Metric::ALL.map(|m| self.value(m))
    }
}

/// What a number measures, for showing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    Percent,
    /// A load average (runnable tasks).
    Load,
    BytesPerSecond,
    Count,
}

/// A series the backend keeps for every server. The order of [`Metric::ALL`] is the order of
/// stored values: new metrics go at the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// CPU busy, percent.
    Cpu,
    /// 1-minute load average.
    Load,
    /// Memory used, percent.
    Memory,
    /// Swap used, percent.
    Swap,
    /// The fullest mount's used space, percent.
    Disk,
    DiskRead,
    DiskWrite,
    NetRx,
    NetTx,
    /// Processes running.
    Processes,
}

impl Metric {
    pub const COUNT: usize = 10;
    pub const ALL: [Metric; Metric::COUNT] = [
        Metric::Cpu,
        Metric::Load,
        Metric::Memory,
        Metric::Swap,
        Metric::Disk,
        Metric::DiskRead,
        Metric::DiskWrite,
        Metric::NetRx,
        Metric::NetTx,
        Metric::Processes,
    ];

    /// The stable name used in the API and in alert rules.
    pub fn name(self) -> &'static str {
        match self {
            Metric::Cpu => "cpu",
            Metric::Load => "load",
            Metric::Memory => "memory",
            Metric::Swap => "swap",
            Metric::Disk => "disk",
            Metric::DiskRead => "disk_read",
            Metric::DiskWrite => "disk_write",
            Metric::NetRx => "net_rx",
            Metric::NetTx => "net_tx",
            Metric::Processes => "processes",
        }
    }

    pub fn from_name(name: &str) -> Option<Metric> {
        Metric::ALL.into_iter().find(|m| m.name() == name)
    }

    /// What a person calls it.
    pub fn label(self) -> &'static str {
        match self {
            Metric::Cpu => "CPU",
            Metric::Load => "Load (1 min)",
            Metric::Memory => "Memory",
            Metric::Swap => "Swap",
            Metric::Disk => "Disk (fullest mount)",
            Metric::DiskRead => "Disk read",
            Metric::DiskWrite => "Disk write",
            Metric::NetRx => "Network in",
            Metric::NetTx => "Network out",
            Metric::Processes => "Processes",
        }
    }

    pub fn unit(self) -> Unit {
        match self {
            Metric::Cpu | Metric::Memory | Metric::Swap | Metric::Disk => Unit::Percent,
            Metric::Load => Unit::Load,
            Metric::DiskRead | Metric::DiskWrite | Metric::NetRx | Metric::NetTx => Unit::BytesPerSecond,
            Metric::Processes => Unit::Count,
        }
    }

    /// Its place in [`Metric::ALL`] and in stored values.
    pub fn index(self) -> usize {
        self as usize
    }
}

/// `value` for a person: `42.0 %`, `1.25`, `3.4 MB/s`, `312`.
pub fn format_value(unit: Unit, value: f64) -> String {
    match unit {
        Unit::Percent => format!("{value:.1} %"),
        Unit::Load => format!("{value:.2}"),
        Unit::Count => format!("{value:.0}"),
        Unit::BytesPerSecond => {
            let units = ["B/s", "kB/s", "MB/s", "GB/s", "TB/s"];
            let mut v = value.max(0.0);
            let mut i = 0;
            while v >= 1000.0 && i + 1 < units.len() {
                v /= 1000.0;
                i += 1;
            }
            if i == 0 { format!("{v:.0} {}", units[i]) } else { format!("{v:.1} {}", units[i]) }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_names_round_trip_and_indexes_follow_all() {
        for (i, m) in Metric::ALL.into_iter().enumerate() {
            assert_eq!(Metric::from_name(m.name()), Some(m));
            assert_eq!(m.index(), i);
            let json = serde_json::to_string(&m).expect("serialise");
            assert_eq!(json, format!("\"{}\"", m.name()));
        }
        assert_eq!(Metric::from_name("nope"), None);
    }

    #[test]
    fn values_come_from_the_sample() {
        let s = Sample {
            cpu: 12.5,
            load: [0.5, 0.4, 0.3],
            memory_total: 1000,
            memory_used: 250,
            disks: vec![
                DiskSample { mount: "/".into(), total: 100, used: 10 },
                DiskSample { mount: "/data".into(), total: 100, used: 90 },
            ],
            nets: vec![
                NetSample { name: "eth0".into(), rx_bps: 100.0, tx_bps: 1.0 },
                NetSample { name: "eth1".into(), rx_bps: 50.0, tx_bps: 2.0 },
            ],
            processes: 7,
            ..Sample::default()
        };
        let v = s.values();
        assert_eq!(v[Metric::Cpu.index()], 12.5);
        assert_eq!(v[Metric::Load.index()], 0.5);
        assert_eq!(v[Metric::Memory.index()], 25.0);
        assert_eq!(v[Metric::Swap.index()], 0.0, "no swap is 0 %, not NaN");
        assert_eq!(v[Metric::Disk.index()], 90.0, "the fullest mount");
        assert_eq!(v[Metric::NetRx.index()], 150.0);
        assert_eq!(v[Metric::NetTx.index()], 3.0);
        assert_eq!(v[Metric::Processes.index()], 7.0);
    }

    #[test]
    fn values_are_formatted_for_people() {
        assert_eq!(format_value(Unit::Percent, 42.04), "42.0 %");
        assert_eq!(format_value(Unit::BytesPerSecond, 999.0), "999 B/s");
        assert_eq!(format_value(Unit::BytesPerSecond, 3_400_000.0), "3.4 MB/s");
        assert_eq!(format_value(Unit::Load, 1.254), "1.25");
    }
}
