//! A tab's requests: each checked against [`table::rule`] (scope, role, audit line), then
//! relayed to the server's bridge or answered here.

use std::time::Duration;

use porta_shared::bridge::{self, BridgeRequest};
use porta_shared::client::{self, ClientRequest};
use porta_shared::types::{ServerId, StreamId, TermId};
use porta_shared::{ErrorBody, ErrorCode};

use super::streams::{Kind, Phase};
use super::table::{self, Rule};
use super::{After, Session, err};
use crate::auth::scopes::Access;
use crate::bus::Route;
use crate::db::{AuditEvent, User};
use crate::error::Error;
use crate::state::AppState;
use crate::teams::{Role, authorize_server};

/// An audit event waiting for the bridge's answer.
pub(super) struct PendingAudit {
    actor: String,
    action: &'static str,
    server: ServerId,
    workspace: Option<String>,
    detail: String,
}

impl PendingAudit {
    /// Writes the event with `result`, adding `why` to the detail.
    pub(super) async fn write(self, state: &AppState, result: &str, why: Option<&str>) {
        let detail = match why {
            Some(w) => format!("{} — {w}", self.detail),
            None => self.detail,
        };
        let target = format!("server:{}", self.server);
        let event = AuditEvent::new(&self.actor, self.action)
            .target(&target)
            .ok(result == "ok")
            .detail(detail)
            .server(&self.server)
            .workspace_opt(self.workspace.as_deref())
            .result(result);
        state.store.audit(event).await;
    }
}

/// Who the socket belongs to, and what they may reach.
pub(super) struct Caller {
    pub(super) state: AppState,
    pub(super) user: User,
    /// A signed-in session, or an API token and its scopes.
    pub(super) access: Access,
}

impl Caller {
    /// The server, if the caller reaches it with the role `need` (for doing `what`).
    pub(super) async fn grant(&self, server: &str, (need, what): (Role, &str)) -> Result<ServerGrant, ErrorBody> {
        match authorize_server(&self.state.store, &self.user, &self.access, server, need, what).await {
            Ok(a) => Ok(ServerGrant {
                id: a.server.id,
                role: a.role,
                workspace: a.server.workspace_id,
                record: a.record_terminals,
                max_terminals: a.max_terminals,
            }),
            Err(e) => Err(e.to_body()),
        }
    }

    /// Writes `rule`'s audit event for what was just done on `on`; `detail` when the request
    /// alone could not name it.
    pub(super) async fn audit(&self, rule: &Rule, on: &ServerGrant, detail: Option<String>) {
        let Some((action, named)) = &rule.audit else { return };
        let detail = detail.or_else(|| Some(named.clone()).filter(|d| !d.is_empty()));
        let target = format!("server:{}", on.id);
        let actor = self.access.actor(&self.user.id);
        let event = AuditEvent::new(&actor, action)
            .target(&target)
            .detail_opt(detail)
            .server(&on.id)
            .workspace_opt(on.workspace.as_deref());
        self.state.store.audit(event).await;
    }
}

/// A server the caller reaches, their role there, and its workspace.
pub(super) struct ServerGrant {
    pub(super) id: ServerId,
    pub(super) role: Role,
    pub(super) workspace: Option<String>,
    /// Whether its workspace records terminal sessions.
    pub(super) record: bool,
    /// Its workspace's quota of terminals running at once.
    pub(super) max_terminals: Option<i64>,
}

/// Terminals running (not exited) on the workspace's online servers, asked of their bridges.
async fn running_terminals(state: &AppState, workspace: &str) -> Result<i64, ErrorBody> {
    let servers = state.store.server_ids_in(workspace).await.map_err(|e| Error::from(e).to_body())?;
    let timeout = Duration::from_millis(state.config.request_timeout_ms);
    let mut running = 0;
    for server in servers.iter().filter(|s| state.bus.connected(s).is_some()) {
        let reply = tokio::time::timeout(timeout, state.bus.request(server, bridge::TermList {}.into(), Route::None))
            .await
            .map_err(|_| {
                err(ErrorCode::Timeout, "a server of the workspace did not say how many terminals it runs")
            })??;
        let listed: bridge::TermListed = serde_json::from_str(reply.get())
            .map_err(|e| err(ErrorCode::Internal, format!("malformed reply from the bridge: {e}")))?;
        running += listed.terminals.iter().filter(|t| t.exit.is_none()).count() as i64;
    }
    Ok(running)
}

