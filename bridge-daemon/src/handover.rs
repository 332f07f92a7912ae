//! Upgrading in place without losing a terminal: the running bridge hands its terminals to
//! the binary now on disk and becomes it.
//!
//! On `SIGHUP` (`systemctl reload porta-bridge`; the install script's second run sends it)
//! the link closes, so browsers see `stream.interrupted`; every terminal's reader stops
//! between two reads ([`Terminals::freeze`]); a memfd gets the list of terminals and each
//! one's output; the memfd and every PTY descriptor are queued on a Unix socket pair
//! (`SCM_RIGHTS`), and the process execs the binary on disk with the socket's other end as
//! its stdin and `--take-over`. Exec keeps the process id, so the shells stay its children
//! (it reaps them) and systemd sees the same service. The new process reads everything back
//! ([`receive`]), adopts the terminals and connects with the same instance id, so browsers
//! resume where they were (`stream.resumed`). Output written meanwhile waits in the PTYs.
//! Anything that fails before the exec leaves the old process running as it was.

use std::ffi::OsString;
use std::fs::File;
use std::io::{BufRead as _, BufReader, IoSlice, IoSliceMut, Read as _, Seek as _, SeekFrom, Write as _};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd as _, BorrowedFd, OwnedFd};
use std::os::unix::process::CommandExt as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context as _, bail, ensure};
use rustix::net::{
    AddressFamily, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer, SendAncillaryMessage,
    SendFlags, SocketFlags, SocketType,
};
use serde::{Deserialize, Serialize};

use crate::Bridge;
use crate::terminal::Adopted;

/// The flag the next process is started with.
pub const TAKE_OVER: &str = "--take-over";
/// Bumped when the format changes; a process refuses a hand-over it cannot read, and a
/// binary that cannot read ours is never exec'd (it would drop every terminal).
pub const FORMAT: u32 = 1;
/// Asks a binary which hand-over format it reads (it prints the number and exits).
pub const FORMAT_PROBE: &str = "--handover-format";
/// Descriptors per message (the kernel takes at most 253).
const FDS_PER_MESSAGE: usize = 200;

/// The list at the head of the state (the terminals' output follows it; `T` is `&Adopted`
/// when written).
#[derive(Serialize, Deserialize)]
struct Header<T> {
    format: u32,
    instance: String,
    next_id: u32,
    terms: Vec<T>,
}

/// What the previous process handed over.
pub struct Received {
    pub instance: String,
    pub next_id: u32,
    pub terms: Vec<(Adopted, OwnedFd)>,
}

/// Hands the terminals to the binary on disk and becomes it. Returns only when that did not
/// happen, with the terminals running on in this process.
pub fn exec_next(bridge: &Bridge) -> anyhow::Error {
    let exe = match current_exe() {
        Ok(exe) => exe,
        Err(e) => return e,
    };
    // A binary that cannot run, or cannot read this hand-over (an older bridge), would take
    // the terminals down with it.
    match Command::new(&exe).arg(FORMAT_PROBE).stdin(Stdio::null()).output() {
        Ok(out) if out.status.success() && String::from_utf8_lossy(&out.stdout).trim() == FORMAT.to_string() => {}
        Ok(out) => {
            return anyhow::anyhow!(
                "{} cannot take the terminals over ({}: {}); restart it instead, which ends them",
                exe.display(),
                out.status,
                String::from_utf8_lossy(&out.stdout).trim()
            );
        }
        Err(e) => return anyhow::anyhow!("cannot run {}: {e}", exe.display()),
    }
    if !bridge.terminals.freeze(Duration::from_secs(5)) {
        bridge.terminals.thaw();
        return anyhow::anyhow!("the terminals did not stop reading within 5 s");
    }
    let err = hand_over(bridge, &exe);
    bridge.terminals.thaw();
    err
}

