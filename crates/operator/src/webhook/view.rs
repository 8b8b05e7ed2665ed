//! One filesystem view: the verifier must see, at the model's paths, exactly what the pod's
//! other containers see there, and nothing may write the model once it verified.
//!
//! A mount is *relevant* when it is at, above or below a path the verifier reads
//! (`spec.model.path`, `spec.model.signaturePath`, a trust anchor given by path). Every
//! container with a relevant mount must have the same relevant mounts (same volume, same
//! `subPath`); otherwise some container would see files the verifier did not check (a second
//! volume mounted below the model, a decoy container mounting the signed volume). The verifier
//! gets all of them, read-only. The volumes they come from hold the model: every container that
//! can run while or after the verifier runs (native sidecars and app containers) gets each of
//! its mounts of those volumes read-only.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{Container, Pod, Volume, VolumeMount};

use crate::crd::SpecPath;
use crate::names::is_injected;

/// What the verifier mounts, and which volumes hold the model.
#[derive(Clone, Debug, PartialEq)]
pub struct View {
    /// The verifier's mounts, read-only, sorted by path.
    pub mounts: Vec<VolumeMount>,
    /// Names of the pod volumes that hold the model, signature or a trust file, and of every
    /// other volume of the pod with the same storage behind it (see [`aliases`]).
    pub model_volumes: BTreeSet<String>,
}

/// Whether `mount_path` is `path` or one of its parents.
pub fn covers(mount_path: &str, path: &str) -> bool {
    let m = mount_path.trim_end_matches('/');
    path == m || (path.starts_with(m) && path.as_bytes().get(m.len()) == Some(&b'/'))
}

/// What a mount puts at its path, as far as the view is concerned.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Source {
    volume: String,
    sub_path: String,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.sub_path.is_empty() {
            write!(f, "volume {:?}", self.volume)
        } else {
            write!(f, "volume {:?} (subPath {:?})", self.volume, self.sub_path)
        }
    }
}

/// Every container of the pod that is not ours, with its kind for messages.
fn containers(pod: &Pod) -> Vec<(&'static str, &Container)> {
    let Some(spec) = pod.spec.as_ref() else {
        return vec![];
    };
    let ours = |c: &&Container| !is_injected(&c.name);
    spec.init_containers
        .iter()
        .flatten()
        .filter(ours)
        .map(|c| ("init container", c))
        .chain(
            spec.containers
                .iter()
                .filter(ours)
                .map(|c| ("container", c)),
        )
        .collect()
}

