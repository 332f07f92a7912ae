//! What a tab follows besides its streams: its access (re-checked whenever roles, workspaces
//! or tokens change), conversations and servers' telemetry.

use porta_shared::client::{self, ClientEvent, StreamClosed};
use porta_shared::types::{ServerId, StreamId};
use porta_shared::{ErrorBody, ErrorCode};
use tokio::sync::broadcast;

use super::{Session, err};
use crate::error::Error;
use crate::teams::{Role, authorize_server};

impl Session {
    /// Someone's role or a workspace changed: every open stream is checked again. A stream
    /// whose server the user no longer reaches is closed; one they may no longer type into
    /// stays open for watching. False when the socket's own API token was revoked or expired:
    /// the socket closes.
    pub(super) async fn recheck_access(&mut self) -> bool {
        if !crate::auth::api_tokens::still_valid(&self.state.store, &self.caller.user.id, &self.caller.access).await {
            return false;
        }
        let servers: std::collections::HashSet<ServerId> =
            self.streams.map.values().map(|s| s.server.clone()).chain(self.metrics.keys().cloned()).collect();
        for server in servers {
            let role = match authorize_server(
                &self.state.store,
                &self.caller.user,
                &self.caller.access,
                &server,
                Role::Viewer,
                "",
            )
            .await
            {
                Ok(a) => Some(a.role),
                Err(Error::NotFound(_)) => None,
                // A database hiccup: keep things as they are until the next change.
                Err(_) => continue,
            };
            if role.is_none() {
                if let Some(relay) = self.metrics.remove(&server) {
                    relay.abort();
                }
            }
            let ids: Vec<StreamId> =
                self.streams.map.iter().filter(|(_, s)| s.server == server).map(|(id, _)| *id).collect();
            for stream in ids {
                match role {
                    Some(role) => {
                        if let Some(s) = self.streams.map.get_mut(&stream) {
                            s.may_type = role >= Role::Developer;
                        }
                    }
                    None => {
                        if let Some(s) = self.streams.remove(stream) {
                            self.close_on_bridge(stream, &s);
                        }
                        let reason = err(ErrorCode::NotFound, format!("you no longer have access to server {server}"));
                        self.event(StreamClosed { stream, reason });
                    }
                }
            }
        }
        self.tell_access_changes().await;
        true
    }

    /// Tells the tab of every change to its role on the servers it follows, so the page shows
    /// what the person may do now (and leaves a server they lost).
    async fn tell_access_changes(&mut self) {
        let followed: Vec<(ServerId, Role)> = self.followed.iter().map(|(s, r)| (s.clone(), *r)).collect();
        for (server, was) in followed {
            let store = &self.state.store;
            let now = match authorize_server(store, &self.caller.user, &self.caller.access, &server, Role::Viewer, "")
                .await
            {
                Ok(a) => Some(a.role),
                Err(Error::NotFound(_) | Error::Forbidden(_)) => None,
                // A database hiccup: tell nothing until the next change.
                Err(_) => continue,
            };
            if now == Some(was) {
                continue;
            }
            match now {
                Some(role) => self.followed.insert(server.clone(), role),
                None => self.followed.remove(&server),
            };
            self.event(client::AccessChanged { server, role: now.map(|r| r.to_string()) });
        }
    }

    /// Follows a conversation of the caller's: its events are relayed until unwatched.
    pub(super) async fn watch_chat(&mut self, conversation: String) -> Result<client::ChatWatching, ErrorBody> {
        let user = crate::auth::AuthUser(self.caller.user.clone(), self.caller.access.clone());
        crate::assistant::chat::conversation(&self.state.assistant, &user, &conversation)
            .await
            .map_err(|e| e.to_body())?;
        let (message, text, mut rx) = self.state.assistant.chats.watch(&conversation).await;
        let tx = self.relayed.clone();
        let id = conversation.clone();
        let relay = tokio::spawn(async move {
            use crate::assistant::chat::ChatEvent;
            loop {
                let ev = match rx.recv().await {
                    Ok(ChatEvent::Delta { message, offset, text }) => {
                        ClientEvent::ChatDelta(client::ChatDelta { conversation: id.clone(), message, offset, text })
                    }
                    Ok(ChatEvent::Changed { finished }) => {
                        ClientEvent::ChatChanged(client::ChatChanged { conversation: id.clone(), finished })
                    }
                    // Fell behind: the tab reads the conversation again and watches on.
                    Err(broadcast::error::RecvError::Lagged(_)) => {
                        ClientEvent::ChatChanged(client::ChatChanged { conversation: id.clone(), finished: false })
                    }
                    Err(broadcast::error::RecvError::Closed) => break,
                };
                if tx.send(ev).is_err() {
                    break;
                }
            }
        });
        if let Some(old) = self.chats.insert(conversation, relay) {
            old.abort();
        }
        Ok(client::ChatWatching { message, text })
    }

    /// Relays `server`'s samples to this tab (the caller was authorised) until unwatched.
    pub(super) fn watch_metrics(&mut self, server: ServerId) -> client::MetricsWatching {
        let mut rx = self.state.telemetry.subscribe();
        let latest = self.state.telemetry.latest(&server).map(|s| (*s).clone());
        let tx = self.relayed.clone();
        let id = server.clone();
        let relay = tokio::spawn(async move {
            loop {
                match rx.recv().await {
                    Ok(live) if live.server == id => {
                        let ev = client::MetricsSample { server: id.clone(), sample: (*live.sample).clone() };
                        if tx.send(ev.into()).is_err() {
                            break;
                        }
                    }
                    // Another server's, or fell behind: the next sample is seconds away.
                    Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                    Err(broadcast::error::RecvError::Closed) => break,
                }
            }
        });
        if let Some(old) = self.metrics.insert(server, relay) {
            old.abort();
        }
        client::MetricsWatching { latest }
    }
}
