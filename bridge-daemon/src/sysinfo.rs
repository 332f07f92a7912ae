//! System information: what the dashboard shows about a server.

use porta_shared::bridge::{Disk, SysInfo};
use sysinfo::{Disks, System};

pub fn collect(home: &str) -> SysInfo {
    let mut sys = System::new();
    sys.refresh_memory();
    sys.refresh_cpu_list(sysinfo::CpuRefreshKind::nothing());
    let cpu_model = sys.cpus().first().map(|c| c.brand().trim().to_owned()).unwrap_or_default();
    let disks = Disks::new_with_refreshed_list()
        .list()
        .iter()
        .map(|d| Disk {
            mount: d.mount_point().to_string_lossy().into_owned(),
            fs: d.file_system().to_string_lossy().into_owned(),
            total: d.total_space(),
            available: d.available_space(),
        })
        .collect();
    SysInfo {
        os: System::name().unwrap_or_else(|| std::env::consts::OS.to_owned()),
        os_version: System::os_version().unwrap_or_default(),
        kernel: System::kernel_version().unwrap_or_default(),
        arch: System::cpu_arch(),
        hostname: hostname(),
        cpus: sys.cpus().len() as u32,
        cpu_model,
        memory_total: sys.total_memory(),
        memory_available: sys.available_memory(),
        swap_total: sys.total_swap(),
        disks,
        uptime_s: System::uptime(),
        shell: std::env::var("SHELL").unwrap_or_else(|_| "/bin/sh".into()),
        home: home.to_owned(),
        user: std::env::var("USER").or_else(|_| std::env::var("LOGNAME")).unwrap_or_default(),
    }
}

/// This machine's host name.
pub fn hostname() -> String {
    System::host_name().unwrap_or_else(|| "localhost".into())
}

#[cfg(test)]
mod tests {
    #[test]
    fn reports_this_machine() {
        let info = super::collect("/root");
        assert!(info.cpus >= 1);
        assert!(info.memory_total > 0);
        assert!(!info.kernel.is_empty());
        assert!(!info.arch.is_empty());
    }
}
