//! Every terminal of this bridge process: opening, finding, listing and ending them, and
//! handing them all to the next process (freeze, snapshot, adopt).

use serde::{Deserialize, Serialize};

use super::*;

/// Every terminal of this bridge process.
pub struct Terminals {
    config: TermConfig,
    next_id: AtomicU32,
    map: Mutex<HashMap<TermId, Arc<Terminal>>>,
    freeze: Arc<Freeze>,
}

/// A terminal as one bridge process hands it to the next: everything but its PTY (passed as
/// a descriptor beside it) and its output (passed as bytes after the list).
#[derive(Debug, Serialize, Deserialize)]
pub struct Adopted {
    pub id: TermId,
    pub shell: String,
    pub cwd: String,
    pub pid: Option<u32>,
    pub started_ms: u64,
    pub size: TermSize,
    pub title: Option<String>,
    pub exit: Option<ExitStatus>,
    /// Offset of the first byte of output held.
    pub ring_start: u64,
    #[serde(skip)]
    pub output: Vec<u8>,
    /// How many bytes `output` has (it travels apart from the list).
    pub output_len: u64,
}

impl Terminals {
    pub fn new(config: TermConfig) -> std::io::Result<Self> {
        // Ids start at a random point so that a client holding an id from an earlier bridge
        // process does not silently reach a new terminal that reused it.
        let start = rand::random_range(1..=u32::MAX / 2);
        Ok(Self {
            config,
            next_id: AtomicU32::new(start),
            map: Mutex::new(HashMap::new()),
            freeze: Arc::new(Freeze::new()?),
        })
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
        let io = |what: String| move |e: pty_process::Error| ErrorBody::new(ErrorCode::Io, format!("{what}: {e}"));
        let (pty, pts) = pty_process::blocking::open().map_err(io("cannot open a PTY".into()))?;
        pty.resize(pty_process::Size::new(req.size.rows, req.size.cols)).map_err(io("cannot size the PTY".into()))?;
        let mut cmd = pty_process::blocking::Command::new(&shell)
            .args(&req.args)
            .current_dir(&cwd)
            .env("TERM", "xterm-256color")
            .env("COLORTERM", "truecolor")
            .env("PORTA", "1");
        for (k, v) in &req.env {
            cmd = cmd.env(k, v);
        }
        // The shell leads a session of its own with the PTY as its controlling terminal; the
        // PTY's other side is closed here once it has it, so the reader sees EOF when it ends.
        let child = cmd.spawn(pts).map_err(io(format!("cannot start {shell}")))?;
        let pid = child.id();
        // We reap the child ourselves (to learn its exit code and signal); dropping the
        // handle neither waits for nor kills it.
        drop(child);
        let id = TermId(self.next_id.fetch_add(1, Ordering::Relaxed));
        let term = self.start(
            Adopted {
                id,
                shell,
                cwd,
                pid: Some(pid),
                started_ms: unix_time_ms(),
                size: req.size,
                title: None,
                exit: None,
                ring_start: 0,
                output: Vec::new(),
                output_len: 0,
            },
            OwnedFd::from(pty),
        )?;
        tracing::info!(term = %id, pid, "terminal started");
        Ok(term)
    }

    /// Runs a terminal from its parts: its reader and writer threads, and its place here.
    fn start(&self, t: Adopted, master: OwnedFd) -> Result<Arc<Terminal>, ErrorBody> {
        let io = |what: &'static str| move |e: std::io::Error| ErrorBody::new(ErrorCode::Io, format!("{what}: {e}"));
        let reader = File::from(master.try_clone().map_err(io("cannot read the PTY"))?);
        let writer = File::from(master.try_clone().map_err(io("cannot write the PTY"))?);
        let (input, input_rx) = std_mpsc::channel::<Vec<u8>>();
        let mut ring = Ring::starting_at(self.config.ring_bytes, t.ring_start);
        ring.push(&t.output);
        let exited = t.exit.is_some();
        let id = t.id;
        let term = Arc::new(Terminal {
            id,
            shell: t.shell,
            cwd: t.cwd,
            pid: t.pid,
            started_ms: t.started_ms,
            window: self.config.window,
            state: Mutex::new(State {
                ring,
                size: t.size,
                exit: t.exit,
                exited_at: t.exit.map(|_| Instant::now()),
                attachments: Vec::new(),
                title: t.title,
                reader_parked: false,
            }),
            reader_wake: Condvar::new(),
            master,
            input,
            pending_input: Arc::default(),
        });
        if !exited {
            spawn_thread(format!("pty-read-{id}"), {
                let (term, freeze) = (term.clone(), self.freeze.clone());
                move || read_loop(&term, reader, &freeze)
            })?;
            spawn_thread(format!("pty-write-{id}"), {
                let pending = term.pending_input.clone();
                move || write_loop(&pending, writer, &input_rx)
            })?;
        }
        self.map().insert(id, term.clone());
        Ok(term)
    }

    /// Stops every reader between two reads and waits (up to `within`) until each is parked
    /// and every keystroke received has been written; false when some did not stop in time
    /// (the freeze stays on until [`Terminals::thaw`]).
    pub fn freeze(&self, within: Duration) -> bool {
        self.freeze.begin();
        let deadline = Instant::now() + within;
        loop {
            let all: Vec<_> = self.map().values().cloned().collect();
            let still = all.iter().any(|t| {
                let st = t.lock();
                let reading = st.exit.is_none() && !st.reader_parked;
                reading || t.pending_input.load(Ordering::SeqCst) > 0
            });
            if !still {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Lets the readers go on after a freeze whose hand-over did not happen.
    pub fn thaw(&self) {
        self.freeze.end();
        for t in self.map().values() {
            t.reader_wake.notify_all();
        }
    }

    /// Every terminal with a copy of its PTY descriptor, for the next process (frozen first).
    pub fn snapshot(&self) -> std::io::Result<(u32, Vec<(Adopted, OwnedFd)>)> {
        let mut out = Vec::new();
        for t in self.map().values() {
            let st = t.lock();
            let mut output = Vec::new();
            st.ring.read_into(st.ring.start(), usize::MAX, &mut output);
            let adopted = Adopted {
                id: t.id,
                shell: t.shell.clone(),
                cwd: t.cwd.clone(),
                pid: t.pid,
                started_ms: t.started_ms,
                size: st.size,
                title: st.title.clone(),
                exit: st.exit,
                ring_start: st.ring.start(),
                output_len: output.len() as u64,
                output,
            };
            out.push((adopted, t.master.try_clone()?));
        }
        Ok((self.next_id.load(Ordering::SeqCst), out))
    }

    /// Takes over terminals a previous bridge process handed over, and its next id.
    pub fn adopt(&self, next_id: u32, terms: Vec<(Adopted, OwnedFd)>) -> Result<(), ErrorBody> {
        self.next_id.store(next_id, Ordering::SeqCst);
        for (t, master) in terms {
            let (id, end) = (t.id, t.ring_start + t.output_len);
            self.start(t, master)?;
            tracing::info!(term = %id, end, "terminal taken over");
        }
        Ok(())
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
