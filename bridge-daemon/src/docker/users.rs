//! Which containers use which images, volumes and networks, running or not: what the lists
//! show beside each, and what decides that something is unused.

use std::collections::HashMap;

use bollard::query_parameters::ListContainersOptionsBuilder;
use porta_shared::ErrorBody;

use super::Docker;

/// Container names by what they use.
#[derive(Debug, Default)]
pub(crate) struct Users {
    /// By image id (`sha256:…`).
    pub images: HashMap<String, Vec<String>>,
    /// By volume name.
    pub volumes: HashMap<String, Vec<String>>,
    /// By network id, and by name: a container created but never started names its networks
    /// without their ids.
    pub networks: HashMap<String, Vec<String>>,
}

impl Users {
    pub(crate) fn of_image(&self, id: &str) -> Vec<String> {
        self.images.get(id).cloned().unwrap_or_default()
    }
    pub(crate) fn of_volume(&self, name: &str) -> Vec<String> {
        self.volumes.get(name).cloned().unwrap_or_default()
    }
    pub(crate) fn of_network(&self, id: &str, name: &str) -> Vec<String> {
        let mut all: Vec<String> =
            [id, name].iter().flat_map(|k| self.networks.get(*k).into_iter().flatten()).cloned().collect();
        all.sort();
        all.dedup();
        all
    }
}

impl Docker {
    /// Who uses what now, from every container's summary.
    pub(crate) async fn users(&self, client: &bollard::Docker) -> Result<Users, ErrorBody> {
        let all = ListContainersOptionsBuilder::new().all(true).build();
        let listed = self.ask("the container list", client.list_containers(Some(all))).await?;
        let mut users = Users::default();
        for c in listed {
            let name = c.names.iter().flatten().next().map(|n| n.trim_start_matches('/').to_owned());
            let name = name.or_else(|| c.id.clone()).unwrap_or_default();
            if let Some(image) = c.image_id.filter(|i| !i.is_empty()) {
                users.images.entry(image).or_default().push(name.clone());
            }
            for m in c.mounts.into_iter().flatten() {
                let volume = m.typ.as_deref() == Some("volume");
                if let Some(v) = m.name.filter(|n| volume && !n.is_empty()) {
                    users.volumes.entry(v).or_default().push(name.clone());
                }
            }
            let networks = c.network_settings.and_then(|n| n.networks).unwrap_or_default();
            for (network, endpoint) in networks {
                users.networks.entry(network).or_default().push(name.clone());
                if let Some(n) = endpoint.network_id.filter(|n| !n.is_empty()) {
                    users.networks.entry(n).or_default().push(name.clone());
                }
            }
        }
        for names in users.images.values_mut().chain(users.volumes.values_mut()).chain(users.networks.values_mut()) {
            names.sort();
            names.dedup();
        }
        Ok(users)
    }
}
