#!/usr/bin/env bash
# Installs the build in $1 (default build/) into a temporary prefix and builds consumer.c
# against it as another project would: with pkg-config (shared, and static through
# Requires.private/Libs.private) and with find_package(peerscope) (both imported targets).
# Runs the four programs and checks what they print. Nothing here may use the build tree.
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:-build}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
prefix=$tmp/prefix
cmake --install "$build" --prefix "$prefix" >/dev/null
if grep -rlF "$PWD" "$prefix/lib/pkgconfig" "$prefix/lib/cmake"; then
  echo "consumer: the installed package names the source or build tree" >&2
  exit 1
fi
# From here on only the prefix (and system packages) are searched.
src=tests/consumer
cc=${CC:-cc}
export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
version=$(pkg-config --modversion peerscope)
# shellcheck disable=SC2046 # word splitting of pkg-config's flags is wanted
"$cc" -o "$tmp/pc_shared" "$src/consumer.c" $(pkg-config --cflags --libs peerscope) \
  -Wl,-rpath,"$prefix/lib"
# The static library by its path, then what Requires.private and Libs.private name (shared
# copies of those: `pkg-config --static` would also want every static library below libcurl).
pkg-config --static --libs peerscope >/dev/null
requires=$(pkg-config --print-requires-private peerscope)
private=$(sed -n 's/^Libs.private: //p' "$prefix/lib/pkgconfig/peerscope.pc")
# shellcheck disable=SC2046,SC2086
"$cc" -o "$tmp/pc_static" "$src/consumer.c" $(pkg-config --cflags peerscope) \
  "$prefix/lib/libpeerscope.a" $(pkg-config --libs $requires) $private
cmake -S "$src" -B "$tmp/cmake" -G Ninja -DCMAKE_PREFIX_PATH="$prefix" \
  -DCMAKE_FIND_USE_PACKAGE_REGISTRY=OFF >/dev/null
ninja -C "$tmp/cmake" >/dev/null
want="peerscope $version (ABI "
for bin in pc_shared pc_static cmake/consumer_shared cmake/consumer_static; do
  out=$("$tmp/$bin")
  case "$out" in
  "$want"*$'\n'"recommended TP: 2 on GPU0 GPU1") ;;
  *) echo "consumer $bin printed:" >&2; echo "$out" >&2; exit 1 ;;
  esac
done
# The shared builds load the installed library, not some other libpeerscope.
for bin in pc_shared cmake/consumer_shared; do
  libs=$(ldd "$tmp/$bin") # not piped into grep -q: pipefail would see ldd's SIGPIPE
  [[ $libs == *"libpeerscope.so.0 => $prefix/lib/"* ]] ||
    { echo "consumer $bin loads another libpeerscope:" >&2; echo "$libs" >&2; exit 1; }
done
# Every installed header compiles alone (each includes what it needs), in C and C++.
for h in "$prefix"/include/peerscope/*.h; do
  for lang in c c++; do
    echo "#include <peerscope/${h##*/}>" |
      "$cc" -x "$lang" -fsyntax-only -Wall -Wextra -Werror -I"$prefix/include" - ||
      { echo "consumer: ${h##*/} does not compile alone ($lang)" >&2; exit 1; }
  done
done
echo "consumer: peerscope $version through pkg-config and find_package, shared and static: ok"
