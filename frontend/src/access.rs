//! Following the person's role on a server while its page is open: a role lowered to viewer
//! makes terminals and editors read-only and takes away what a viewer may not do, a role
//! raised gives it back, and losing access leaves the page with a word on the dashboard why.

use std::rc::Rc;

use js_sys::Uint8Array;
use leptos::prelude::*;
use leptos::task::spawn_local;
use porta_shared::client::{AccessWatch, ClientEvent};
use porta_shared::frame::FrameKind;

use crate::conn::{Conn, StreamSink};
use crate::route::{self, Route};

/// Where the dashboard finds why the person was sent back to it.
pub const NOTICE: &str = "porta.notice";

struct Follower {
    /// The server's name, for the notice.
    name: Signal<String>,
    read_only: RwSignal<bool>,
    route: RwSignal<Route>,
}

impl Follower {
    fn lost(&self) {
        let name = self.name.try_get_untracked().unwrap_or_default();
        crate::browser::save(NOTICE, &format!("You no longer have access to the server {name}."));
        route::go(self.route, Route::Dashboard);
    }
}

impl StreamSink for Follower {
    fn frame(&self, _kind: FrameKind, _seq: u64, _payload: Uint8Array) {}

    fn event(&self, event: ClientEvent) {
        if let ClientEvent::AccessChanged(c) = event {
            match c.role {
                Some(role) => self.read_only.set(role == "viewer"),
                None => self.lost(),
            }
        }
    }
}

/// Keeps `read_only` true exactly while the person is a viewer on `server` (asking again on
/// every reconnect), and leaves for the dashboard when they lose access. `name` is how the
/// notice names the server.
pub fn follow(
    conn: StoredValue<Conn, LocalStorage>,
    server: String,
    name: Signal<String>,
    read_only: RwSignal<bool>,
    route: RwSignal<Route>,
) {
    let follower = Rc::new(Follower { name, read_only, route });
    let sink: Rc<dyn StreamSink> = follower.clone();
    conn.with_value(|c| c.register_access(&server, Rc::downgrade(&sink)));
    // The connection holds the follower weakly: the page keeps it.
    let _kept = StoredValue::new_local(sink);
    let server = StoredValue::new(server);
    Effect::new(move |_| {
        if conn.with_value(|c| c.epoch()).get() == 0 {
            return;
        }
        let (Some(c), Some(server)) = (conn.try_get_value(), server.try_get_value()) else { return };
        let follower = follower.clone();
        spawn_local(async move {
            match c.call(AccessWatch { server }).await {
                Ok(w) => {
                    let _ = follower.read_only.try_set(w.role == "viewer");
                }
                // Refused: no access (any more). Other failures (the socket dropped) retry on
                // the next connection.
                // (Only while the page is still shown: it may have been left meanwhile.)
                Err(e)
                    if matches!(e.code, porta_shared::ErrorCode::NotFound | porta_shared::ErrorCode::Forbidden)
                        && follower.read_only.try_get_untracked().is_some() =>
                {
                    follower.lost()
                }
                Err(_) => {}
            }
        });
    });
    on_cleanup(move || {
        if let (Some(c), Some(server)) = (conn.try_get_value(), server.try_get_value()) {
            c.unregister_access(&server);
        }
    });
}
