//! Jobs the engine takes a while over (pulls, a stack's up or down), followed as they go: each
//! step (an image's layers) and what it says, until it ends well or says why not.

use leptos::prelude::*;
use porta_shared::client::OnServer;
use porta_shared::docker::{DockerJobRead, JobProgress};

use crate::conn::Conn;
use crate::monitor::data::bytes;

/// The jobs shown, newest first, each under its title.
pub type Jobs = RwSignal<Vec<(String, JobProgress)>>;

/// Follows `job` on `server`, shown under `title`, until it ends (or the panel is gone);
/// whether it ended well.
pub async fn follow(c: &Conn, server: &str, job: String, title: String, jobs: Jobs) -> bool {
    jobs.update(|p| {
        p.retain(|(t, _)| *t != title);
        p.insert(0, (title.clone(), JobProgress::default()));
    });
    let mut after = 0;
    loop {
        let asked = DockerJobRead { job: job.clone(), after, wait_ms: DockerJobRead::MAX_WAIT_MS };
        let now = match c.call(OnServer { server: server.to_owned(), req: asked }).await {
            Ok(now) => now,
            Err(e) => JobProgress { ended: true, error: Some(e.message), ..Default::default() },
        };
        after = now.version;
        let (ended, well) = (now.ended, now.error.is_none());
        // The panel closed: nothing more to show.
        let shown = jobs.try_update(|p| {
            if let Some(slot) = p.iter_mut().find(|(t, _)| *t == title) {
                slot.1 = now;
            }
        });
        if shown.is_none() {
            return false;
        }
        if ended {
            return well;
        }
    }
}

/// Every job shown.
#[component]
pub fn JobList(jobs: Jobs) -> impl IntoView {
    view! {
        <For each=move || jobs.get() key=|(t, p)| (t.clone(), p.version) let:((title, progress))>
            <JobView title progress close=move |title: String| jobs.update(|p| p.retain(|(t, _)| *t != title)) />
        </For>
    }
}

/// One job: its steps as they go, and what it said.
#[component]
fn JobView(
    title: String,
    progress: JobProgress,
    close: impl Fn(String) + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let state = match (&progress.error, progress.ended) {
        (Some(e), _) => format!("failed: {e}"),
        (None, true) => "done".to_owned(),
        (None, false) => "under way…".to_owned(),
    };
    let class = if progress.error.is_some() {
        "job failed"
    } else if progress.ended {
        "job done"
    } else {
        "job"
    };
    let shut = title.clone();
    view! {
        <section class=format!("container-details {class}") aria-label=title.clone()>
            <div class="details-head">
                <h3>{format!("{title}: {state}")}</h3>
                <button class="secondary" on:click=move |_| close(shut.clone())>"Close"</button>
            </div>
            <ul class="layers">
                {progress.steps.iter().map(|s| {
                    let amount = match (s.current, s.total) {
                        (Some(c), Some(t)) => format!(" {} of {}", bytes(c), bytes(t)),
                        _ => String::new(),
                    };
                    view! {
                        <li class="layer"><span class="mono">{s.id.clone()}</span>" "{s.status.clone()}{amount}
                            {s.current.zip(s.total).map(|(c, t)| view! { <progress max=t.to_string() value=c.to_string()></progress> })}
                        </li>
                    }
                }).collect_view()}
            </ul>
            <ul class="said">{progress.said.iter().map(|l| view! { <li>{l.clone()}</li> }).collect_view()}</ul>
        </section>
    }
}
