#!/usr/bin/env bash
# Installs the reference implementation (model-signing 1.1.1, "the peer") into a venv for
# the interop tests. 1.1.1 imports pyOpenSSL without declaring it, so it is installed too.
# Idempotent: a venv that already has the right version is left alone.
set -euo pipefail
venv="${1:?usage: peer-venv.sh VENV_DIR}"
want="1.1.1"
if [ -x "$venv/bin/python" ] && "$venv/bin/python" - "$want" <<'PY' 2>/dev/null; then
import sys, importlib.metadata as m
import OpenSSL  # noqa: F401  (1.1.1 needs it at import time)
sys.exit(0 if m.version("model-signing") == sys.argv[1] else 1)
PY
  exit 0
fi
echo "peer-venv: installing model-signing==$want into $venv" >&2
rm -rf "$venv"
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check "model-signing==$want" pyopenssl
"$venv/bin/python" -c 'import model_signing, OpenSSL; print("peer-venv: ready,", model_signing.__version__)' >&2
