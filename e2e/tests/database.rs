//! The backend on PostgreSQL when the database goes away and comes back.

use std::time::Duration;

use porta_e2e::{ADMIN_PASSWORD, Api, Backend};
use porta_testkit::Postgres;
use serde_json::json;

/// PostgreSQL stops for 30 s: the backend says it is not ready, every request that needs the
/// database is told it is unavailable (and changes nothing), and all recovers by itself.
#[tokio::test]
async fn postgres_stopping_makes_requests_unavailable_and_everything_recovers_by_itself() -> anyhow::Result<()> {
    let pg = tokio::task::spawn_blocking(Postgres::start).await??;
    let database = porta_e2e::fresh_database_on(&pg.url("postgres")).await?;
    let backend = Backend::start_on_database(&database, &[]).await?;
    let api = Api::login(&backend.url, "admin", ADMIN_PASSWORD).await?;
    let http = reqwest::Client::new();
    let ready = |http: reqwest::Client, url: String| async move {
        let r = http.get(format!("{url}/readyz")).send().await?;
        anyhow::Ok((r.status().as_u16(), r.text().await?))
    };
    assert_eq!(ready(http.clone(), backend.url.clone()).await?.0, 200);
    let teams = api.graphql("{ teams { id } }", json!({})).await?;
    let team = teams["data"]["teams"][0]["id"].as_str().unwrap_or_default().to_owned();
    let create = "mutation($t: String!, $n: String!) { createWorkspace(teamId: $t, name: $n) { id } }";

    let pg = tokio::task::spawn_blocking(move || pg.stop().map(|()| pg)).await??;
    let stopped = std::time::Instant::now();
    while stopped.elapsed() < Duration::from_secs(30) {
        let (status, body) = ready(http.clone(), backend.url.clone()).await?;
        assert_eq!((status, body.as_str()), (503, "database unavailable"));
        // Refused while the caller is checked (an HTTP error), or by the resolver (a GraphQL
        // error): either way the same code and words.
        let v = api.graphql(create, json!({ "t": team, "n": "made while down" })).await?;
        let error = if v["error"].is_object() { &v["error"] } else { &v["errors"][0] };
        let code = error["code"].as_str().or_else(|| error["extensions"]["code"].as_str()).unwrap_or_default();
        let message = error["message"].as_str().unwrap_or_default();
        assert!(code == "unavailable" && message.contains("database is unavailable"), "{v}");
        tokio::time::sleep(Duration::from_secs(3)).await;
    }

    let mut pg = pg;
    let pg = tokio::task::spawn_blocking(move || pg.start_again().map(|()| pg)).await??;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while ready(http.clone(), backend.url.clone()).await?.0 != 200 {
        anyhow::ensure!(tokio::time::Instant::now() < deadline, "not ready 30 s after PostgreSQL came back");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // Nothing asked while it was down was written; asked again, it is.
    let v = api.graphql("query($t: String!) { team(id: $t) { workspaces { name } } }", json!({ "t": team })).await?;
    let names = v["data"]["team"]["workspaces"].to_string();
    assert!(!names.contains("made while down"), "{v}");
    let v = api.graphql(create, json!({ "t": team, "n": "made after" })).await?;
    assert!(v["errors"].is_null(), "{v}");
    drop(pg);
    Ok(())
}
