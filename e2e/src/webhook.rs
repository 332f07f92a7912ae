//! A webhook receiver on loopback, for alert notifications in tests.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(30);

/// A webhook receiver on loopback: it keeps every body, and answers the first `fail_first`
/// requests with HTTP 500.
pub struct Receiver {
    pub url: String,
    pub got: Arc<Mutex<Vec<Value>>>,
    _task: tokio::task::JoinHandle<()>,
}

#[derive(Clone)]
struct Shared {
    got: Arc<Mutex<Vec<Value>>>,
    fail_left: Arc<Mutex<u32>>,
}

async fn hook(State(s): State<Shared>, Json(body): Json<Value>) -> StatusCode {
    let mut left = s.fail_left.lock().unwrap_or_else(|p| p.into_inner());
    if *left > 0 {
        *left -= 1;
        return StatusCode::INTERNAL_SERVER_ERROR;
    }
    s.got.lock().unwrap_or_else(|p| p.into_inner()).push(body);
    StatusCode::OK
}

impl Receiver {
    pub async fn start(fail_first: u32) -> anyhow::Result<Self> {
        let got = Arc::new(Mutex::new(Vec::new()));
        let shared = Shared { got: got.clone(), fail_left: Arc::new(Mutex::new(fail_first)) };
        let app = axum::Router::new().route("/hook", axum::routing::post(hook)).with_state(shared);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let url = format!("http://{}/hook", listener.local_addr()?);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { url, got, _task: task })
    }

    /// Waits for a body whose `event` is `event`; returns it.
    pub async fn wait_for(&self, event: &str) -> anyhow::Result<Value> {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            if let Some(v) = self.got.lock().unwrap_or_else(|p| p.into_inner()).iter().find(|v| v["event"] == event) {
                return Ok(v.clone());
            }
            anyhow::ensure!(
                tokio::time::Instant::now() < deadline,
                "no {event} arrived: {:?}",
                self.got.lock().map(|g| g.clone())
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
