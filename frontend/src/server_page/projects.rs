//! The projects on a server, as its page uses them: places in the file tree's path bar, and
//! those that say how they run, for "Run".

use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::api::{Server, Session};
use crate::files::Place;
use crate::run::Run;

/// Fills `runs` and `places` with the projects on the page's server once it is known, and again
/// each time the page is looked at again: a project given a run in another tab (the
/// dashboard) is there when the person comes back.
pub(super) fn follow(
    session: RwSignal<Option<Session>>,
    server: RwSignal<Option<Server>>,
    runs: RwSignal<Vec<Run>>,
    places: RwSignal<Vec<Place>>,
) {
    let load = move || {
        let token = session.try_with_untracked(|s| s.as_ref().map(|s| s.token.clone())).flatten();
        let here = server.try_with_untracked(|s| s.as_ref().map(|s| (s.id.clone(), s.workspace_id.clone()))).flatten();
        let (Some(token), Some((server_id, Some(workspace)))) = (token, here) else { return };
        spawn_local(async move {
            if let Ok(list) = crate::projects::list(&token, &workspace, false).await {
                let here: Vec<_> = list.into_iter().filter(|p| p.server_id == server_id).collect();
                runs.try_set(here.iter().filter_map(Run::of).collect());
                places.try_set(here.into_iter().map(|p| Place { name: p.name, path: p.path }).collect());
            }
        });
    };
    Effect::new(move |_| {
        if server.with(Option::is_some) {
            load();
        }
    });
    let looked_at = window_event_listener_untyped("visibilitychange", move |_| {
        if crate::browser::window().document().is_some_and(|d| !d.hidden()) {
            load();
        }
    });
    on_cleanup(move || looked_at.remove());
}
