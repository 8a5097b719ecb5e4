#!/usr/bin/env bash
# Installs the build into a scratch prefix and builds a consumer against it
# with nothing but `pkg-config loopscale`, as code outside this repository would.
set -euo pipefail
build_dir="$1"
source_dir="$2"
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
meson install -C "$build_dir" --destdir "$stage" --no-rebuild >/dev/null
pc_dir="$(dirname "$(find "$stage" -name loopscale.pc | head -n 1)")"
prefix="$(sed -n 's/^prefix=//p' "$pc_dir/loopscale.pc")"
export PKG_CONFIG_PATH="$pc_dir"
export PKG_CONFIG_SYSROOT_DIR="$stage"
flags="$(pkg-config --cflags --libs loopscale)"
libdir="$(dirname "$(find "$stage" -name "libloopscale.so*" | head -n 1)")"
# shellcheck disable=SC2086
c++ -std=c++20 "$source_dir/tests/install/consumer.cpp" -o "$stage/consumer" $flags
LD_LIBRARY_PATH="$libdir" "$stage/consumer"
echo "prefix $prefix: consumer built with pkg-config and ran"
