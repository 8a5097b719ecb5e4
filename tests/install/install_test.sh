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
# Without Asio's TS executor members, execute() takes its fallback path.
# shellcheck disable=SC2086
c++ -std=c++20 -DASIO_NO_TS_EXECUTORS "$source_dir/tests/install/consumer.cpp" \
    -o "$stage/consumer_no_ts" $flags
LD_LIBRARY_PATH="$libdir" "$stage/consumer_no_ts"

# A file whose first include is Asio's: with loopscale's flags it builds; with
# the include path alone, Asio would pick another allocator than the library
# (detail/asio_config.hpp), and the build must stop and say so.
asio_first='#include <asio/post.hpp>
#include <loopscale/event_loop.hpp>
int main() {}'
# shellcheck disable=SC2086
echo "$asio_first" | c++ -std=c++20 -fsyntax-only -x c++ - $flags
includes="$(pkg-config --cflags-only-I loopscale)"
# shellcheck disable=SC2086
if err="$(echo "$asio_first" | c++ -std=c++20 -fsyntax-only -x c++ - -DASIO_STANDALONE $includes 2>&1)"; then
  echo "FAIL: Asio included first without loopscale's flags compiled" >&2
  exit 1
fi
grep -q "ASIO_HAS_STD_ALIGNED_ALLOC" <<<"$err" || { echo "FAIL: unexpected error: $err" >&2; exit 1; }
echo "Asio first: builds with pkg-config's flags; without them, stops naming ASIO_HAS_STD_ALIGNED_ALLOC"
echo "prefix $prefix: consumer built with pkg-config and ran"
