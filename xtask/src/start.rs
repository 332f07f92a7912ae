//! `cargo xtask start`: Porta on this machine, with this machine enrolled as its first server.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use crate::build;

const DEFAULT_LISTEN: &str = "127.0.0.1:8111";

pub fn run() -> anyhow::Result<()> {
    let bin = build::release_bins()?;
    // What "Add server" hands out, served from `bin/bridges` by the `porta` beside it.
    crate::bridges::build(true)?;
    let root = build::root();
    let data = root.join("data");
    let first_run = !data.join("porta.db").exists();
    let listen = std::env::var("PORTA_LISTEN").unwrap_or_else(|_| DEFAULT_LISTEN.to_owned());
    let url = format!("http://{listen}");

    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        // Ctrl+C reaches the whole process group: Porta and the bridge stop by themselves;
        // we only wait for them.
        ctrlc::set_handler(move || stop.store(true, Ordering::SeqCst)).context("cannot handle Ctrl+C")?;
    }

    let mut backend = Command::new(bin.join("porta"))
        .args(["--listen", &listen, "--generate-admin-password"])
        .arg("--data-dir")
        .arg(&data)
        .spawn()
        .context("cannot start porta")?;
    wait_healthy(&listen, &mut backend)?;

    let bridge_config = data.join("bridge.json");
    if !bridge_config.exists() {
        enroll_local_bridge(&bin, &data, &bridge_config, &url)?;
    }
    let mut bridge = Command::new(bin.join("porta-bridge"))
        .arg("--config")
        .arg(&bridge_config)
        .args(["run", "--server", &url])
        .spawn()
        .context("cannot start porta-bridge")?;

    println!();
    println!("  Porta is running at {url}");
    if first_run && std::env::var_os("PORTA_ADMIN_PASSWORD").is_none() {
        println!("  Sign in as `admin` with the password printed above (shown only this once).");
    } else {
        println!("  Sign in as `admin` (password: PORTA_ADMIN_PASSWORD, or the one printed on the first start).");
    }
    println!("  \"This machine\" is enrolled as a server. Press Ctrl+C to stop.");
    println!();

    let result = supervise(&stop, &mut backend, &mut bridge);
    stop_child(&mut bridge);
    stop_child(&mut backend);
    println!("Porta stopped.");
    result
}

fn supervise(stop: &AtomicBool, backend: &mut Child, bridge: &mut Child) -> anyhow::Result<()> {
    while !stop.load(Ordering::SeqCst) {
        let exited = [("porta", backend.try_wait()?), ("porta-bridge", bridge.try_wait()?)];
        if let Some((name, Some(status))) = exited.into_iter().find(|(_, s)| s.is_some()) {
            // With Ctrl+C at a terminal the children get SIGINT too and may exit before our
            // handler has run; that is a stop, not a failure.
            std::thread::sleep(Duration::from_millis(300));
            if stop.load(Ordering::SeqCst) {
                break;
            }
            bail!("{name} exited ({status})");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(())
}

/// Waits for a child to stop by itself after Ctrl+C; terminates it if it does not.
fn stop_child(child: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = child.kill();
    let _ = child.wait();
}

fn wait_healthy(listen: &str, backend: &mut Child) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if let Some(status) = backend.try_wait()? {
            bail!("porta exited before it was ready ({status})");
        }
        if http_get_ok(listen, "/healthz") {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("porta did not answer on {listen} within 60 s")
}

/// A minimal `GET` over loopback: true on a 200 answer.
pub fn http_get_ok(addr: &str, path: &str) -> bool {
    let Ok(mut s) = TcpStream::connect(addr) else { return false };
    let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    if s.write_all(req.as_bytes()).is_err() {
        return false;
    }
    let mut head = [0u8; 12];
    s.read_exact(&mut head).is_ok() && head.starts_with(b"HTTP/1.1 200")
}

fn enroll_local_bridge(bin: &Path, data: &Path, config: &Path, url: &str) -> anyhow::Result<()> {
    let out = Command::new(bin.join("porta"))
        .arg("--data-dir")
        .arg(data)
        .args(["create-enrollment-token", "--name", "this machine"])
        .output()
        .context("cannot run porta create-enrollment-token")?;
    if !out.status.success() {
        bail!("cannot create an enrolment token: {}", String::from_utf8_lossy(&out.stderr));
    }
    let token = String::from_utf8(out.stdout)?.trim().to_owned();
    build::run(
        Command::new(bin.join("porta-bridge"))
            .arg("--config")
            .arg(config)
            .args(["enroll", "--server", url, "--token", &token]),
        "enrol this machine's bridge",
    )
}
