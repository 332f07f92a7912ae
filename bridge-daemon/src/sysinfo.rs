//! System information: what the dashboard shows about a server.

use porta_shared::bridge::{Disk, Done, SysInfo};
use porta_shared::types::Signal;
use porta_shared::{ErrorBody, ErrorCode};
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

/// Sends `signal` to process `pid`. Refused for pid 0 and 1 and for this bridge itself (the
/// link to the backend would go with it); a process that is not there is `not_found`, one
/// this bridge's user may not signal is `forbidden`.
pub fn kill(pid: u32, signal: Signal) -> Result<Done, ErrorBody> {
    if pid <= 1 || pid == std::process::id() {
        return Err(ErrorBody::new(ErrorCode::Forbidden, format!("process {pid} may not be signalled from Porta")));
    }
    let target = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
        .ok_or_else(|| ErrorBody::new(ErrorCode::BadRequest, format!("{pid} is not a process id")))?;
    match rustix::process::kill_process(target, crate::terminal::to_rustix(signal)) {
        Ok(()) => Ok(Done {}),
        Err(rustix::io::Errno::SRCH) => Err(ErrorBody::new(ErrorCode::NotFound, format!("no process {pid}"))),
        Err(rustix::io::Errno::PERM) => {
            Err(ErrorBody::new(ErrorCode::Forbidden, format!("the bridge's user may not signal process {pid}")))
        }
        Err(e) => Err(ErrorBody::new(ErrorCode::Internal, format!("cannot signal process {pid}: {e}"))),
    }
}

/// This machine's host name.
pub fn hostname() -> String {
    System::host_name().unwrap_or_else(|| "localhost".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kill_signals_a_process_and_refuses_what_it_must() {
        let mut child = std::process::Command::new("sleep").arg("600").spawn().expect("sleep");
        assert_eq!(kill(child.id(), Signal::Term), Ok(Done {}));
        let status = child.wait().expect("wait");
        use std::os::unix::process::ExitStatusExt as _;
        assert_eq!(status.signal(), Some(15));
        assert_eq!(kill(child.id(), Signal::Term).map_err(|e| e.code), Err(ErrorCode::NotFound), "reaped");
        assert_eq!(kill(1, Signal::Term).map_err(|e| e.code), Err(ErrorCode::Forbidden));
        assert_eq!(kill(0, Signal::Kill).map_err(|e| e.code), Err(ErrorCode::Forbidden));
        assert_eq!(kill(std::process::id(), Signal::Kill).map_err(|e| e.code), Err(ErrorCode::Forbidden));
        assert_eq!(kill(u32::MAX, Signal::Term).map_err(|e| e.code), Err(ErrorCode::BadRequest));
    }

    #[test]
    fn reports_this_machine() {
        let info = super::collect("/root");
        assert!(info.cpus >= 1);
        assert!(info.memory_total > 0);
        assert!(!info.kernel.is_empty());
        assert!(!info.arch.is_empty());
    }
}
