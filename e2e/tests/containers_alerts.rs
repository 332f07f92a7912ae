//! Container alert rules end to end, with a real Docker engine and a real registry: a container
//! killed from outside fires "a container dies" to a webhook (one a person stopped does not),
//! and its start resolves it; a container crashing over and over fires the restart loop; a
//! failing health check fires "unhealthy"; a newer image pushed under a running container's tag
//! fires "update available" (and nothing is pulled). Without an engine (or a registry, for the
//! update) they say they did not run.

use std::time::Duration;

use porta_e2e::docker::{Made, Registry, docker, rand_suffix, test_image};
use porta_e2e::webhook::Receiver;
use porta_e2e::{Api, Stack};
use serde_json::{Value, json};

const RULE: &str = "mutation($w: String!, $s: String, $n: String!, $k: String!, $t: Float, $ch: [String!] = []) {
    createAlertRule(workspaceId: $w, serverId: $s, name: $n, kind: $k, threshold: $t, forSecs: 0, cooldownSecs: 0,
        severity: \"critical\", channelIds: $ch) { id } }";

/// A stack sampling every second, checking images every two, with a webhook channel.
async fn stack() -> anyhow::Result<(Stack, Receiver, String, String)> {
    let bridge = ["--sample-interval", "1", "--image-check-every", "2"];
    let stack = Stack::start(&[("PORTA_OUTBOUND_ALLOW", "127.0.0.1")], &bridge).await?;
    let v = stack.api.graphql("{ servers { workspaceId } }", json!({})).await?;
    let ws = v["data"]["servers"][0]["workspaceId"].as_str().unwrap_or_default().to_owned();
    let receiver = Receiver::start(0).await?;
    let q = "mutation($w: String!, $u: String) { createAlertChannel(workspaceId: $w, name: \"hook\", kind: \"webhook\", url: $u) { id } }";
    let v = stack.api.graphql(q, json!({ "w": ws, "u": receiver.url })).await?;
    let channel = v["data"]["createAlertChannel"]["id"].as_str().unwrap_or_default().to_owned();
    anyhow::ensure!(!channel.is_empty(), "{v}");
    Ok((stack, receiver, ws, channel))
}

async fn rule(
    api: &Api,
    ws: &str,
    server: &str,
    channel: &str,
    kind: &str,
    threshold: Option<f64>,
) -> anyhow::Result<()> {
    let vars = json!({ "w": ws, "s": server, "n": kind, "k": kind, "t": threshold, "ch": [channel] });
    let v = api.graphql(RULE, vars).await?;
    anyhow::ensure!(v["data"]["createAlertRule"]["id"].as_str().is_some(), "{v}");
    Ok(())
}

/// The first notice of `event` from rule `kind` whose message holds `needle`.
async fn notice(receiver: &Receiver, event: &str, kind: &str, needle: &str) -> anyhow::Result<Value> {
    // Generous: the bridge watches the whole engine, and a test running beside this one may
    // leave a container of its own dead (killed, not yet removed) for a while.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let found = receiver
            .got
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .find(|v| {
                v["event"] == event && v["rule"] == kind && v["message"].as_str().is_some_and(|m| m.contains(needle))
            })
            .cloned();
        if let Some(v) = found {
            return Ok(v);
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "no {event} of {kind} naming {needle}: {:?}",
            receiver.got.lock().map(|g| g.clone())
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_container_killed_from_outside_looping_or_unhealthy_fires_its_alert() -> anyhow::Result<()> {
    let Some(image) = test_image() else { return Ok(()) };
    let made = Made::new();
    let x = rand_suffix();
    let (victim, second, stopped) =
        (format!("porta-e2e-victim-{x}"), format!("porta-e2e-second-{x}"), format!("porta-e2e-stopped-{x}"));
    let (looping, sick) = (format!("porta-e2e-loop-{x}"), format!("porta-e2e-sick-{x}"));
    for name in [&victim, &second, &stopped] {
        made.run(name, &image, &[], &["sleep", "600"])?;
    }
    let (stack, receiver, ws, channel) = stack().await?;
    let (api, s) = (&stack.api, stack.server_id.clone());
    for kind in ["container_died", "container_unhealthy"] {
        rule(api, &ws, &s, &channel, kind, None).await?;
    }
    rule(api, &ws, &s, &channel, "container_restarts", Some(3.0)).await?;

    // A person's stop is no death; a kill from outside, after it, is.
    docker(&["stop", &stopped])?;
    docker(&["kill", &victim])?;
    let fired = notice(&receiver, "alert.firing", "container_died", &victim).await?;
    let message = fired["message"].as_str().unwrap_or_default();
    assert!(message.contains(&format!("{victim} died (exit code 137)")), "{fired}");
    assert!(!message.contains(&stopped), "a stop someone asked for is not a death: {fired}");
    assert_eq!((fired["server_id"].as_str(), fired["severity"].as_str()), (Some(s.as_str()), Some("critical")));
    // Another death while the first stays: the alert names it too, and says so again.
    docker(&["kill", &second])?;
    let again = notice(&receiver, "alert.firing", "container_died", &second).await?;
    assert_eq!(again["alert_id"], fired["alert_id"], "the same alert: {again}");
    assert!(again["message"].as_str().is_some_and(|m| m.contains(&victim)), "{again}");
    // Both started again: resolved.
    docker(&["start", &victim, &second])?;
    let resolved = notice(&receiver, "alert.resolved", "container_died", "").await?;
    assert_eq!(resolved["alert_id"], fired["alert_id"], "{resolved}");

    // Crashing over and over under a restart policy.
    made.run(&looping, &image, &["--restart", "always"], &["sh", "-c", "sleep 0.3; exit 3"])?;
    let fired = notice(&receiver, "alert.firing", "container_restarts", &looping).await?;
    assert!(fired["message"].as_str().is_some_and(|m| m.contains("times in 10 min")), "{fired}");
    // A failing health check.
    let health = ["--health-cmd", "false", "--health-interval", "1s", "--health-retries", "1"];
    made.run(&sick, &image, &health, &["sleep", "600"])?;
    let fired = notice(&receiver, "alert.firing", "container_unhealthy", &sick).await?;
    assert!(fired["message"].as_str().is_some_and(|m| m.contains(&format!("{sick} unhealthy"))), "{fired}");
    docker(&["rm", "-f", &sick, &looping])?;

    let v = api.graphql("{ alerts { ruleName state message } }", json!({})).await?;
    let kinds: Vec<&str> =
        v["data"]["alerts"].as_array().into_iter().flatten().filter_map(|a| a["ruleName"].as_str()).collect();
    for k in ["container_died", "container_restarts", "container_unhealthy"] {
        assert!(kinds.contains(&k), "{k} in the history: {v}");
    }
    drop(made);
    Ok(())
}

#[tokio::test]
async fn a_newer_image_on_the_registry_fires_update_available_and_nothing_is_pulled() -> anyhow::Result<()> {
    let Some(image) = test_image() else { return Ok(()) };
    let Some(registry) = Registry::start().await? else { return Ok(()) };
    let made = Made::new();
    let x = rand_suffix();
    let tag = registry.name(&format!("porta-e2e/served-{x}:1"));
    let first = made.image(&image, &tag, 1000)?;
    docker(&["push", &tag])?;
    // Pulled, so it knows its registry digest.
    docker(&["rmi", &tag])?;
    docker(&["pull", &tag])?;
    let web = format!("porta-e2e-web-{x}");
    made.run(&web, &tag, &[], &["sleep", "600"])?;
    // A newer image under the tag on the registry; this server keeps the first.
    made.image(&image, &tag, 2000)?;
    docker(&["push", &tag])?;
    docker(&["tag", &first, &tag])?;
    let (stack, receiver, ws, channel) = stack().await?;
    rule(&stack.api, &ws, &stack.server_id, &channel, "image_update", None).await?;
    let fired = notice(&receiver, "alert.firing", "image_update", &web).await?;
    assert!(
        fired["message"].as_str().is_some_and(|m| m.contains(&format!("update available: {web} ({tag})"))),
        "{fired}"
    );
    assert_eq!(docker(&["inspect", "-f", "{{.Image}}", &web])?, first, "a notice, never an update");
    assert_eq!(docker(&["image", "inspect", "-f", "{{.Id}}", &tag])?, first);
    drop(made);
    Ok(())
}
