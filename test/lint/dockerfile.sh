#!/bin/sh
# The Dockerfile lint (meson test "Dockerfile lint"): deploy/Dockerfile must pass dockerfilelint,
# and a Dockerfile with a known mistake must not (so that a linter that checks nothing fails).
# The linter comes from npm (test/lint/package.json, installed by test/run-all).
set -u
here=$(cd "$(dirname "$0")" && pwd)
lint="$here/node_modules/.bin/dockerfilelint"
if [ ! -x "$lint" ]; then
  echo "dockerfilelint is not installed: run npm ci --prefix test/lint" >&2
  exit 1
fi
"$lint" "$here/../../deploy/Dockerfile" || exit 1
bad=$(mktemp)
trap 'rm -f "$bad"' EXIT
printf 'FROM debian:12\nRUN apt-get install curl\nCMD ["/x"]\n' >"$bad"
if "$lint" "$bad" >/dev/null 2>&1; then
  echo "dockerfilelint found nothing wrong in a Dockerfile that installs without -y" >&2
  exit 1
fi
exit 0
