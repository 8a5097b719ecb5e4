#!/usr/bin/env bash
# Installs the build into a scratch prefix and builds a consumer against it
# with nothing but `pkg-config loopscale`, then with nothing but CMake's
# `find_package(loopscale CONFIG)`, as code outside this repository would.
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

# CMake: find_package(loopscale 0.1 CONFIG) and the loopscale::loopscale target.
cmake -S "$source_dir/tests/install/cmake" -B "$stage/cmake-build" \
    -DCMAKE_PREFIX_PATH="$stage$prefix" >/dev/null
cmake --build "$stage/cmake-build" >/dev/null
LD_LIBRARY_PATH="$libdir" "$stage/cmake-build/consumer"
# The version file: a later minor version (0.x breaks between minors) is refused.
sed 's/find_package(loopscale 0.1 /find_package(loopscale 0.2 /' \
    "$source_dir/tests/install/cmake/CMakeLists.txt" >"$stage/newer.txt"
mkdir -p "$stage/newer" && cp "$stage/newer.txt" "$stage/newer/CMakeLists.txt"
cp "$source_dir/tests/install/consumer.cpp" "$stage/consumer.cpp"
if cmake -S "$stage/newer" -B "$stage/newer-build" -DCMAKE_PREFIX_PATH="$stage$prefix" \
    >"$stage/newer.log" 2>&1; then
  echo "FAIL: find_package(loopscale 0.2) accepted version 0.1" >&2
  exit 1
fi
grep -q "version" "$stage/newer.log" || { cat "$stage/newer.log" >&2; exit 1; }
echo "prefix $prefix: consumer built with CMake's find_package and ran; 0.2 refused"
