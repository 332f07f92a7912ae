//! Teams in the app: the team switcher on the dashboard, the team's page (members and roles,
//! invitation links, workspaces) and the page an invitation link opens.

mod invite;
mod page;
mod policy;

pub use invite::lazy_invite_page;
pub use page::lazy_team_page;

use leptos::prelude::*;
use serde::Deserialize;
use serde_json::json;

use crate::api::graphql;
use crate::browser::{load, save};

/// A length of time for people: `45 s`, `12 min`, `2 h 5 min`.
fn duration(secs: f64) -> String {
    let secs = secs.max(0.0).round() as u64;
    match secs {
        s if s < 60 => format!("{s} s"),
        s if s < 3600 => format!("{} min", s / 60),
        s => format!("{} h {} min", s / 3600, s % 3600 / 60),
    }
}

/// A day and time for people, in UTC.
pub(crate) fn when(ms: f64) -> String {
    let iso: String = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(ms)).to_iso_string().into();
    iso.get(..16).unwrap_or(&iso).replace('T', " ")
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Team {
    pub id: String,
    pub name: String,
    /// The user's role there.
    pub role: String,
    pub members: f64,
    /// The team the person chose last, on any device (or joined last).
    #[serde(default)]
    pub current: bool,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Member {
    pub user_id: String,
    pub username: String,
    pub role: String,
    pub joined_ms: f64,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Workspace {
    pub id: String,
    pub name: String,
    pub deleted_ms: Option<f64>,
    pub record_terminals: bool,
    pub max_servers: Option<f64>,
    pub max_projects: Option<f64>,
    pub max_terminals: Option<f64>,
    pub max_agents: Option<f64>,
    pub max_recording_mb: f64,
    pub max_recordings_mb: f64,
}

impl Workspace {
    /// The quotas in the order `setWorkspaceQuotas` takes them.
    pub fn quotas(&self) -> [Option<f64>; 4] {
        [self.max_servers, self.max_projects, self.max_terminals, self.max_agents]
    }
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Invitation {
    pub id: String,
    pub role: String,
    pub created_ms: f64,
    pub expires_ms: f64,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TeamDetail {
    pub id: String,
    pub name: String,
    pub role: String,
    pub members: Vec<Member>,
    pub workspaces: Vec<Workspace>,
    pub invitations: Vec<Invitation>,
}

/// A team as the dashboard shows it: the person's role and the workspaces by name (the rest
/// of [`TeamDetail`] is for the team's page, whose code comes when it is opened).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TeamOutline {
    pub id: String,
    pub role: String,
    pub workspaces: Vec<WorkspaceName>,
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkspaceName {
    pub id: String,
    pub name: String,
    pub deleted_ms: Option<f64>,
}

/// A terminal session recording, as listed.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Recording {
    pub id: String,
    pub server_name: Option<String>,
    pub term_id: f64,
    #[serde(default)]
    pub shell: Option<String>,
    pub started_by_name: Option<String>,
    pub started_ms: f64,
    pub ended_ms: Option<f64>,
    pub bytes: f64,
    /// Why it stopped before the session ended (a limit), if it did.
    pub stopped: Option<String>,
}

pub async fn recordings(token: &str, team: &str) -> Result<Vec<Recording>, String> {
    let q = "query($t: String!) { recordings(teamId: $t) { id serverName termId shell startedByName startedMs endedMs bytes stopped } }";
    graphql(token, q, json!({ "t": team }), "recordings").await
}

#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct InvitationCreated {
    pub link: String,
    pub info: Invitation,
}

/// Roles, lowest first.
pub const ROLES: [&str; 4] = ["viewer", "developer", "admin", "owner"];

fn rank(role: &str) -> usize {
    ROLES.iter().position(|r| *r == role).unwrap_or(0)
}

/// Whether `role` reaches `need`.
pub fn can(role: &str, need: &str) -> bool {
    rank(role) >= rank(need)
}

const CURRENT: &str = "porta.team";

/// The team the dashboard showed last on this device.
pub fn current_team() -> Option<String> {
    load(CURRENT)
}

pub fn save_current_team(id: &str) {
    save(CURRENT, id);
}

const TEAM_FIELDS: &str = "id name role \
    members { userId username role joinedMs } \
    workspaces { id name deletedMs recordTerminals maxServers maxProjects maxTerminals maxAgents \
        maxRecordingMb maxRecordingsMb } \
    invitations { id role createdMs expiresMs }";

pub async fn teams(token: &str) -> Result<Vec<Team>, String> {
    graphql(token, "{ teams { id name role members current } }", json!({}), "teams").await
}

pub async fn team(token: &str, id: &str) -> Result<TeamDetail, String> {
    let q = format!("query($id: String!) {{ team(id: $id) {{ {TEAM_FIELDS} }} }}");
    graphql(token, &q, json!({ "id": id }), "team").await
}

pub async fn team_outline(token: &str, id: &str) -> Result<TeamOutline, String> {
    let q = "query($id: String!) { team(id: $id) { id role workspaces { id name deletedMs } } }";
    graphql(token, q, json!({ "id": id }), "team").await
}

pub async fn create_team(token: &str, name: &str) -> Result<Team, String> {
    let q = "mutation($n: String!) { createTeam(name: $n) { id name role members current } }";
    graphql(token, q, json!({ "n": name }), "createTeam").await
}

pub async fn create_invitation(token: &str, team: &str, role: &str, hours: u32) -> Result<InvitationCreated, String> {
    let q = "mutation($t: String!, $r: String!, $h: Int!) {
        createInvitation(teamId: $t, role: $r, expiresInHours: $h) { link info { id role createdMs expiresMs } }
    }";
    graphql(token, q, json!({ "t": team, "r": role, "h": hours }), "createInvitation").await
}

/// Remembers the team the person looks at, so their other devices open on it.
pub async fn choose_team(token: &str, team: &str) -> Result<(), String> {
    mutate(token, "mutation($t: String!) { chooseTeam(teamId: $t) }", json!({ "t": team }), "chooseTeam").await
}

pub async fn rename_team(token: &str, team: &str, name: &str) -> Result<(), String> {
    let q = "mutation($t: String!, $n: String!) { renameTeam(teamId: $t, name: $n) }";
    mutate(token, q, json!({ "t": team, "n": name }), "renameTeam").await
}

/// Deletes a team and everything in it; `name` must be its name.
pub async fn delete_team(token: &str, team: &str, name: &str) -> Result<(), String> {
    let q = "mutation($t: String!, $n: String!) { deleteTeam(teamId: $t, name: $n) }";
    mutate(token, q, json!({ "t": team, "n": name }), "deleteTeam").await
}

/// Runs a mutation that answers `true`.
async fn mutate(token: &str, q: &str, vars: serde_json::Value, field: &str) -> Result<(), String> {
    graphql::<bool>(token, q, vars, field).await.map(|_| ())
}

pub async fn revoke_invitation(token: &str, team: &str, id: &str) -> Result<(), String> {
    let q = "mutation($t: String!, $i: String!) { revokeInvitation(teamId: $t, id: $i) }";
    mutate(token, q, json!({ "t": team, "i": id }), "revokeInvitation").await
}

pub async fn set_member_role(token: &str, team: &str, user: &str, role: &str) -> Result<(), String> {
    let q = "mutation($t: String!, $u: String!, $r: String!) { setMemberRole(teamId: $t, userId: $u, role: $r) }";
    mutate(token, q, json!({ "t": team, "u": user, "r": role }), "setMemberRole").await
}

pub async fn remove_member(token: &str, team: &str, user: &str) -> Result<(), String> {
    let q = "mutation($t: String!, $u: String!) { removeMember(teamId: $t, userId: $u) }";
    mutate(token, q, json!({ "t": team, "u": user }), "removeMember").await
}

pub async fn create_workspace(token: &str, team: &str, name: &str) -> Result<(), String> {
    let q = "mutation($t: String!, $n: String!) { createWorkspace(teamId: $t, name: $n) { id } }";
    graphql::<serde_json::Value>(token, q, json!({ "t": team, "n": name }), "createWorkspace").await.map(|_| ())
}

/// Deletes (softly) or restores a workspace.
pub async fn set_workspace_deleted(token: &str, id: &str, deleted: bool) -> Result<(), String> {
    let field = if deleted { "deleteWorkspace" } else { "restoreWorkspace" };
    mutate(token, &format!("mutation($w: String!) {{ {field}(id: $w) }}"), json!({ "w": id }), field).await
}

pub async fn set_recording(token: &str, id: &str, on: bool) -> Result<(), String> {
    let q = "mutation($w: String!, $on: Boolean!) { setWorkspaceRecording(id: $w, on: $on) }";
    mutate(token, q, json!({ "w": id, "on": on }), "setWorkspaceRecording").await
}

/// Sets how many MB one recording, and all of a workspace's, may take.
pub async fn set_recording_limits(token: &str, id: &str, per_recording: f64, total: f64) -> Result<(), String> {
    let m = "mutation($w: String!, $p: Int!, $t: Int!) {
        setWorkspaceRecordingLimits(id: $w, perRecordingMb: $p, totalMb: $t)
    }";
    let vars = json!({ "w": id, "p": per_recording as i64, "t": total as i64 });
    mutate(token, m, vars, "setWorkspaceRecordingLimits").await
}

