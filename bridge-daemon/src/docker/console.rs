//! `porta-bridge container-console`: a shell in a container, or the container's main process,
//! on this process's terminal, through the engine's API — what `docker exec -it` and
//! `docker attach` do. The bridge runs it on a PTY of its own, so a console is a Porta
//! terminal like any other (it survives reloads and reconnects, is recorded when the
//! workspace records, and is handed over in an upgrade) and needs no `docker` command on the
//! server.
//!
//! Keystrokes go to the container as they are typed (this terminal is raw: the container's
//! own terminal does the line editing and echo); a resize of the Porta terminal resizes the
//! container's. When the Porta terminal closes, the exec'd shell is hung up (SIGHUP to it, as
//! closing a terminal does) and an attachment is let go (the container runs on).

use std::io::{Read as _, Write as _};
use std::path::PathBuf;

use bollard::exec::{CreateExecOptions, StartExecOptions, StartExecResults};
use bollard::query_parameters::{AttachContainerOptionsBuilder, ResizeContainerTTYOptionsBuilder};
use futures_util::StreamExt as _;
use tokio::io::AsyncWriteExt as _;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

use super::{Docker, reference};

/// The exit code when the console could not start (as `docker exec` uses 125-127).
const CANNOT_START: u8 = 125;

/// What runs when no command is given: the best shell the container has.
const FIND_A_SHELL: &str = "for s in bash ash sh; do command -v $s >/dev/null 2>&1 && exec $s; done; exec sh";

/// Runs a console on this process's terminal until it ends; its exit code is the shell's (or
/// the container's main process's, attached).
pub async fn run(socket: Option<PathBuf>, container: String, command: Vec<String>, attach: bool) -> u8 {
    match console(socket, &container, command, attach).await {
        Ok(code) => code,
        Err(why) => {
            // Said on the terminal, where the person looks.
            let _ = writeln!(std::io::stderr(), "\r\nporta: {why}\r");
            CANNOT_START
        }
    }
}

