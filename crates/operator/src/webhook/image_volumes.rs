//! The image volumes of a pod under the policies that apply to it: which references must be
//! verified (asked of the registry at the webhook's edge, [`crate::images::verifier`]), and,
//! once their verdicts are in, the digests to pin and what each policy refuses. Pure.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;

use crate::images::{ImageCheck, ImageVerdict, ImageVerdicts, image_volumes, repository_of};

use super::mutate::Requirement;

/// What one requirement refuses about the pod's image volumes.
pub(super) enum ImageRefusal {
    /// Asking again will not change it.
    Refused(String),
    /// The registry could not answer: retry.
    Unreachable(String),
}

/// The image volumes judged.
#[derive(Default)]
pub(super) struct Judged {
    /// `volumes[i]` → `registry/repository@sha256:…` that verified.
    pub pins: BTreeMap<usize, String>,
    /// By requirement index.
    pub refusals: Vec<(usize, ImageRefusal)>,
    /// The requirements (by index) that verified at least one volume and refused none.
    pub verified: std::collections::BTreeSet<usize>,
}

/// Either the checks still to ask the registry, or the judgement.
pub(super) enum Step {
    /// Verdicts missing for these.
    Need(Vec<ImageCheck>),
    /// Every verdict was there.
    Judged(Judged),
}

/// Judges the pod's image volumes under `requirements` with `verdicts`.
pub(super) fn judge(
    pod: &Pod,
    requirements: &[Requirement<'_>],
    verdicts: &dyn ImageVerdicts,
) -> Step {
    let volumes = image_volumes(pod);
    let mut need: Vec<ImageCheck> = Vec::new();
    let mut judged = Judged::default();
    for (ri, r) in requirements.iter().enumerate() {
        let Some(policy) = r.images() else {
            continue;
        };
        let mut covered = 0;
        for v in &volumes {
            let at = |why: &str| {
                format!(
                    "{}: volume {:?} (image {:?}): {why}",
                    r.display(),
                    v.name,
                    v.reference
                )
            };
            let repository = match repository_of(v.reference) {
                Ok(r) => r,
                Err(e) => {
                    covered += 1;
                    // Which policy meant it cannot be told; the runtime could not pull it
                    // either. Refused rather than passed unchecked.
                    judged.refusals.push((
                        ri,
                        ImageRefusal::Refused(at(&format!("{e}: write a valid image reference"))),
                    ));
                    continue;
                }
            };
            match policy.covers(&repository) {
                Err(e) => {
                    covered += 1;
                    judged
                        .refusals
                        .push((ri, ImageRefusal::Refused(at(&format!("the policy's {e}")))));
                    continue;
                }
                Ok(false) => continue,
                Ok(true) => covered += 1,
            }
            let trust = match &policy.trust {
                Ok(t) => t,
                Err(e) => {
                    judged.refusals.push((ri, ImageRefusal::Refused(at(e))));
                    continue;
                }
            };
            match verdicts.verdict(v.reference, trust) {
                None => {
                    if !need
                        .iter()
                        .any(|c| c.reference == v.reference && c.trust.key == trust.key)
                    {
                        need.push(ImageCheck {
                            reference: v.reference.to_string(),
                            trust: trust.clone(),
                        });
                    }
                }
                Some(ImageVerdict::Verified { pinned }) => {
                    judged.verified.insert(ri);
                    match judged.pins.get(&v.index) {
                        Some(other) if other != pinned => judged.refusals.push((
                            ri,
                            ImageRefusal::Unreachable(at(&format!(
                                "the reference moved from {other} to {pinned} while it was being verified: retry"
                            ))),
                        )),
                        _ => {
                            judged.pins.insert(v.index, pinned.clone());
                        }
                    }
                }
                Some(ImageVerdict::Refused(why)) => {
                    judged.refusals.push((ri, ImageRefusal::Refused(at(why))))
                }
                Some(ImageVerdict::Unreachable(why)) => judged
                    .refusals
                    .push((ri, ImageRefusal::Unreachable(at(why)))),
            }
        }
        if covered == 0 && r.names_model_in_images_only() {
            // The pod asked for this ModelValidation by name, and it verifies nothing here:
            // admitting it would pass a pod that believes itself verified.
            let patterns = match &policy.globs {
                Ok(g) => g.iter().map(|g| g.as_str()).collect::<Vec<_>>().join(", "),
                Err(e) => e.clone(),
            };
            judged.refusals.push((
                ri,
                ImageRefusal::Refused(format!(
                    "{} verifies models in image volumes matching {patterns}, and this pod has none: mount the model as an image volume with such a reference, or name another ModelValidation",
                    r.display()
                )),
            ));
        }
    }
    let refused: std::collections::BTreeSet<usize> =
        judged.refusals.iter().map(|(ri, _)| *ri).collect();
    judged.verified.retain(|ri| !refused.contains(ri));
    if need.is_empty() {
        Step::Judged(judged)
    } else {
        Step::Need(need)
    }
}

/// Rewrites the pinned volumes' references and records them in the
/// [`PINNED_IMAGES`](crate::names::annotations::PINNED_IMAGES) annotation (removing one the pod
/// brought when nothing was pinned); returns whether anything changed.
pub(super) fn pin(pod: &mut Pod, pins: &BTreeMap<usize, String>) -> bool {
    let mut changed = false;
    let mut recorded = BTreeMap::new();
    if let Some(volumes) = pod.spec.as_mut().and_then(|s| s.volumes.as_mut()) {
        for (i, pinned) in pins {
            let Some(volume) = volumes.get_mut(*i) else {
                continue;
            };
            if let Some(image) = volume.image.as_mut() {
                if image.reference.as_deref() != Some(pinned.as_str()) {
                    image.reference = Some(pinned.clone());
                    changed = true;
                }
                recorded.insert(volume.name.clone(), pinned.clone());
            }
        }
    }
    let wanted = (!recorded.is_empty()).then(|| {
        recorded
            .iter()
            .map(|(name, reference)| format!("{name}={reference}"))
            .collect::<Vec<_>>()
            .join(",")
    });
    let key = crate::names::annotations::PINNED_IMAGES;
    let current = pod.metadata.annotations.as_ref().and_then(|a| a.get(key));
    if current != wanted.as_ref() {
        let annotations = pod.metadata.annotations.get_or_insert_with(BTreeMap::new);
        match wanted {
            Some(w) => annotations.insert(key.into(), w),
            None => annotations.remove(key),
        };
        changed = true;
    }
    changed
}
