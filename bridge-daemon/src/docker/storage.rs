//! Volumes and networks: the lists with what uses each, and removal of one no container uses.

use std::path::Path;
use std::time::{Duration, Instant};

use bollard::query_parameters::{ListNetworksOptions, ListVolumesOptions, RemoveVolumeOptions};
use porta_shared::bridge::Done;
use porta_shared::docker::{Network, NetworkRemove, NetworksListed, Volume, VolumeRemove, VolumesListed};
use porta_shared::{ErrorBody, ErrorCode};

use super::{Docker, reference, unavailable, unix_ms};

/// What adding up the volumes' sizes may take, all together.
const SIZING: Duration = Duration::from_secs(3);
/// Files and folders looked at to add them up, all together.
const SIZING_ENTRIES: usize = 200_000;

/// The engine's own networks, which are never removed.
pub(crate) fn builtin_network(name: &str, driver: &str) -> bool {
    matches!(name, "bridge" | "host" | "none" | "ingress" | "docker_gwbridge") || matches!(driver, "host" | "null")
}

impl Docker {
    /// Every volume, with what mounts it and how big it is when the bridge may read it.
    pub async fn volumes(&self) -> Result<VolumesListed, ErrorBody> {
        let (client, _) = self.engine().await.map_err(unavailable)?;
        let listed = self.ask("the volume list", client.list_volumes(None::<ListVolumesOptions>)).await?;
        let users = self.users(&client).await?;
        let mut volumes: Vec<Volume> = listed
            .volumes
            .unwrap_or_default()
            .into_iter()
            .map(|v| Volume {
                containers: users.of_volume(&v.name),
                created_ms: v.created_at.as_ref().map(ToString::to_string).as_deref().and_then(unix_ms),
                size: v.usage_data.and_then(|u| u64::try_from(u.size).ok()),
                driver: v.driver,
                mountpoint: v.mountpoint,
                labels: v.labels.into_iter().collect(),
                options: v
                    .options
                    .into_iter()
                    .map(|(k, v)| {
                        let hidden = without_secrets(&k, &v);
                        (k, hidden)
                    })
                    .collect(),
                name: v.name,
            })
            .collect();
        volumes.sort_by(|a, b| a.name.cmp(&b.name));
        // The engine adds sizes up only in its disk-usage report, whose shape changed between
        // versions: the bridge adds up what it may read of local volumes itself.
        let places: Vec<(usize, std::path::PathBuf)> = volumes
            .iter()
            .enumerate()
            // A local volume with a `type` or `device` is a mount (NFS, CIFS, a disk): reading
            // it may hang on the network, and its size is the remote's business.
            .filter(|(_, v)| v.size.is_none() && v.driver == "local" && !v.mountpoint.is_empty())
            .filter(|(_, v)| !v.options.contains_key("type") && !v.options.contains_key("device"))
            .map(|(i, v)| (i, v.mountpoint.clone().into()))
            .collect();
        // Within its own limits, and never waited on longer (a stuck disk keeps only its thread).
        let sizing = tokio::task::spawn_blocking(move || sizes(places));
        let sized = tokio::time::timeout(SIZING + Duration::from_secs(1), sizing).await.ok().and_then(Result::ok);
        let sized = sized.unwrap_or_else(|| vec![(usize::MAX, None)]);
        let mut note = None;
        for (i, size) in sized {
            match size {
                Some(s) if i < volumes.len() => volumes[i].size = Some(s),
                _ => note = Some(
                    "some sizes are not known: the bridge may not read those volumes, or adding them up took too long"
                        .into(),
                ),
            }
        }
        Ok(VolumesListed { volumes, note })
    }

    /// Removes a volume no container uses; the engine refuses one in use.
    pub async fn remove_volume(&self, req: &VolumeRemove) -> Result<Done, ErrorBody> {
        let name = reference(&req.name)?;
        let (client, _) = self.engine().await.map_err(unavailable)?;
        self.ask(name, client.remove_volume(name, None::<RemoveVolumeOptions>)).await?;
        Ok(Done {})
    }

    /// Every network, with the containers on it.
    pub async fn networks(&self) -> Result<NetworksListed, ErrorBody> {
        let (client, _) = self.engine().await.map_err(unavailable)?;
        let listed = self.ask("the network list", client.list_networks(None::<ListNetworksOptions>)).await?;
        let users = self.users(&client).await?;
        let mut networks: Vec<Network> = listed
            .into_iter()
            .map(|n| {
                let (id, name, driver) =
                    (n.id.unwrap_or_default(), n.name.unwrap_or_default(), n.driver.unwrap_or_default());
                Network {
                    containers: users.of_network(&id, &name),
                    builtin: builtin_network(&name, &driver),
                    subnets: n
                        .ipam
                        .and_then(|i| i.config)
                        .unwrap_or_default()
                        .into_iter()
                        .filter_map(|c| c.subnet)
                        .collect(),
                    scope: n.scope.unwrap_or_default(),
                    internal: n.internal.unwrap_or(false),
                    created_ms: n.created.as_ref().map(ToString::to_string).as_deref().and_then(unix_ms),
                    labels: n.labels.unwrap_or_default().into_iter().collect(),
                    id,
                    name,
                    driver,
                }
            })
            .collect();
        networks.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(NetworksListed { networks })
    }

