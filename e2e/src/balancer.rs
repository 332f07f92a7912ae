//! A TCP load balancer in front of several replicas, as a bridge or browser meets one: each
//! new connection goes to the first replica (in the order given) that accepts it, so a dead
//! replica's clients land on a live one when they dial again; or, round robin, to each
//! replica in turn.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

pub struct Balancer {
    pub addr: SocketAddr,
    accept: JoinHandle<()>,
    /// Connections handed to each target so far.
    served: Arc<Mutex<HashMap<SocketAddr, usize>>>,
}

impl Balancer {
    /// Balances new connections over `targets`, preferring the first that answers.
    pub async fn start(targets: Vec<SocketAddr>) -> anyhow::Result<Self> {
        Self::launch(targets, false).await
    }

    /// Hands each new connection to the next of `targets` in turn (or the one after, if that
    /// one does not answer).
    pub async fn round_robin(targets: Vec<SocketAddr>) -> anyhow::Result<Self> {
        Self::launch(targets, true).await
    }

    async fn launch(targets: Vec<SocketAddr>, rotate: bool) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let served = Arc::new(Mutex::new(HashMap::new()));
        let counts = served.clone();
        let accept = tokio::spawn(async move {
            let mut turn = 0;
            while let Ok((mut inbound, _)) = listener.accept().await {
                let mut targets = targets.clone();
                let counts = counts.clone();
                if rotate && !targets.is_empty() {
                    let first = turn % targets.len();
                    targets.rotate_left(first);
                    turn += 1;
                }
                tokio::spawn(async move {
                    for target in targets {
                        if let Ok(mut outbound) = TcpStream::connect(target).await {
                            *counts.lock().unwrap_or_else(|p| p.into_inner()).entry(target).or_default() += 1;
                            let _ = outbound.set_nodelay(true);
                            let _ = inbound.set_nodelay(true);
                            let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                            return;
                        }
                    }
                });
            }
        });
        Ok(Self { addr, accept, served })
    }

    /// How many connections went to `target` so far.
    pub fn served(&self, target: SocketAddr) -> usize {
        self.served.lock().unwrap_or_else(|p| p.into_inner()).get(&target).copied().unwrap_or(0)
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        self.accept.abort();
    }
}
