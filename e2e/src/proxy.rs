//! A TCP proxy in front of the backend (for a bridge or a browser) whose connections a test
//! can cut, to simulate a network drop while every process stays alive.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub struct Proxy {
    pub addr: SocketAddr,
    conns: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accept: JoinHandle<()>,
    freeze: watch::Sender<u64>,
    accepting: Arc<AtomicBool>,
}

impl Proxy {
    /// Forwards every connection on a new local port to `target`.
    pub async fn start(target: SocketAddr) -> anyhow::Result<Self> {
        Self::serve(TcpListener::bind("127.0.0.1:0").await?, target)
    }

    /// Forwards every connection `listener` accepts to `target` (bind first when the
    /// proxy's address must be known before the target exists, e.g. as an allowed origin).
    pub fn serve(listener: TcpListener, target: SocketAddr) -> anyhow::Result<Self> {
        let addr = listener.local_addr()?;
        let conns: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let (freeze, frozen) = watch::channel(0u64);
        let accepting = Arc::new(AtomicBool::new(true));
        let accept = tokio::spawn({
            let conns = conns.clone();
            let accepting = accepting.clone();
            async move {
                while let Ok((mut inbound, _)) = listener.accept().await {
                    if !accepting.load(Ordering::SeqCst) {
                        continue;
                    }
                    let mut frozen = frozen.clone();
                    frozen.mark_unchanged();
                    let task = tokio::spawn(async move {
                        if let Ok(mut outbound) = TcpStream::connect(target).await {
                            tokio::select! {
                                _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                                _ = frozen.changed() => {
                                    // Half-open: both sockets stay up, nothing flows.
                                    std::future::pending::<()>().await;
                                }
                            }
                        }
                    });
                    conns.lock().unwrap_or_else(|p| p.into_inner()).push(task);
                }
            }
        });
        Ok(Self { addr, conns, accept, freeze, accepting })
    }

    /// Refuses (closes at once) new connections while `false`.
    pub fn set_accepting(&self, on: bool) {
        self.accepting.store(on, Ordering::SeqCst);
    }

    /// Stops forwarding on every open connection but keeps them open, like a network that
    /// silently drops packets. New connections are forwarded as usual.
    pub fn freeze(&self) {
        self.freeze.send_modify(|n| *n += 1);
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Drops every open connection (both directions close at once).
    pub fn cut(&self) {
        for task in self.conns.lock().unwrap_or_else(|p| p.into_inner()).drain(..) {
            task.abort();
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}