impl Session {
    /// Registers a new stream on `server` in the opening phase and returns its id.
    fn open_stream(&mut self, server: &ServerGrant, kind: Kind, next: u64) -> Result<StreamId, ErrorBody> {
        let ServerGrant { id: server, role, .. } = server;
        let connected = self
            .state
            .bus
            .connected(server)
            .ok_or_else(|| err(ErrorCode::ServerOffline, format!("server {server} is offline")))?;
        let stream = self.state.bus.new_stream_id();
        self.streams.open(
            stream,
            server,
            (connected.conn, connected.instance),
            kind,
            next,
            *role >= Role::Developer,
        )?;
        Ok(stream)
    }

    pub(super) async fn on_request(&mut self, id: String, msg: ClientRequest) -> Result<(), ErrorBody> {
        use ClientRequest as C;
        let rule = table::rule(&msg);
        if !self.caller.access.allows(rule.scope) {
            let msg = format!("this API token lacks the {} scope", rule.scope.as_str());
            return Err(err(ErrorCode::Forbidden, msg));
        }
        let need = rule.need();
        let id = Some(id);
        match msg {
            C::TermOpen(r) => {
                let mut grant = self.caller.grant(&r.server, need).await?;
                // Whether the workspace records, and its quota, as stored now: the access
                // answer may be a second old, from before another replica changed them.
                if let Some(ws) = &grant.workspace {
                    let fresh = self.state.store.workspace(ws).await.map_err(|e| Error::from(e).to_body())?;
                    if let Some(w) = fresh {
                        (grant.record, grant.max_terminals) = (w.record_terminals, w.max_terminals);
                    }
                }
                if let (Some(max), Some(ws)) = (grant.max_terminals, &grant.workspace) {
                    if running_terminals(&self.state, ws).await? >= max {
                        let msg = format!("this workspace runs its quota of {max} terminals; close one first");
                        return Err(err(ErrorCode::Conflict, msg));
                    }
                }
                let stream = self.open_stream(&grant, Kind::Term(TermId(0)), 0)?;
                if grant.record {
                    if let Some(s) = self.streams.map.get_mut(&stream) {
                        s.record = grant.workspace.clone();
                        s.recorded = s.record.is_some();
                    }
                }
                self.caller.audit(&rule, &grant, None).await;
                // A bridge from before consoles would ignore `container` and open a shell on the
                // server, where a person would type what they meant for the container.
                let shell = match &r.container {
                    Some(_) => Some(porta_shared::docker::Console::OLD_BRIDGE_SHELL.to_owned()),
                    None => r.shell,
                };
                let req = bridge::TermOpen {
                    shell,
                    args: r.args,
                    cwd: r.cwd,
                    size: r.size,
                    env: r.env,
                    container: r.container,
                    stream: Some(stream),
                    // The bridge closes a terminal that opens after we stopped waiting.
                    deadline_ms: Some(self.state.config.request_timeout_ms.saturating_sub(2000).max(1000)),
                };
                self.relay(id, &r.server, req.into(), Route::Open(stream, self.client), After::Opened(stream));
            }
            C::TermAttach(r) => {
                let grant = self.caller.grant(&r.server, need).await?;
                // When the store cannot tell, say recorded if the workspace records: never
                // tell someone they are unrecorded by mistake.
                let recorded = self.state.store.recording_active(&grant.id, r.term.0).await.unwrap_or(grant.record);
                let stream = self.open_stream(&grant, Kind::Term(r.term), r.after)?;
                if let Some(s) = self.streams.map.get_mut(&stream) {
                    s.recorded = recorded;
                }
                let req = bridge::TermAttach { term: r.term, stream, after: r.after };
                self.relay(id, &r.server, req.into(), Route::Open(stream, self.client), After::Opened(stream));
            }
            C::TermDetach(r) => {
                self.streams.get(r.stream)?;
                let s = self.streams.remove(r.stream).ok_or_else(|| err(ErrorCode::UnknownStream, "no such stream"))?;
                if matches!(s.phase, Phase::Interrupted) {
                    self.reply(id.as_deref(), Ok(bridge::Done {}));
                } else {
                    let req = bridge::TermDetach { stream: r.stream };
                    self.relay(id, &s.server, req.into(), Route::Close(r.stream), After::Forward);
                }
            }
            C::TermResize(r) => {
                let (server, term) = self.streams.live_terminal(r.stream)?;
                self.caller.grant(&server, need).await?;
                self.relay(id, &server, bridge::TermResize { term, size: r.size }.into(), Route::None, After::Forward);
            }
            C::TermSignal(r) => {
                let (server, term) = self.streams.live_terminal(r.stream)?;
                self.caller.grant(&server, need).await?;
                self.relay(
                    id,
                    &server,
                    bridge::TermSignal { term, signal: r.signal }.into(),
                    Route::None,
                    After::Forward,
                );
            }
            C::TermClose(r) => {
                let (server, term) = match r {
                    client::TermClose::Stream { stream } => self.streams.live_terminal(stream)?,
                    client::TermClose::Term { server, term } => (server, term),
                };
                let grant = self.caller.grant(&server, need).await?;
                self.caller.audit(&rule, &grant, Some(format!("terminal {term}"))).await;
                self.relay(id, &server, bridge::TermClose { term }.into(), Route::None, After::Forward);
            }
            C::ExecStart(r) => {
                let grant = self.caller.grant(&r.server, need).await?;
                let stream = self.open_stream(&grant, Kind::Exec, 0)?;
                self.caller.audit(&rule, &grant, None).await;
                let req = bridge::ExecStart {
                    argv: r.argv,
                    shell: r.shell,
                    cwd: r.cwd,
                    env: r.env,
                    timeout_ms: r.timeout_ms,
                    stream,
                };
                self.relay(id, &r.server, req.into(), Route::Open(stream, self.client), After::ExecOpened(stream));
            }
            C::ExecCancel(r) => {
                let s = self.streams.get(r.stream)?;
                if s.kind != Kind::Exec {
                    return Err(err(ErrorCode::BadRequest, format!("stream {} is not a command", r.stream)));
                }
                let server = s.server.clone();
                self.caller.grant(&server, need).await?;
                self.relay(id, &server, bridge::ExecCancel { stream: r.stream }.into(), Route::None, After::Forward);
            }
            C::FsWatch(r) => {
                let grant = self.caller.grant(&r.server, need).await?;
                let stream = self.open_stream(&grant, Kind::Watch, 0)?;
                let req = bridge::FsWatch { path: r.path, stream };
                self.relay(id, &r.server, req.into(), Route::Open(stream, self.client), After::WatchOpened(stream));
            }
            C::FsUnwatch(r) => {
                if self.streams.get(r.stream)?.kind != Kind::Watch {
                    return Err(err(ErrorCode::BadRequest, format!("stream {} is not a folder watch", r.stream)));
                }
                let s = self.streams.remove(r.stream).ok_or_else(|| err(ErrorCode::UnknownStream, "no such stream"))?;
                let req = bridge::FsUnwatch { stream: r.stream };
                self.relay(id, &s.server, req.into(), Route::Close(r.stream), After::Forward);
            }
            C::TermList(r) => self.forward(id, &rule, r.server, r.req.into()).await?,
            C::TermRename(r) => self.forward(id, &rule, r.server, r.req.into()).await?,
            C::FsList(r) => self.forward(id, &rule, r.server, r.req.into()).await?,
            C::FsStat(r) => self.forward(id, &rule, r.server, r.req.into()).await?,
            C::FsRead(r) => self.forward(id, &rule, r.server, r.req.into()).await?,
            C::SysInfo(r) => self.forward(id, &rule, r.server, r.req.into()).await?,
            C::SysProcesses(r) => {
                let grant = self.caller.grant(&r.server, need).await?;
                let redact = grant.role < Role::Developer;
                self.relay(id, &r.server, r.req.into(), Route::None, After::Processes { redact });
            }
            C::SysKill(r) => self.forward(id, &rule, r.server, r.req.into()).await?,
            C::DockerList(r) => self.forward(id, &rule, r.server, r.req.into()).await?,
            C::DockerInspect(r) if r.req.reveal_env => self.forward(id, &rule, r.server, r.req.into()).await?,
            C::DockerInspect(r) => {
                let grant = self.caller.grant(&r.server, need).await?;
                let redact = grant.role < Role::Developer;
                self.relay(id, &r.server, r.req.into(), Route::None, After::Container { redact });
            }
            C::DockerAction(r) => self.forward(id, &rule, r.server, r.req.into()).await?,
            C::DockerStats(r) => self.forward(id, &rule, r.server, r.req.into()).await?,
            C::DockerLogs(r) => self.forward(id, &rule, r.server, r.req.into()).await?,
            C::DockerLogsRead(r) => self.forward(id, &rule, r.server, r.req.into()).await?,
            C::DockerLogsClose(r) => self.forward(id, &rule, r.server, r.req.into()).await?,
            C::DockerImages(r) => self.forward(id, &rule, r.server, r.req.into()).await?,
            C::ImageRemove(r) => self.forward(id, &rule, r.server, r.req.into()).await?,
            C::ImageCheck(r) => self.forward(id, &rule, r.server, r.req.into()).await?,
            C::DockerPull(r) => self.forward(id, &rule, r.server, r.req.into()).await?,
            C::DockerJobRead(r) => self.forward(id, &rule, r.server, r.req.into()).await?,
            C::DockerVolumes(r) => self.forward(id, &rule, r.server, r.req.into()).await?,
            C::VolumeRemove(r) => self.forward(id, &rule, r.server, r.req.into()).await?,
            C::DockerNetworks(r) => self.forward(id, &rule, r.server, r.req.into()).await?,
            C::NetworkRemove(r) => self.forward(id, &rule, r.server, r.req.into()).await?,
            C::DockerPrune(r) => self.forward(id, &rule, r.server, r.req.into()).await?,
            C::DockerStacks(r) => self.forward(id, &rule, r.server, r.req.into()).await?,
            C::StackAction(r) => self.forward(id, &rule, r.server, r.req.into()).await?,
            C::Recreate(r) => self.forward(id, &rule, r.server, r.req.into()).await?,
            C::SysPorts(r) => self.forward(id, &rule, r.server, r.req.into()).await?,
            C::FsWrite(r) => self.forward(id, &rule, r.server, r.req.into()).await?,
            C::FsUploadBegin(r) => self.forward(id, &rule, r.server, r.req.into()).await?,
            C::FsFind(r) => self.forward(id, &rule, r.server, r.req.into()).await?,
            C::FsSearch(r) => self.forward(id, &rule, r.server, r.req.into()).await?,
            C::GitStatus(r) => self.forward(id, &rule, r.server, r.req.into()).await?,
            C::GitHead(r) => self.forward(id, &rule, r.server, r.req.into()).await?,
            C::FsArchive(r) => self.forward(id, &rule, r.server, r.req.into()).await?,
            C::FsArchiveRead(r) => self.forward(id, &rule, r.server, r.req.into()).await?,
            C::FsArchiveClose(r) => self.forward(id, &rule, r.server, r.req.into()).await?,
            C::FsUploadChunk(r) => self.forward(id, &rule, r.server, r.req.into()).await?,
            C::FsUploadCommit(r) => self.forward(id, &rule, r.server, r.req.into()).await?,
            C::FsUploadAbort(r) => self.forward(id, &rule, r.server, r.req.into()).await?,
            C::FsMkdir(r) => self.forward(id, &rule, r.server, r.req.into()).await?,
            C::FsRename(r) => self.forward(id, &rule, r.server, r.req.into()).await?,
            C::FsDelete(r) => self.forward(id, &rule, r.server, r.req.into()).await?,
            C::ChatWatch(r) => {
                let watching = self.watch_chat(r.conversation).await;
                self.reply(id.as_deref(), watching);
            }
            C::ChatUnwatch(r) => {
                let result = match self.chats.remove(&r.conversation) {
                    Some(relay) => {
                        relay.abort();
                        Ok(bridge::Done {})
                    }
                    None => {
                        Err(err(ErrorCode::NotFound, format!("conversation {} is not watched here", r.conversation)))
                    }
                };
                self.reply(id.as_deref(), result);
            }
            C::MetricsWatch(r) => {
                self.caller.grant(&r.server, need).await?;
                let watching = self.watch_metrics(r.server);
                self.reply(id.as_deref(), Ok::<_, ErrorBody>(watching));
            }
            C::AccessWatch(r) => {
                let grant = self.caller.grant(&r.server, need).await?;
                self.followed.insert(grant.id, grant.role);
                self.reply(id.as_deref(), Ok::<_, ErrorBody>(client::AccessWatching { role: grant.role.to_string() }));
            }
            C::MetricsUnwatch(r) => {
                let result = match self.metrics.remove(&r.server) {
                    Some(relay) => {
                        relay.abort();
                        Ok(bridge::Done {})
                    }
                    None => Err(err(ErrorCode::NotFound, format!("server {} is not watched here", r.server))),
                };
                self.reply(id.as_deref(), result);
            }
        }
        Ok(())
    }

    /// Authorises and relays a request whose reply goes back as-is. An audited one is written
    /// to the audit log with its outcome: `denied` when refused here, else what the bridge
    /// answered (`ok`, or `failed: <code>`).
    async fn forward(
        &mut self,
        id: Option<String>,
        rule: &Rule,
        server: ServerId,
        req: BridgeRequest,
    ) -> Result<(), ErrorBody> {
        let granted = self.caller.grant(&server, rule.need()).await;
        let audit = rule.audit.clone().map(|(action, detail)| PendingAudit {
            actor: self.caller.access.actor(&self.caller.user.id),
            action,
            server: server.clone(),
            workspace: granted.as_ref().ok().and_then(|g| g.workspace.clone()),
            detail,
        });
        match (granted, audit) {
            // A server the caller cannot see at all is not theirs to leave a trace on.
            (Err(e), Some(audit)) if e.code != ErrorCode::NotFound => {
                audit.write(&self.state, "denied", Some(&e.message)).await;
                Err(e)
            }
            (Err(e), _) => Err(e),
            (Ok(_), audit) => {
                self.relay_audited(id, &server, req, Route::None, After::Forward, audit);
                Ok(())
            }
        }
    }
}
