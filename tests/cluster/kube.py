"""kubectl and helm against the test cluster, with the cluster's events in every failure."""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tools.cluster.control_plane import Cluster
from tools.kit.programs import REPO_ROOT, require_program

CHART_DIR = REPO_ROOT / "charts" / "langgraph-agent"
# Pod Security Admission labels: enforce (and warn/audit) the restricted profile.
# https://kubernetes.io/docs/concepts/security/pod-security-admission/#pod-security-admission-labels-for-namespaces
RESTRICTED = {
    f"pod-security.kubernetes.io/{mode}": "restricted" for mode in ("enforce", "warn", "audit")
}

Obj = dict[str, Any]


class KubeError(AssertionError):
    """A kubectl/helm command failed; the message carries its stderr and the namespace's events."""


@dataclass
class Kube:
    cluster: Cluster

    def run(
        self, program: str, *args: str, stdin: str | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [require_program(program), *args],
            input=stdin,
            capture_output=True,
            text=True,
            env=self.cluster.kubectl_env(),
            timeout=timeout,
            check=False,
        )

    def kubectl(self, *args: str, stdin: str | None = None, namespace: str | None = None) -> str:
        proc = self.run("kubectl", *args, stdin=stdin)
        if proc.returncode != 0:
            raise KubeError(self._explain(f"kubectl {' '.join(args)}", proc, namespace))
        return proc.stdout

    def helm(self, *args: str, namespace: str, timeout: float = 180) -> str:
        proc = self.run("helm", *args, "--namespace", namespace, timeout=timeout)
        if proc.returncode != 0:
            raise KubeError(self._explain(f"helm {' '.join(args)}", proc, namespace))
        return proc.stdout

    def get(self, kind: str, name: str | None = None, *, namespace: str) -> Any:
        args = ["get", kind, "-n", namespace, "-o", "json"]
        if name:
            args.insert(2, name)
        return json.loads(self.kubectl(*args, namespace=namespace))

    def names(self, kind: str, namespace: str, selector: str | None = None) -> list[str]:
        args = ["get", kind, "-n", namespace, "-o", "json"]
        if selector:
            args += ["-l", selector]
        items = json.loads(self.kubectl(*args))["items"]
        return sorted(item["metadata"]["name"] for item in items)

    def exists(self, kind: str, name: str, namespace: str) -> bool:
        return self.run("kubectl", "get", kind, name, "-n", namespace).returncode == 0

    def events(self, namespace: str) -> str:
        proc = self.run(
            "kubectl",
            "get",
            "events",
            "-n",
            namespace,
            "--sort-by=.lastTimestamp",
            "-o",
            "custom-columns=TYPE:.type,REASON:.reason,OBJECT:.involvedObject.name,MESSAGE:.message",
        )
        return proc.stdout or proc.stderr

    def _explain(
        self, what: str, proc: subprocess.CompletedProcess[str], namespace: str | None
    ) -> str:
        text = f"{what} failed ({proc.returncode}):\n{proc.stderr.strip()[-3000:]}"
        if namespace:
            text += f"\n--- events in {namespace} ---\n{self.events(namespace)[-4000:]}"
        return text

    def namespace(self, name: str, labels: Mapping[str, str] = RESTRICTED) -> str:
        manifest = {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": name, "labels": dict(labels)},
        }
        self.kubectl("apply", "--server-side", "-f", "-", stdin=yaml.safe_dump(manifest))
        # The ServiceAccount controller creates `default` asynchronously; pods wait for it.
        self.wait_for(
            lambda: self.exists("serviceaccount", "default", name),
            f"namespace {name} ready",
            namespace=name,
        )
        return name

    def delete_namespace(self, name: str) -> None:
        self.run("kubectl", "delete", "namespace", name, "--wait=false", "--ignore-not-found")

    def wait_for(
        self, check: Callable[[], Any], what: str, *, namespace: str, timeout: float = 60
    ) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            result = check()
            if result:
                return result
            if time.monotonic() > deadline:
                raise KubeError(
                    f"timed out waiting for {what}\n"
                    f"--- events ---\n{self.events(namespace)[-4000:]}"
                )
            time.sleep(0.3)

    def materialise_external_secrets(self, namespace: str) -> list[str]:
        """Create the Secret each ExternalSecret names, as the External Secrets operator would
        (no operator runs here): its target name, one key per `data[].secretKey`, test-only
        values. Flagger copies the target's Secrets into `-primary` and stops without them."""
        made = []
        for item in self.get("externalsecrets.external-secrets.io", namespace=namespace)["items"]:
            spec = item["spec"]
            name = (spec.get("target") or {}).get("name") or item["metadata"]["name"]
            keys = [d["secretKey"] for d in spec.get("data") or []]
            secret = {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": name, "namespace": namespace},
                "stringData": {key: "test-only-not-a-secret" for key in keys},
            }
            self.kubectl("apply", "--server-side", "-f", "-", stdin=yaml.safe_dump(secret))
            made.append(name)
        return made

    def ready_endpoints(self, service: str, namespace: str) -> int:
        """Ready addresses behind a Service, from its EndpointSlices."""
        slices = json.loads(
            self.kubectl(
                "get",
                "endpointslices",
                "-n",
                namespace,
                "-l",
                f"kubernetes.io/service-name={service}",
                "-o",
                "json",
            )
        )["items"]
        return sum(
            1
            for s in slices
            for e in s.get("endpoints") or []
            if (e.get("conditions") or {}).get("ready", False)
        )