fn hand_over(bridge: &Bridge, exe: &PathBuf) -> anyhow::Error {
    let queued = (|| -> anyhow::Result<OwnedFd> {
        let (next_id, terms) = bridge.terminals.snapshot().context("cannot copy the terminals' descriptors")?;
        let mut state = File::from(rustix::fs::memfd_create("porta-handover", rustix::fs::MemfdFlags::CLOEXEC)?);
        let header = Header {
            format: FORMAT,
            instance: bridge.instance.clone(),
            next_id,
            terms: terms.iter().map(|(t, _)| t).collect(),
        };
        serde_json::to_writer(&mut state, &header)?;
        state.write_all(b"\n")?;
        for (t, _) in &terms {
            state.write_all(&t.output)?;
        }
        let (ours, theirs) =
            rustix::net::socketpair(AddressFamily::UNIX, SocketType::SEQPACKET, SocketFlags::CLOEXEC, None)?;
        send(&ours, b"state", &[state.as_fd()])?;
        for chunk in terms.chunks(FDS_PER_MESSAGE) {
            let fds: Vec<BorrowedFd<'_>> = chunk.iter().map(|(_, fd)| fd.as_fd()).collect();
            send(&ours, b"ptys", &fds)?;
        }
        // Our end closes here: the next process reads to the end of what is queued.
        Ok(theirs)
    })();
    let theirs = match queued {
        Ok(fd) => fd,
        Err(e) => return e,
    };
    let mut args: Vec<OsString> = std::env::args_os().skip(1).collect();
    if !args.iter().any(|a| a == TAKE_OVER) {
        args.push(TAKE_OVER.into());
    }
    tracing::info!(exe = %exe.display(), "handing the terminals over");
    let err = Command::new(exe).args(&args).stdin(Stdio::from(theirs)).exec();
    anyhow::anyhow!("cannot start {}: {err}", exe.display())
}

fn send(sock: &OwnedFd, payload: &[u8], fds: &[BorrowedFd<'_>]) -> anyhow::Result<()> {
    let mut space = vec![MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(fds.len()))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    ensure!(control.push(SendAncillaryMessage::ScmRights(fds)), "too many descriptors for one message");
    rustix::net::sendmsg(sock, &[IoSlice::new(payload)], &mut control, SendFlags::empty())?;
    Ok(())
}

/// Reads what the previous process queued on stdin (see [`exec_next`]).
pub fn receive() -> anyhow::Result<Received> {
    let sock = std::io::stdin().as_fd().try_clone_to_owned().context("no hand-over on stdin")?;
    let mut fds = Vec::new();
    loop {
        let mut payload = [0u8; 16];
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(FDS_PER_MESSAGE))];
        let mut control = RecvAncillaryBuffer::new(&mut space);
        let got =
            rustix::net::recvmsg(&sock, &mut [IoSliceMut::new(&mut payload)], &mut control, RecvFlags::CMSG_CLOEXEC)
                .context("cannot read the hand-over (was this started with --take-over by a bridge?)")?;
        let before = fds.len();
        for message in control.drain() {
            if let RecvAncillaryMessage::ScmRights(received) = message {
                fds.extend(received);
            }
        }
        if got.bytes == 0 && fds.len() == before {
            break;
        }
    }
    let mut fds = fds.into_iter();
    let mut state = File::from(fds.next().context("the hand-over holds nothing")?);
    state.seek(SeekFrom::Start(0))?;
    let mut state = BufReader::new(state);
    let mut line = String::new();
    state.read_line(&mut line)?;
    let header: Header<Adopted> = serde_json::from_str(&line).context("the hand-over's list is unreadable")?;
    if header.format != FORMAT {
        bail!("the hand-over is in format {}, this bridge reads {FORMAT}", header.format);
    }
    let mut terms = Vec::with_capacity(header.terms.len());
    for mut t in header.terms {
        t.output = vec![0; usize::try_from(t.output_len)?];
        state.read_exact(&mut t.output).context("the hand-over's output is cut short")?;
        let pty = fds.next().with_context(|| format!("terminal {} came without its PTY", t.id))?;
        terms.push((t, pty));
    }
    Ok(Received { instance: header.instance, next_id: header.next_id, terms })
}

/// The binary this process runs, by its path (the file there now, after an upgrade replaced it).
pub fn current_exe() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot tell which binary this is")?;
    let text = exe.to_string_lossy();
    Ok(text.strip_suffix(" (deleted)").map_or(exe.clone(), PathBuf::from))
}
