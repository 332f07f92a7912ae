//! Images, volumes and networks of a server's engine; what no container uses any more, and
//! its removal exactly as shown; pulls followed step by step; whether a registry has a newer
//! image than the one a tag names here.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The engine's images (`docker.images`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DockerImages {}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ImagesListed {
    /// Newest first.
    #[serde(default)]
    pub images: Vec<Image>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Image {
    /// `sha256:…`.
    pub id: String,
    /// `name:tag` references; none for a dangling image (one a newer image took the tag of).
    #[serde(default)]
    pub tags: Vec<String>,
    /// `name@sha256:…`: what a registry called it when it was pulled; none for an image built
    /// or imported here.
    #[serde(default)]
    pub digests: Vec<String>,
    /// Bytes on disk, layers shared with other images included.
    pub size: u64,
    pub created_ms: u64,
    /// The containers made from it, running or not, by name.
    #[serde(default)]
    pub containers: Vec<String>,
}

/// Remove an image (`docker.image.remove`), named by id or by one of its tags. A tag of an
/// image with others is only untagged. An image with several tags, named by id, goes only
/// with `force`; an image a container uses never goes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageRemove {
    pub image: String,
    #[serde(default)]
    pub force: bool,
}

/// Pull an image from its registry (`docker.pull`): a job whose steps are read with
/// [`DockerJobRead`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DockerPull {
    /// `name[:tag]` or `name@sha256:…`; `latest` when no tag is named.
    pub image: String,
}

/// Make a container again with the same settings (`docker.recreate`), from its image's name:
/// after a pull when `pull`. A job: the old container is set aside until the new one runs, and
/// comes back if the new one cannot be made or started.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recreate {
    /// The container, by name or id.
    pub id: String,
    #[serde(default)]
    pub pull: bool,
}

/// Whether the registry an image came from now has another image under its tag
/// (`docker.image.check`): a notice for a person, never an update by itself.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageCheck {
    /// `name:tag`.
    pub image: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageChecked {
    pub image: String,
    /// The registry's digest of what the tag names here (none: it was not pulled from one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub local: Option<String>,
    /// What the registry's tag names now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remote: Option<String>,
    /// The registry names another image: pulling would bring it.
    pub update: bool,
    /// Why it could not be told (not from a registry, the registry did not answer, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A job the engine takes a while over (a pull), started by a request that answers its name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DockerJob {
    /// Names the job in [`DockerJobRead`] (unguessable).
    pub job: String,
}

/// How a job is going: answers when it changed after `after` (its `version`), or after
/// `wait_ms`. A job is kept [`DockerJobRead::KEPT_S`] after it ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DockerJobRead {
    pub job: String,
    #[serde(default)]
    pub after: u64,
    #[serde(default)]
    pub wait_ms: u32,
}

impl DockerJobRead {
    pub const MAX_WAIT_MS: u32 = 10_000;
    pub const KEPT_S: u64 = 120;
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JobProgress {
    /// Grows with each change.
    pub version: u64,
    /// What it works on (an image's layers), in the order they appeared.
    #[serde(default)]
    pub steps: Vec<JobStep>,
    /// What it said besides ("Digest: sha256:…", "Status: Downloaded newer image for …").
    #[serde(default)]
    pub said: Vec<String>,
    pub ended: bool,
    /// Why it failed, once ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl JobProgress {
    /// Lines of [`JobProgress::said`] kept (the last).
    pub const MAX_SAID: usize = 50;
    /// Steps kept.
    pub const MAX_STEPS: usize = 256;
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JobStep {
    /// A layer's short id.
    pub id: String,
    /// "Waiting", "Downloading", "Extracting", "Pull complete", "Already exists", …
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
}

/// The engine's volumes (`docker.volumes`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DockerVolumes {}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VolumesListed {
    /// By name.
    #[serde(default)]
    pub volumes: Vec<Volume>,
    /// Sizes could not be had (the engine took too long adding them up).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Volume {
    pub name: String,
    pub driver: String,
    /// Where its files are on the server.
    pub mountpoint: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_ms: Option<u64>,
    /// Bytes in it, when the engine says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// The containers mounting it, running or not, by name.
    #[serde(default)]
    pub containers: Vec<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub options: BTreeMap<String, String>,
}

/// Remove a volume no container uses (`docker.volume.remove`); its files go with it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VolumeRemove {
    pub name: String,
}

