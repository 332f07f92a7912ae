//! Commands without a PTY: argv (never a shell unless asked), cwd, env, timeout, cancel;
//! stdout and stderr streamed as frames under the same window as terminal output, as bulk
//! data that waits its turn behind the terminals (an agent's `cat` of a large file must not
//! go ahead of a person's keystrokes).

use std::process::Stdio;
use std::time::Duration;

use porta_shared::bridge::{BridgeEvent, ExecExited, ExecStart};
use porta_shared::frame::{Frame, FrameKind};
use porta_shared::types::ExitStatus;
use porta_shared::{Envelope, ErrorBody, ErrorCode};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, ChildStdin, Command};
use tokio::sync::{mpsc, watch};

use crate::link::Outbox;

/// Handle the connection keeps for a running exec.
pub struct ExecHandle {
    pub acked: watch::Sender<u64>,
    pub cancel: Option<tokio::sync::oneshot::Sender<()>>,
    pub stdin: mpsc::UnboundedSender<Vec<u8>>,
}

/// Starts `req`; output goes to `out` on `req.stream`. Returns the pid and the handle.
pub fn start(
    req: ExecStart,
    default_cwd: &str,
    window: u64,
    out: Outbox,
    on_done: impl FnOnce() + Send + 'static,
) -> Result<(u32, ExecHandle), ErrorBody> {
    let (program, args): (&str, Vec<&str>) = if req.shell {
        let line = req.argv.first().ok_or_else(|| bad("shell exec needs a command line in argv[0]"))?;
        ("/bin/sh", vec!["-c", line])
    } else {
        let (p, rest) = req.argv.split_first().ok_or_else(|| bad("argv must name a program"))?;
        (p.as_str(), rest.iter().map(String::as_str).collect())
    };
    let cwd = req.cwd.as_deref().unwrap_or(default_cwd);
    let mut child = Command::new(program)
        .args(args)
        .current_dir(cwd)
        .envs(&req.env)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .process_group(0)
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => ErrorBody::new(ErrorCode::NotFound, format!("cannot run {program}: {e}")),
            std::io::ErrorKind::PermissionDenied => {
                ErrorBody::new(ErrorCode::PermissionDenied, format!("cannot run {program}: {e}"))
            }
            _ => ErrorBody::new(ErrorCode::Io, format!("cannot run {program}: {e}")),
        })?;
    let pid = child.id().unwrap_or(0);
    let (acked_tx, acked_rx) = watch::channel(0u64);
    let (cancel_tx, cancel_rx) = tokio::sync::oneshot::channel();
    let (stdin_tx, stdin_rx) = mpsc::unbounded_channel();
    let stdin = child.stdin.take();
    tokio::spawn(feed_stdin(stdin, stdin_rx));
    let timeout = req.timeout_ms.map(Duration::from_millis);
    tokio::spawn(async move {
        run(child, req.stream, window, timeout, acked_rx, cancel_rx, out).await;
        on_done();
    });
    Ok((pid, ExecHandle { acked: acked_tx, cancel: Some(cancel_tx), stdin: stdin_tx }))
}

fn bad(msg: &str) -> ErrorBody {
    ErrorBody::new(ErrorCode::BadRequest, msg)
}

async fn feed_stdin(stdin: Option<ChildStdin>, mut rx: mpsc::UnboundedReceiver<Vec<u8>>) {
    let Some(mut stdin) = stdin else { return };
    while let Some(bytes) = rx.recv().await {
        // An empty frame closes stdin.
        if bytes.is_empty() || stdin.write_all(&bytes).await.is_err() {
            break;
        }
    }
}

async fn run(
    mut child: Child,
    stream: u32,
    window: u64,
    timeout: Option<Duration>,
    mut acked: watch::Receiver<u64>,
    mut cancel: tokio::sync::oneshot::Receiver<()>,
    out: Outbox,
) {
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let mut offset = 0u64;
    let mut buf_out = vec![0u8; 32 * 1024];
    let mut buf_err = vec![0u8; 32 * 1024];
    let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
    let (mut timed_out, mut cancelled) = (false, false);
    while stdout.is_some() || stderr.is_some() {
        let open = offset - *acked.borrow() < window;
        tokio::select! {
            r = read_some(&mut stdout, &mut buf_out), if open && stdout.is_some() => {
                match r {
                    Some(n) => { out.bulk_frame(Frame::new(FrameKind::ExecStdout, stream, offset, &buf_out[..n])); offset += n as u64; }
                    None => stdout = None,
                }
            }
            r = read_some(&mut stderr, &mut buf_err), if open && stderr.is_some() => {
                match r {
                    Some(n) => { out.bulk_frame(Frame::new(FrameKind::ExecStderr, stream, offset, &buf_err[..n])); offset += n as u64; }
                    None => stderr = None,
                }
            }
            changed = acked.changed() => {
                if changed.is_err() { cancelled = true; break; }
            }
            _ = &mut cancel => { cancelled = true; break; }
            () = sleep_until(deadline) => { timed_out = true; break; }
        }
    }
    if timed_out || cancelled {
        if let Some(pid) = child.id().and_then(|p| rustix::process::Pid::from_raw(p as i32)) {
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
        }
        let _ = child.start_kill();
    }
    let exit = match child.wait().await {
        Ok(status) => {
            use std::os::unix::process::ExitStatusExt;
            ExitStatus { code: status.code(), signal: status.signal() }
        }
        Err(_) => ExitStatus { code: None, signal: None },
    };
    // After its output, in the same queue.
    out.bulk_text(Envelope::<BridgeEvent>::event(ExecExited { stream, exit, timed_out, cancelled }).encode());
}

async fn read_some<R: AsyncRead + Unpin>(pipe: &mut Option<R>, buf: &mut [u8]) -> Option<usize> {
    match pipe.as_mut()?.read(buf).await {
        Ok(0) | Err(_) => None,
        Ok(n) => Some(n),
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
