#!/usr/bin/env python3
"""Builds each fuzz target's seed corpus from the shared fixtures, at run time.

Usage: seeds.py FIXTURES OUT. Writes OUT/<target>/<name> (existing files are kept, so a corpus
grown by earlier runs stays). Nothing here is committed: fixtures are read in place.
"""
import base64
import hashlib
import json
import os
import re
import sys
from pathlib import Path

FIXTURES, OUT = Path(sys.argv[1]), Path(sys.argv[2])
PEM_RE = re.compile(rb"-----BEGIN ([^-]*)-----(.*?)-----END \1-----", re.S)


def put(target, data):
    if isinstance(data, str):
        data = data.encode()
    d = OUT / target
    d.mkdir(parents=True, exist_ok=True)
    (d / ("seed-" + hashlib.sha1(data).hexdigest())).write_bytes(data)


def b64(s):
    s = s.strip()
    return base64.b64decode(s + "=" * (-len(s) % 4))


files = sorted(p for p in FIXTURES.rglob("*") if p.is_file() and p.stat().st_size < 1 << 20)
statements = []
for p in files:
    raw = p.read_bytes()
    if p.suffix in (".sig",) or p.name.endswith(".bundle.json"):
        put("bundle", raw)
        try:
            bundle = json.loads(raw)
        except ValueError:
            continue
        env = bundle.get("dsseEnvelope") if isinstance(bundle, dict) else None
        if isinstance(env, dict):
            put("dsse", json.dumps(env))
            try:
                statements.append(b64(env.get("payload", "")))
            except ValueError:
                pass
        vm = bundle.get("verificationMaterial") if isinstance(bundle, dict) else None
        if isinstance(vm, dict):
            chain = (vm.get("x509CertificateChain") or {}).get("certificates") or []
            ders = [b64(c.get("rawBytes", "")) for c in chain]
            if vm.get("certificate"):
                ders.append(b64(vm["certificate"].get("rawBytes", "")))
            if ders:
                put("x509_der", b"".join(ders))
    elif p.name.endswith(".statement.json"):
        statements.append(raw)
    if b"-----BEGIN " in raw:
        put("pem", raw)
        certs = [base64.b64decode(b"".join(m.group(2).split())) for m in PEM_RE.finditer(raw)
                 if m.group(1) == b"CERTIFICATE"]
        if certs:
            put("x509_der", b"".join(certs))

# Authorities documents around the fixture keys and CAs: one of each kind, and a mixed list.
pub_keys, cas = [], []
for p in files:
    raw = p.read_bytes()
    if b"-----BEGIN PUBLIC KEY-----" in raw:
        pub_keys.append(raw.decode(errors="replace"))
    if b"-----BEGIN CERTIFICATE-----" in raw and "ca" in p.name:
        cas.append(raw.decode(errors="replace"))
keyless = {"identity": "user@example.com", "issuerRegexp": "https://accounts\\.google\\.com"}
for i, k in enumerate(pub_keys[:4]):
    put("authorities", json.dumps({"authorities": [{"name": f"k{i}", "key": {"pem": k}}]}))
for c in cas[:4]:
    put("authorities", json.dumps({"required": "all", "authorities": [
        {"certificateAuthority": {"pem": c}, "signature": "release.sig"}]}))
put("authorities", json.dumps({"required": 2, "authorities": (
    [{"key": {"pem": k}} for k in pub_keys[:2]] + [{"keyless": keyless}])}))

for s in statements:
    put("statement", s)
    try:
        st = json.loads(s)
    except ValueError:
        continue
    pred = st.get("predicate") or {}
    names = [r.get("name", "") for r in pred.get("resources") or []]
    names += [x.get("name", "") for x in st.get("subject") or []]
    names += (pred.get("serialization") or {}).get("ignore_paths") or []
    put("names", "\n".join(n for n in names if isinstance(n, str)))

# AdmissionReviews around the fixture pod, in each namespace the fuzz target has a
# ModelValidation for, with the current and the legacy label, as CREATE and as UPDATE.
try:
    import yaml
    pod = yaml.safe_load((FIXTURES / "seed/consumer-pod.yaml").read_text())
except Exception as e:  # PyYAML missing: say so and go on without these seeds
    print(f"seeds.py: no AdmissionReview seeds from consumer-pod.yaml ({e})", file=sys.stderr)
    pod = None
if pod:
    for ns, mv in [("default", "model-validation-key"), ("team-pki", "model-validation-pki"),
                   ("team-sigstore", "model-validation-example")]:
        for labels in [{"validation.rhtas.redhat.com/ml": "true"},
                       {"validation.ml.sigstore.dev/ml": mv}]:
            p = json.loads(json.dumps(pod))
            p["metadata"].update(namespace=ns, labels=labels)
            for op in ["CREATE", "UPDATE"]:
                req = {"uid": "0a1b2c3d-0000-4000-8000-000000000001",
                       "kind": {"group": "", "version": "v1", "kind": "Pod"},
                       "resource": {"group": "", "version": "v1", "resource": "pods"},
                       "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
                       "requestResource": {"group": "", "version": "v1", "resource": "pods"},
                       "name": p["metadata"]["name"], "namespace": ns, "operation": op,
                       "userInfo": {"username": "fuzz"}, "object": p, "dryRun": False}
                if op == "UPDATE":
                    req["oldObject"] = p
                put("admission_review", json.dumps(
                    {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": req}))

# No fixture holds a duration: the forms the CLI documents, and Kubernetes' own.
for d in ["30s", "5m", "1h30m", "1.5h", "500ms", "90", "2.5", "1m0s", "1h0m0s", "2000000µs",
          "60000000000ns", ".5s", "8784h"]:
    put("duration", d)

# No fixture holds an OCI manifest: the ModelPack manifest `oci push` would make of each
# fixture statement's files (raw layers named by org.cncf.model.filepath), and an image index.
for s in statements:
    try:
        st = json.loads(s)
    except ValueError:
        continue
    pred = st.get("predicate") or {}
    layers = [{"mediaType": "application/vnd.cncf.model.weight.v1.raw",
               "digest": "sha256:" + r.get("digest", ""), "size": 1,
               "annotations": {"org.cncf.model.filepath": r.get("name", "")}}
              for r in pred.get("resources") or [] if r.get("algorithm") == "sha256"]
    if layers:
        put("oci_manifest", json.dumps({
            "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "artifactType": "application/vnd.cncf.model.manifest.v1+json",
            "config": {"mediaType": "application/vnd.cncf.model.config.v1+json",
                       "digest": "sha256:" + "0" * 64, "size": 2},
            "layers": layers}))
put("oci_manifest", json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
                                "manifests": []}))

# modelcar: plain tar layers (the target's first byte picks cuts and gzip; 0 keeps one layer).
import io
import tarfile


def tar_of(entries):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as t:
        for name, data in entries:
            info = tarfile.TarInfo(name)
            if data is None:
                info.type = tarfile.DIRTYPE
                t.addfile(info)
            else:
                info.size = len(data)
                t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


put("modelcar", b"\x00" + tar_of([("models/", None), ("models/config.json", b"{}"),
                                   ("models/sub/w.bin", b"weights"), ("etc/os", b"x")]))
put("modelcar", b"\x00" + tar_of([("models/a", b"1"), ("models/.wh.b", b""),
                                   ("models/d/.wh..wh..opq", b""), ("models/d/z", b"5")]))

