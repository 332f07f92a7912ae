//! Images, volumes and networks on a server through its bridge, with a real Docker engine and
//! a real registry on this machine: listed with the containers that use them; what no
//! container uses shown first, then exactly what was shown removed (a thing used meanwhile
//! stays); removal of something in use refused; an image pulled layer by layer, and a newer
//! image under its tag on the registry noticed. Everything made here carries the test's own
//! label and goes when the test ends. Without an engine (or a registry) they say they did not run.

use porta_e2e::docker::{Made, Registry, docker, rand_suffix, test_image as image};
use porta_e2e::{Api, Stack};
use porta_shared::ErrorCode;
use porta_shared::client::OnServer;
use porta_shared::docker::{
    DockerImages, DockerJobRead, DockerNetworks, DockerPrune, DockerPull, DockerVolumes, ImageCheck, ImageRemove,
    JobProgress, NetworkRemove, Unused, VolumeRemove,
};
use serde_json::json;

/// A viewer of the stack's team, signed in.
async fn viewer(stack: &Stack) -> anyhow::Result<Api> {
    let team = stack.api.own_team().await?;
    let link = stack.api.invite(&team, "viewer").await?;
    Api::join_by_link(&stack.backend.url, &link, "vic", "a long enough password").await
}

fn exists(kind: &str, name: &str) -> bool {
    docker(&[kind, "inspect", name]).is_ok()
}

fn on<T>(server: &str, req: T) -> OnServer<T> {
    OnServer { server: server.to_owned(), req }
}

