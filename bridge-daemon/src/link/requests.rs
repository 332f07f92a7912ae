//! What the bridge does with each request of the backend, for one connection.

use super::*;

impl Session {
    pub(super) fn new(
        bridge: Arc<Bridge>,
        out: Outbox,
        exec_done: mpsc::UnboundedSender<StreamId>,
        opened: mpsc::UnboundedSender<Opened>,
    ) -> Self {
        Self {
            id: SESSIONS.fetch_add(1, Ordering::Relaxed),
            bridge,
            out,
            wake: Arc::new(Notify::new()),
            attachments: Arc::default(),
            execs: HashMap::new(),
            tunnels: HashMap::new(),
            exec_done,
            watches: HashMap::new(),
            opening: std::collections::HashSet::new(),
            opened,
        }
    }

    pub(super) fn attachments(&self) -> std::sync::MutexGuard<'_, HashMap<StreamId, Arc<Terminal>>> {
        self.attachments.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(super) fn detach_all(&mut self) {
        let all: Vec<_> = self.attachments().drain().collect();
        for (stream, term) in all {
            term.detach((self.id, stream));
        }
        // Dropping the handles cancels the execs: nobody is left to read their output.
        self.execs.clear();
        self.tunnels.clear();
        self.watches.clear();
    }

    pub(super) fn stream_free(&self, stream: StreamId) -> Result<(), ErrorBody> {
        let used = self.attachments().contains_key(&stream)
            || self.execs.contains_key(&stream)
            || self.tunnels.contains_key(&stream)
            || self.watches.contains_key(&stream)
            || self.opening.contains(&stream);
        if used {
            return Err(ErrorBody::new(ErrorCode::BadRequest, format!("stream {stream} is already in use")));
        }
        Ok(())
    }

    pub(super) fn on_text(&mut self, text: &str) {
        let env = match Envelope::<BridgeRequest>::decode(text) {
            Ok(env) => env,
            Err(e) => {
                tracing::debug!(error = %e, "refused a message from the backend");
                return self.out.text(e.to_reply());
            }
        };
        let Some(id) = env.id else {
            let e = DecodeError::Malformed("a request needs an id".into());
            return self.out.text(e.to_reply());
        };
        self.dispatch(id, env.msg);
    }

