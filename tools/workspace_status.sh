#!/usr/bin/env bash
# Bazel workspace status: what the provenance needs to know about the
# source tree and the Bazel running the build. Stable keys only, so a change
# re-runs just the provenance action. Never fails the build: unknown values
# are reported as empty or "unknown".
set -u
cd "$(dirname "$0")/.." 2>/dev/null || exit 0

commit=""
state="unknown"
if git rev-parse --is-inside-work-tree >/dev/null 2>&1 \
    && [ "$(git rev-parse --show-toplevel 2>/dev/null)" = "$(pwd -P)" ]; then
  commit="$(git rev-parse --verify -q HEAD 2>/dev/null || true)"
  if [ -n "$commit" ]; then
    if [ -z "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then
      state="clean"
    else
      state="dirty"
    fi
  fi
fi
echo "STABLE_RETRAIN_GIT_COMMIT ${commit}"
echo "STABLE_RETRAIN_GIT_TREE_STATE ${state}"

# Debian's bazel-bootstrap reports "no_version"; its package version is the truth.
version="$(bazel --version 2>/dev/null | sed -n 's/^bazel //p' | head -1)"
if [ -z "$version" ] || [ "$version" = "no_version" ]; then
  deb="$(dpkg-query -W -f='${Version}' bazel-bootstrap 2>/dev/null || true)"
  if [ -n "$deb" ]; then version="${deb} (debian bazel-bootstrap)"; else version="unknown"; fi
fi
echo "STABLE_RETRAIN_BAZEL_VERSION ${version}"
bazel_bin="$(command -v bazel 2>/dev/null || true)"
if [ -n "$bazel_bin" ]; then
  echo "STABLE_RETRAIN_BAZEL_SHA256 $(sha256sum "$(readlink -f "$bazel_bin")" | cut -d' ' -f1)"
fi
