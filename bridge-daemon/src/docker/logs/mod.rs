//! Container logs (`docker.logs*`): one container's, or a compose project's containers
//! interleaved by time, read from the engine with its timestamps and handed out in batches.
//!
//! Flow control is the reader's asking: each container's log is read by a task of its own
//! that runs at most [`AHEAD`] bytes ahead of what the reader has taken, then waits, so the
//! engine's connection stops and the bridge holds no more, whatever the container writes and
//! however long a viewer stalls. Lines from several containers are merged oldest first: a
//! batch waits a little for a container that has said nothing yet before it passes over it
//! (its history comes at once; a container that is merely quiet is not waited for again).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bollard::container::LogOutput;
use bollard::query_parameters::{ListContainersOptionsBuilder, LogsOptionsBuilder};
use futures_util::StreamExt as _;
use porta_shared::bridge::Done;
use porta_shared::docker::{DockerLogBatch, DockerLogs, DockerLogsClose, DockerLogsOpened, DockerLogsRead, LogLine};
use porta_shared::{ErrorBody, ErrorCode};
use tokio::sync::{Mutex, Notify, Semaphore, mpsc};

use super::{Docker, reference, unavailable};

mod split;
use split::Splitter;

/// Readings open at once on one bridge.
const MAX_OPEN: usize = 32;
/// Bytes of lines one container's reader may hold ahead of the reader.
const AHEAD: usize = 256 << 10;
/// What a line costs against [`AHEAD`] beyond its text (its place in the queue).
const LINE_COST: usize = 64;
/// Lines in one batch at most, however short.
const MAX_LINES: usize = 8192;
/// How often readings left unread are looked for and closed.
const SWEEP: Duration = Duration::from_secs(10);
/// How long finding the containers of a reading may take, all of them.
const RESOLVE_WITHIN: Duration = Duration::from_secs(10);
/// How long a batch waits for a container that has not yet said anything (its history).
const FIRST_PATIENCE: Duration = Duration::from_secs(1);
/// How long a batch waits for a container whose lines ran out while another has some.
const PATIENCE: Duration = Duration::from_millis(30);

/// One line as read, before it is numbered for the wire.
#[derive(Debug, PartialEq)]
struct Line {
    ts_ns: u64,
    err: bool,
    text: String,
}

enum Item {
    Line(Line),
    /// The container's log ended; why, when it was not the expected end.
    End(Option<String>),
}

/// One container's log being read.
struct Source {
    rx: mpsc::UnboundedReceiver<Item>,
    /// Bytes the reader task may still read ahead.
    budget: Arc<Semaphore>,
    head: Option<Line>,
    said_anything: bool,
    finished: bool,
    /// It had nothing when last waited for: not waited for again until it speaks.
    quiet: bool,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Source {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Session {
    sources: Vec<Source>,
    /// Rung by every reader task when it has something.
    ready: Arc<Notify>,
}

struct Entry {
    session: Arc<Mutex<Session>>,
    touched: Instant,
}

/// Every reading open on this bridge.
#[derive(Default)]
pub struct Logs {
    open: Arc<std::sync::Mutex<Open>>,
}

#[derive(Default)]
struct Open {
    readings: HashMap<String, Entry>,
    /// Readings being opened: they count against [`MAX_OPEN`] already.
    opening: usize,
    /// A task closes readings left unread while there are any.
    sweeping: bool,
}

/// A place among the [`MAX_OPEN`] readings, held while one opens.
struct Slot<'a>(&'a Logs);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.lock().opening -= 1;
    }
}

fn lock(open: &std::sync::Mutex<Open>) -> std::sync::MutexGuard<'_, Open> {
    // Every change is a single insert, remove or count: a poisoned lock is still sound.
    open.lock().unwrap_or_else(|p| p.into_inner())
}

/// Closes the readings nobody read for [`DockerLogs::IDLE_S`].
fn expire(readings: &mut HashMap<String, Entry>) {
    let idle = Duration::from_secs(DockerLogs::IDLE_S);
    readings.retain(|_, e| e.touched.elapsed() < idle);
}

fn unknown(id: &str) -> ErrorBody {
    ErrorBody::new(ErrorCode::NotFound, format!("no log reading {id} (it was closed or left unread too long)"))
}