#[tokio::test]
async fn what_uses_each_image_volume_and_network_is_shown_and_only_the_unused_shown_go() -> anyhow::Result<()> {
    let Some(image) = image() else { return Ok(()) };
    let made = Made::new();
    let x = rand_suffix();
    let (used_vol, free_vol) = (format!("porta-e2e-used-{x}"), format!("porta-e2e-free-{x}"));
    let (used_net, free_net) = (format!("porta-e2e-usednet-{x}"), format!("porta-e2e-freenet-{x}"));
    made.volume(&used_vol)?;
    made.volume(&free_vol)?;
    made.network(&used_net)?;
    made.network(&free_net)?;
    let fill = "busybox head -c 100000 /dev/urandom > /d/data";
    docker(&["run", "--rm", "--label", &made.label, "-v", &format!("{free_vol}:/d"), &image, "sh", "-c", fill])?;
    // An image of the test's, and a newer one under its tag: the first is left dangling.
    let tag = format!("porta-e2e-img-{x}:1");
    let old = made.image(&image, &tag, 1000)?;
    let new = made.image(&image, &tag, 2000)?;
    let user = format!("porta-e2e-user-{x}");
    made.run(&user, &tag, &["-v", &format!("{used_vol}:/data"), "--network", &used_net], &["sleep", "600"])?;
    let stack = Stack::start(&[], &[]).await?;
    let s = stack.server_id.clone();
    let mut ws = stack.api.ws().await?;

    let images = ws.call(on(&s, DockerImages {})).await??.images;
    let of = |id: &str| images.iter().find(|i| i.id == id).cloned();
    let (o, n) = (
        of(&old).ok_or_else(|| anyhow::anyhow!("{old} not listed"))?,
        of(&new).ok_or_else(|| anyhow::anyhow!("{new}"))?,
    );
    assert!(o.tags.is_empty() && o.containers.is_empty(), "dangling and unused: {o:?}");
    assert_eq!((n.tags.clone(), n.containers.clone()), (vec![tag.clone()], vec![user.clone()]));
    assert!(n.size > 2000 && n.created_ms > 0, "{n:?}");
    let volumes = ws.call(on(&s, DockerVolumes {})).await??;
    let vol = |name: &str| volumes.volumes.iter().find(|v| v.name == name).cloned();
    let (u, f) = (
        vol(&used_vol).ok_or_else(|| anyhow::anyhow!("{volumes:?}"))?,
        vol(&free_vol).ok_or_else(|| anyhow::anyhow!("free"))?,
    );
    assert_eq!(u.containers, vec![user.clone()]);
    assert!(f.containers.is_empty(), "{f:?}");
    // Sizes are added up where the bridge may read the engine's folder (as root).
    let readable = std::fs::read_dir(&f.mountpoint).is_ok();
    assert!(!readable || f.size.is_some_and(|b| b >= 100_000), "{f:?}");
    assert!(readable || volumes.note.is_some(), "unknown sizes are said: {volumes:?}");
    assert_eq!((f.driver.as_str(), f.labels.contains_key("porta.e2e")), ("local", true), "{f:?}");
    let networks = ws.call(on(&s, DockerNetworks {})).await??.networks;
    let net = |name: &str| networks.iter().find(|n| n.name == name).cloned();
    let un = net(&used_net).ok_or_else(|| anyhow::anyhow!("{networks:?}"))?;
    assert_eq!(un.containers, vec![user.clone()]);
    assert!(!un.builtin && !un.subnets.is_empty(), "{un:?}");
    assert!(net("bridge").is_some_and(|b| b.builtin) && net("host").is_some_and(|h| h.builtin));
    let free_net_id = net(&free_net).map(|n| n.id).ok_or_else(|| anyhow::anyhow!("{free_net} not listed"))?;

    // A viewer sees what would go, and removes nothing.
    let mut vws = viewer(&stack).await?.ws().await?;
    let preview = vws.call(on(&s, DockerPrune { what: Unused::DanglingImages, remove: None })).await??;
    assert!(preview.items.iter().any(|i| i.id == old && i.bytes.is_some()), "{preview:?}");
    assert!(preview.items.iter().all(|i| i.id != new), "a used image is not unused: {preview:?}");
    assert!(preview.bytes >= o.size);
    let refused =
        vws.call(on(&s, DockerPrune { what: Unused::DanglingImages, remove: Some(vec![old.clone()]) })).await?;
    assert!(matches!(&refused, Err(e) if e.code == ErrorCode::Forbidden), "{refused:?}");
    assert!(exists("image", &old), "nothing changed");

    // Named for removal: the unused goes, the used stays, said why.
    let asked = Some(vec![free_vol.clone(), used_vol.clone()]);
    let pruned = ws.call(on(&s, DockerPrune { what: Unused::Volumes, remove: asked })).await??;
    assert_eq!(pruned.items.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(), vec![free_vol.as_str()]);
    assert!(!readable || pruned.bytes >= 100_000, "{pruned:?}");
    assert!(pruned.kept.iter().any(|k| k.contains(&used_vol)), "{pruned:?}");
    assert!(!exists("volume", &free_vol) && exists("volume", &used_vol));
    let asked = Some(vec![free_net_id.clone(), un.id.clone(), "bridge".into()]);
    let pruned = ws.call(on(&s, DockerPrune { what: Unused::Networks, remove: asked })).await??;
    assert_eq!(pruned.items.iter().map(|i| i.name.as_str()).collect::<Vec<_>>(), vec![free_net.as_str()]);
    assert_eq!(pruned.kept.len(), 2, "{pruned:?}");
    assert!(!exists("network", &free_net) && exists("network", &used_net) && exists("network", "bridge"));
    let asked = Some(vec![old.clone(), new.clone()]);
    let pruned = ws.call(on(&s, DockerPrune { what: Unused::Images, remove: asked })).await??;
    assert_eq!(pruned.items.iter().map(|i| i.id.as_str()).collect::<Vec<_>>(), vec![old.as_str()]);
    assert!(!exists("image", &old) && exists("image", &new));
    // A request naming too many is refused whole.
    let many = Some((0..1001).map(|i| format!("v{i}")).collect());
    let refused = ws.call(on(&s, DockerPrune { what: Unused::Volumes, remove: many })).await?;
    assert!(matches!(&refused, Err(e) if e.code == ErrorCode::TooLarge), "{refused:?}");

    let v = stack.api.graphql("{ auditLog(action: \"docker.prune\") { detail result } }", json!({})).await?;
    let entries = v["data"]["auditLog"].as_array().cloned().unwrap_or_default();
    assert!(entries.iter().any(|e| e["result"] == "denied"), "the viewer's attempt: {v}");
    assert!(entries.iter().any(|e| e["detail"].as_str().is_some_and(|d| d.contains(&free_vol))), "{v}");
    drop(made);
    Ok(())
}

