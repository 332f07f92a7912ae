//! Recent answers to "may this user reach this server, and as what": every request that
//! touches a server asks it (`Store::server_access`), and a person's requests come in bursts
//! (a folder tree, an editor's saves). On PostgreSQL the question is a round trip; here it is
//! answered from memory for at most [`FRESH_FOR`].
//!
//! An answer is kept with the access generation it was read under and is used only while the
//! generation is the same: any access change made on this replica (a role changed, a member
//! removed, a workspace deleted, a server revoked, recording or quotas changed) or heard from
//! another one over the bus makes every kept answer stale at once. An answer read while a
//! change was being made carries the generation from before the read, so it is never used
//! after the change. Only a "yes" is kept: someone who was just given access is never told
//! "no" from memory.

use std::collections::HashMap;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use super::ServerAccess;

/// How long an answer is used, at most, when no access change says otherwise (what a replica
/// that misses a change on the bus can answer from memory).
pub(super) const FRESH_FOR: Duration = Duration::from_secs(1);

/// Answers kept at most; when full, they are all dropped (a full cache is refilled in a
/// second).
const MAX_ENTRIES: usize = 10_000;

struct Entry {
    read_at: Instant,
    generation: u64,
    access: ServerAccess,
}

#[derive(Default)]
pub(super) struct AccessCache {
    entries: RwLock<HashMap<(String, String), Entry>>,
}

impl AccessCache {
    /// The kept answer for (`user`, `server`), if it was read under `generation` less than
    /// [`FRESH_FOR`] ago.
    pub(super) fn get(&self, user: &str, server: &str, generation: u64) -> Option<ServerAccess> {
        let key = (user.to_owned(), server.to_owned());
        let entries = self.entries.read().unwrap_or_else(|e| e.into_inner());
        let e = entries.get(&key)?;
        (e.generation == generation && e.read_at.elapsed() < FRESH_FOR).then(|| e.access.clone())
    }

    /// Keeps `access`, read under `generation` by a query that began at `asked` (both taken
    /// before the query).
    pub(super) fn put(&self, user: &str, server: &str, (generation, asked): (u64, Instant), access: &ServerAccess) {
        let key = (user.to_owned(), server.to_owned());
        let entry = Entry { read_at: asked, generation, access: access.clone() };
        let mut entries = self.entries.write().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(key, entry);
    }
}