impl Logs {
    fn lock(&self) -> std::sync::MutexGuard<'_, Open> {
        lock(&self.open)
    }

    /// Keeps a task closing readings left unread, while there are any (a page that went
    /// away never says it is done).
    fn sweep(&self) {
        let mut open = self.lock();
        if open.sweeping {
            return;
        }
        open.sweeping = true;
        let shared = Arc::downgrade(&self.open);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(SWEEP).await;
                let Some(open) = shared.upgrade() else { return };
                let mut open = lock(&open);
                expire(&mut open.readings);
                if open.readings.is_empty() && open.opening == 0 {
                    open.sweeping = false;
                    return;
                }
            }
        });
    }

    /// A place for a new reading, or why there is none.
    fn slot(&self) -> Result<Slot<'_>, ErrorBody> {
        let mut open = self.lock();
        expire(&mut open.readings);
        if open.readings.len() + open.opening >= MAX_OPEN {
            let msg = format!("{MAX_OPEN} log readings are already open on this server; close one");
            return Err(ErrorBody::new(ErrorCode::Unavailable, msg));
        }
        open.opening += 1;
        Ok(Slot(self))
    }

    /// Finds the containers and starts reading their logs.
    pub async fn open(&self, docker: &Docker, req: &DockerLogs) -> Result<DockerLogsOpened, ErrorBody> {
        if req.containers.is_empty() && req.project.is_none() {
            return Err(ErrorBody::new(ErrorCode::BadRequest, "name a container or a compose project"));
        }
        if req.containers.len() > DockerLogs::MAX_CONTAINERS {
            let msg = format!("at most {} containers at once", DockerLogs::MAX_CONTAINERS);
            return Err(ErrorBody::new(ErrorCode::BadRequest, msg));
        }
        for c in &req.containers {
            reference(c)?;
        }
        if let Some(p) = &req.project {
            reference(p)?;
        }
        let contains = req.contains.as_deref().map(str::trim).filter(|c| !c.is_empty()).map(str::to_lowercase);
        if contains.as_ref().is_some_and(|c| c.len() > DockerLogs::MAX_CONTAINS) {
            let msg = format!("the text looked for has at most {} bytes", DockerLogs::MAX_CONTAINS);
            return Err(ErrorBody::new(ErrorCode::BadRequest, msg));
        }
        if let (Some(since), Some(until)) = (req.since_ms, req.until_ms)
            && since > until
        {
            return Err(ErrorBody::new(ErrorCode::BadRequest, "the window ends before it begins"));
        }
        let slot = self.slot()?;
        let (client, _) = docker.engine().await.map_err(unavailable)?;
        let found = tokio::time::timeout(RESOLVE_WITHIN, resolve(docker, &client, req))
            .await
            .map_err(|_| docker.too_slow())??;
        let ready = Arc::new(Notify::new());
        let window = Window {
            since_ns: req.since_ms.map_or(0, |ms| ms.saturating_mul(1_000_000)),
            until_ns: req.until_ms.map_or(u64::MAX, |ms| ms.saturating_mul(1_000_000).saturating_add(999_999)),
            contains,
        };
        let mut sources = Vec::with_capacity(found.len());
        for (id, _) in &found {
            // The engine takes whole seconds: the window is cut to the nanosecond here.
            let mut options = LogsOptionsBuilder::new().stdout(true).stderr(true).timestamps(true).follow(req.follow);
            if let Some(since) = req.since_ms {
                options = options.since(i32::try_from(since / 1000).unwrap_or(i32::MAX));
            }
            if let Some(until) = req.until_ms {
                options = options.until(i32::try_from(until.div_ceil(1000)).unwrap_or(i32::MAX));
            }
            let tail = req.tail.map_or_else(|| "all".to_owned(), |n| n.to_string());
            let stream = client.logs(id, Some(options.tail(&tail).build())).boxed();
            let (tx, rx) = mpsc::unbounded_channel();
            let budget = Arc::new(Semaphore::new(AHEAD));
            let task = tokio::spawn(pump(stream, window.clone(), tx, budget.clone(), ready.clone()));
            sources.push(Source { rx, budget, head: None, said_anything: false, finished: false, quiet: false, task });
        }
        let session = format!("{:032x}", rand::random::<u128>());
        let entry = Entry { session: Arc::new(Mutex::new(Session { sources, ready })), touched: Instant::now() };
        {
            // The reading takes its slot's place at once: it never counts twice.
            let mut open = self.lock();
            open.readings.insert(session.clone(), entry);
            open.opening -= 1;
        }
        std::mem::forget(slot);
        self.sweep();
        Ok(DockerLogsOpened { session, containers: found.into_iter().map(|(_, name)| name).collect() })
    }

    /// The next lines, oldest first.
    pub async fn read(&self, req: &DockerLogsRead) -> Result<DockerLogBatch, ErrorBody> {
        let session = {
            let mut open = self.lock();
            expire(&mut open.readings);
            let e = open.readings.get_mut(&req.session).ok_or_else(|| unknown(&req.session))?;
            e.touched = Instant::now();
            e.session.clone()
        };
        let wait = Duration::from_millis(u64::from(req.wait_ms.min(DockerLogsRead::MAX_WAIT_MS)));
        let max = req.max_bytes.unwrap_or(DockerLogsRead::DEFAULT_BYTES).clamp(1, DockerLogsRead::MAX_BYTES) as usize;
        let batch = session.lock().await.batch(Instant::now() + wait, max).await;
        // A long wait counts as reading: the reading is not idle while someone waits on it.
        if let Some(e) = self.lock().readings.get_mut(&req.session) {
            e.touched = Instant::now();
        }
        Ok(batch)
    }

    pub fn close(&self, req: &DockerLogsClose) -> Result<Done, ErrorBody> {
        self.lock().readings.remove(&req.session).map(|_| Done {}).ok_or_else(|| unknown(&req.session))
    }
}

