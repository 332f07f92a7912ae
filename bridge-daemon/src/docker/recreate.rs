//! "Recreate with the same settings": a container made again from its image's name (after a
//! pull, when asked), keeping everything it was given — its environment, command, ports,
//! volumes (anonymous ones included, with their data), networks and their aliases, restart
//! policy, limits, labels — while what it only had from its old image (the image's own
//! command, environment, labels) comes from the new one. The old container is stopped and set
//! aside under another name until the new one runs; if the new one cannot be made or started,
//! the old one gets its name back and runs as before.

use std::collections::HashMap;

use bollard::models::{
    ContainerCreateBody, ContainerInspectResponse, EndpointSettings, NetworkConnectRequest, NetworkingConfig,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, RemoveContainerOptionsBuilder, RenameContainerOptionsBuilder,
    StopContainerOptionsBuilder,
};
use porta_shared::ErrorBody;
use porta_shared::docker::{DockerJob, Recreate};

use super::jobs::Reporter;
use super::{Docker, reference, unavailable};

impl Docker {
    /// Starts recreating a container; the steps are read as a job.
    pub async fn recreate(&self, req: &Recreate) -> Result<DockerJob, ErrorBody> {
        let id = reference(&req.id)?;
        let (client, _) = self.engine().await.map_err(unavailable)?;
        let old = self.ask(id, client.inspect_container(id, None)).await?;
        let grace = self.grace(&client, id).await?;
        let (job, report) = self.jobs.start()?;
        let name = old.name.clone().unwrap_or_default().trim_start_matches('/').to_owned();
        report.say(format!("Recreating {name} with its settings"));
        tracing::info!(job = report.job(), container = %name, pull = req.pull, "recreating a container");
        let (pull, watch) = (req.pull, self.watch.clone());
        // A person's stop and removal of the old one: no death to alert about.
        if let Some(full) = &old.id {
            watch.asked(full);
        }
        tokio::spawn(async move {
            let outcome = run(&client, old, name, pull, grace, &report).await;
            report.end(outcome.err());
            watch.recheck();
        });
        Ok(job)
    }
}

/// The recreation itself; why it failed (having put the old container back).
async fn run(
    client: &bollard::Docker,
    old: ContainerInspectResponse,
    name: String,
    pull: bool,
    grace: i32,
    report: &Reporter,
) -> Result<(), String> {
    let config = old.config.clone().unwrap_or_default();
    let image = config.image.clone().unwrap_or_default();
    if pull {
        if image.starts_with("sha256:") {
            return Err(format!("{name} was made from an image id, not a name: there is nothing to pull"));
        }
        super::images::pull_into(client, &image, report).await?;
    }
    let old_image = match old.image.as_deref() {
        Some(id) => client.inspect_image(id).await.ok().and_then(|i| i.config),
        None => None,
    };
    let body = settings(&old, old_image.unwrap_or_default());
    let extra = body.1;
    let body = body.0;
    let running = old.state.as_ref().and_then(|s| s.running).unwrap_or(false);
    let old_id = old.id.clone().unwrap_or_default();
    let aside = format!("{name}-porta-old-{}", &old_id[..old_id.len().min(12)]);
    if running {
        report.say(format!("Stopping {name}"));
        let options = StopContainerOptionsBuilder::new().t(grace).build();
        client.stop_container(&old_id, Some(options)).await.map_err(|e| format!("cannot stop {name}: {e}"))?;
    }
    let rename = |to: &str| RenameContainerOptionsBuilder::new().name(to).build();
    if let Err(e) = client.rename_container(&old_id, rename(&aside)).await {
        put_back(client, &old_id, None, running).await;
        return Err(format!("cannot set {name} aside: {e}"));
    }
    report.say(format!("Creating {name} from {image}"));
    let made = client.create_container(Some(CreateContainerOptionsBuilder::new().name(&name).build()), body).await;
    let new_id = match made {
        Ok(m) => m.id,
        Err(e) => {
            put_back(client, &old_id, Some(&name), running).await;
            return Err(format!("cannot create the new {name} (the old one is back): {e}"));
        }
    };
    for (network, endpoint) in extra {
        let asked = NetworkConnectRequest { container: new_id.clone(), endpoint_config: Some(endpoint) };
        if let Err(e) = client.connect_network(&network, asked).await {
            let _ = client.remove_container(&new_id, None).await;
            put_back(client, &old_id, Some(&name), running).await;
            return Err(format!("cannot join {network} (the old {name} is back): {e}"));
        }
    }
    if running {
        report.say(format!("Starting the new {name}"));
        if let Err(e) = client.start_container(&new_id, None).await {
            let _ =
                client.remove_container(&new_id, Some(RemoveContainerOptionsBuilder::new().force(true).build())).await;
            put_back(client, &old_id, Some(&name), running).await;
            return Err(format!("the new {name} does not start (the old one is back): {e}"));
        }
    }
    // Its anonymous volumes now belong to the new one: kept.
    let keep = RemoveContainerOptionsBuilder::new().v(false).force(true).build();
    if let Err(e) = client.remove_container(&old_id, Some(keep)).await {
        report.say(format!("the old container stays as {aside}: {e}"));
    }
    report.say(format!("{name} recreated from {image} ({})", &new_id[..new_id.len().min(12)]));
    Ok(())
}

