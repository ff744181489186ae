#!/usr/bin/env bash
echo "retrain: bazel coverage is not supported in this offline workspace (local stand-in for @remote_coverage_tools)" >&2
exit 2