/// The containers `req` names (and its project's), as (id, name), each once.
async fn resolve(
    docker: &Docker,
    client: &bollard::Docker,
    req: &DockerLogs,
) -> Result<Vec<(String, String)>, ErrorBody> {
    let mut found: Vec<(String, String)> = Vec::new();
    for c in &req.containers {
        let inspected = client.inspect_container(c, None).await.map_err(|e| docker.failed(e, c))?;
        let id = inspected.id.unwrap_or_default();
        let name = inspected.name.unwrap_or_default().trim_start_matches('/').to_owned();
        if !found.iter().any(|(known, _)| *known == id) {
            found.push((id, name));
        }
    }
    if let Some(project) = &req.project {
        let label = format!("com.docker.compose.project={project}");
        let filters = HashMap::from([("label".to_owned(), vec![label])]);
        let options = ListContainersOptionsBuilder::new().all(true).filters(&filters).build();
        let mut listed = client.list_containers(Some(options)).await.map_err(|e| docker.failed(e, project))?;
        if listed.is_empty() {
            let msg = format!("no container belongs to the compose project {project}");
            return Err(ErrorBody::new(ErrorCode::NotFound, msg));
        }
        listed.sort_by(|a, b| a.names.cmp(&b.names));
        for c in listed {
            let id = c.id.unwrap_or_default();
            let name = c.names.unwrap_or_default().first().map(|n| n.trim_start_matches('/').to_owned());
            if !found.iter().any(|(known, _)| *known == id) {
                found.push((id, name.unwrap_or_default()));
            }
        }
    }
    if found.len() > DockerLogs::MAX_CONTAINERS {
        let msg = format!("{} containers: at most {} at once", found.len(), DockerLogs::MAX_CONTAINERS);
        return Err(ErrorBody::new(ErrorCode::BadRequest, msg));
    }
    Ok(found)
}

impl Session {
    /// Lines up to `max` bytes, oldest first; waiting until `deadline` only for the first.
    async fn batch(&mut self, deadline: Instant, max: usize) -> DockerLogBatch {
        let mut batch = DockerLogBatch::default();
        let mut bytes = 0;
        // Since when the merge waits for containers that have nothing while others do.
        let mut waiting_since: Option<Instant> = None;
        loop {
            self.take_ready(&mut batch);
            let any_head = self.sources.iter().any(|s| s.head.is_some());
            let lacking = |s: &Source| s.head.is_none() && !s.finished && !s.quiet;
            if any_head && self.sources.iter().any(lacking) {
                let since = *waiting_since.get_or_insert_with(Instant::now);
                let first = self.sources.iter().any(|s| lacking(s) && !s.said_anything);
                // Past the read's deadline too: a history is worth a second to get in order.
                let until = since + if first { FIRST_PATIENCE } else { PATIENCE };
                if Instant::now() < until {
                    let _ = tokio::time::timeout_at(until.into(), self.ready.notified()).await;
                    continue;
                }
                for s in self.sources.iter_mut().filter(|s| lacking(s)) {
                    s.quiet = true;
                }
            }
            waiting_since = None;
            let oldest =
                (self.sources.iter().enumerate()).filter_map(|(i, s)| s.head.as_ref().map(|h| (h.ts_ns, i))).min();
            if let Some((_, i)) = oldest {
                // A line that would take the batch past its size waits for the next (a batch
                // has one line at least, however long).
                let size = self.sources[i].head.as_ref().map_or(0, wire_size);
                if !batch.lines.is_empty() && bytes + size > max {
                    return batch;
                }
                let s = &mut self.sources[i];
                let Some(line) = s.head.take() else { continue };
                s.budget.add_permits(cost(&line));
                bytes += size;
                let c = u16::try_from(i).unwrap_or(u16::MAX);
                batch.lines.push(LogLine { c, ts_ms: line.ts_ns / 1_000_000, err: line.err, text: line.text });
                if bytes >= max || batch.lines.len() >= MAX_LINES {
                    return batch;
                }
                continue;
            }
            if self.sources.iter().all(|s| s.finished) {
                batch.ended = true;
                return batch;
            }
            if !batch.lines.is_empty() || Instant::now() >= deadline {
                return batch;
            }
            let _ = tokio::time::timeout_at(deadline.into(), self.ready.notified()).await;
        }
    }