/// The engine's networks (`docker.networks`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DockerNetworks {}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct NetworksListed {
    /// By name.
    #[serde(default)]
    pub networks: Vec<Network>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Network {
    pub id: String,
    pub name: String,
    /// bridge, host, overlay, macvlan, null, …
    pub driver: String,
    /// local or swarm.
    pub scope: String,
    /// Its address ranges (CIDR).
    #[serde(default)]
    pub subnets: Vec<String>,
    #[serde(default)]
    pub internal: bool,
    /// One of the engine's own (bridge, host, none): never removed.
    #[serde(default)]
    pub builtin: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_ms: Option<u64>,
    /// The containers on it, running or not, by name.
    #[serde(default)]
    pub containers: Vec<String>,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

/// Remove a network no container uses (`docker.network.remove`), by id or name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NetworkRemove {
    pub id: String,
}

/// What no container uses (`docker.prune`). Without `remove`, what would go and the space it
/// holds; with it, those of the named ones that are still unused go, one by one, and the answer
/// says what went: never anything the person was not shown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DockerPrune {
    pub what: Unused,
    /// Ids (of images, networks) or names (of volumes) from a previous answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remove: Option<Vec<String>>,
}

impl DockerPrune {
    /// Things removed by one request at most.
    pub const MAX_REMOVE: usize = 1000;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unused {
    /// Images without a tag that no container uses.
    DanglingImages,
    /// Every image no container uses, tagged or not.
    Images,
    /// Volumes no container mounts.
    Volumes,
    /// Networks no container is on (never the engine's own).
    Networks,
}

impl Unused {
    pub fn word(self) -> &'static str {
        match self {
            Self::DanglingImages => "dangling images",
            Self::Images => "unused images",
            Self::Volumes => "unused volumes",
            Self::Networks => "unused networks",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Pruned {
    /// What would go (or, when removing, what went).
    #[serde(default)]
    pub items: Vec<PruneItem>,
    /// Bytes they hold (or held), when known.
    pub bytes: u64,
    /// Named for removal but kept, and why ("now used by web", "gone already").
    #[serde(default)]
    pub kept: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PruneItem {
    /// What names it in `remove`.
    pub id: String,
    /// For people: tags, a volume's or network's name.
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
}

/// An image reference as a person or the engine writes it (`nginx`, `library/nginx:1.27`,
/// `127.0.0.1:5000/app@sha256:…`, an id): it goes into the engine's URL, where `..`, `?` or
/// `#` would reach something else.
pub fn image_reference(s: &str) -> Result<&str, &'static str> {
    let ok = !s.is_empty()
        && s.len() <= 512
        && s.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-/:@".contains(&b))
        && !s.contains("..")
        && !s.contains("//")
        && !s.ends_with('/');
    if ok {
        Ok(s)
    } else {
        Err("an image is named like name[:tag] or name@sha256:… (letters, digits and . _ - / : @, at most 512)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_references_cannot_reach_another_endpoint() {
        for good in
            ["nginx", "library/nginx:1.27", "127.0.0.1:5000/porta-test/busybox:1", "sha256:0123abcd", "a@sha256:00"]
        {
            assert_eq!(image_reference(good), Ok(good));
        }
        for bad in ["", "../containers/x", "a/../b", "nginx?force=1", "a#b", "/nginx", "a//b", "a/", "-x", "a b"] {
            assert!(image_reference(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn unused_keeps_its_tags() {
        assert_eq!(serde_json::to_value(Unused::DanglingImages).unwrap(), "dangling_images");
        let asked: DockerPrune = serde_json::from_str(r#"{"what":"volumes"}"#).unwrap();
        assert_eq!(asked, DockerPrune { what: Unused::Volumes, remove: None });
    }
}
