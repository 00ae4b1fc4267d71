#!/usr/bin/env bash
# A minimal Debian 12 arm64 root with python3.11, for running the agent under user-mode emulation:
#   qemu-aarch64-static -L ROOT ROOT/usr/bin/python3.11 ...
# Debian's own arm64 packages, fetched with `apt-get download` and unpacked with `dpkg-deb -x`:
# nothing is installed and the machine's dpkg is not touched. apt runs with a private state
# (lists, cache, status) under ROOT's parent, so no architecture is added to the system, no
# binfmt handler is registered and no kernel setting changes.
#   bash scripts/arm64-root.sh DIR      (DIR/root is the root; reruns reuse it)
set -euo pipefail
OUT="$(mkdir -p "${1:?usage: arm64-root.sh DIR}" && cd "$1" && pwd)"
ROOT="$OUT/root"
if [ -x "$ROOT/usr/bin/python3.11" ] && [ -f "$ROOT/.complete" ]; then
    echo "$ROOT"
    exit 0
fi
command -v dpkg-deb >/dev/null && command -v apt-get >/dev/null || { echo "arm64-root: needs Debian's apt and dpkg" >&2; exit 1; }
STATE="$OUT/apt"
mkdir -p "$STATE/lists/partial" "$STATE/cache/archives/partial" "$STATE/debs"
: >"$STATE/status"
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
cat >"$STATE/sources.list" <<SOURCES
deb [arch=arm64 signed-by=$KEYRING] http://deb.debian.org/debian bookworm main
deb [arch=arm64 signed-by=$KEYRING] http://deb.debian.org/debian-security bookworm-security main
SOURCES
APT=(-o APT::Architecture=arm64 -o APT::Architectures=arm64 -o "Dir::State=$STATE"
     -o "Dir::State::Lists=$STATE/lists" -o "Dir::State::status=$STATE/status" -o "Dir::Cache=$STATE/cache"
     -o "Dir::Etc::SourceList=$STATE/sources.list" -o Dir::Etc::SourceParts=/nonexistent
     -o Debug::NoLocking=1 -o Acquire::Languages=none -o APT::Sandbox::User=root)
apt-get "${APT[@]}" -qq update
# python3.11 and the libraries its interpreter and stdlib modules load (ssl, sqlite3, ctypes, lzma...):
# `apt-cache depends --recurse` of python3.11-minimal and libpython3.11-stdlib, minus perl/dpkg/tar,
# which only maintainer scripts use.
PACKAGES=(python3.11-minimal libpython3.11-minimal libpython3.11-stdlib media-types
    libc6 libgcc-s1 gcc-12-base zlib1g libexpat1 libssl3 libffi8 libbz2-1.0 liblzma5 libzstd1
    libsqlite3-0 libuuid1 libncursesw6 libtinfo6 libreadline8 readline-common libdb5.3 libgdbm6
    libgdbm-compat4 libcrypt1 libnsl2 libtirpc3 libtirpc-common libgssapi-krb5-2 libk5crypto3 libkrb5-3
    libkrb5support0 libkeyutils1 libcom-err2 libselinux1 libpcre2-8-0 libacl1 libmd0)
(cd "$STATE/debs" && apt-get "${APT[@]}" -qq download "${PACKAGES[@]/%/:arm64}")
rm -rf "$ROOT"
mkdir -p "$ROOT"
for deb in "$STATE"/debs/*.deb; do
    dpkg-deb -x "$deb" "$ROOT"
done
# Debian 12 is merged-/usr: /lib -> usr/lib, so the loader's path (/lib/ld-linux-aarch64.so.1) resolves.
for dir in bin lib sbin; do
    if [ -d "$ROOT/$dir" ] && [ ! -L "$ROOT/$dir" ]; then
        cp -a "$ROOT/$dir/." "$ROOT/usr/$dir/" && rm -rf "${ROOT:?}/$dir"
    fi
    [ -e "$ROOT/$dir" ] || ln -s "usr/$dir" "$ROOT/$dir"
done
mkdir -p "$ROOT/etc" "$ROOT/tmp"
touch "$ROOT/.complete"
echo "$ROOT"