/// The old container back under its name, running if it was.
async fn put_back(client: &bollard::Docker, old_id: &str, name: Option<&str>, running: bool) {
    if let Some(name) = name {
        let _ = client.rename_container(old_id, RenameContainerOptionsBuilder::new().name(name).build()).await;
    }
    if running {
        let _ = client.start_container(old_id, None).await;
    }
}

/// What the new container is made with, and the networks it joins after (the engine takes one
/// at creation). Settings equal to the old image's own defaults are left to the new image.
fn settings(
    old: &ContainerInspectResponse,
    image: bollard::models::ImageConfig,
) -> (ContainerCreateBody, Vec<(String, EndpointSettings)>) {
    let c = old.config.clone().unwrap_or_default();
    let id = old.id.clone().unwrap_or_default();
    let unless = |mine: Option<Vec<String>>, theirs: Option<Vec<String>>| mine.filter(|m| Some(m) != theirs.as_ref());
    let minus = |mine: Option<Vec<String>>, theirs: &Option<Vec<String>>| {
        mine.map(|m| m.into_iter().filter(|x| !theirs.iter().flatten().any(|t| t == x)).collect::<Vec<_>>())
    };
    let labels = c.labels.map(|l| {
        let theirs = image.labels.clone().unwrap_or_default();
        l.into_iter().filter(|(k, v)| theirs.get(k) != Some(v)).collect::<HashMap<_, _>>()
    });
    let mut host = old.host_config.clone().unwrap_or_default();
    // Anonymous volumes (`-v /data`, an image's VOLUME) named, so their data goes along.
    let mut binds = host.binds.clone().unwrap_or_default();
    let covered = |dest: &str, binds: &[String]| {
        binds.iter().any(|b| b.split(':').nth(1) == Some(dest))
            || host.mounts.iter().flatten().any(|m| m.target.as_deref() == Some(dest))
    };
    for m in old.mounts.iter().flatten() {
        let (Some(volume), Some(dest)) = (m.name.as_deref(), m.destination.as_deref()) else { continue };
        if m.typ.as_deref() == Some("volume") && !covered(dest, &binds) {
            let ro = if m.rw == Some(false) { ":ro" } else { "" };
            binds.push(format!("{volume}:{dest}{ro}"));
        }
    }
    host.binds = (!binds.is_empty()).then_some(binds);
    // Networks: the main one at creation, the others joined after; aliases kept but the old id's.
    let short = &id[..id.len().min(12)];
    let mut networks: Vec<(String, EndpointSettings)> = old
        .network_settings
        .as_ref()
        .and_then(|n| n.networks.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|(network, e)| {
            let aliases =
                e.aliases.map(|a| a.into_iter().filter(|x| x != short && !id.starts_with(x.as_str())).collect());
            let endpoint = EndpointSettings {
                aliases,
                links: e.links,
                ipam_config: e.ipam_config,
                driver_opts: e.driver_opts,
                ..Default::default()
            };
            (network, endpoint)
        })
        .collect();
    let main = host.network_mode.clone().filter(|m| networks.iter().any(|(n, _)| n == m));
    let first = match main {
        Some(m) => networks.iter().position(|(n, _)| *n == m),
        None if networks.len() == 1 => Some(0),
        None => None,
    };
    let at_creation = first.map(|i| networks.remove(i));
    // Host, none or another container's network: nothing to join.
    if matches!(host.network_mode.as_deref(), Some("host" | "none"))
        || host.network_mode.as_deref().is_some_and(|m| m.starts_with("container:"))
    {
        networks.clear();
    }
    let body = ContainerCreateBody {
        hostname: c.hostname.filter(|h| !h.is_empty() && h != short),
        domainname: c.domainname,
        user: c.user.filter(|u| Some(u) != image.user.as_ref()),
        attach_stdin: c.attach_stdin,
        attach_stdout: c.attach_stdout,
        attach_stderr: c.attach_stderr,
        exposed_ports: minus(c.exposed_ports, &image.exposed_ports).filter(|p| !p.is_empty()),
        tty: c.tty,
        open_stdin: c.open_stdin,
        stdin_once: c.stdin_once,
        env: minus(c.env, &image.env),
        cmd: unless(c.cmd, image.cmd.clone()),
        healthcheck: c.healthcheck.filter(|h| Some(h) != image.healthcheck.as_ref()),
        args_escaped: c.args_escaped,
        image: c.image,
        volumes: minus(c.volumes, &image.volumes).filter(|v| !v.is_empty()),
        working_dir: c.working_dir.filter(|w| Some(w) != image.working_dir.as_ref()),
        entrypoint: unless(c.entrypoint, image.entrypoint.clone()),
        network_disabled: c.network_disabled,
        on_build: c.on_build,
        labels,
        stop_signal: c.stop_signal.filter(|s| Some(s) != image.stop_signal.as_ref()),
        stop_timeout: c.stop_timeout,
        shell: c.shell,
        host_config: Some(host),
        networking_config: at_creation
            .map(|(n, e)| NetworkingConfig { endpoints_config: Some(HashMap::from([(n, e)])) }),
    };
    (body, networks)
}