    /// Removes a network no container is on; never one of the engine's own.
    pub async fn remove_network(&self, req: &NetworkRemove) -> Result<Done, ErrorBody> {
        let id = reference(&req.id)?;
        let listed = self.networks().await?;
        let found =
            listed.networks.iter().find(|n| n.id == id || n.name == id || (id.len() >= 12 && n.id.starts_with(id)));
        let Some(found) = found else {
            return Err(ErrorBody::new(ErrorCode::NotFound, format!("no network {id} on this server")));
        };
        if found.builtin {
            return Err(ErrorBody::new(
                ErrorCode::Forbidden,
                format!("{} is one of the engine's own networks", found.name),
            ));
        }
        if !found.containers.is_empty() {
            let msg = format!("{} is used by {}: remove them first", found.name, found.containers.join(", "));
            return Err(ErrorBody::new(ErrorCode::Conflict, msg));
        }
        let (client, _) = self.engine().await.map_err(unavailable)?;
        self.ask(id, client.remove_network(&found.id)).await?;
        Ok(Done {})
    }
}

/// A volume option (`key`, `value`) fit for viewers: a whole value whose key speaks of a secret
/// (`password`, `token`, `secret_key`, …) hidden, and in one that lists settings (a network
/// mount's `o=addr=…,username=…,password=…`) each such setting's value hidden.
fn without_secrets(key: &str, value: &str) -> String {
    let secret = |k: &str| {
        let k = k.trim().to_lowercase();
        ["pass", "secret", "token", "key", "credential", "auth"].iter().any(|s| k.contains(s))
    };
    if secret(key) {
        return "••••••".into();
    }
    value
        .split(',')
        .map(|part| match part.split_once('=') {
            Some((k, _)) if secret(k) => format!("{k}=••••••"),
            _ => part.to_owned(),
        })
        .collect::<Vec<_>>()
        .join(",")
}

/// Bytes in each folder, within [`SIZING`] and [`SIZING_ENTRIES`] all together; none for one
/// that could not be read whole.
fn sizes(places: Vec<(usize, std::path::PathBuf)>) -> Vec<(usize, Option<u64>)> {
    let deadline = Instant::now() + SIZING;
    let mut budget = SIZING_ENTRIES;
    places.into_iter().map(|(i, p)| (i, size(&p, deadline, &mut budget))).collect()
}

fn size(root: &Path, deadline: Instant, budget: &mut usize) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    let mut total = 0u64;
    let mut folders = vec![root.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).ok()? {
            *budget = budget.checked_sub(1)?;
            if *budget % 1024 == 0 && Instant::now() > deadline {
                return None;
            }
            let entry = entry.ok()?;
            let meta = entry.metadata().ok()?;
            if meta.is_dir() {
                folders.push(entry.path());
            } else {
                // What it takes on disk (a sparse file takes less than its length).
                total += meta.blocks() * 512;
            }
        }
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_adds_up_within_its_budget() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(dir.path().join("sub/a"), vec![1u8; 100_000]).unwrap();
        std::fs::write(dir.path().join("b"), b"x").unwrap();
        let far = Instant::now() + Duration::from_secs(60);
        let mut budget = 100;
        let total = size(dir.path(), far, &mut budget).unwrap();
        assert!((100_000..200_000).contains(&total), "{total}");
        assert_eq!(budget, 97);
        let mut small = 2;
        assert_eq!(size(dir.path(), far, &mut small), None, "past its budget");
        assert_eq!(size(&dir.path().join("missing"), far, &mut 100), None);
    }

    #[test]
    fn a_mounts_password_is_not_shown() {
        assert_eq!(
            without_secrets("o", "addr=10.0.0.5,username=bob,password=hunter2,vers=3"),
            "addr=10.0.0.5,username=bob,password=••••••,vers=3"
        );
        assert_eq!(without_secrets("o", "size=100m"), "size=100m");
        assert_eq!(
            without_secrets("o", "addr=x,access_key=AKIA,api-token=t"),
            "addr=x,access_key=••••••,api-token=••••••"
        );
        assert_eq!(without_secrets("aws_secret_access_key", "wJalr"), "••••••");
        assert_eq!(without_secrets("DB_PASSWORD", "a,b"), "••••••");
    }

    #[test]
    fn the_engines_own_networks_are_known() {
        assert!(
            builtin_network("bridge", "bridge") && builtin_network("host", "host") && builtin_network("none", "null")
        );
        assert!(!builtin_network("shop_default", "bridge"));
    }
}