async fn console(socket: Option<PathBuf>, container: &str, command: Vec<String>, attach: bool) -> Result<u8, String> {
    let container = reference(container).map_err(|e| e.message)?;
    // Heard from the start: a terminal closed while the console starts still ends it cleanly.
    let mut winch = signal(SignalKind::window_change()).map_err(|e| e.to_string())?;
    let mut hangups = signal(SignalKind::hangup()).map_err(|e| e.to_string())?;
    let mut term = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
    let docker = Docker::new(socket);
    let (client, _) = docker.engine().await.map_err(|u| format!("{} {}", u.reason, u.hint))?;
    let found = client.inspect_container(container, None).await.map_err(|e| docker.failed(e, container).message)?;
    let name = found.name.clone().unwrap_or_default().trim_start_matches('/').to_owned();
    let state = found.state.as_ref().and_then(|s| s.status).map(|s| s.to_string()).unwrap_or_default();
    if state != "running" {
        return Err(format!("{name} is {state}, not running: start it first"));
    }
    let tty = found.config.as_ref().and_then(|c| c.tty).unwrap_or(false);
    let raw = Raw::enter();
    let (output, mut input, resize): (_, _, Resizer) = if attach {
        let options = AttachContainerOptionsBuilder::new().stdin(true).stdout(true).stderr(true).stream(true).build();
        let attached =
            client.attach_container(container, Some(options)).await.map_err(|e| docker.failed(e, &name).message)?;
        (attached.output, attached.input, Resizer::Container { tty })
    } else {
        let cmd = if command.is_empty() { vec!["sh".into(), "-c".into(), FIND_A_SHELL.into()] } else { command };
        let options = CreateExecOptions {
            attach_stdin: Some(true),
            attach_stdout: Some(true),
            attach_stderr: Some(true),
            tty: Some(true),
            cmd: Some(cmd),
            env: Some(vec!["TERM=xterm-256color".into(), "COLORTERM=truecolor".into()]),
            ..Default::default()
        };
        let exec = client.create_exec(container, options).await.map_err(|e| docker.failed(e, &name).message)?;
        let start = StartExecOptions { detach: false, tty: true, output_capacity: None };
        match client.start_exec(&exec.id, Some(start)).await.map_err(|e| docker.failed(e, &name).message)? {
            StartExecResults::Attached { output, input } => (output, input, Resizer::Exec(exec.id)),
            StartExecResults::Detached => return Err("the engine did not attach the console".into()),
        }
    };
    resize.to(&client, &name, size()).await;
    let hangup_exec = match &resize {
        Resizer::Exec(id) => Hangup::prepare(&client, id).await,
        Resizer::Container { .. } => None,
    };
    let keys = keystrokes();
    let screen = Screen::start();
    let (mut keys, mut output) = (keys, output);
    let hung_up = loop {
        tokio::select! {
            chunk = output.next() => match chunk {
                // A terminal nobody reads holds the output back; a hang-up is still heard.
                Some(Ok(out)) => tokio::select! {
                    sent = screen.tx.send(out.into_bytes().to_vec()) => if sent.is_err() {
                        break true;
                    },
                    _ = hangups.recv() => break true,
                    _ = term.recv() => break true,
                },
                Some(Err(e)) => {
                    let _ = screen.tx.send(format!("\r\nporta: the console ended: {e}\r\n").into_bytes()).await;
                    break false;
                }
                None => break false,
            },
            typed = keys.recv() => match typed {
                Some(bytes) => {
                    if input.write_all(&bytes).await.is_err() || input.flush().await.is_err() {
                        break false;
                    }
                }
                // This terminal closed.
                None => break true,
            },
            _ = winch.recv() => resize.to(&client, &name, size()).await,
            _ = hangups.recv() => break true,
            _ = term.recv() => break true,
        }
    };
    if hung_up {
        // The Porta terminal went away: the shell in the container goes too, as a shell does
        // when its terminal closes (first: the bridge kills a console slow to end); an
        // attached container runs on.
        if let Some(h) = &hangup_exec {
            h.send(&client).await;
        }
        return Ok(129);
    }
    // Everything written reaches the terminal before the console ends.
    screen.finish();
    drop(raw);
    let code = match &resize {
        Resizer::Exec(id) => client.inspect_exec(id).await.ok().and_then(|e| e.exit_code),
        Resizer::Container { .. } => client
            .inspect_container(container, None)
            .await
            .ok()
            .and_then(|c| c.state)
            .filter(|s| s.running != Some(true))
            .and_then(|s| s.exit_code),
    };
    Ok(code.map_or(0, |c| u8::try_from(c & 0xff).unwrap_or(1)))
}

/// How this console's container terminal is resized.
enum Resizer {
    Exec(String),
    /// Attached: only a container started with a terminal has one to resize.
    Container {
        tty: bool,
    },
}

impl Resizer {
    async fn to(&self, client: &bollard::Docker, name: &str, (rows, cols): (u16, u16)) {
        let done = match self {
            Self::Exec(id) => {
                let size = bollard::exec::ResizeExecOptions { height: rows, width: cols };
                client.resize_exec(id, size).await
            }
            Self::Container { tty: true } => {
                let size = ResizeContainerTTYOptionsBuilder::new().h(i32::from(rows)).w(i32::from(cols)).build();
                client.resize_container_tty(name, size).await
            }
            Self::Container { tty: false } => Ok(()),
        };
        // A resize racing the process's start or end is harmless.
        if let Err(e) = done {
            tracing::debug!(error = %e, "console resize");
        }
    }
}

/// Ends the exec'd shell when its terminal closes. The engine has no call for it, so a
/// second exec in the same container signals it by its pid there; that exec is made while
/// the console starts, so that a hang-up needs one call to the engine (the bridge kills a
/// console that has not ended half a second after the hang-up).
struct Hangup {
    /// The exec that signals the shell, made and not started.
    kill: String,
}

impl Hangup {
    async fn prepare(client: &bollard::Docker, exec: &str) -> Option<Self> {
        let armed = Self::arm(client, exec).await;
        if armed.is_none() {
            tracing::warn!("console: its shell cannot be hung up when the terminal closes");
        }
        armed
    }

