//! Commands the backend itself runs on a server (a `git clone` for a new project): an exec
//! stream on the bus whose output is gathered (the end of it, for error messages) and
//! acknowledged as it arrives, like any other stream.

use std::time::Duration;

use bytes::Bytes;
use porta_shared::bridge::{self, BridgeEvent};
use porta_shared::frame::{Frame, FrameKind};
use porta_shared::types::{Env, ExitStatus};
use porta_shared::{ErrorBody, ErrorCode};

use super::bus::{Route, ToClient};
use crate::state::AppState;

/// How much of the output is kept (the end of it).
const KEEP: usize = 16 * 1024;

/// How a command ended.
#[derive(Debug, Clone)]
pub struct Finished {
    pub exit: ExitStatus,
    pub timed_out: bool,
    /// The last bytes of stdout and stderr, interleaved as they came.
    pub output: String,
}

impl Finished {
    pub fn success(&self) -> bool {
        self.exit.code == Some(0) && !self.timed_out
    }
}

/// Runs `argv` (no shell) on `server` with `env`, killed after `limit`.
pub async fn run(
    state: &AppState,
    server: &str,
    argv: Vec<String>,
    env: Env,
    limit: Duration,
) -> Result<Finished, ErrorBody> {
    let (client, mut inbox) = state.bus.register_client();
    let result = async {
        let stream = state.bus.new_stream_id();
        let timeout_ms = u64::try_from(limit.as_millis()).unwrap_or(u64::MAX);
        let req = bridge::ExecStart { argv, shell: false, cwd: None, env, timeout_ms: Some(timeout_ms), stream };
        let answer = Duration::from_millis(state.config.request_timeout_ms);
        tokio::time::timeout(answer, state.bus.request(server, req.into(), Route::Open(stream, client)))
            .await
            .map_err(|_| ErrorBody::new(ErrorCode::Timeout, "the server did not start the command in time"))??;
        let mut output = Vec::new();
        // The bridge kills the command at `limit`; this is for a bridge that goes away.
        let deadline = tokio::time::Instant::now() + limit + Duration::from_secs(10);
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
                    output.extend_from_slice(frame.payload);
                    if output.len() > KEEP {
                        output.drain(..output.len() - KEEP);
                    }
                    let end = frame.seq + frame.payload.len() as u64;
                    let ack = Frame::new(FrameKind::Ack, stream, end, &[]).encode();
                    state.bus.send_frame(server, Bytes::from(ack));
                }
                ToClient::Event(BridgeEvent::ExecExited(e)) if e.stream == stream => {
                    return Ok(Finished {
                        exit: e.exit,
                        timed_out: e.timed_out,
                        output: String::from_utf8_lossy(&output).into_owned(),
                    });
                }
                ToClient::Event(_) => {}
            }
        }
    }
    .await;
    state.bus.unregister_client(client);
    result
}
