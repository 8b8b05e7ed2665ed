#!/usr/bin/env bash
# Builds the documentation site (`make docs`, part of `make test`): mdBook over docs/, as listed
# in docs/SUMMARY.md, into target/book/ (docs/book.toml).
#
# mdbook is installed from crates.io once per machine into $MVO_CACHE_DIR/mdbook-<version>
# (2.5 minutes of compiling the first time on 2 cores; `serve` and `watch` are left out, they
# pull in an HTTP server the build does not need: open target/book/index.html to read it).
# The link check (every relative link, anchor and SUMMARY entry) is a cargo test:
# crates/operator/tests/docs.rs, which also keeps docs/reference/crds.md in step with the CRDs.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
MDBOOK_VERSION=0.5.4
CACHE="${MVO_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/model-validation-operator}"
TOOL_ROOT="$CACHE/mdbook-$MDBOOK_VERSION"
MDBOOK="$TOOL_ROOT/bin/mdbook"

if ! "$MDBOOK" --version 2>/dev/null | grep -qF "v$MDBOOK_VERSION"; then
    echo "docs: installing mdbook $MDBOOK_VERSION into $TOOL_ROOT (once)"
    nice -n 19 cargo install mdbook --locked --version "$MDBOOK_VERSION" \
        --no-default-features --features search --root "$TOOL_ROOT"
fi

# mdbook does not check links (tests/docs.rs does); a failed build (an unreadable SUMMARY, a
# chapter file that does not exist) fails `make docs`, and so `make test`.
"$MDBOOK" build "$ROOT/docs"
echo "docs: built $ROOT/target/book/index.html"
