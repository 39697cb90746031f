#!/usr/bin/env bash
# Fetches Debian 12's own Node.js 18 (what `apt install nodejs` gives a Debian 12 or Ubuntu 24.04
# guest) into DIR without installing it: the .debs of nodejs, libnode and the libraries and
# externalized builtins Debian splits out, extracted under DIR/root. test/shim-node18.test.ts
# runs the built shim with it (LD_LIBRARY_PATH, and /usr/share/nodejs overlaid in a private
# mount namespace), proving the shim runs on the Node a stock guest has. Idempotent.
# Usage: scripts/debian-node18.sh [DIR]   (default /var/cache/vm-auth/node18)
set -euo pipefail
dir="${1:-/var/cache/vm-auth/node18}"
[ -x "$dir/root/usr/bin/node" ] && exit 0
# The newest 18.x Debian offers (security updates move it); nodesource's 20.x may be installed.
version="$(apt-cache madison nodejs | awk '$3 ~ /^18\./ { print $3; exit }')"
if [ -z "$version" ]; then
  apt-get update -qq
  version="$(apt-cache madison nodejs | awk '$3 ~ /^18\./ { print $3; exit }')"
fi
[ -n "$version" ] || { echo "debian-node18: no nodejs 18.x in the apt sources" >&2; exit 1; }
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
cd "$tmp"
chown _apt "$tmp" 2>/dev/null || true
apt-get download -qq "nodejs=$version" "libnode108=$version" libc-ares2 node-acorn \
  node-cjs-module-lexer node-undici 2>/dev/null
mkdir -p root
for deb in ./*.deb; do dpkg-deb -x "$deb" root; done
mkdir -p "$(dirname "$dir")"
rm -rf "$dir"
mv "$tmp" "$dir"
trap - EXIT
echo "debian-node18: nodejs $version in $dir" >&2