#[tokio::test]
async fn removing_what_a_container_uses_is_refused_and_changes_nothing() -> anyhow::Result<()> {
    let Some(image) = image() else { return Ok(()) };
    let made = Made::new();
    let x = rand_suffix();
    let (vol, net) = (format!("porta-e2e-vol-{x}"), format!("porta-e2e-net-{x}"));
    made.volume(&vol)?;
    made.network(&net)?;
    let (tag, spare) = (format!("porta-e2e-img-{x}:1"), format!("porta-e2e-spare-{x}:1"));
    let used = made.image(&image, &tag, 1000)?;
    let unused = made.image(&image, &spare, 1000)?;
    let user = format!("porta-e2e-user-{x}");
    made.run(&user, &tag, &["-v", &format!("{vol}:/data"), "--network", &net], &["sleep", "600"])?;
    let stack = Stack::start(&[], &[]).await?;
    let s = stack.server_id.clone();
    let mut ws = stack.api.ws().await?;
    let code = |r: Result<porta_shared::bridge::Done, porta_shared::ErrorBody>| r.err().map(|e| (e.code, e.message));

    // In use: refused, by tag, by id, even forced.
    for (asked, force) in [(tag.clone(), false), (used.clone(), true)] {
        let r = code(ws.call(on(&s, ImageRemove { image: asked, force })).await?);
        assert!(matches!(&r, Some((ErrorCode::Conflict, m)) if m.contains(&user)), "{r:?}");
    }
    assert!(exists("image", &used) && docker(&["image", "inspect", "-f", "{{.RepoTags}}", &tag])?.contains(&tag));
    let r = code(ws.call(on(&s, VolumeRemove { name: vol.clone() })).await?);
    assert!(matches!(&r, Some((ErrorCode::Conflict, _))), "{r:?}");
    let r = code(ws.call(on(&s, NetworkRemove { id: net.clone() })).await?);
    assert!(matches!(&r, Some((ErrorCode::Conflict, m)) if m.contains(&user)), "{r:?}");
    let r = code(ws.call(on(&s, NetworkRemove { id: "bridge".into() })).await?);
    assert!(matches!(&r, Some((ErrorCode::Forbidden, _))), "{r:?}");
    assert!(exists("volume", &vol) && exists("network", &net) && exists("network", "bridge"));
    // Bad and unknown names.
    for bad in ["../containers/x", "a?force=1", ""] {
        let r = code(ws.call(on(&s, ImageRemove { image: bad.into(), force: false })).await?);
        assert!(matches!(&r, Some((ErrorCode::BadRequest, _))), "{bad:?}: {r:?}");
        let r = code(ws.call(on(&s, VolumeRemove { name: bad.into() })).await?);
        assert!(matches!(&r, Some((ErrorCode::BadRequest, _))), "{bad:?}: {r:?}");
    }
    let r = code(ws.call(on(&s, ImageRemove { image: format!("porta-e2e-none-{x}:1"), force: false })).await?);
    assert!(matches!(&r, Some((ErrorCode::NotFound, _))), "{r:?}");
    let r = code(ws.call(on(&s, NetworkRemove { id: format!("porta-e2e-none-{x}") })).await?);
    assert!(matches!(&r, Some((ErrorCode::NotFound, _))), "{r:?}");
    // A viewer removes nothing; a developer removes what nothing uses.
    let mut vws = viewer(&stack).await?.ws().await?;
    let r = code(vws.call(on(&s, ImageRemove { image: spare.clone(), force: false })).await?);
    assert!(matches!(&r, Some((ErrorCode::Forbidden, _))), "{r:?}");
    assert!(exists("image", &unused));
    ws.call(on(&s, ImageRemove { image: spare.clone(), force: false })).await??;
    assert!(!exists("image", &unused));
    let v = stack.api.graphql("{ auditLog(action: \"image.remove\") { detail result } }", json!({})).await?;
    let entries = v["data"]["auditLog"].as_array().cloned().unwrap_or_default();
    assert!(entries.iter().any(|e| e["detail"] == spare.as_str() && e["result"] == "ok"), "{v}");
    drop(made);
    Ok(())
}

/// Reads a job to its end; every state seen.
async fn follow(ws: &mut porta_e2e::Ws, server: &str, job: &str) -> anyhow::Result<Vec<JobProgress>> {
    let mut seen: Vec<JobProgress> = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    loop {
        let after = seen.last().map_or(0, |p| p.version);
        let now = ws.call(on(server, DockerJobRead { job: job.to_owned(), after, wait_ms: 5000 })).await??;
        let ended = now.ended;
        seen.push(now);
        if ended {
            return Ok(seen);
        }
        anyhow::ensure!(std::time::Instant::now() < deadline, "the job did not end: {:?}", seen.last());
    }
}

