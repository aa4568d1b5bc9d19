"""A throw-away PKI for a loopback cluster, made with the openssl command line.

One CA signs: etcd's serving certificate, the apiserver's serving certificate and its etcd
client certificate, and one client certificate per control-plane user. Kubernetes takes the
user from the CN and the groups from O (x509 client authentication:
https://kubernetes.io/docs/reference/access-authn-authz/authentication/#x509-client-certificates).
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

DAYS = "30"
# The apiserver's serving certificate must also name the in-cluster `kubernetes` Service (the
# first address of --service-cluster-ip-range) for clients that use it.
SERVICE_IP = "10.96.0.1"


@dataclass(frozen=True)
class Client:
    """A client certificate: file stem, user (CN) and groups (O)."""

    stem: str
    user: str
    groups: tuple[str, ...] = ()


CLIENTS = (
    Client("admin", "cluster-admin", ("system:masters",)),
    Client("controller-manager", "system:kube-controller-manager"),
    Client("scheduler", "system:kube-scheduler"),
    # kwok plays every kubelet and Flagger manages workloads cluster-wide; both are given
    # cluster-admin-equivalent groups here because this cluster holds nothing but test data.
    Client("kwok", "kwok", ("system:masters",)),
    Client("flagger", "flagger", ("system:masters",)),
    Client("apiserver-etcd-client", "kube-apiserver-etcd-client"),
)


def _openssl(*args: str, cwd: Path) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        raise SystemExit("make cluster: openssl is not on PATH")
    proc = subprocess.run(  # noqa: S603 - openssl, our own arguments
        [openssl, *args], cwd=cwd, capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise SystemExit(f"make cluster: openssl {args[0]} failed: {proc.stderr.strip()}")


def _valid_for_a_day(cert: Path) -> bool:
    openssl = shutil.which("openssl")
    if openssl is None or not cert.is_file():
        return False
    proc = subprocess.run(  # noqa: S603 - openssl, our own arguments
        [openssl, "x509", "-checkend", "86400", "-noout", "-in", str(cert)],
        capture_output=True,
        check=False,
    )
    return proc.returncode == 0


def _key(name: str, cwd: Path) -> None:
    _openssl(
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        f"{name}.key",
        cwd=cwd,
    )
    (cwd / f"{name}.key").chmod(0o600)


def _sign(name: str, subject: str, extensions: str, cwd: Path) -> None:
    _key(name, cwd)
    (cwd / f"{name}.ext").write_text(extensions)
    _openssl("req", "-new", "-key", f"{name}.key", "-subj", subject, "-out", f"{name}.csr", cwd=cwd)
    _openssl(
        "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", DAYS, "-sha256", "-extfile", f"{name}.ext",
        "-out", f"{name}.crt",
        cwd=cwd,
    )  # fmt: skip
    (cwd / f"{name}.csr").unlink()
    (cwd / f"{name}.ext").unlink()


def _subject(cn: str, groups: tuple[str, ...]) -> str:
    return "".join(f"/O={g}" for g in groups) + f"/CN={cn}"


SERVER_EXT = (
    "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
    "extendedKeyUsage=serverAuth,clientAuth\nsubjectAltName={san}\n"
)
CLIENT_EXT = (
    "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n"
    "extendedKeyUsage=clientAuth\n"
)


def ensure_pki(pki: Path) -> Path:
    """Create the PKI under `pki` unless it is complete and valid for another day (idempotent;
    a `make cluster` data directory older than DAYS gets a new PKI)."""
    done = pki / ".complete"
    if (
        done.is_file()
        and _valid_for_a_day(pki / "apiserver.crt")
        and _valid_for_a_day(pki / "ca.crt")
    ):
        return pki
    if pki.exists():
        shutil.rmtree(pki)
    pki.mkdir(parents=True, mode=0o700)
    _key("ca", pki)
    _openssl(
        "req", "-x509", "-new", "-key", "ca.key", "-subj", "/CN=agent-platform-test-ca",
        "-days", DAYS, "-sha256", "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-out", "ca.crt",
        cwd=pki,
    )  # fmt: skip
    _sign("etcd", "/CN=etcd", SERVER_EXT.format(san="IP:127.0.0.1,DNS:localhost"), pki)
    apiserver_san = ",".join(
        [
            "IP:127.0.0.1",
            f"IP:{SERVICE_IP}",
            "DNS:localhost",
            "DNS:kubernetes",
            "DNS:kubernetes.default",
            "DNS:kubernetes.default.svc",
            "DNS:kubernetes.default.svc.cluster.local",
        ]
    )
    _sign("apiserver", "/CN=kube-apiserver", SERVER_EXT.format(san=apiserver_san), pki)
    for client in CLIENTS:
        _sign(client.stem, _subject(client.user, client.groups), CLIENT_EXT, pki)
    # Service-account tokens are signed with a key of their own.
    _key("sa", pki)
    _openssl("pkey", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=pki)
    done.touch()
    return pki
