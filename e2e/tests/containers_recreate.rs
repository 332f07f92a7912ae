//! "Recreate with the same settings" through the bridge, with a real Docker engine and a real
//! registry: a container with an environment, a published port, a restart policy, a label, a
//! named and an anonymous volume (holding data) and a network alias is made again from a newer
//! image pulled under its tag, keeping every one of them; when the new one cannot start, or
//! stops as soon as it started, the old one is back, running, under its name; one started with
//! `--rm` is refused. Without an engine (or a registry) it says so.

use porta_e2e::Stack;
use porta_e2e::docker::{Made, Registry, docker, rand_suffix, test_image};
use porta_shared::ErrorCode;
use porta_shared::client::OnServer;
use porta_shared::docker::{DockerJobRead, JobProgress, Recreate};
use serde_json::json;

async fn recreate(ws: &mut porta_e2e::Ws, s: &str, id: &str, pull: bool) -> anyhow::Result<JobProgress> {
    let job = ws.call(OnServer { server: s.to_owned(), req: Recreate { id: id.to_owned(), pull } }).await??.job;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let mut after = 0;
    loop {
        let now = ws
            .call(OnServer { server: s.to_owned(), req: DockerJobRead { job: job.clone(), after, wait_ms: 5000 } })
            .await??;
        if now.ended {
            return Ok(now);
        }
        after = now.version;
        anyhow::ensure!(std::time::Instant::now() < deadline, "the recreation did not end: {now:?}");
    }
}

fn inspect(name: &str, format: &str) -> anyhow::Result<String> {
    docker(&["inspect", "-f", format, name])
}

