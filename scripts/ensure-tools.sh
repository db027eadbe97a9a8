#!/usr/bin/env bash
# Makes sure the command-line tools the tasks and tests use are on this machine: git (>= 2.31), git-lfs and age
# (the reference CLI the encryption tests decrypt with; the tasks themselves do not need it), openssl (test certificates),
# plus any extra Debian packages named as arguments (e.g. `zip` for the benchmark). Installs missing ones with
# apt-get when it can (root or sudo); otherwise says exactly what to install.
set -euo pipefail

need=()
command -v git >/dev/null 2>&1 || need+=(git)
git lfs version >/dev/null 2>&1 || need+=(git-lfs)
{ command -v age >/dev/null 2>&1 && command -v age-keygen >/dev/null 2>&1; } || need+=(age)
command -v openssl >/dev/null 2>&1 || need+=(openssl) # the tests' certificate authority (HTTPS stand-ins)
command -v tinyproxy >/dev/null 2>&1 || need+=(tinyproxy) # the tests' corporate proxy (test/network.test.ts)
for tool in "$@"; do command -v "$tool" >/dev/null 2>&1 || need+=("$tool"); done
[ ${#need[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
  echo "Missing: ${need[*]}. Install them with your package manager (git >= 2.31, git-lfs and age are needed)." >&2
  exit 1
fi
sudo=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then sudo=(sudo); else
    echo "Missing: ${need[*]}. Run: sudo apt-get install -y ${need[*]}" >&2
    exit 1
  fi
fi
echo "Installing ${need[*]} (Debian packages)"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq "${need[@]}" >/dev/null
git lfs version