    /// Takes what the reader tasks have ready, for the containers with no line waiting,
    /// keeping what each ended log said about why.
    fn take_ready(&mut self, batch: &mut DockerLogBatch) {
        for s in self.sources.iter_mut().filter(|s| s.head.is_none() && !s.finished) {
            match s.rx.try_recv() {
                Ok(Item::Line(line)) => {
                    s.head = Some(line);
                    s.said_anything = true;
                    s.quiet = false;
                }
                Ok(Item::End(why)) => {
                    s.finished = true;
                    batch.notes.extend(why);
                }
                Err(mpsc::error::TryRecvError::Disconnected) => s.finished = true,
                Err(mpsc::error::TryRecvError::Empty) => {}
            }
        }
    }
}

fn cost(line: &Line) -> usize {
    (line.text.len() + LINE_COST).min(AHEAD)
}

/// What a line takes in a batch's JSON: its text (a control character is written as six,
/// `\u0001`), its time and container.
fn wire_size(line: &Line) -> usize {
    let escaped = line.text.bytes().filter(|b| *b < 0x20 || *b == b'"' || *b == b'\\').count();
    line.text.len() + escaped * 5 + LINE_COST
}

/// What lines a reading keeps.
#[derive(Clone)]
struct Window {
    since_ns: u64,
    until_ns: u64,
    /// Lower-cased.
    contains: Option<String>,
}

impl Window {
    fn keeps(&self, line: &Line) -> bool {
        (self.since_ns..=self.until_ns).contains(&line.ts_ns)
            && self.contains.as_ref().is_none_or(|c| line.text.to_lowercase().contains(c.as_str()))
    }
}

/// Reads one container's log into `tx`, never more than its budget ahead of the reader.
async fn pump(
    mut stream: futures_util::stream::BoxStream<'static, Result<LogOutput, bollard::errors::Error>>,
    window: Window,
    tx: mpsc::UnboundedSender<Item>,
    budget: Arc<Semaphore>,
    ready: Arc<Notify>,
) {
    let mut lines = Splitter::default();
    let end = loop {
        let (err, bytes) = match stream.next().await {
            None => break None,
            Some(Err(e)) => break Some(ended_by(e)),
            Some(Ok(LogOutput::StdErr { message })) => (true, message),
            Some(Ok(LogOutput::StdOut { message } | LogOutput::Console { message })) => (false, message),
            Some(Ok(LogOutput::StdIn { .. })) => continue,
        };
        for line in lines.push(err, &bytes) {
            if !window.keeps(&line) {
                continue;
            }
            let Ok(permit) = budget.acquire_many(cost(&line) as u32).await else { return };
            permit.forget();
            if tx.send(Item::Line(line)).is_err() {
                return;
            }
            ready.notify_one();
        }
    };
    if let Some(line) = lines.finish().filter(|l| window.keeps(l)) {
        let _ = tx.send(Item::Line(line));
    }
    let _ = tx.send(Item::End(end));
    ready.notify_one();
}

fn ended_by(e: bollard::errors::Error) -> String {
    match e {
        bollard::errors::Error::DockerResponseServerError { message, .. } => message.trim().to_owned(),
        other => format!("the engine stopped sending the log: {other}"),
    }
}

#[cfg(test)]
mod tests;