#[tokio::test]
async fn a_container_is_made_again_from_a_newer_image_keeping_its_settings_or_left_as_it_was() -> anyhow::Result<()> {
    let Some(image) = test_image() else { return Ok(()) };
    let Some(registry) = Registry::start().await? else { return Ok(()) };
    let made = Made::new();
    let x = rand_suffix();
    let tag = registry.name(&format!("porta-e2e/recreated-{x}:1"));
    made.image(&image, &tag, 1000)?;
    docker(&["push", &tag])?;
    let (vol, net, web) = (format!("porta-e2e-rvol-{x}"), format!("porta-e2e-rnet-{x}"), format!("porta-e2e-rweb-{x}"));
    made.volume(&vol)?;
    made.network(&net)?;
    let settings = [
        "-e",
        "GREETING=hello",
        "-p",
        "127.0.0.1::8080",
        "--restart",
        "unless-stopped",
        "--label",
        "team=web",
        "-v",
        &format!("{vol}:/named"),
        "-v",
        "/anon",
        "--network",
        &net,
        "--network-alias",
        "webalias",
    ];
    made.run(&web, &tag, &settings, &["sleep", "600"])?;
    docker(&["exec", &web, "sh", "-c", "echo kept > /anon/file; echo kept > /named/file"])?;
    let (old_id, anon) = (
        inspect(&web, "{{.Id}}")?,
        inspect(&web, "{{range .Mounts}}{{if eq .Destination \"/anon\"}}{{.Name}}{{end}}{{end}}")?,
    );
    // A newer image under the tag.
    let newer = made.image(&image, &tag, 2000)?;
    docker(&["push", &tag])?;
    docker(&["rmi", &tag])?;
    let stack = Stack::start(&[], &[]).await?;
    let s = stack.server_id.clone();
    let mut ws = stack.api.ws().await?;

    let done = recreate(&mut ws, &s, &web, true).await?;
    assert_eq!(done.error, None, "{done:?}");
    assert!(done.said.iter().any(|l| l.contains("recreated")), "{done:?}");
    let new_id = inspect(&web, "{{.Id}}")?;
    assert_ne!(new_id, old_id, "made again");
    assert_eq!(inspect(&web, "{{.Image}}")?, newer, "from the newer image");
    assert_eq!(inspect(&web, "{{.State.Status}}")?, "running");
    assert!(inspect(&web, "{{json .Config.Env}}")?.contains("GREETING=hello"));
    assert_eq!(inspect(&web, "{{.HostConfig.RestartPolicy.Name}}")?, "unless-stopped");
    assert_eq!(inspect(&web, "{{index .Config.Labels \"team\"}}")?, "web");
    assert!(inspect(&web, "{{json .HostConfig.PortBindings}}")?.contains("8080/tcp"));
    assert!(
        inspect(&web, &format!("{{{{json (index .NetworkSettings.Networks \"{net}\").Aliases}}}}"))?
            .contains("webalias")
    );
    assert_eq!(docker(&["exec", &web, "cat", "/anon/file", "/named/file"])?, "kept\nkept", "the data went along");
    assert_eq!(inspect(&web, "{{range .Mounts}}{{if eq .Destination \"/anon\"}}{{.Name}}{{end}}{{end}}")?, anon);
    assert!(docker(&["inspect", &old_id]).is_err(), "the old one is gone");

    // A newer image that cannot run its command: the new container does not start, and the old
    // one is back under its name, running.
    let root = tempfile::tempdir()?;
    std::fs::write(root.path().join("nothing"), "")?;
    let tar = std::process::Command::new("tar").arg("-C").arg(root.path()).args(["-cf", "-", "nothing"]).output()?;
    let mut import = std::process::Command::new("docker")
        .args(["import", "--change", &format!("LABEL {}", made.label), "-", &tag])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()?;
    std::io::Write::write_all(&mut import.stdin.take().ok_or_else(|| anyhow::anyhow!("stdin"))?, &tar.stdout)?;
    anyhow::ensure!(import.wait()?.success(), "docker import");
    let failed = recreate(&mut ws, &s, &web, false).await?;
    assert!(failed.error.as_deref().is_some_and(|e| e.contains("the old one is back")), "{failed:?}");
    assert_eq!(inspect(&web, "{{.Id}}")?, new_id, "the same container, back");
    assert_eq!(inspect(&web, "{{.State.Status}}")?, "running");
    let leftovers = docker(&["ps", "-aq", "--filter", &format!("name={web}")])?;
    assert_eq!(leftovers.lines().count(), 1, "no half-made container left: {leftovers}");

    // A newer image whose command starts, then exits at once: the old one is removed only
    // once the new one has kept running, so it is back.
    let maker = format!("porta-e2e-rmaker-{x}");
    let broken = "rm /bin/sleep && printf '#!/bin/sh\\nexit 3\\n' > /bin/sleep && chmod +x /bin/sleep";
    docker(&["run", "--name", &maker, "--label", &made.label, &image, "sh", "-c", broken])?;
    docker(&["commit", "--change", &format!("LABEL {}", made.label), &maker, &tag])?;
    docker(&["rm", &maker])?;
    let crashed = recreate(&mut ws, &s, &web, false).await?;
    let said = crashed.error.clone().unwrap_or_default();
    assert!(said.contains("stopped as soon as it started") && said.contains("the old one is back"), "{crashed:?}");
    assert_eq!(inspect(&web, "{{.Id}}")?, new_id, "the same container, back");
    assert_eq!(inspect(&web, "{{.State.Status}}")?, "running");
    assert_eq!(docker(&["exec", &web, "cat", "/anon/file"])?, "kept", "its data still there");

    // One started with --rm would be removed by its stop: refused before anything is done.
    let gone_on_stop = format!("porta-e2e-rrm-{x}");
    made.run(&gone_on_stop, &image, &["--rm"], &["sleep", "600"])?;
    let job = ws.call(OnServer { server: s.clone(), req: Recreate { id: gone_on_stop.clone(), pull: false } }).await?;
    assert!(matches!(&job, Err(e) if e.code == ErrorCode::Conflict && e.message.contains("--rm")), "{job:?}");
    assert_eq!(inspect(&gone_on_stop, "{{.State.Status}}")?, "running");

    let v = stack.api.graphql("{ auditLog(action: \"container.recreate\") { detail result } }", json!({})).await?;
    let entries = v["data"]["auditLog"].as_array().cloned().unwrap_or_default();
    assert!(entries.iter().any(|e| e["detail"] == format!("{web} (pulled first)").as_str()), "{v}");
    drop(made);
    Ok(())
}
