//! A TCP load balancer in front of several replicas, as a bridge or browser meets one: each
//! new connection goes to the first replica (in the order given) that accepts it, so a dead
//! replica's clients land on a live one when they dial again.

use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

pub struct Balancer {
    pub addr: SocketAddr,
    accept: JoinHandle<()>,
}

impl Balancer {
    /// Balances new connections over `targets`, preferring the first that answers.
    pub async fn start(targets: Vec<SocketAddr>) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let accept = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                let targets = targets.clone();
                tokio::spawn(async move {
                    for target in targets {
                        if let Ok(mut outbound) = TcpStream::connect(target).await {
                            let _ = outbound.set_nodelay(true);
                            let _ = inbound.set_nodelay(true);
                            let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                            return;
                        }
                    }
                });
            }
        });
        Ok(Self { addr, accept })
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
