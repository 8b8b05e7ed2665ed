//! Which files make up the model, from the model flags shared by sign, verify and digest.

use std::path::Path;

use anyhow::Result;
use model_signing::walk::Selection;

use crate::args::ModelArgs;
use crate::paths;

/// The files selection from the flags; each of `signatures` is left out when it lies inside the
/// model.
pub fn selection(model: &ModelArgs, signatures: &[&Path]) -> Result<Selection> {
    let root = paths::model_root(&model.model_path)?;
    let mut ignore_paths = Vec::new();
    if root.is_dir() {
        for p in &model.ignore_paths {
            ignore_paths.push(paths::ignore_path(&root, p)?);
        }
        ignore_paths.extend(
            signatures
                .iter()
                .filter_map(|s| paths::signature_inside(&root, s)),
        );
    }
    ignore_paths.sort();
    ignore_paths.dedup();
    Ok(Selection {
        ignore_paths,
        ignore_git_paths: !model.no_ignore_git_paths,
        allow_symlinks: model.allow_symlinks,
    })
}
