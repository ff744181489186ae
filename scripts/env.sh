# Shared setup steps for scripts/setup.sh and scripts/test.sh (sourced, not run).
#
# Every step is idempotent: it checks what is there and does only what is
# missing, so a second run is quick and needs no network once the wheelhouse
# holds every locked wheel.

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RETRAIN_CACHE="${RETRAIN_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/retrain}"
WHEELHOUSE="${RETRAIN_WHEELHOUSE:-$RETRAIN_CACHE/wheelhouse}"
VENV="$ROOT/.venv"
# The Debian packages retrain needs: Bazel itself, a Python 3.11 with venv
# and pip (for the locked environments), git (source identity in provenance)
# and openssl (the hashing benchmark's peer).
APT_PACKAGES=(bazel-bootstrap python3 python3-venv python3-pip git openssl ca-certificates
  chromium # the report test renders the HTML report in headless Chromium
  nix-bin  # tests/integration/test_flake.py evaluates flake.nix (offline, private store)
)

log() { printf 'retrain-setup: %s\n' "$*" >&2; }
die() { printf 'retrain-setup: error: %s\n' "$*" >&2; exit 2; }

ensure_apt_packages() {
  local missing=() pkg
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || die "apt packages missing (${missing[*]}) and not root: install them or run as root"
    sudo=(sudo)
  fi
  log "installing Debian packages: ${missing[*]}"
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# The interpreter every locked environment is built from: RETRAIN_PYTHON, or
# python3.11 on PATH, or python3 when it is 3.11.
find_python() {
  local candidate
  for candidate in "${RETRAIN_PYTHON:-}" python3.11 python3; do
    [ -n "$candidate" ] || continue
    command -v "$candidate" >/dev/null 2>&1 || continue
    if "$candidate" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
      "$candidate" -c 'import sys; print(sys.executable)'
      return 0
    fi
  done
  die "no Python 3.11 found (looked at \$RETRAIN_PYTHON, python3.11, python3); install python3.11 or set RETRAIN_PYTHON"
}

# Download every wheel the locks name into the wheelhouse, with hashes
# checked. Offline first: when every file is already there, no network is
# used at all.
ensure_wheelhouse() {
  local python="$1" lock
  mkdir -p "$WHEELHOUSE"
  for lock in "$ROOT/requirements/dev.lock" "$ROOT/requirements/runtime.lock" "$ROOT/requirements/sign.lock"; do
    if PIP_CONFIG_FILE=/dev/null "$python" -m pip download -q --no-index --find-links "$WHEELHOUSE" \
        --require-hashes --no-deps --only-binary=:all: -r "$lock" -d "$WHEELHOUSE" >/dev/null 2>&1; then
      continue
    fi
    log "downloading locked wheels for $(basename "$lock") into $WHEELHOUSE"
    PIP_CONFIG_FILE=/dev/null "$python" -m pip download -q --require-hashes --no-deps \
      --only-binary=:all: -r "$lock" -d "$WHEELHOUSE" \
      || die "could not download the wheels named in $lock (network to PyPI needed on first run)"
  done
}

# The project's virtualenv (.venv): the dev lock plus retrain itself,
# editable. Rebuilt only when the lock or pyproject.toml changes.
ensure_venv() {
  local python="$1" stamp want
  want="$(cat "$ROOT/requirements/dev.lock" "$ROOT/pyproject.toml" | sha256sum | cut -d' ' -f1) $("$python" -c 'import sys; print(sys.version)' | head -1)"
  stamp="$VENV/.retrain-stamp"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$VENV/bin/retrain" ]; then
    return 0
  fi
  log "creating $VENV from requirements/dev.lock"
  rm -rf "$VENV"
  "$python" -m venv "$VENV"
  PIP_CONFIG_FILE=/dev/null "$VENV/bin/python" -m pip install -q --no-index --find-links "$WHEELHOUSE" \
    --require-hashes --no-deps -r "$ROOT/requirements/dev.lock"
  PIP_CONFIG_FILE=/dev/null "$VENV/bin/python" -m pip install -q --no-index --no-deps \
    --no-build-isolation -e "$ROOT"
  printf '%s' "$want" >"$stamp"
}

setup_all() {
  ensure_apt_packages "${APT_PACKAGES[@]}"
  local python
  python="$(find_python)"
  ensure_wheelhouse "$python"
  ensure_venv "$python"
  export RETRAIN_WHEELHOUSE="$WHEELHOUSE" RETRAIN_PYTHON="$python"
  export PATH="$VENV/bin:$PATH"
}
