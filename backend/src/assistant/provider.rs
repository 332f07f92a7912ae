//! Which model a workspace's assistant talks to: an OpenAI-compatible base URL, a model name
//! and perhaps an API key (sealed at rest), chosen by the workspace's admins; the instance's
//! default (`PORTA_AI_BASE_URL`, `PORTA_AI_MODEL`) until they choose.

use super::Assistant;
use crate::auth::AuthUser;
use crate::clock::now_ms;
use crate::db::{AiProviderRow, AuditEvent};
use crate::error::{Error, Result};
use crate::teams::{Role, require_role, workspace_role};

/// A provider, ready to call.
#[derive(Clone)]
pub struct Provider {
    /// Without a trailing slash, e.g. `http://127.0.0.1:11434/v1`.
    pub base_url: String,
    pub model: String,
    pub api_key: Option<String>,
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provider")
            .field("base_url", &self.base_url)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "<sealed>"))
            .finish()
    }
}

/// A workspace's provider as its members see it (never the key).
#[derive(Debug, Clone)]
pub struct ProviderView {
    pub base_url: String,
    pub model: String,
    /// The last characters of the API key, when there is one.
    pub api_key_hint: Option<String>,
    /// False while the workspace uses the instance's default.
    pub chosen: bool,
}

use crate::egress::valid_base_url;

/// The provider `workspace_id` uses, its key opened.
pub async fn for_workspace(ai: &Assistant, workspace_id: &str) -> Result<Provider> {
    match ai.store.ai_provider(workspace_id).await? {
        Some(row) => {
            let api_key = match &row.api_key_sealed {
                Some(sealed) => Some(ai.sealer.open(sealed, workspace_id)?),
                None => None,
            };
            Ok(Provider { base_url: row.base_url, model: row.model, api_key })
        }
        None => Ok(Provider { base_url: ai.default_base_url.clone(), model: ai.default_model.clone(), api_key: None }),
    }
}

/// What a member of the workspace sees of its provider.
pub async fn view(ai: &Assistant, user: &AuthUser, workspace_id: &str) -> Result<ProviderView> {
    workspace_role(&ai.store, user, workspace_id).await?;
    Ok(match ai.store.ai_provider(workspace_id).await? {
        Some(row) => {
            ProviderView { base_url: row.base_url, model: row.model, api_key_hint: row.api_key_hint, chosen: true }
        }
        None => ProviderView {
            base_url: ai.default_base_url.clone(),
            model: ai.default_model.clone(),
            api_key_hint: None,
            chosen: false,
        },
    })
}

/// What happens to the stored API key.
#[derive(Debug, Clone)]
pub enum KeyChange {
    Keep,
    Remove,
    Set(String),
}

/// Sets a workspace's provider (admins only); audited, without the key.
pub async fn set(
    ai: &Assistant,
    user: &AuthUser,
    workspace_id: &str,
    base_url: &str,
    model: &str,
    key: KeyChange,
) -> Result<ProviderView> {
    let (ws, role) = workspace_role(&ai.store, user, workspace_id).await?;
    require_role(role, Role::Admin, "choosing the assistant's model")?;
    let base_url = valid_base_url(base_url).map_err(Error::BadRequest)?;
    let model = model.trim();
    if model.is_empty() || model.len() > 200 || model.chars().any(char::is_control) {
        return Err(Error::BadRequest("the model is a name of 1 to 200 printable characters".into()));
    }
    // An address nobody may reach is refused now, not at the first question.
    ai.egress.check_saved_url(&base_url).await.map_err(|e| Error::BadRequest(e.to_string()))?;
    let old = ai.store.ai_provider(&ws.id).await?;
    let (sealed, hint) = match key {
        // A key belongs to its endpoint: a new address needs the key given again.
        KeyChange::Keep if old.as_ref().is_some_and(|o| o.api_key_sealed.is_some() && o.base_url != base_url) => {
            return Err(Error::BadRequest(
                "the API key was given for another address: enter it again for this one, or remove it".into(),
            ));
        }
        KeyChange::Keep => old.map(|o| (o.api_key_sealed, o.api_key_hint)).unwrap_or_default(),
        KeyChange::Remove => (None, None),
        KeyChange::Set(k) => {
            let k = k.trim();
            if k.is_empty() || k.len() > 4096 || k.chars().any(|c| c.is_control() || c == ' ') {
                return Err(Error::BadRequest("the API key is 1 to 4096 characters without spaces".into()));
            }
            let tail: String = k.chars().rev().take(4).collect::<Vec<_>>().into_iter().rev().collect();
            (Some(ai.sealer.seal(k, &ws.id)?), Some(format!("…{tail}")))
        }
    };
    let row = AiProviderRow {
        workspace_id: ws.id.clone(),
        base_url,
        model: model.to_owned(),
        api_key_sealed: sealed,
        api_key_hint: hint,
        updated_by: user.0.id.clone(),
        updated_ms: now_ms(),
    };
    ai.store.set_ai_provider(&row).await?;
    ai.store
        .audit(
            AuditEvent::new(&user.actor(), "ai.provider")
                .target(&row.base_url)
                .detail(format!(
                    "model {}, {}",
                    row.model,
                    if row.api_key_sealed.is_some() { "with a key" } else { "no key" }
                ))
                .workspace(&ws.id),
        )
        .await;
    Ok(ProviderView { base_url: row.base_url, model: row.model, api_key_hint: row.api_key_hint, chosen: true })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_urls_are_plain_http_endpoints() {
        assert_eq!(valid_base_url("http://127.0.0.1:11434/v1/").as_deref(), Ok("http://127.0.0.1:11434/v1"));
        assert!(valid_base_url("https://api.openai.com/v1").is_ok());
        for bad in ["ftp://x", "http://", "https://user:pw@host/v1", "http://h/v1?key=1", "file:///etc", "h/v1"] {
            assert!(valid_base_url(bad).is_err(), "{bad}");
        }
        assert!(valid_base_url("https://user:sk@host").unwrap_err().contains("own field"));
    }
}