/// The view of the files at `paths` (what one policy's verifier reads) in `pod`, or why the pod
/// cannot be verified as it is written.
pub fn view(pod: &Pod, paths: &[SpecPath<'_>]) -> Result<View, String> {
    let relevant = |m: &VolumeMount| {
        m.mount_path != "/"
            && paths
                .iter()
                .any(|p| covers(&m.mount_path, p.path) || covers(p.path, &m.mount_path))
    };
    // Each container's relevant mounts, by mount path.
    let mut views: Vec<(String, BTreeMap<String, Source>)> = Vec::new();
    for (kind, c) in containers(pod) {
        let mut mine = BTreeMap::new();
        for m in c.volume_mounts.iter().flatten().filter(|m| relevant(m)) {
            if m.sub_path_expr.is_some() {
                return Err(format!(
                    "{kind} {:?} mounts volume {:?} at {} with subPathExpr, which the verifier cannot expand as the container's environment would: use subPath (or a volume of its own for each pod)",
                    c.name, m.name, m.mount_path
                ));
            }
            let source = Source {
                volume: m.name.clone(),
                sub_path: m.sub_path.clone().unwrap_or_default(),
            };
            mine.insert(m.mount_path.trim_end_matches('/').to_string(), source);
        }
        if !mine.is_empty() {
            views.push((format!("{kind} {:?}", c.name), mine));
        }
    }
    // For each path the verifier reads, every container that mounts anything at, above or
    // below it must mount the same: otherwise one of them sees files the verifier did not.
    for p in paths {
        let at_p = |v: &BTreeMap<String, Source>| -> BTreeMap<String, Source> {
            v.iter()
                .filter(|(m, _)| covers(m, p.path) || covers(p.path, m))
                .map(|(m, s)| (m.clone(), s.clone()))
                .collect()
        };
        let mut seeing = views
            .iter()
            .map(|(who, v)| (who, at_p(v)))
            .filter(|(_, v)| !v.is_empty());
        let Some((first, first_view)) = seeing.next() else {
            continue;
        };
        for (other, other_view) in seeing {
            let mounts: BTreeSet<&String> = first_view.keys().chain(other_view.keys()).collect();
            for path in mounts {
                let (a, b) = (first_view.get(path), other_view.get(path));
                if a != b {
                    let say = |who: &str, s: Option<&Source>| match s {
                        Some(s) => format!("{who} mounts {s} at {path}"),
                        None => format!("{who} mounts nothing at {path}"),
                    };
                    return Err(format!(
                        "the pod's containers disagree about the files at {} ({}): {} but {}; every container that mounts it must mount the same volumes at the same paths, so that the files that run are the ones verified",
                        p.path,
                        p.field,
                        say(first, a),
                        say(other, b)
                    ));
                }
            }
        }
    }
    let seen: BTreeMap<String, Source> = views.into_iter().flat_map(|(_, v)| v).collect();
    for p in paths {
        if !seen.keys().any(|m| covers(m, p.path)) {
            return Err(format!(
                "{} {} is not on any volume mounted by the pod's containers: mount the volume that holds it (at a directory containing {}) in the pod",
                p.field, p.path, p.path
            ));
        }
    }
    let named: BTreeSet<String> = seen.values().map(|s| s.volume.clone()).collect();
    let model_volumes = aliases(pod, &named);
    let mounts = seen
        .into_iter()
        .map(|(mount_path, s)| VolumeMount {
            name: s.volume,
            mount_path,
            sub_path: (!s.sub_path.is_empty()).then_some(s.sub_path),
            read_only: Some(true),
            ..Default::default()
        })
        .collect();
    Ok(View {
        mounts,
        model_volumes,
    })
}

/// `names` and every other volume of the pod backed by the same storage: the same claim, host
/// path (or one inside the other), ConfigMap, Secret, image, ... (never an emptyDir or generic
/// ephemeral volume, each of which is its own storage). A pod can declare one
/// PersistentVolumeClaim twice under two names; a writable mount of the second name must count
/// as a writable mount of the model.
pub fn aliases(pod: &Pod, names: &BTreeSet<String>) -> BTreeSet<String> {
    let volumes: &[Volume] = pod
        .spec
        .as_ref()
        .map_or(&[], |s| s.volumes.as_deref().unwrap_or_default());
    let source = |v: &Volume| {
        // Every emptyDir and generic ephemeral volume is storage of its own.
        if v.empty_dir.is_some() || v.ephemeral.is_some() {
            return None;
        }
        let mut unnamed = v.clone();
        unnamed.name = String::new();
        serde_json::to_value(unnamed).ok()
    };
    let host_path = |v: &Volume| {
        v.host_path
            .as_ref()
            .map(|h| h.path.trim_end_matches('/').to_string())
    };
    let model: Vec<&Volume> = volumes.iter().filter(|v| names.contains(&v.name)).collect();
    let mut out = names.clone();
    for v in volumes {
        let same = model.iter().any(|m| {
            let overlapping_hosts = match (host_path(m), host_path(v)) {
                (Some(a), Some(b)) => covers(&a, &b) || covers(&b, &a),
                _ => false,
            };
            overlapping_hosts || (source(m).is_some() && source(m) == source(v))
        });
        if same {
            out.insert(v.name.clone());
        }
    }
    out
}

/// Makes every mount of a model volume read-only in the containers that can run while or
/// after the verifier runs: native sidecars (init containers with `restartPolicy: Always`) and
/// app containers. Regular init containers run before the verifier (it is appended last) and
/// may write, e.g. to download the model. Returns one warning per mount it changed.
pub fn protect(pod: &mut Pod, model_volumes: &BTreeSet<String>) -> Vec<String> {
    let Some(spec) = pod.spec.as_mut() else {
        return vec![];
    };
    let sidecars = spec
        .init_containers
        .iter_mut()
        .flatten()
        .filter(|c| c.restart_policy.as_deref() == Some("Always"))
        .map(|c| ("native sidecar", c));
    let apps = spec.containers.iter_mut().map(|c| ("container", c));
    let mut warnings = Vec::new();
    for (kind, c) in sidecars.chain(apps) {
        if is_injected(&c.name) {
            continue;
        }
        for m in c.volume_mounts.iter_mut().flatten() {
            if model_volumes.contains(&m.name) && m.read_only != Some(true) {
                m.read_only = Some(true);
                warnings.push(format!(
                    "{kind} {:?} mounted volume {:?} at {} writable; it is now read-only, because that volume holds the verified model and nothing may change it after verification (write elsewhere, or download in a regular init container)",
                    c.name, m.name, m.mount_path
                ));
            }
        }
    }
    warnings
}
