//! The TCP ports listening on this machine, read from the kernel (`/proc/net/tcp` and
//! `tcp6`), each with the process that holds its socket (found through `/proc/<pid>/fd`,
//! for the processes this bridge may look at).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

use porta_shared::bridge::ProcessInfo;
use porta_shared::ports::{Listening, PortsListed};
use porta_shared::{ErrorBody, ErrorCode};

/// `st` of a listening socket in `/proc/net/tcp`.
const LISTEN: &str = "0A";

/// A listening socket as the kernel lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Socket {
    pub address: IpAddr,
    pub port: u16,
    pub uid: u32,
    pub inode: u64,
}

/// Every listening TCP socket of this machine's network namespace, with its owner.
pub fn list() -> Result<PortsListed, ErrorBody> {
    list_under(Path::new("/proc"))
}

/// The listening sockets alone, without looking for their owners (cheap).
pub fn sockets() -> Vec<Socket> {
    sockets_under(Path::new("/proc")).unwrap_or_default()
}

fn sockets_under(proc: &Path) -> Option<Vec<Socket>> {
    let mut sockets = Vec::new();
    let mut read_any = false;
    for table in ["net/tcp", "net/tcp6"] {
        // A machine without IPv6 has no `tcp6`.
        if let Ok(text) = std::fs::read_to_string(proc.join(table)) {
            read_any = true;
            sockets.extend(parse_table(&text));
        }
    }
    read_any.then_some(sockets)
}

fn list_under(proc: &Path) -> Result<PortsListed, ErrorBody> {
    let Some(sockets) = sockets_under(proc) else {
        return Err(ErrorBody::new(ErrorCode::Unavailable, "this machine does not tell its ports (no /proc/net/tcp)"));
    };
    let owners = owners(proc, sockets.iter().map(|s| s.inode).collect());
    let mut ports: Vec<Listening> = sockets
        .into_iter()
        .map(|s| {
            let owner = owners.get(&s.inode);
            Listening {
                port: s.port,
                address: s.address.to_string(),
                loopback: reachable_from_loopback(s.address),
                pid: owner.map(|o| o.0),
                process: owner.map(|o| o.1.clone()),
                command: owner.map(|o| o.2.clone()).unwrap_or_default(),
                uid: s.uid,
            }
        })
        .collect();
    ports.sort_by(|a, b| (a.port, &a.address).cmp(&(b.port, &b.address)));
    ports.dedup_by(|a, b| a.port == b.port && a.address == b.address);
    Ok(PortsListed { ports })
}

/// Whether a connection to the loopback reaches a socket bound to `address`.
pub fn reachable_from_loopback(address: IpAddr) -> bool {
    address.is_unspecified() || address.is_loopback() || mapped_v4(address).is_some_and(|v4| v4.is_loopback())
}

fn mapped_v4(address: IpAddr) -> Option<Ipv4Addr> {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped(),
        IpAddr::V4(_) => None,
    }
}

/// The listening sockets of one of the kernel's tables; lines it cannot read are skipped.
pub fn parse_table(text: &str) -> Vec<Socket> {
    text.lines().skip(1).filter_map(parse_line).collect()
}

fn parse_line(line: &str) -> Option<Socket> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    // sl local rem st queues timer retransmits uid timeout inode …
    if fields.len() < 10 || fields[3] != LISTEN {
        return None;
    }
    let (addr, port) = fields[1].split_once(':')?;
    Some(Socket {
        address: parse_address(addr)?,
        port: u16::from_str_radix(port, 16).ok()?,
        uid: fields[7].parse().ok()?,
        inode: fields[9].parse().ok()?,
    })
}

/// The kernel prints each 32-bit word of the address in the machine's byte order.
fn parse_address(hex: &str) -> Option<IpAddr> {
    let words: Option<Vec<u32>> =
        (0..hex.len() / 8).map(|i| hex.get(i * 8..i * 8 + 8).and_then(|w| u32::from_str_radix(w, 16).ok())).collect();
    let words = words?;
    let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_ne_bytes()).collect();
    match bytes.len() {
        4 => Some(IpAddr::V4(Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]))),
        16 => {
            let b: [u8; 16] = bytes.try_into().ok()?;
            Some(IpAddr::V6(Ipv6Addr::from(b)))
        }
        _ => None,
    }
}

