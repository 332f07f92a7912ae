//! Folder watches (`fs.watch`): changes made on the server — a `git checkout`, a build,
//! another user — reach the file tree without a reload. Each watch is one folder (inotify
//! through the `notify` crate, not recursive); changes within [`SETTLE`] of each other are
//! sent as one `fs.changed` event naming the entries, or asking for a rescan when there are
//! too many, and a folder that never stops changing (a build's output) is reported at most
//! once per [`MIN_GAP`]. A watch belongs to the connection that asked for it and ends with it.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::{RecommendedWatcher, RecursiveMode, Watcher as _};
use porta_shared::bridge::{BridgeEvent, FsChanged, FsWatch, FsWatching};
use porta_shared::types::StreamId;
use porta_shared::{Envelope, ErrorBody, ErrorCode};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::files::Root;
use crate::link::Outbox;

/// How long changes are gathered before they are sent.
const SETTLE: Duration = Duration::from_millis(100);
/// The least time between two events of one watch: each event makes the browser list the
/// folder again, and `~/.cargo` during a build changes many times a second.
const MIN_GAP: Duration = Duration::from_secs(1);

/// What one file-system event means for the watched folder.
#[derive(Debug, PartialEq, Eq)]
enum Change {
    Entry(String),
    Rescan,
}

/// A running watch; dropping it stops the watch.
pub struct Watch {
    _watcher: RecommendedWatcher,
}

/// The changes a file-system event makes to the entries of `dir`.
fn changes(dir: &Path, event: notify::Result<notify::Event>) -> Vec<Change> {
    let Ok(event) = event else { return vec![Change::Rescan] };
    if event.need_rescan() {
        return vec![Change::Rescan];
    }
    event
        .paths
        .iter()
        .map(|p| match (p.parent(), p.file_name()) {
            (Some(parent), Some(name)) if parent == dir => Change::Entry(name.to_string_lossy().into_owned()),
            _ => Change::Rescan,
        })
        .collect()
}

/// Starts watching; events go out through `out` on `req.stream`.
pub fn start(root: &Root, req: &FsWatch, out: Outbox) -> Result<(Watch, FsWatching), ErrorBody> {
    let dir: PathBuf = root.walk_base(&req.path)?;
    let (tx, rx) = mpsc::unbounded_channel::<Change>();
    let watched = dir.clone();
    let mut watcher = notify::recommended_watcher(move |event| {
        for change in changes(&watched, event) {
            let _ = tx.send(change);
        }
    })
    .map_err(|e| ErrorBody::new(ErrorCode::Io, format!("cannot watch {}: {e}", req.path)))?;
    watcher.watch(&dir, RecursiveMode::NonRecursive).map_err(|e| {
        let code =
            if matches!(e.kind, notify::ErrorKind::MaxFilesWatch) { ErrorCode::Unavailable } else { ErrorCode::Io };
        ErrorBody::new(code, format!("cannot watch {}: {e}", req.path))
    })?;
    tokio::spawn(forward(req.stream, rx, out));
    Ok((Watch { _watcher: watcher }, FsWatching { path: dir.to_string_lossy().into_owned() }))
}

/// Gathers changes that come close together and sends them as one event. Ends when the
/// watcher is dropped (its callback, holding the sender, goes with it).
async fn forward(stream: StreamId, mut rx: mpsc::UnboundedReceiver<Change>, out: Outbox) {
    let mut last_sent: Option<Instant> = None;
    while let Some(first) = rx.recv().await {
        let settled = Instant::now() + SETTLE;
        tokio::time::sleep_until(last_sent.map_or(settled, |t| settled.max(t + MIN_GAP))).await;
        let mut names = BTreeSet::new();
        let mut rescan = false;
        for change in std::iter::once(first).chain(std::iter::from_fn(|| rx.try_recv().ok())) {
            match change {
                Change::Entry(name) => {
                    names.insert(name);
                }
                Change::Rescan => rescan = true,
            }
        }
        if names.len() > FsChanged::MAX_NAMES {
            rescan = true;
        }
        let names = if rescan { Vec::new() } else { names.into_iter().collect() };
        out.text(Envelope::<BridgeEvent>::event(FsChanged { stream, names, rescan }).encode());
        last_sent = Some(Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(paths: &[&str]) -> notify::Result<notify::Event> {
        let mut e = notify::Event::new(notify::EventKind::Any);
        e.paths = paths.iter().map(PathBuf::from).collect();
        Ok(e)
    }

    #[test]
    fn events_become_entry_names_or_a_rescan() {
        let dir = Path::new("/srv/app");
        assert_eq!(
            changes(dir, event(&["/srv/app/a.rs", "/srv/app/b"])),
            [Change::Entry("a.rs".into()), Change::Entry("b".into())]
        );
        assert_eq!(changes(dir, event(&["/srv/app"])), [Change::Rescan], "the folder itself");
        assert_eq!(changes(dir, event(&["/srv/other/x"])), [Change::Rescan]);
        let overflow = notify::Event::new(notify::EventKind::Other).set_flag(notify::event::Flag::Rescan);
        assert_eq!(changes(dir, Ok(overflow)), [Change::Rescan]);
        assert_eq!(changes(dir, Err(notify::Error::generic("queue overflow"))), [Change::Rescan]);
    }
}