@dataclass
class WatchEvent:
    kind: str
    type: str
    name: str
    resource_version: int
    obj: Obj


@dataclass
class Recorder:
    """Watches kinds in a namespace with `kubectl get --watch` and keeps every event.

    resourceVersion is etcd's revision, one counter for the whole cluster, so events of
    different kinds can be put in the order the server committed them.
    """

    kube: Kube
    namespace: str
    kinds: tuple[str, ...]
    events: list[WatchEvent] = field(default_factory=list)
    _procs: list[subprocess.Popen[str]] = field(default_factory=list)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        for kind in self.kinds:
            proc = subprocess.Popen(
                [
                    require_program("kubectl"),
                    "get",
                    kind,
                    "-n",
                    self.namespace,
                    "--watch",
                    "--output-watch-events",
                    "-o",
                    "json",
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
                env=self.kube.cluster.kubectl_env(),
            )
            thread = threading.Thread(target=self._read, args=(kind, proc), daemon=True)
            thread.start()
            self._procs.append(proc)
            self._threads.append(thread)

    def _read(self, kind: str, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        decoder = json.JSONDecoder()
        buffer = ""
        for line in proc.stdout:
            buffer += line
            while buffer.strip():
                try:
                    doc, end = decoder.raw_decode(buffer.lstrip())
                except json.JSONDecodeError:
                    break
                buffer = buffer.lstrip()[end:]
                obj = doc.get("object", {})
                meta = obj.get("metadata", {})
                self.events.append(
                    WatchEvent(
                        kind,
                        doc.get("type", ""),
                        meta.get("name", ""),
                        int(meta.get("resourceVersion", 0)),
                        obj,
                    )
                )

    def stop(self) -> list[WatchEvent]:
        time.sleep(1.0)  # let the last events arrive
        for proc in self._procs:
            proc.terminate()
            proc.wait(timeout=10)
        for thread in self._threads:
            thread.join(timeout=10)
        self.events.sort(key=lambda e: e.resource_version)
        return self.events


@contextmanager
def recording(kube: Kube, namespace: str, *kinds: str) -> Iterator[Recorder]:
    recorder = Recorder(kube, namespace, kinds)
    recorder.start()
    time.sleep(1.0)  # the watches must be established before the change
    try:
        yield recorder
    finally:
        recorder.stop()


def values_file(tmp: Path, name: str, values: Mapping[str, Any]) -> Path:
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(dict(values), sort_keys=True))
    return path
