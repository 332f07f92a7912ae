//! The assistant and the agents that act on servers for people, in one place.
//!
//! - [`agents`]: the registry of everything that acts on servers on a person's behalf (the
//!   assistant's agents made in the UI, and external agents of the Porta agent API
//!   `/api/v1`), held to each workspace's quota, and the record of what each did.
//! - [`tools`]: the operations an agent can call, run through the server's bridge with the
//!   caller's permissions; [`templates`]: ready-made agents.
//! - [`provider`]: each workspace's model provider (its API key sealed at rest);
//!   [`openai`]: the client for OpenAI-compatible endpoints.
//! - [`chat`]: conversations whose answers stream from a run that outlives any socket, where
//!   agents call tools — changes only with the person's approval.
//!
//! The transports that reach it are `graphql::assistant` (the web app), `mcp` (MCP clients)
//! and `agent_api` (`/api/v1`).

pub mod agents;
pub mod chat;
pub mod openai;
pub mod provider;
pub mod templates;
pub mod tools;

use std::sync::Arc;

use crate::db::Store;
use crate::egress::Egress;
use crate::relay::Relay;
use crate::secrets::Sealer;
use crate::telemetry::Telemetry;

/// What the assistant works with.
#[derive(Clone)]
pub struct Assistant {
    pub store: Store,
    /// Reaches servers' bridges for tools.
    pub relay: Relay,
    /// Servers' samples, for the metrics tool.
    pub telemetry: Arc<Telemetry>,
    /// Seals providers' API keys.
    pub sealer: Sealer,
    /// Talks to model providers.
    pub client: openai::Client,
    /// What a provider's base URL may reach.
    pub egress: Arc<Egress>,
    /// Answers being written in this process.
    pub chats: Arc<chat::Chats>,
    /// HTTP to servers' own ports, through their bridges (the `http_*` tools).
    pub http: crate::previews::proxy::Proxy,
    /// The provider where a workspace chose none (`PORTA_AI_BASE_URL`, `PORTA_AI_MODEL`).
    pub default_base_url: String,
    pub default_model: String,
}
