#!/usr/bin/env bash
# Installs the Debian packages the tests need when their command (or, for an absolute path,
# that file) is missing:
#   hack/debs.sh COMMAND:PACKAGE...      e.g. hack/debs.sh skopeo:skopeo /usr/lib/cni/bridge:containernetworking-plugins
# `apt-get update` runs only when something is missing (once per run); needs root, as CI has.
set -euo pipefail
missing=()
for pair in "$@"; do
    what="${pair%%:*}"
    if [[ "$what" == /* ]]; then
        [[ -e "$what" ]] || missing+=("${pair#*:}")
    else
        command -v "$what" >/dev/null 2>&1 || missing+=("${pair#*:}")
    fi
done
[[ ${#missing[@]} -eq 0 ]] && exit 0
if [[ $(id -u) -ne 0 ]]; then
    echo "debs: the tests need ${missing[*]}: install them (apt-get install ${missing[*]}) or run as root" >&2
    exit 1
fi
echo "debs: installing ${missing[*]} from Debian's packages"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
