//! A small SMTP server on loopback that keeps what it is sent, for email notifications in
//! tests: plain SMTP (no TLS, no login), as a relay on the same host would take mail.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpListener;

/// One message as received: the envelope and the raw data.
#[derive(Debug, Clone, Default)]
pub struct Mail {
    pub from: String,
    pub to: Vec<String>,
    pub data: String,
}

pub struct Mailbox {
    pub port: u16,
    pub mails: Arc<Mutex<Vec<Mail>>>,
    _task: tokio::task::JoinHandle<()>,
}

impl Mailbox {
    /// Starts the server; with `refuse_recipients` every RCPT gets a permanent 550.
    pub async fn start(refuse_recipients: bool) -> anyhow::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let mails = Arc::new(Mutex::new(Vec::new()));
        let kept = mails.clone();
        let task = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let kept = kept.clone();
                tokio::spawn(async move {
                    let _ = session(socket, kept, refuse_recipients).await;
                });
            }
        });
        Ok(Self { port, mails, _task: task })
    }

    /// Waits for the first message.
    pub async fn wait(&self, within: Duration) -> anyhow::Result<Mail> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Some(m) = self.mails.lock().unwrap_or_else(|p| p.into_inner()).first() {
                return Ok(m.clone());
            }
            anyhow::ensure!(tokio::time::Instant::now() < deadline, "no mail arrived");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn session(socket: tokio::net::TcpStream, kept: Arc<Mutex<Vec<Mail>>>, refuse: bool) -> std::io::Result<()> {
    let (read, mut write) = socket.into_split();
    let mut lines = BufReader::new(read).lines();
    write.write_all(b"220 mailbox.test ESMTP\r\n").await?;
    let mut mail = Mail::default();
    while let Some(line) = lines.next_line().await? {
        let upper = line.to_ascii_uppercase();
        let reply: &[u8] = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            b"250-mailbox.test\r\n250 8BITMIME\r\n"
        } else if upper.starts_with("MAIL FROM:") {
            mail = Mail { from: line[10..].trim().to_owned(), ..Mail::default() };
            b"250 OK\r\n"
        } else if upper.starts_with("RCPT TO:") {
            if refuse {
                b"550 5.1.1 no such mailbox\r\n"
            } else {
                mail.to.push(line[8..].trim().to_owned());
                b"250 OK\r\n"
            }
        } else if upper == "DATA" {
            write.write_all(b"354 go ahead\r\n").await?;
            while let Some(l) = lines.next_line().await? {
                if l == "." {
                    break;
                }
                mail.data.push_str(&l);
                mail.data.push('\n');
            }
            kept.lock().unwrap_or_else(|p| p.into_inner()).push(std::mem::take(&mut mail));
            b"250 OK queued\r\n"
        } else if upper == "QUIT" {
            write.write_all(b"221 bye\r\n").await?;
            return Ok(());
        } else if upper == "RSET" || upper == "NOOP" {
            b"250 OK\r\n"
        } else {
            b"502 not implemented\r\n"
        };
        write.write_all(reply).await?;
    }
    Ok(())
}
