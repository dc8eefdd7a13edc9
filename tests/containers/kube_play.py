"""Our Kubernetes manifests as `podman kube play` can run them, for the container tests.

Podman (4.3) plays Pods, Deployments and PersistentVolumeClaims with
hostPath, emptyDir and claim volumes; it has no StatefulSet, Service, Secret
or Namespace, and ignores pod securityContext. This module does, in the open,
what the missing controllers would do, and nothing else:

- Deployment -> one Pod named after it (what the Deployment controller makes,
  less the hash suffix); StatefulSet -> Pods `<name>-<i>` labelled
  `apps.kubernetes.io/pod-index: i` (what the StatefulSet controller adds; the
  manifest's downward-API env reads it as on a cluster);
- Secret volume -> a host directory holding the Secret's keys (or the listed
  `items`) as files, owned root:<fsGroup or 0> with the volume's `defaultMode`
  (0644 when unset), as kubelet presents it; a claim -> a host directory the
  caller provides, group <fsGroup> and group-writable where the pod sets one;
- Service `superlink` -> the pod name `superlink` on the podman network
  (netavark DNS), and a host port on 127.0.0.1 standing in for
  `kubectl port-forward`; Namespace -> dropped (podman has none).

The containers, images, arguments, env and mounts are the manifests' own.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import yaml

POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"


def load(directory: Path) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in sorted(directory.glob("*.yaml")):
        docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def secret_dir(
    work: Path, volume: dict[str, Any], secrets: dict[str, Path], fs_group: int | None
) -> Path:
    """A directory holding a Secret volume's files as kubelet would lay them out."""
    spec = volume["secret"]
    source = secrets[spec["secretName"]]
    items = spec.get("items") or [{"key": p.name, "path": p.name} for p in source.iterdir()]
    target = work / "secrets" / volume["name"]
    target.mkdir(parents=True, exist_ok=True)
    mode = spec.get("defaultMode", 0o644)
    for item in items:
        path = target / item["path"]
        path.write_bytes((source / item["key"]).read_bytes())
        os.chown(path, 0, fs_group or 0)
        path.chmod(mode)
    target.chmod(0o755)
    return target


def claim_dir(path: Path, fs_group: int | None) -> Path:
    if fs_group is not None:  # kubelet: group fsGroup, group-writable, setgid
        os.chown(path, 0, fs_group)
        path.chmod(0o2775)
    return path


def pod(
    name: str,
    template: dict[str, Any],
    labels: dict[str, str],
    *,
    work: Path,
    secrets: dict[str, Path],
    claims: dict[str, Path],
) -> dict[str, Any]:
    spec = copy.deepcopy(template["spec"])
    fs_group = spec.pop("securityContext", {}).get("fsGroup")
    volumes = []
    for volume in spec.get("volumes", []):
        host = None
        if "secret" in volume:
            host = secret_dir(work / name, volume, secrets, fs_group)
        elif "persistentVolumeClaim" in volume:
            host = claim_dir(claims[volume["persistentVolumeClaim"]["claimName"]], fs_group)
        volumes.append(
            volume if host is None else {"name": volume["name"], "hostPath": {"path": str(host)}}
        )
    spec["volumes"] = volumes
    spec["hostname"] = name
    for container in spec["containers"]:
        container.pop("readinessProbe", None)  # podman 4.3 has no readiness probes
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": {**template["metadata"]["labels"], **labels}},
        "spec": spec,
    }


def pods(
    manifests: Path,
    work: Path,
    secrets: dict[str, Path],
    claims: dict[str, Path],
    published: dict[str, int],
) -> list[dict[str, Any]]:
    """Pods podman can play for every Deployment and StatefulSet replica in `manifests`.

    `published`: Service name -> host port on 127.0.0.1 for its first port.
    """
    docs = load(manifests)
    services = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Service"}
    out = []
    for doc in docs:
        template = doc.get("spec", {}).get("template")
        if doc["kind"] == "Deployment":
            name = doc["metadata"]["name"]
            out.append(pod(name, template, {}, work=work, secrets=secrets, claims=claims))
        elif doc["kind"] == "StatefulSet":
            for i in range(doc["spec"]["replicas"]):
                name = f"{doc['metadata']['name']}-{i}"
                labels = {POD_INDEX_LABEL: str(i)}
                out.append(pod(name, template, labels, work=work, secrets=secrets, claims=claims))
    for name, port in published.items():
        service = services[name]
        target = service["spec"]["ports"][0]["targetPort"]
        selected = [
            p for p in out if service["spec"]["selector"].items() <= p["metadata"]["labels"].items()
        ]
        (first,) = selected
        for container in first["spec"]["containers"]:
            for container_port in container.get("ports", []):
                if target in (container_port.get("name"), container_port["containerPort"]):
                    container_port.update(hostIP="127.0.0.1", hostPort=port)
    return out