    async fn arm(client: &bollard::Docker, exec: &str) -> Option<Self> {
        // The engine says the shell's pid once it has started it.
        let mut inspected = client.inspect_exec(exec).await.ok()?;
        for _ in 0..20 {
            // (Not running yet is not ended: the engine answers the attach before it starts it.)
            if inspected.pid.is_some_and(|p| p > 0) || inspected.exit_code.is_some() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            inspected = client.inspect_exec(exec).await.ok()?;
        }
        let (container, host_pid) = (inspected.container_id?, inspected.pid.filter(|&p| p > 0)?);
        // That pid is this machine's only if the bridge sees the engine's processes: the
        // process there must be in the container's cgroup.
        let cgroup = std::fs::read_to_string(format!("/proc/{host_pid}/cgroup")).ok()?;
        if !cgroup.contains(&container) {
            return None;
        }
        // The shell's pid in the container: the last of its pids, one per pid namespace.
        let status = std::fs::read_to_string(format!("/proc/{host_pid}/status")).ok()?;
        let pid = status
            .lines()
            .find_map(|l| l.strip_prefix("NSpid:"))
            .and_then(|l| l.split_whitespace().last())
            // (never the container's main process)
            .filter(|p| p.bytes().all(|b| b.is_ascii_digit()) && *p != "1")?;
        let kill = CreateExecOptions::<String> {
            cmd: Some(vec!["sh".into(), "-c".into(), format!("kill -HUP {pid}")]),
            ..Default::default()
        };
        let made = client.create_exec(&container, kill).await.ok()?;
        Some(Self { kill: made.id })
    }

    async fn send(&self, client: &bollard::Docker) {
        let detached = StartExecOptions { detach: true, tty: false, output_capacity: None };
        if let Err(e) = client.start_exec(&self.kill, Some(detached)).await {
            tracing::debug!(error = %e, "console hang-up");
        }
    }
}

/// The terminal's size, rows and columns.
pub(crate) fn size() -> (u16, u16) {
    match rustix::termios::tcgetwinsize(std::io::stdin()) {
        Ok(ws) if ws.ws_row > 0 && ws.ws_col > 0 => (ws.ws_row, ws.ws_col),
        _ => (24, 80),
    }
}

/// What is typed, read on a thread of its own (a blocking read of a terminal cannot be
/// called back; the process exits without waiting for it).
fn keystrokes() -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel(16);
    let spawned = std::thread::Builder::new().name("console-keys".into()).spawn(move || {
        let mut buf = vec![0u8; 4096];
        let mut stdin = std::io::stdin().lock();
        loop {
            match stdin.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx.blocking_send(buf[..n].to_vec()).is_err() {
                        break;
                    }
                }
            }
        }
    });
    if spawned.is_err() {
        tracing::warn!("console: no thread for keystrokes");
    }
    rx
}

/// Where output goes: written on a thread of its own, so a terminal that is not read (its
/// viewer's window is full) holds this console back instead of a runtime thread.
struct Screen {
    tx: mpsc::Sender<Vec<u8>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Screen {
    fn start() -> Self {
        let (tx, mut rx) = mpsc::channel::<Vec<u8>>(16);
        let thread = std::thread::Builder::new()
            .name("console-screen".into())
            .spawn(move || {
                let mut out = std::io::stdout().lock();
                while let Some(bytes) = rx.blocking_recv() {
                    if out.write_all(&bytes).and_then(|()| out.flush()).is_err() {
                        break;
                    }
                }
            })
            .ok();
        Self { tx, thread }
    }

    /// Waits until everything sent is written.
    fn finish(self) {
        drop(self.tx);
        if let Some(t) = self.thread {
            let _ = t.join();
        }
    }
}

/// This terminal in raw mode while the console runs: bytes pass as typed, and the
/// container's terminal does the rest.
struct Raw(Option<rustix::termios::Termios>);

impl Raw {
    fn enter() -> Self {
        let stdin = std::io::stdin();
        let Ok(before) = rustix::termios::tcgetattr(&stdin) else { return Self(None) };
        let mut raw = before.clone();
        raw.make_raw();
        let _ = rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, &raw);
        Self(Some(before))
    }
}

impl Drop for Raw {
    fn drop(&mut self) {
        if let Some(before) = &self.0 {
            let _ = rustix::termios::tcsetattr(std::io::stdin(), rustix::termios::OptionalActions::Now, before);
        }
    }
}
