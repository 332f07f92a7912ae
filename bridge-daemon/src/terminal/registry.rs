//! Every terminal of this bridge process: opening, finding, listing and ending them.

use super::*;

/// Every terminal of this bridge process.
pub struct Terminals {
    config: TermConfig,
    next_id: AtomicU32,
    map: Mutex<HashMap<TermId, Arc<Terminal>>>,
}

impl Terminals {
    pub fn new(config: TermConfig) -> Self {
        // Ids start at a random point so that a client holding an id from an earlier bridge
        // process does not silently reach a new terminal that reused it.
        let start = rand::random_range(1..=u32::MAX / 2);
        Self { config, next_id: AtomicU32::new(start), map: Mutex::new(HashMap::new()) }
    }

    pub fn config(&self) -> &TermConfig {
        &self.config
    }

    fn map(&self) -> MutexGuard<'_, HashMap<TermId, Arc<Terminal>>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn get(&self, id: TermId) -> Result<Arc<Terminal>, ErrorBody> {
        self.map()
            .get(&id)
            .cloned()
            .ok_or_else(|| ErrorBody::new(ErrorCode::UnknownTerminal, format!("no terminal {id} on this server")))
    }

    pub fn list(&self) -> Vec<TermInfo> {
        let mut all: Vec<_> = self.map().values().map(|t| t.info()).collect();
        all.sort_by_key(|t| (t.started_ms, t.term));
        all
    }

    pub fn count(&self) -> usize {
        self.map().len()
    }

    /// Starts a shell on a new PTY.
    pub fn open(&self, req: &TermOpen, default_cwd: &str) -> Result<Arc<Terminal>, ErrorBody> {
        if !req.size.is_valid() {
            return Err(ErrorBody::new(ErrorCode::BadRequest, format!("size must be 1..={} each way", TermSize::MAX)));
        }
        self.reap();
        if self.count() >= self.config.max_terminals {
            return Err(ErrorBody::new(
                ErrorCode::Unavailable,
                format!("this server already runs {} terminals", self.config.max_terminals),
            ));
        }
        let shell = req.shell.clone().unwrap_or_else(default_shell);
        let cwd = req.cwd.clone().unwrap_or_else(|| default_cwd.to_owned());
        if !std::path::Path::new(&cwd).is_dir() {
            return Err(ErrorBody::new(ErrorCode::NotFound, format!("working directory {cwd} does not exist")));
        }
        let pair = native_pty_system()
            .openpty(pty_size(req.size))
            .map_err(|e| ErrorBody::new(ErrorCode::Io, format!("cannot open a PTY: {e}")))?;
        let mut cmd = CommandBuilder::new(&shell);
        cmd.args(&req.args);
        cmd.cwd(&cwd);
        cmd.env("TERM", "xterm-256color");
        cmd.env("COLORTERM", "truecolor");
        cmd.env("PORTA", "1");
        for (k, v) in &req.env {
            cmd.env(k, v);
        }
        let child = pair
            .slave
            .spawn_command(cmd)
            .map_err(|e| ErrorBody::new(ErrorCode::Io, format!("cannot start {shell}: {e}")))?;
        // Only the child may hold the slave side, so the reader sees EOF when the shell ends.
        drop(pair.slave);
        let pid = child.process_id();
        // We reap the child ourselves (to learn its exit code and signal); dropping the
        // handle neither waits for nor kills it.
        drop(child);
        let reader = pair
            .master
            .try_clone_reader()
            .map_err(|e| ErrorBody::new(ErrorCode::Io, format!("cannot read the PTY: {e}")))?;
        let writer = pair
            .master
            .take_writer()
            .map_err(|e| ErrorBody::new(ErrorCode::Io, format!("cannot write the PTY: {e}")))?;
        let (input, input_rx) = std_mpsc::channel::<Vec<u8>>();
        let id = TermId(self.next_id.fetch_add(1, Ordering::Relaxed));
        let term = Arc::new(Terminal {
            id,
            shell,
            cwd,
            pid,
            started_ms: unix_time_ms(),
            window: self.config.window,
            state: Mutex::new(State {
                ring: Ring::new(self.config.ring_bytes),
                size: req.size,
                exit: None,
                exited_at: None,
                attachments: Vec::new(),
                title: None,
            }),
            reader_wake: Condvar::new(),
            master: Mutex::new(pair.master),
            input,
        });
        spawn_thread(format!("pty-read-{id}"), {
            let term = term.clone();
            move || read_loop(&term, reader)
        })?;
        spawn_thread(format!("pty-write-{id}"), move || write_loop(writer, &input_rx))?;
        self.map().insert(id, term.clone());
        tracing::info!(term = %id, pid, "terminal started");
        Ok(term)
    }

    /// Ends a terminal: hangs up its shell and forgets it.
    pub fn close(&self, id: TermId) -> Result<(), ErrorBody> {
        let term = self
            .map()
            .remove(&id)
            .ok_or_else(|| ErrorBody::new(ErrorCode::UnknownTerminal, format!("no terminal {id} on this server")))?;
        std::thread::spawn(move || end_all(&[term]));
        tracing::info!(term = %id, "terminal closed");
        Ok(())
    }

    /// Forgets terminals that exited longer ago than the configured TTL.
    pub fn reap(&self) {
        let ttl = self.config.exited_ttl;
        self.map().retain(|_, t| t.exited_for().is_none_or(|age| age < ttl));
    }

    /// Hangs up every terminal (daemon shutdown).
    pub fn close_all(&self) {
        let all: Vec<_> = self.map().drain().map(|(_, t)| t).collect();
        end_all(&all);
    }
}

/// Hangs up the terminals' shells, gives them half a second to leave, then kills the rest.
pub(super) fn end_all(terms: &[Arc<Terminal>]) {
    const GRACE: Duration = Duration::from_millis(500);
    for t in terms {
        t.hang_up();
    }
    let deadline = Instant::now() + GRACE;
    while Instant::now() < deadline && !terms.iter().all(|t| t.has_exited()) {
        std::thread::sleep(Duration::from_millis(20));
    }
    for t in terms {
        t.kill_if_alive();
    }
}