#[tokio::test]
async fn an_image_is_pulled_layer_by_layer_and_a_newer_one_on_the_registry_is_noticed() -> anyhow::Result<()> {
    let Some(image) = image() else { return Ok(()) };
    let Some(registry) = Registry::start().await? else { return Ok(()) };
    let made = Made::new();
    let x = rand_suffix();
    let name = registry.name(&format!("porta-e2e/app-{x}:1"));
    let first = made.image(&image, &name, 8 << 20)?;
    docker(&["push", &name])?;
    docker(&["rmi", &name])?;
    assert!(!exists("image", &first));
    let stack = Stack::start(&[], &[]).await?;
    let s = stack.server_id.clone();
    let mut ws = stack.api.ws().await?;

    let job = ws.call(on(&s, DockerPull { image: name.clone() })).await??.job;
    let seen = follow(&mut ws, &s, &job).await?;
    let last = seen.last().cloned().unwrap_or_default();
    assert_eq!(last.error, None, "{last:?}");
    // The base layer was here; the test's own came down.
    assert!(last.steps.iter().any(|l| l.status == "Already exists"), "{last:?}");
    assert!(last.steps.iter().any(|l| l.status == "Pull complete"), "{last:?}");
    assert!(last.said.iter().any(|l| l.contains("Downloaded newer image")), "{last:?}");
    assert!(exists("image", &first), "the very image pushed");

    // The registry's tag names what is here: nothing new.
    let checked = ws.call(on(&s, ImageCheck { image: name.clone() })).await??;
    assert!(!checked.update && checked.local.is_some() && checked.local == checked.remote, "{checked:?}");
    // Another image pushed under the tag, this server keeping the first under it.
    let second = made.image(&image, &name, 1000)?;
    docker(&["push", &name])?;
    docker(&["tag", &first, &name])?;
    let checked = ws.call(on(&s, ImageCheck { image: name.clone() })).await??;
    assert!(checked.update && checked.remote.is_some() && checked.local != checked.remote, "{checked:?}");
    assert_eq!(docker(&["image", "inspect", "-f", "{{.Id}}", &name])?, first, "a notice, never an update by itself");
    // Pulling brings it.
    let job = ws.call(on(&s, DockerPull { image: name.clone() })).await??.job;
    let last = follow(&mut ws, &s, &job).await?.pop().unwrap_or_default();
    assert_eq!(last.error, None, "{last:?}");
    assert_eq!(docker(&["image", "inspect", "-f", "{{.Id}}", &name])?, second);

    // What cannot be told or had says why.
    let imported = ws.call(on(&s, ImageCheck { image: image.clone() })).await??;
    assert!(!imported.update && imported.note.as_deref().is_some_and(|n| n.contains("not pulled")), "{imported:?}");
    let job = ws.call(on(&s, DockerPull { image: registry.name(&format!("porta-e2e/none-{x}:1")) })).await??.job;
    let last = follow(&mut ws, &s, &job).await?.pop().unwrap_or_default();
    assert!(last.error.is_some(), "{last:?}");
    let bad = ws.call(on(&s, DockerPull { image: "../x".into() })).await?;
    assert!(matches!(&bad, Err(e) if e.code == ErrorCode::BadRequest), "{bad:?}");
    let gone = ws.call(on(&s, DockerJobRead { job: "0".repeat(32), after: 0, wait_ms: 0 })).await?;
    assert!(matches!(&gone, Err(e) if e.code == ErrorCode::NotFound), "{gone:?}");
    let mut vws = viewer(&stack).await?.ws().await?;
    let refused = vws.call(on(&s, DockerPull { image: name.clone() })).await?;
    assert!(matches!(&refused, Err(e) if e.code == ErrorCode::Forbidden), "{refused:?}");
    let v = stack.api.graphql("{ auditLog(action: \"image.pull\") { detail result } }", json!({})).await?;
    let entries = v["data"]["auditLog"].as_array().cloned().unwrap_or_default();
    assert!(entries.iter().filter(|e| e["detail"] == name.as_str() && e["result"] == "ok").count() >= 2, "{v}");
    drop(made);
    Ok(())
}