    pub(super) fn dispatch(&mut self, id: String, msg: BridgeRequest) {
        use BridgeRequest as R;
        let out = self.out.clone();
        match msg {
            R::TermOpen(req) => self.term_open(id, req),
            R::TermAttach(req) => {
                let r = self.term_attach(req);
                out.reply(&id, r)
            }
            R::TermDetach(req) => {
                let term = self.attachments().remove(&req.stream);
                let r = match term {
                    Some(t) => {
                        t.detach((self.id, req.stream));
                        Ok(Done {})
                    }
                    None => Err(unknown_stream(req.stream)),
                };
                out.reply(&id, r)
            }
            R::TermResize(req) => {
                out.reply(&id, self.term(req.term).and_then(|t| t.resize(req.size)).map(|()| Done {}))
            }
            R::TermSignal(req) => {
                out.reply(&id, self.term(req.term).and_then(|t| t.signal(req.signal)).map(|()| Done {}))
            }
            R::TermClose(req) => out.reply(&id, self.bridge.terminals.close(req.term).map(|()| Done {})),
            R::TermRename(req) => {
                out.reply(&id, self.term(req.term).and_then(|t| t.rename(&req.title)).map(|()| Done {}))
            }
            R::TermList(_) => {
                self.bridge.terminals.reap();
                out.reply(&id, Ok(TermListed { terminals: self.bridge.terminals.list() }))
            }
            R::FsWatch(req) => {
                let r = self.stream_free(req.stream).and_then(|()| {
                    let (watch, watching) = crate::watch::start(&self.bridge.root, &req, self.out.clone())?;
                    self.watches.insert(req.stream, watch);
                    Ok(watching)
                });
                out.reply(&id, r)
            }
            R::FsUnwatch(req) => {
                let r = self.watches.remove(&req.stream).map(|_| Done {}).ok_or_else(|| unknown_stream(req.stream));
                out.reply(&id, r)
            }
            R::ExecStart(req) => {
                let r = self.exec_start(req);
                out.reply(&id, r)
            }
            R::ExecCancel(req) => {
                let r = match self.execs.get_mut(&req.stream).and_then(|h| h.cancel.take()) {
                    Some(cancel) => {
                        let _ = cancel.send(());
                        Ok(Done {})
                    }
                    None => Err(unknown_stream(req.stream)),
                };
                out.reply(&id, r)
            }
            R::FsList(req) => self.blocking(id, move |b| b.root.list(&req)),
            R::FsStat(req) => self.blocking(id, move |b| b.root.stat(&req)),
            R::FsRead(req) => self.blocking(id, move |b| b.root.read(&req)),
            R::FsWrite(req) => self.blocking(id, move |b| b.root.write(&req)),
            R::FsUploadBegin(req) => self.blocking(id, move |b| b.uploads.begin(&b.root, &req)),
            R::FsUploadChunk(req) => self.blocking(id, move |b| b.uploads.chunk(&req)),
            R::FsUploadCommit(req) => self.blocking(id, move |b| b.uploads.commit(&b.root, &req)),
            R::FsUploadAbort(req) => self.blocking(id, move |b| b.uploads.abort(&b.root, &req)),
            R::FsArchive(req) => self.blocking(id, move |b| b.archives.create(&b.root, &req)),
            R::FsArchiveRead(req) => self.blocking(id, move |b| b.archives.read(&req)),
            R::FsArchiveClose(req) => self.blocking(id, move |b| b.archives.close(&req)),
            R::FsMkdir(req) => self.blocking(id, move |b| b.root.mkdir(&req)),
            R::FsRename(req) => self.blocking(id, move |b| b.root.rename_path(&req)),
            R::FsDelete(req) => self.blocking(id, move |b| b.root.delete(&req)),
            R::FsFind(req) => self.blocking(id, move |b| crate::search::find(&b.root, &req)),
            R::FsSearch(req) => self.blocking(id, move |b| crate::search::search(&b.root, &req)),
            R::GitStatus(req) => self.blocking(id, move |b| crate::git::status(&b.root, &req)),
            R::GitHead(req) => self.blocking(id, move |b| crate::git::head(&b.root, &req)),
            R::SysInfo(_) => self.blocking(id, |b| Ok(crate::sysinfo::collect(&b.default_cwd))),
            R::SysProcesses(_) => {
                let list = self.bridge.processes.lock().unwrap_or_else(|p| p.into_inner()).clone();
                self.out.reply(&id, Ok::<_, ErrorBody>(&*list));
            }
            R::SysKill(r) => self.out.reply(&id, crate::sysinfo::kill(r.pid, r.signal)),
            R::BridgeUpdate(r) => self.update(id, r),
            R::DockerList(_) => self.engine(id, |b| async move { b.docker.list().await }),
            R::DockerInspect(r) => self.engine(id, |b| async move { b.docker.inspect(&r).await }),
            R::DockerAction(r) => self.engine(id, |b| async move { b.docker.act(&r).await }),
            R::DockerStats(_) => self.engine(id, |b| async move { b.docker.stats.take(&b.docker).await }),
            R::DockerLogs(r) => self.engine(id, |b| async move { b.docker.logs.open(&b.docker, &r).await }),
            R::DockerLogsRead(r) => self.engine(id, |b| async move { b.docker.logs.read(&r).await }),
            R::DockerLogsClose(r) => self.engine(id, |b| async move { b.docker.logs.close(&r) }),
            R::DockerImages(_) => self.engine(id, |b| async move { b.docker.images().await }),
            R::ImageRemove(r) => self.engine(id, |b| async move { b.docker.remove_image(&r).await }),
            R::ImageCheck(r) => self.engine(id, |b| async move { b.docker.check_image(&r).await }),
            R::DockerPull(r) => self.engine(id, |b| async move { b.docker.pull(&r).await }),
            R::DockerJobRead(r) => self.engine(id, |b| async move { b.docker.jobs.read(&r).await }),
            R::DockerVolumes(_) => self.engine(id, |b| async move { b.docker.volumes().await }),
            R::VolumeRemove(r) => self.engine(id, |b| async move { b.docker.remove_volume(&r).await }),
            R::DockerNetworks(_) => self.engine(id, |b| async move { b.docker.networks().await }),
            R::NetworkRemove(r) => self.engine(id, |b| async move { b.docker.remove_network(&r).await }),
            R::DockerPrune(r) => self.engine(id, |b| async move { b.docker.prune(&r).await }),
            R::DockerStacks(_) => self.engine(id, |b| async move { b.docker.stacks().await }),
            R::StackAction(r) => self.engine(id, |b| async move { b.docker.stack(&r).await }),
            R::Recreate(r) => self.engine(id, |b| async move { b.docker.recreate(&r).await }),
            R::SysPorts(_) => self.blocking(id, |_| crate::ports::list()),
            R::TunnelOpen(req) => self.tunnel_open(id, req),
            R::TunnelClose(req) => {
                // Dropping the handle ends the connection.
                let r = self.tunnels.remove(&req.stream).map(|_| Done {}).ok_or_else(|| unknown_stream(req.stream));
                out.reply(&id, r)
            }
        }
    }

