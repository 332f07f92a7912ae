//! Porta's standard interfaces as the ecosystem's own clients read them: the official Python
//! MCP SDK, `gql` with `graphql-core` (introspection, 64-bit values, `graphql-transport-ws`
//! and every way it closes, GraphQL over HTTP's status codes), and `openapi-spec-validator`
//! with requests generated from the OpenAPI document. The scripts are in `e2e/conformance/`;
//! `cargo xtask test` installs their pinned clients and names the Python that has them in
//! `PORTA_TEST_PYTHON`.

use std::path::PathBuf;

use porta_e2e::Stack;
use serde_json::json;

/// Runs `script` against a fresh Porta with an enrolled bridge (confined to a temporary root)
/// and an API token with every scope; fails with what the script printed.
async fn conforms(script: &str) -> anyhow::Result<()> {
    let Some(python) = std::env::var_os("PORTA_TEST_PYTHON") else {
        eprintln!("PORTA_TEST_PYTHON is not set: `cargo xtask test` installs the clients; {script} is skipped here");
        return Ok(());
    };
    let root = tempfile::tempdir()?;
    let stack = Stack::start(&[], &["--root", &root.path().to_string_lossy()]).await?;
    let q = "mutation($s: [String!]!) { createApiToken(name: \"conformance\", scopes: $s) { token } }";
    let v = stack.api.graphql(q, json!({ "s": ["read", "write", "terminal", "admin"] })).await?;
    let token = v["data"]["createApiToken"]["token"].as_str().unwrap_or_default().to_owned();
    anyhow::ensure!(!token.is_empty(), "{v}");
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("conformance").join(script);
    let run = tokio::process::Command::new(&python)
        .arg(&path)
        .env("CONFORMANCE_URL", &stack.backend.url)
        .env("CONFORMANCE_TOKEN", &token)
        .env("CONFORMANCE_SERVER", &stack.server_id)
        // Nothing written beside the scripts.
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .current_dir(root.path())
        .kill_on_drop(true)
        .output();
    // Every wait in the scripts is bounded; this bounds a client that hangs anyway.
    let ran = tokio::time::timeout(std::time::Duration::from_secs(300), run)
        .await
        .map_err(|_| anyhow::anyhow!("{script} ran for 5 minutes"))??;
    let said = format!("{}{}", String::from_utf8_lossy(&ran.stdout), String::from_utf8_lossy(&ran.stderr));
    assert!(ran.status.success(), "{script} found Porta out of step with its client:\n{said}");
    assert!(said.lines().any(|l| l.starts_with("ok ")), "{script} checked nothing:\n{said}");
    Ok(())
}

#[tokio::test]
async fn the_official_mcp_sdk_lists_calls_cancels_and_closes_cleanly() -> anyhow::Result<()> {
    conforms("mcp_sdk.py").await
}

#[tokio::test]
async fn graphql_clients_introspect_read_64_bit_values_and_subscribe_by_the_protocol() -> anyhow::Result<()> {
    conforms("graphql_client.py").await
}

#[tokio::test]
async fn the_openapi_document_validates_and_the_server_does_what_it_says() -> anyhow::Result<()> {
    conforms("openapi_client.py").await
}
