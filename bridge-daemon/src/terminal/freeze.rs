//! Stopping every terminal's reader between two reads, so that the PTYs and their rings can
//! be handed to another process with no output read and left behind.
//!
//! A reader waits for its PTY with `poll`, beside an eventfd that is readable while a freeze
//! is on: a reader blocked in `read` could not be called back, one in `poll` can.

use std::fs::File;
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, Ordering};

use rustix::event::{EventfdFlags, PollFd, PollFlags};

pub struct Freeze {
    frozen: AtomicBool,
    /// Readable while frozen.
    event: OwnedFd,
}

impl Freeze {
    pub fn new() -> std::io::Result<Self> {
        let event = rustix::event::eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK)?;
        Ok(Self { frozen: AtomicBool::new(false), event })
    }

    pub fn is_frozen(&self) -> bool {
        self.frozen.load(Ordering::SeqCst)
    }

    /// Waits until `pty` has output (or has closed): true. False when a freeze began.
    pub(super) fn readable(&self, pty: &File) -> bool {
        let mut fds = [PollFd::new(pty, PollFlags::IN), PollFd::new(&self.event, PollFlags::IN)];
        match rustix::event::poll(&mut fds, None) {
            // Only when the PTY itself is ready: a read must never block on an idle one.
            Ok(_) => !self.is_frozen() && !fds[0].revents().is_empty(),
            Err(rustix::io::Errno::INTR) => false,
            // Let the read report it.
            Err(_) => true,
        }
    }

    /// Readers stop at their next wait (see `Terminals::freeze`).
    pub(super) fn begin(&self) {
        self.frozen.store(true, Ordering::SeqCst);
        let _ = rustix::io::write(&self.event, &1u64.to_ne_bytes());
    }

    /// Readers may go on (after their next wake-up).
    pub(super) fn end(&self) {
        // Quiet first, then go: a reader woken in between must not take the stale wake-up
        // for output.
        let mut count = [0u8; 8];
        let _ = rustix::io::read(&self.event, &mut count);
        self.frozen.store(false, Ordering::SeqCst);
    }
}