#[cfg(test)]
mod tests {
    use bollard::models::{ContainerConfig, HostConfig, ImageConfig, MountPoint};

    use super::*;

    #[test]
    fn what_came_from_the_old_image_is_left_to_the_new_one_and_anonymous_volumes_go_along() {
        let old = ContainerInspectResponse {
            id: Some("0123456789abcdef".into()),
            config: Some(ContainerConfig {
                hostname: Some("0123456789ab".into()),
                image: Some("shop/web:1".into()),
                cmd: Some(vec!["serve".into()]),
                env: Some(vec!["PATH=/bin".into(), "MODE=prod".into()]),
                labels: Some(HashMap::from([("maker".into(), "image".into()), ("team".into(), "web".into())])),
                ..Default::default()
            }),
            host_config: Some(HostConfig {
                binds: Some(vec!["data:/data".into()]),
                network_mode: Some("shop".into()),
                ..Default::default()
            }),
            mounts: Some(vec![
                MountPoint {
                    typ: Some("volume".into()),
                    name: Some("data".into()),
                    destination: Some("/data".into()),
                    ..Default::default()
                },
                MountPoint {
                    typ: Some("volume".into()),
                    name: Some("f00d".into()),
                    destination: Some("/cache".into()),
                    rw: Some(true),
                    ..Default::default()
                },
            ]),
            ..Default::default()
        };
        let image = ImageConfig {
            cmd: Some(vec!["serve".into()]),
            env: Some(vec!["PATH=/bin".into()]),
            labels: Some(HashMap::from([("maker".into(), "image".into())])),
            ..Default::default()
        };
        let (body, after) = settings(&old, image);
        assert_eq!(body.cmd, None, "the image's own command comes from the new image");
        assert_eq!(body.env, Some(vec!["MODE=prod".into()]));
        assert_eq!(body.labels, Some(HashMap::from([("team".into(), "web".into())])));
        assert_eq!(body.hostname, None, "the old id as hostname is not kept");
        assert_eq!(body.image.as_deref(), Some("shop/web:1"));
        let binds = body.host_config.and_then(|h| h.binds).unwrap_or_default();
        assert_eq!(binds, vec!["data:/data".to_owned(), "f00d:/cache".to_owned()]);
        assert!(after.is_empty());
    }
}