    /// Installs the backend's bridge, answers, then upgrades in place (see `crate::update`).
    fn update(&self, id: String, req: bridge::BridgeUpdate) {
        let (bridge, out) = (self.bridge.clone(), self.out.clone());
        tokio::spawn(async move {
            let Some(dial) = bridge.dial.get().cloned() else {
                let e = ErrorBody::new(ErrorCode::Unavailable, "this bridge is not connected");
                return out.reply::<bridge::BridgeUpdating>(&id, Err(e));
            };
            let installed = crate::update::install(&dial, &req.sha256).await;
            let ok = installed.is_ok();
            let from = crate::version().to_owned();
            out.reply(&id, installed.map(|to| bridge::BridgeUpdating { from, to }));
            if ok {
                // Give the answer a moment to leave, then upgrade as `systemctl reload` does.
                tokio::time::sleep(Duration::from_millis(200)).await;
                let _ = rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::HUP);
            }
        });
    }

    /// Asks the container engine off the reader task and replies when it answers.
    fn engine<R, F, Fut>(&self, id: String, f: F)
    where
        R: Serialize + Send + 'static,
        F: FnOnce(Arc<Bridge>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = Result<R, ErrorBody>> + Send + 'static,
    {
        let (bridge, out) = (self.bridge.clone(), self.out.clone());
        tokio::spawn(async move { out.reply(&id, f(bridge).await) });
    }

    /// Runs a blocking operation off the reader task and replies when it is done.
    fn blocking<R, F>(&self, id: String, f: F)
    where
        R: Serialize + Send + 'static,
        F: FnOnce(&Bridge) -> Result<R, ErrorBody> + Send + 'static,
    {
        let bridge = self.bridge.clone();
        let out = self.out.clone();
        tokio::task::spawn_blocking(move || out.reply(&id, f(&bridge)));
    }

    pub(super) fn term(&self, id: porta_shared::types::TermId) -> Result<Arc<Terminal>, ErrorBody> {
        self.bridge.terminals.get(id)
    }

    /// Opens a terminal off this task (a PTY and a fork can be slow when many come at once,
    /// and everything else on the link would wait), then attaches and replies in
    /// [`Session::term_opened`]. A terminal ready after the asker's deadline is closed.
    pub(super) fn term_open(&mut self, id: String, req: bridge::TermOpen) {
        if let Some(stream) = req.stream {
            if let Err(e) = self.stream_free(stream) {
                return self.out.reply::<TermAttached>(&id, Err(e));
            }
            self.opening.insert(stream);
        }
        let bridge = self.bridge.clone();
        let done = self.opened.clone();
        let asked = std::time::Instant::now();
        tokio::spawn(async move {
            // A few at a time: each open takes a blocking thread, and a burst of hundreds
            // would park as many threads (and their stacks and heaps) for nothing.
            let _permit = OPENS.acquire().await.ok();
            if done.is_closed() {
                // The link went down while this open queued: nobody would hold the terminal.
                return;
            }
            if req.deadline_ms.is_some_and(|ms| asked.elapsed() > Duration::from_millis(ms)) {
                // The asker stopped waiting while this open queued: do not start a shell at all.
                let waited = asked.elapsed().as_millis();
                let result = Err(ErrorBody::new(
                    ErrorCode::Timeout,
                    format!(
                        "the terminal waited {waited} ms to start, longer than the asker waits; it was not started"
                    ),
                ));
                let _ = done.send(Opened { id, stream: req.stream, result });
                return;
            }
            let _ = tokio::task::spawn_blocking(move || open_terminal(&bridge, req, id, asked, &done)).await;
        });
    }

    pub(super) fn term_opened(&mut self, done: Opened) {
        let Opened { id, stream, result } = done;
        if let Some(s) = stream {
            self.opening.remove(&s);
        }
        let reply = result.map(|term| match stream {
            Some(s) => self.attach(term, s, 0),
            None => TermAttached { info: term.info(), from: 0 },
        });
        self.out.reply(&id, reply);
    }

    pub(super) fn term_attach(&mut self, req: bridge::TermAttach) -> Result<TermAttached, ErrorBody> {
        self.stream_free(req.stream)?;
        let term = self.term(req.term)?;
        Ok(self.attach(term, req.stream, req.after))
    }

    pub(super) fn attach(&mut self, term: Arc<Terminal>, stream: StreamId, after: u64) -> TermAttached {
        self.attachments().insert(stream, term.clone());
        let (info, from) = term.attach((self.id, stream), after, self.wake.clone());
        TermAttached { info, from }
    }

    pub(super) fn exec_start(&mut self, req: bridge::ExecStart) -> Result<ExecStarted, ErrorBody> {
        self.stream_free(req.stream)?;
        let stream = req.stream;
        let window = self.bridge.terminals.config().window;
        let done = self.exec_done.clone();
        let out = self.out.clone();
        let (pid, handle) = exec::start(req, &self.bridge.default_cwd, window, out, move || {
            let _ = done.send(stream);
        })?;
        self.execs.insert(stream, handle);
        Ok(ExecStarted { pid })
    }

    pub(super) fn tunnel_open(&mut self, id: String, req: porta_shared::ports::TunnelOpen) {
        if let Err(e) = self.stream_free(req.stream) {
            return self.out.reply::<porta_shared::ports::TunnelOpened>(&id, Err(e));
        }
        let stream = req.stream;
        let (out, done) = (self.out.clone(), self.exec_done.clone());
        let reply = move |r| out.reply(&id, r);
        let handle = crate::tunnel::start(req, self.out.clone(), reply, move || {
            let _ = done.send(stream);
        });
        self.tunnels.insert(stream, handle);
    }

    pub(super) fn on_frame(&mut self, bytes: &[u8]) {
        let frame = match Frame::decode(bytes) {
            Ok(f) => f,
            Err(e) => return tracing::debug!(error = %e, "dropped a malformed frame"),
        };
        let key = (self.id, frame.stream);
        match frame.kind {
            FrameKind::TermInput => {
                let term = self.attachments().get(&frame.stream).cloned();
                match term {
                    Some(t) => {
                        if let Err(e) = t.write_input(frame.payload) {
                            tracing::debug!(error = %e, "input for an ended terminal");
                        }
                    }
                    None => tracing::debug!(stream = frame.stream, "input for an unknown stream"),
                }
            }
            FrameKind::Ack => {
                let term = self.attachments().get(&frame.stream).cloned();
                if let Some(t) = term {
                    t.ack(key, frame.seq);
                } else if let Some(h) = self.execs.get(&frame.stream) {
                    advance(&h.acked, frame.seq);
                } else if let Some(h) = self.tunnels.get(&frame.stream) {
                    advance(&h.acked, frame.seq);
                }
            }
            FrameKind::ExecStdin => {
                if let Some(h) = self.execs.get(&frame.stream) {
                    let _ = h.stdin.send(frame.payload.to_vec());
                }
            }
            FrameKind::TunnelData => {
                let Some(h) = self.tunnels.get_mut(&frame.stream) else { return };
                if !h.take(frame.seq, frame.payload) {
                    tracing::warn!(stream = frame.stream, at = frame.seq, "a tunnel's bytes came with a gap: closed");
                    self.tunnels.remove(&frame.stream);
                }
            }
            kind => tracing::debug!(?kind, "dropped a frame the backend should not send"),
        }
    }
}

/// Moves a stream's acknowledged offset forward (never back).
fn advance(acked: &watch::Sender<u64>, to: u64) {
    acked.send_if_modified(|a| {
        let changed = to > *a;
        *a = (*a).max(to);
        changed
    });
}
