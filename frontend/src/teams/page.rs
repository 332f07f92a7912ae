//! A team's page (`/teams/<id>`): its members and their roles, invitation links, and its
//! workspaces. What a person may change follows their role; the backend checks it again.

use leptos::html::{Input, Select};
use leptos::prelude::*;
use leptos::task::spawn_local;

use super::{InvitationCreated, Member, ROLES, Recording, TeamDetail, Workspace, can};
use crate::api::Session;
use crate::prefs;
use crate::route::{self, Route};
use crate::topbar::TopBar;

use super::when;

/// The team page, in a chunk of its own (see `crate::lazy`).
#[leptos::wasm_split::wasm_split(team, wasm_split_path = ::leptos::wasm_split, fallible)]
pub fn lazy_team_page(
    session: RwSignal<Option<Session>>,
    route: RwSignal<Route>,
    team_id: String,
) -> crate::lazy::Loaded {
    Ok(view! { <TeamPage session route team_id /> }.into_any())
}

#[component]
pub fn TeamPage(session: RwSignal<Option<Session>>, route: RwSignal<Route>, team_id: String) -> impl IntoView {
    let look = RwSignal::new(prefs::look());
    let team = RwSignal::new(None::<TeamDetail>);
    let error = RwSignal::new(None::<String>);
    let created = RwSignal::new(None::<InvitationCreated>);
    let copied = RwSignal::new(false);
    let id = StoredValue::new(team_id);
    let token = move || session.get_untracked().map(|s| s.token);
    let me = move || session.with_untracked(|s| s.as_ref().map(|s| s.user.id.clone()).unwrap_or_default());

    let recordings = RwSignal::new(Vec::<Recording>::new());
    let load = move || {
        let Some(token) = token() else { return };
        let Some(id_now) = id.try_get_value() else { return };
        spawn_local(async move {
            match super::team(&token, &id_now.clone()).await {
                Ok(t) => {
                    // Recordings are for the team's admins.
                    if can(&t.role, "admin") {
                        if let Ok(list) = super::recordings(&token, &t.id).await {
                            recordings.set(list);
                        }
                    }
                    team.set(Some(t));
                }
                Err(e) => error.set(Some(e)),
            }
        });
    };
    load();
    // Runs a change, then shows the team as it is now (or the error).
    let act = move |f: std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>>>>| {
        spawn_local(async move {
            match f.await {
                Ok(()) => error.set(None),
                Err(e) => error.set(Some(e)),
            }
            load();
        });
    };
    let my_role = move || team.with(|t| t.as_ref().map(|t| t.role.clone()).unwrap_or_default());
    let admin = move || can(&my_role(), "admin");

    let invite_role = NodeRef::<Select>::new();
    let invite_hours = NodeRef::<Select>::new();
    let invite = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let Some(token) = token() else { return };
        let role = invite_role.get_untracked().map(|s| s.value()).unwrap_or_else(|| "developer".into());
        let hours = invite_hours.get_untracked().and_then(|s| s.value().parse().ok()).unwrap_or(72);
        let Some(id_now) = id.try_get_value() else { return };
        spawn_local(async move {
            match super::create_invitation(&token, &id_now.clone(), &role, hours).await {
                Ok(made) => {
                    copied.set(false);
                    created.set(Some(made));
                    error.set(None);
                    load();
                }
                Err(e) => error.set(Some(e)),
            }
        });
    };
    let copy_link = move |_| {
        if let Some(made) = created.get_untracked() {
            spawn_local(async move { copied.set(crate::terminal::copy(&made.link).await) });
        }
    };
    let new_ws = NodeRef::<Input>::new();
    let add_workspace = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let Some(token) = token() else { return };
        let name = new_ws.get_untracked().map(|i| i.value()).unwrap_or_default();
        if let Some(i) = new_ws.get_untracked() {
            i.set_value("");
        }
        act(Box::pin(async move { super::create_workspace(&token, &id.get_value(), &name).await }));
    };
    let leave = move |_| {
        let Some(token) = token() else { return };
        let name = team.with_untracked(|t| t.as_ref().map(|t| t.name.clone()).unwrap_or_default());
        let question = format!("Leave {name}? You lose access to its servers until someone invites you again.");
        if !crate::browser::window().confirm_with_message(&question).unwrap_or(false) {
            return;
        }
        let user = me();
        let Some(id_now) = id.try_get_value() else { return };
        spawn_local(async move {
            match super::remove_member(&token, &id_now.clone(), &user).await {
                Ok(()) => route::go(route, Route::Dashboard),
                Err(e) => error.set(Some(e)),
            }
        });
    };
    let team_name = move || team.with_untracked(|t| t.as_ref().map(|t| t.name.clone()).unwrap_or_default());
    let rename = move |_| {
        let Some(token) = token() else { return };
        let asked = crate::browser::window().prompt_with_message_and_default("New name of the team", &team_name());
        let Some(name) = asked.ok().flatten().filter(|n| !n.trim().is_empty() && *n != team_name()) else { return };
        let Some(id_now) = id.try_get_value() else { return };
        act(Box::pin(async move { super::rename_team(&token, &id_now, name.trim()).await }));
    };
    // Deleting asks for the team's name, as a check that the right one goes.
    let delete = move |_| {
        let Some(token) = token() else { return };
        let name = team_name();
        let question = format!(
            "Delete {name} with its workspaces, projects, agents, alerts and recordings? This cannot be undone. \
             Type the team's name to delete it."
        );
        let Some(typed) = crate::browser::window().prompt_with_message(&question).ok().flatten() else { return };
        let Some(id_now) = id.try_get_value() else { return };
        spawn_local(async move {
            match super::delete_team(&token, &id_now, &typed).await {
                Ok(()) => route::go(route, Route::Dashboard),
                Err(e) => error.set(Some(e)),
            }
        });
    };
    let member_row = move |m: Member| {
        let mine = my_role();
        let is_me = m.user_id == me();
        // Admins manage roles up to their own; only owners touch owners.
        let manage = can(&mine, "admin") && can(&mine, &m.role);
        let user = StoredValue::new(m.user_id.clone());
        let change = move |ev: leptos::ev::Event| {
            let Some(token) = token() else { return };
            let role = event_target_value(&ev);
            act(Box::pin(
                async move { super::set_member_role(&token, &id.get_value(), &user.get_value(), &role).await },
            ));
        };
        let remove = move |_| {
            let Some(token) = token() else { return };
            act(Box::pin(async move { super::remove_member(&token, &id.get_value(), &user.get_value()).await }));
        };
        let roles: Vec<&'static str> = ROLES.iter().rev().copied().filter(|r| can(&mine, r)).collect();
        let role = m.role.clone();
        view! {
            <tr class="member" data-user=m.username.clone()>
                <td class="name">{m.username.clone()} {is_me.then_some(" (you)")}</td>
                <td>
                    {if manage {
                        view! {
                            <select class="role" aria-label=format!("Role of {}", m.username) on:change=change>
                                {roles
                                    .into_iter()
                                    .map(|r| view! { <option value=r selected=r == role>{r}</option> })
                                    .collect_view()}
                            </select>
                        }
                            .into_any()
                    } else {
                        view! { <span class="role">{m.role.clone()}</span> }.into_any()
                    }}
                </td>
                <td class="when">{when(m.joined_ms)}</td>
                <td>
                    <button class="secondary remove" hidden=!manage || is_me on:click=remove>
                        "Remove"
                    </button>
                </td>
            </tr>
        }
    };

    let workspace_row = move |w: Workspace| {
        let ws = StoredValue::new(w.id.clone());
        let deleted = w.deleted_ms.is_some();
        let toggle_delete = move |_| {
            let Some(token) = token() else { return };
            if !deleted {
                let question = "Delete this workspace? Its servers disappear for everyone until it is restored.";
                if !crate::browser::window().confirm_with_message(question).unwrap_or(false) {
                    return;
                }
            }
            act(Box::pin(async move { super::set_workspace_deleted(&token, &ws.get_value(), !deleted).await }));
        };
        let record = move |ev: leptos::ev::Event| {
            let Some(token) = token() else { return };
            let on = event_target_checked(&ev);
            act(Box::pin(async move { super::set_recording(&token, &ws.get_value(), on).await }));
        };
        let limits = StoredValue::new((w.max_recording_mb, w.max_recordings_mb));
        let limit = move |which: usize| {
            move |ev: leptos::ev::Event| {
                let Some(token) = token() else { return };
                let Ok(mb) = event_target_value(&ev).trim().parse::<u32>() else { return };
                let (mut one, mut all) = limits.get_value();
                if which == 0 {
                    one = f64::from(mb)
                } else {
                    all = f64::from(mb)
                }
                act(Box::pin(async move { super::set_recording_limits(&token, &ws.get_value(), one, all).await }));
            }
        };
        let quotas = StoredValue::new(w.quotas());
        // Each box sets its quota and keeps the others as they are.
        let quota = move |which: usize| {
            move |ev: leptos::ev::Event| {
                let Some(token) = token() else { return };
                let mut q = quotas.get_value();
                q[which] = event_target_value(&ev).trim().parse::<u32>().ok().map(f64::from);
                act(Box::pin(async move { super::set_quotas(&token, &ws.get_value(), q).await }));
            }
        };
        let quota_box = move |label: &'static str, class: &'static str, which: usize| {
            view! {
                <label class="inline">
                    {label}
                    <input
                        class=format!("quota {class}")
                        type="number"
                        min="0"
                        placeholder="no limit"
                        prop:value=quotas.get_value()[which].map(|m| m.to_string()).unwrap_or_default()
                        disabled=!admin()
                        on:change=quota(which)
                    />
                </label>
            }
        };
        view! {
            <tr class="workspace-row" data-deleted=deleted.to_string()>
                <td class="name">{w.name.clone()} {deleted.then_some(" (deleted)")}</td>
                <td>
                    <label class="inline">
                        <input type="checkbox" class="record" prop:checked=w.record_terminals disabled=!admin() || deleted on:change=record />
                        "Record terminals"
                    </label>
                    <label class="inline" title="The most one recording may take; it stops there, saying so">
                        "MB each"
                        <input class="quota max-recording-mb" type="number" min="1"
                            prop:value=limits.get_value().0.to_string() disabled=!admin() on:change=limit(0) />
                    </label>
                    <label class="inline" title="The most the workspace's recordings may take together">
                        "MB in all"
                        <input class="quota max-recordings-mb" type="number" min="1"
                            prop:value=limits.get_value().1.to_string() disabled=!admin() on:change=limit(1) />
                    </label>
                </td>
                <td class="quotas">
                    {quota_box("Servers", "max-servers", 0)}
                    {quota_box("Projects", "max-projects", 1)}
                    {quota_box("Terminals", "max-terminals", 2)}
                    {quota_box("Agents", "max-agents", 3)}
                </td>
                <td>
                    <button class="secondary" hidden=!admin() on:click=toggle_delete>
                        {if deleted { "Restore" } else { "Delete" }}
                    </button>
                </td>
            </tr>
        }
    };

    view! {
        <TopBar session look>
            <crate::topbar::BackLink route />
            <span class="crumb">{move || team.with(|t| t.as_ref().map(|t| t.name.clone()).unwrap_or_default())}</span>
        </TopBar>
        <main class="team-page">
            <div class="heading">
                <h2>{move || team.with(|t| t.as_ref().map(|t| t.name.clone()).unwrap_or_default())}</h2>
                <span class="your-role">{move || format!("You are {}", my_role())}</span>
                <button class="secondary rename-team" hidden=move || !admin() on:click=rename>
                    "Rename"
                </button>
                <button class="secondary leave" on:click=leave>
                    "Leave team"
                </button>
                <button class="danger delete-team" hidden=move || my_role() != "owner" on:click=delete>
                    "Delete team…"
                </button>
            </div>
            <p class="error" role="alert" hidden=move || error.get().is_none()>
                {move || error.get().unwrap_or_default()}
            </p>

            <section class="members">
                <h3>"Members"</h3>
                <table>
                    <thead>
                        <tr><th>"Name"</th><th>"Role"</th><th>"Joined (UTC)"</th><th></th></tr>
                    </thead>
                    <tbody>
                        {move || team.get().map(|t| t.members.into_iter().map(member_row).collect_view())}
                    </tbody>
                </table>
            </section>

            <section class="invite" hidden=move || !admin()>
                <h3>"Invite someone"</h3>
                <form class="invite-form" on:submit=invite>
                    <label>
                        "Role"
                        <select node_ref=invite_role name="role">
                            {move || {
                                let mine = my_role();
                                ROLES
                                    .iter()
                                    .copied()
                                    .filter(|r| can(&mine, r))
                                    .map(|r| view! { <option value=r selected=r == "developer">{r}</option> })
                                    .collect_view()
                            }}
                        </select>
                    </label>
                    <label>
                        "Link works for"
                        <select node_ref=invite_hours name="hours">
                            <option value="24">"1 day"</option>
                            <option value="72" selected>"3 days"</option>
                            <option value="168">"7 days"</option>
                            <option value="720">"30 days"</option>
                        </select>
                    </label>
                    <button type="submit" class="make-link">"Make link"</button>
                </form>
                {move || created.get().map(|made| view! {
                    <div class="invite-link" role="status">
                        <p>
                            "Send this link to the person you invite (as " {made.info.role.clone()}
                            "). It works once, until " {when(made.info.expires_ms)} " UTC, and is shown only now."
                        </p>
                        <div class="secret">
                            <input readonly class="link" prop:value=made.link.clone() />
                            <button class="copy" on:click=copy_link>
                                {move || if copied.get() { "Copied" } else { "Copy" }}
                            </button>
                        </div>
                    </div>
                })}
                <ul class="pending">
                    {move || team.get().map(|t| t.invitations.into_iter().map(|i| {
                        let inv = StoredValue::new(i.id.clone());
                        let revoke = move |_| {
                            let Some(token) = token() else { return };
                            act(Box::pin(async move { super::revoke_invitation(&token, &id.get_value(), &inv.get_value()).await }));
                        };
                        view! {
                            <li class="pending-invitation">
                                {format!("A link for a {}, made {} UTC, open until {} UTC ", i.role, when(i.created_ms), when(i.expires_ms))}
                                <button class="secondary revoke" on:click=revoke>"Revoke"</button>
                            </li>
                        }
                    }).collect_view())}
                </ul>
            </section>

            <section class="recordings" hidden=move || !admin()>
                <h3>"Terminal recordings"</h3>
                <p class="empty" hidden=move || recordings.with(|r| !r.is_empty())>
                    "None yet. Turn on \"Record terminals\" in a workspace: its new terminals are recorded."
                </p>
                <table hidden=move || recordings.with(Vec::is_empty)>
                    <thead>
                        <tr><th>"Started (UTC)"</th><th>"Terminal"</th><th>"By"</th><th>"Length"</th><th></th></tr>
                    </thead>
                    <tbody>
                        {move || recordings.get().into_iter().map(|r| {
                            let to = Route::Recording(r.id.clone());
                            let href = to.path();
                            let length = match r.ended_ms {
                                Some(end) => format!("{}, {:.1} MB", super::duration((end - r.started_ms) / 1000.0), r.bytes / 1_048_576.0),
                                None => "going on".to_owned(),
                            };
                            // "bash on web-1": what people call a terminal.
                            let shell = r.shell.as_deref().map_or("terminal", |s| s.rsplit('/').next().unwrap_or(s));
                            let what = format!("{shell} on {}", r.server_name.clone().unwrap_or_else(|| "a removed server".into()));
                            let stopped = r.stopped.clone().map(|why| format!("Stopped early: {why}"));
                            view! {
                                <tr class="recording">
                                    <td class="when">{when(r.started_ms)}</td>
                                    <td class="what" title=format!("terminal {}", r.term_id)>{what}</td>
                                    <td>{r.started_by_name.clone().unwrap_or_default()}</td>
                                    <td>{length} <span class="stopped muted" hidden=stopped.is_none()>{stopped.clone().unwrap_or_default()}</span></td>
                                    <td>
                                        <a class="play-recording" href=href on:click=move |ev| {
                                            ev.prevent_default();
                                            route::go(route, to.clone());
                                        }>"Play"</a>
                                    </td>
                                </tr>
                            }
                        }).collect_view()}
                    </tbody>
                </table>
            </section>

            <section class="assistant-settings">
                <h3>"Assistant and agents"</h3>
                <p class="muted">
                    "The model each workspace's assistant talks to, and its agents. Agents read freely; their \
                     changes wait for the person's approval unless allowed here."
                </p>
                {move || team.get().map(|t| t.workspaces.into_iter().filter(|w| w.deleted_ms.is_none()).map(|w| view! {
                    <crate::assistant::settings::WorkspaceAssistant session workspace=w.id.clone() name=w.name.clone() admin=Signal::derive(admin) />
                }).collect_view())}
            </section>

            <section class="command-policy">
                <h3>"Command policy"</h3>
                <p class="muted">
                    "What agents (the assistant's, MCP clients, the agent API) may run on this team's servers: \
                     allowed at once, only once a person approves, or never. The strictest rule that names a \
                     command wins, wrappers like sudo, env or bash -c are seen through, and a command whose \
                     words are known only when it runs ($DIR) asks. People typing in a terminal are not filtered."
                </p>
                <details class="policy-help">
                    <summary>"How to write a rule"</summary>
                    <p class="muted">
                        <code>"rm -r ... /"</code>": the program, then options (found anywhere, "<code>"-r"</code>
                        " also inside "<code>"-rf"</code>") and arguments in order ("<code>"..."</code>" skips any). \
                        Globs: "<code>"*"</code>" within a path segment, "<code>"**"</code>" across, "
                        <code>"{a,b}"</code>" either. "<code>"curl | sh"</code>": a pipe from one into the other. "
                        <code>"> /dev/sd*"</code>": output written there. "<code>"@fork-bomb"</code>": a function that calls itself."
                    </p>
                </details>
                {move || team.get().map(|t| t.workspaces.into_iter().filter(|w| w.deleted_ms.is_none()).map(|w| view! {
                    <super::policy::WorkspacePolicy session workspace=w.id.clone() name=w.name.clone() admin=Signal::derive(admin) />
                }).collect_view())}
            </section>

            <section class="workspaces">
                <h3>"Workspaces"</h3>
                <table>
                    <tbody>
                        {move || team.get().map(|t| t.workspaces.into_iter().map(workspace_row).collect_view())}
                    </tbody>
                </table>
                <form class="new-workspace" hidden=move || !admin() on:submit=add_workspace>
                    <input node_ref=new_ws name="workspace" placeholder="New workspace name" required maxlength="64" />
                    <button type="submit">"Add workspace"</button>
                </form>
            </section>
        </main>
    }
}