/// The process (pid, name, command line) holding each of `inodes`, among those whose
/// descriptors this process may read.
fn owners(proc: &Path, mut inodes: std::collections::HashSet<u64>) -> HashMap<u64, (u32, String, String)> {
    let mut found = HashMap::new();
    let Ok(entries) = std::fs::read_dir(proc) else { return found };
    for entry in entries.flatten() {
        if inodes.is_empty() {
            break;
        }
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else { continue };
        for fd in fds.flatten() {
            let Ok(target) = std::fs::read_link(fd.path()) else { continue };
            let Some(inode) = socket_inode(&target.to_string_lossy()) else { continue };
            if inodes.remove(&inode) {
                let name = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default().trim().to_owned();
                let command = command_line(&entry.path());
                found.insert(inode, (pid, name, command));
            }
        }
    }
    found
}

/// `socket:[12345]` → 12345.
fn socket_inode(link: &str) -> Option<u64> {
    link.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
}

fn command_line(dir: &Path) -> String {
    let raw = std::fs::read(dir.join("cmdline")).unwrap_or_default();
    let words: Vec<String> =
        raw.split(|b| *b == 0).filter(|w| !w.is_empty()).map(|w| String::from_utf8_lossy(w).into_owned()).collect();
    words.join(" ").chars().take(ProcessInfo::MAX_COMMAND).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 4242 1 0000000000000000 100 0 0 10 0
   1: 00000000:0016 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 17 1 0000000000000000 100 0 0 10 0
   2: 0100007F:1F90 0100007F:D4A2 01 00000000:00000000 00:00000000 00000000  1000        0 0 1 0000000000000000 20 4 30 10 -1
   3: garbage
";
    const TCP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:1435 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 99 1 0000000000000000 100 0 0 10 0
   1: 00000000000000000000000000000000:0050 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 98 1 0000000000000000 100 0 0 10 0
";

    #[test]
    fn listening_sockets_are_read_and_others_skipped() {
        let got = parse_table(TCP);
        assert_eq!(
            got,
            vec![
                Socket { address: "127.0.0.1".parse().unwrap(), port: 8080, uid: 1000, inode: 4242 },
                Socket { address: "0.0.0.0".parse().unwrap(), port: 22, uid: 0, inode: 17 },
            ]
        );
        let got6 = parse_table(TCP6);
        assert_eq!(got6[0].address, "::1".parse::<IpAddr>().unwrap());
        assert_eq!(got6[0].port, 5173);
        assert_eq!(got6[1].address, "::".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn loopback_reach_follows_the_bound_address() {
        for (a, reach) in
            [("0.0.0.0", true), ("::", true), ("127.0.0.1", true), ("::1", true), ("::ffff:127.0.0.1", true)]
        {
            assert_eq!(reachable_from_loopback(a.parse().unwrap()), reach, "{a}");
        }
        assert!(!reachable_from_loopback("10.1.2.3".parse().unwrap()));
    }

    #[test]
    fn sockets_are_matched_to_their_process_inside_a_fake_proc() {
        let dir = tempfile::tempdir().unwrap();
        let proc = dir.path();
        std::fs::create_dir_all(proc.join("net")).unwrap();
        std::fs::write(proc.join("net/tcp"), TCP).unwrap();
        let pid = proc.join("321");
        std::fs::create_dir_all(pid.join("fd")).unwrap();
        std::fs::write(pid.join("comm"), "node\n").unwrap();
        std::fs::write(pid.join("cmdline"), b"node\0server.js\0").unwrap();
        std::os::unix::fs::symlink("socket:[4242]", pid.join("fd/7")).unwrap();
        std::os::unix::fs::symlink("/dev/null", pid.join("fd/0")).unwrap();
        let listed = list_under(proc).unwrap();
        assert_eq!(listed.ports.len(), 2);
        assert_eq!(listed.ports[0].port, 22);
        assert_eq!(listed.ports[0].pid, None);
        let web = &listed.ports[1];
        assert_eq!((web.port, web.pid, web.process.as_deref()), (8080, Some(321), Some("node")));
        assert_eq!(web.command, "node server.js");
        assert!(web.loopback);
    }

    #[test]
    fn a_machine_without_tables_says_so() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(list_under(dir.path()).unwrap_err().code, ErrorCode::Unavailable);
    }
}
