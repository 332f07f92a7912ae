//! Requests the backend itself makes of a server: commands it runs (a `git clone` for a new
//! project, an agent's command), as an exec stream on the bus whose output is gathered (the
//! end of it) and acknowledged as it arrives like any other stream; and single requests
//! answered with a typed reply.

use std::time::Duration;

use bytes::Bytes;
use porta_shared::bridge::{self, BridgeEvent};
use porta_shared::frame::{Frame, FrameKind};
use porta_shared::types::{Env, ExitStatus};
use porta_shared::{ErrorBody, ErrorCode};

use super::Relay;
use crate::bus::{Route, ToClient};

/// How much of the interleaved output is kept (the end of it), for error messages.
const KEEP: usize = 16 * 1024;

/// A command to run on a server.
#[derive(Debug, Clone, Default)]
pub struct Exec {
    pub argv: Vec<String>,
    /// `argv[0]` is a command line for `sh -c`.
    pub shell: bool,
    pub cwd: Option<String>,
    pub env: Env,
    /// Killed after this long.
    pub limit: Duration,
    /// Bytes kept of stdout and of stderr each (the end of them).
    pub keep: usize,
}

/// How a command ended.
#[derive(Debug, Clone)]
pub struct Finished {
    pub exit: ExitStatus,
    pub timed_out: bool,
    /// The last bytes of stdout and stderr, interleaved as they came.
    pub output: String,
    /// The last [`Exec::keep`] bytes of each stream.
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// Earlier output was dropped from `stdout` / `stderr`.
    pub truncated: bool,
    pub duration: Duration,
}

impl Finished {
    pub fn success(&self) -> bool {
        self.exit.code == Some(0) && !self.timed_out
    }
}

/// Appends `bytes` to `buf`, keeping its last `keep` bytes; true when something was dropped.
fn keep_tail(buf: &mut Vec<u8>, bytes: &[u8], keep: usize) -> bool {
    buf.extend_from_slice(bytes);
    if buf.len() <= keep {
        return false;
    }
    buf.drain(..buf.len() - keep);
    true
}

/// Runs `argv` (no shell) on `server` with `env`, killed after `limit`.
pub async fn run(
    relay: &Relay,
    server: &str,
    argv: Vec<String>,
    env: Env,
    limit: Duration,
) -> Result<Finished, ErrorBody> {
    run_exec(relay, server, Exec { argv, env, limit, keep: KEEP, ..Exec::default() }).await
}

/// Runs a command on `server`, gathering its output.
pub async fn run_exec(relay: &Relay, server: &str, exec: Exec) -> Result<Finished, ErrorBody> {
    let started = tokio::time::Instant::now();
    let (client, mut inbox) = relay.bus.register_client();
    let result = async {
        let stream = relay.bus.new_stream_id();
        let timeout_ms = u64::try_from(exec.limit.as_millis()).unwrap_or(u64::MAX);
        let req = bridge::ExecStart {
            argv: exec.argv,
            shell: exec.shell,
            cwd: exec.cwd,
            env: exec.env,
            timeout_ms: Some(timeout_ms),
            stream,
        };
        let answer = relay.answer_within;
        tokio::time::timeout(answer, relay.bus.request(server, req.into(), Route::Open(stream, client)))
            .await
            .map_err(|_| ErrorBody::new(ErrorCode::Timeout, "the server did not start the command in time"))??;
        let (mut output, mut stdout, mut stderr, mut truncated) = (Vec::new(), Vec::new(), Vec::new(), false);
        // The bridge kills the command at `limit`; this is for a bridge that goes away.
        let deadline = tokio::time::Instant::now() + exec.limit + Duration::from_secs(10);
        loop {
            let delivery = tokio::time::timeout_at(deadline, inbox.recv())
                .await
                .map_err(|_| ErrorBody::new(ErrorCode::Timeout, "the command did not finish"))?
                .ok_or_else(|| ErrorBody::new(ErrorCode::ServerOffline, "the server went away"))?;
            match delivery {
                ToClient::Frame(bytes) => {
                    let Ok(frame) = Frame::decode(&bytes) else { continue };
                    if frame.stream != stream || !frame.kind.is_output() {
                        continue;
                    }
                    keep_tail(&mut output, frame.payload, KEEP);
                    let own = if frame.kind == FrameKind::ExecStderr { &mut stderr } else { &mut stdout };
                    truncated |= keep_tail(own, frame.payload, exec.keep);
                    let end = frame.seq + frame.payload.len() as u64;
                    let ack = Frame::new(FrameKind::Ack, stream, end, &[]).encode();
                    relay.bus.send_frame(server, Bytes::from(ack));
                }
                ToClient::Event(BridgeEvent::ExecExited(e)) if e.stream == stream => {
                    return Ok(Finished {
                        exit: e.exit,
                        timed_out: e.timed_out,
                        output: String::from_utf8_lossy(&output).into_owned(),
                        stdout,
                        stderr,
                        truncated,
                        duration: started.elapsed(),
                    });
                }
                ToClient::Event(_) => {}
            }
        }
    }
    .await;
    relay.bus.unregister_client(client);
    result
}

/// Asks `server`'s bridge one request and waits (at most the configured request timeout)
/// for its typed answer.
pub async fn ask<T: serde::de::DeserializeOwned>(
    relay: &Relay,
    server: &str,
    req: bridge::BridgeRequest,
) -> Result<T, ErrorBody> {
    let limit = relay.answer_within;
    let raw = tokio::time::timeout(limit, relay.bus.request(server, req, Route::None))
        .await
        .map_err(|_| ErrorBody::new(ErrorCode::Timeout, "the server did not answer in time"))??;
    serde_json::from_str(raw.get())
        .map_err(|e| ErrorBody::new(ErrorCode::Internal, format!("the server's answer was malformed: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_keeps_its_end() {
        let mut buf = Vec::new();
        assert!(!keep_tail(&mut buf, b"abc", 4));
        assert!(keep_tail(&mut buf, b"def", 4));
        assert_eq!(buf, b"cdef");
        assert!(!keep_tail(&mut buf, b"", 4));
    }
}