/// Sets all four quotas (servers, projects, terminals, agents; `None`: no limit).
pub async fn set_quotas(token: &str, id: &str, q: [Option<f64>; 4]) -> Result<(), String> {
    let m = "mutation($w: String!, $s: Int, $p: Int, $t: Int, $a: Int) {
        setWorkspaceQuotas(id: $w, maxServers: $s, maxProjects: $p, maxTerminals: $t, maxAgents: $a)
    }";
    let n = |v: Option<f64>| v.map(|v| v as i64);
    let vars = json!({ "w": id, "s": n(q[0]), "p": n(q[1]), "t": n(q[2]), "a": n(q[3]) });
    mutate(token, m, vars, "setWorkspaceQuotas").await
}

/// The team picker: the user's teams, and "New team…".
#[component]
pub fn TeamSwitcher(
    teams: RwSignal<Vec<Team>>,
    current: RwSignal<Option<String>>,
    on_new: Callback<String>,
    /// The person picked a team (remembered for their other devices).
    on_pick: Callback<String>,
) -> impl IntoView {
    let pick = move |ev: leptos::ev::Event| {
        let value = event_target_value(&ev);
        if value == "+new" {
            let name = crate::browser::window().prompt_with_message("Name of the new team").ok().flatten();
            // Put the picker back on the current team; the new one is chosen once made.
            current.update(|_| {});
            if let Some(name) = name.filter(|n| !n.trim().is_empty()) {
                on_new.run(name);
            }
            return;
        }
        save_current_team(&value);
        current.set(Some(value.clone()));
        on_pick.run(value);
    };
    view! {
        <label class="team-switcher">
            <span class="sr-only">"Team"</span>
            <select aria-label="Team" on:change=pick prop:value=move || current.get().unwrap_or_default()>
                <For each=move || teams.get() key=|t| (t.id.clone(), t.name.clone()) let:t>
                    <option value=t.id.clone() selected=move || current.get().as_deref() == Some(t.id.as_str())>
                        {format!("{} ({})", t.name, t.role)}
                    </option>
                </For>
                <option value="+new">"New team…"</option>
            </select>
        </label>
    }
}

#[cfg(test)]
mod tests {
    use super::duration;

    #[test]
    fn lengths_of_time_for_people() {
        assert_eq!(duration(0.4), "0 s");
        assert_eq!(duration(59.0), "59 s");
        assert_eq!(duration(720.0), "12 min");
        assert_eq!(duration(7500.0), "2 h 5 min");
        assert_eq!(duration(-3.0), "0 s");
    }
}
