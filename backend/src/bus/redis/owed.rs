//! What this replica has queued for Redis to carry to browser sockets of other replicas,
//! counted per socket as its own inbox counts it (see `super::super::inbox`). Bridges send a
//! stream's output only while its window has room, but a bridge that ignores the windows (a
//! compromised server), while Redis is slow or away, had this replica's writer queue grow
//! without bound; past the limit the socket's replica is told to let it go instead, and
//! nothing more is queued for it until what was has gone.

use std::collections::HashMap;
use std::sync::Mutex;

use super::super::ClientId;
use super::lock;

#[derive(Default)]
pub(super) struct Owed {
    clients: Mutex<HashMap<ClientId, Debt>>,
}

#[derive(Default)]
struct Debt {
    bytes: usize,
    /// The client's replica was told to let it go.
    let_go: bool,
}

/// Whether a delivery may be queued.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Charge {
    Queued,
    /// Over the limit, for the first time since the queue was last empty of it: tell its
    /// replica to let it go.
    LetGo,
    /// Over the limit, and its replica was told.
    Refused,
}

impl Owed {
    /// Counts `cost` more bytes for `client` if they fit in `limit`.
    pub(super) fn charge(&self, client: ClientId, cost: usize, limit: usize) -> Charge {
        let mut clients = lock(&self.clients);
        let debt = clients.entry(client).or_default();
        if debt.let_go {
            return Charge::Refused;
        }
        if debt.bytes + cost > limit {
            if debt.bytes == 0 {
                // Nothing of it queued, so nothing will be paid to forget it by.
                clients.remove(&client);
            } else {
                debt.let_go = true;
            }
            return Charge::LetGo;
        }
        debt.bytes += cost;
        Charge::Queued
    }

    /// What was queued for `client` has gone to Redis (or was lost trying).
    pub(super) fn paid(&self, paid: impl IntoIterator<Item = (ClientId, usize)>) {
        let mut clients = lock(&self.clients);
        for (client, cost) in paid {
            if let Some(debt) = clients.get_mut(&client) {
                debt.bytes = debt.bytes.saturating_sub(cost);
                if debt.bytes == 0 {
                    clients.remove(&client);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_client_is_let_go_once_past_its_limit_and_counted_again_once_its_queue_empties() {
        let owed = Owed::default();
        assert_eq!(owed.charge(1, 600, 1000), Charge::Queued);
        assert_eq!(owed.charge(1, 400, 1000), Charge::Queued);
        assert_eq!(owed.charge(2, 1000, 1000), Charge::Queued, "each client has its own");
        assert_eq!(owed.charge(1, 1, 1000), Charge::LetGo);
        assert_eq!(owed.charge(1, 1, 1000), Charge::Refused, "told once");
        owed.paid([(1, 600)]);
        assert_eq!(owed.charge(1, 1, 1000), Charge::Refused, "until all it had queued is gone");
        owed.paid([(1, 400), (2, 1000)]);
        assert_eq!(owed.charge(1, 1000, 1000), Charge::Queued);
        assert!(lock(&owed.clients).get(&2).is_none(), "nothing kept for a client with nothing queued");
        assert_eq!(owed.charge(3, 1001, 1000), Charge::LetGo, "a delivery larger than the limit");
        assert!(lock(&owed.clients).get(&3).is_none(), "nothing kept that nothing would clear");
    }
}
