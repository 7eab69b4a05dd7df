#!/usr/bin/env bash
# Builds NVIDIA's reference tools from the public sources tests/gpu/fetch-ref.sh gathered in
# .ref/src: nvbandwidth (cmake, Boost.Program_options unpacked from .ref/debs into the build
# directory), nccl-tests' all_reduce_perf (NCCL from PyTorch's nvidia-nccl wheel, else the
# system's; MPI=0) and cuda-samples' p2pBandwidthLatencyTest (nvcc). Nothing is installed into /.
#   tests/gpu/ref-build.sh [BUILD_DIR]     default /tmp/peerscope-ref-build (outside .ref/, which
#                                          is carried to the GPU machine and must stay small)
#   PEERSCOPE_REF_ARCH=90                  CUDA architecture(s), e.g. "90" or "80;90"
#   CUDA_HOME=/usr/local/cuda              the toolkit (nvcc), any version that builds them
# Leaves BUILD_DIR/bin/{nvbandwidth,all_reduce_perf,p2pBandwidthLatencyTest} and BUILD_DIR/env.sh
# (LD_LIBRARY_PATH for NCCL and Boost; source it before running them). One line per tool:
# "ref-build: TOOL ok" or "ref-build: TOOL FAILED: why (log: FILE)"; a tool that fails does not
# stop the others. Exit 0 when all three built, 1 otherwise.
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
src=$PWD/.ref/src
build=${1:-${TMPDIR:-/tmp}/peerscope-ref-build}
build=$(mkdir -p "$build" && cd "$build" && pwd)
arch=${PEERSCOPE_REF_ARCH:-90}
cuda=${CUDA_HOME:-/usr/local/cuda}
export PATH="$cuda/bin:$PATH"
mkdir -p "$build/bin" "$build/logs"
rm -f "$build"/bin/* # a tool that fails now must not leave an older build to be run
libpath=()
failed=0

ok() { echo "ref-build: $1 ok ($build/bin/$1)"; }
fail() {
  echo "ref-build: $1 FAILED: $2${3:+ (log: $3)}"
  failed=1
}
# $1 tool, $2 log: the last lines of a failed build, then the one-line verdict.
build_failed() {
  tail -15 "$2" | sed "s/^/  $1: /"
  fail "$1" "build error" "$2"
}

if ! command -v nvcc >/dev/null; then
  for tool in nvbandwidth all_reduce_perf p2pBandwidthLatencyTest; do
    fail "$tool" "no nvcc (set CUDA_HOME; looked in $cuda/bin and PATH)"
  done
  exit 1
fi
echo "ref-build: $(nvcc --version | grep -o 'release [0-9.]*'), arch $arch, into $build"
# The driver's libcuda.so / libnvidia-ml.so may lack their unversioned links; the toolkit's
# stubs satisfy the linker, the real driver libraries are loaded at run time.
stubs=$cuda/lib64/stubs
[ -d "$stubs" ] || stubs=$cuda/targets/x86_64-linux/lib/stubs

# Unpacks a .deb without dpkg when the machine has none (ar + tar).
unpack_deb() {
  if command -v dpkg-deb >/dev/null; then
    dpkg-deb -x "$1" "$2"
  else
    local tmp
    tmp=$(mktemp -d) && (cd "$tmp" && ar x "$1") && tar xf "$tmp"/data.tar.* -C "$2"
    rm -rf "$tmp"
  fi
}

# Sets boost_args for cmake: the system's Boost when it has program_options, else the debs.
find_boost() {
  boost_args=()
  if echo '#include <boost/program_options.hpp>' | c++ -x c++ -E - >/dev/null 2>&1 &&
    ls /usr/lib/*/libboost_program_options.* /usr/lib64/libboost_program_options.* \
      >/dev/null 2>&1; then
    return 0
  fi
  ls .ref/debs/*.deb >/dev/null 2>&1 || return 1
  local root=$build/boost multiarch
  rm -rf "$root" && mkdir -p "$root"
  for deb in .ref/debs/*.deb; do unpack_deb "$PWD/$deb" "$root" || return 1; done
  multiarch=$(ls -d "$root"/usr/lib/*-linux-gnu | head -1)
  [ -f "$root/usr/include/boost/program_options.hpp" ] && [ -n "$multiarch" ] || return 1
  # Boost's own CMake config files locate the tree relative to themselves; static
  # program_options when the .a is there (nvbandwidth asks for it), else the .so at run time.
  boost_args=(-DBoost_DIR="$(ls -d "$multiarch"/cmake/Boost-* | head -1)"
    -DBOOST_ROOT="$root/usr" -DBoost_INCLUDE_DIR="$root/usr/include")
  [ -f "$multiarch/libboost_program_options.a" ] || boost_args+=(-DBoost_USE_STATIC_LIBS=OFF)
  libpath+=("$multiarch")
}

# Sets nvml_flags: nvml.h from the toolkit, else from the nvidia-nvml-dev wheel (pip-installed,
# or the one fetch-ref.sh put in .ref/wheels); and a libnvidia-ml.so to link against in
# $build/link: the toolkit's stub, the driver's library, else a stub made here from the few
# symbols nvbandwidth calls (with the driver's SONAME: the driver's library is loaded at run time).
find_nvml() {
  local inc="" whl dir
  nvml_flags=""
  mkdir -p "$build/link"
  if ! ls "$cuda"/include/nvml.h "$cuda"/targets/*/include/nvml.h >/dev/null 2>&1; then
    for dir in $(python3 -c 'import nvidia; [print(p) for p in nvidia.__path__]' 2>/dev/null); do
      inc=$(ls -d "$dir"/include "$dir"/cu*/include 2>/dev/null | while read -r d; do
        [ -f "$d/nvml.h" ] && echo "$d"; done | head -1)
      [ -n "$inc" ] && break
    done
    whl=$(ls .ref/wheels/nvidia_nvml_dev-*.whl 2>/dev/null | head -1)
    if [ -z "$inc" ] && [ -n "$whl" ]; then
      python3 -m zipfile -e "$whl" "$build/nvml" &&
        inc=$(dirname "$(find "$build/nvml" -name nvml.h | head -1)")
    fi
    [ -n "$inc" ] && [ -f "$inc/nvml.h" ] || return 1
    nvml_flags="-I$inc"
  fi
  [ -e "$stubs/libnvidia-ml.so" ] && return 0
  local lib
  lib=$(ldconfig -p 2>/dev/null | awk '/libnvidia-ml.so.1 .*x86-64/ {print $NF; exit}')
  if [ -n "$lib" ]; then
    ln -sf "$lib" "$build/link/libnvidia-ml.so" && return 0
  fi
  local syms
  syms=$(grep -oh 'nvml[A-Z][A-Za-z_0-9]*' "$src"/nvbandwidth/*.cpp "$src"/nvbandwidth/*.h |
    sort -u |
    sed 's/^/SYMBOL /' | cc $nvml_flags -I"$cuda/include" -E -include nvml.h - 2>/dev/null |
    awk '$1 == "SYMBOL" {print "void " $2 "(void) {}"}')
  echo "$syms" |
    cc -shared -fPIC -x c - -Wl,-soname,libnvidia-ml.so.1 -o "$build/link/libnvidia-ml.so"
}

build_nvbandwidth() {
  local log=$build/logs/nvbandwidth.txt
  [ -f "$src/nvbandwidth/CMakeLists.txt" ] ||
    { fail nvbandwidth "no sources in $src/nvbandwidth"; return; }
  command -v cmake >/dev/null || { fail nvbandwidth "no cmake"; return; }
  find_boost || { fail nvbandwidth "no Boost.Program_options (system or .ref/debs)"; return; }
  find_nvml ||
    { fail nvbandwidth "no nvml.h (toolkit, pip nvidia-nvml-dev or .ref/wheels)"; return; }
  {
    cmake -S "$src/nvbandwidth" -B "$build/nvbandwidth" -DCMAKE_BUILD_TYPE=Release \
      -DCMAKE_CUDA_COMPILER="$(command -v nvcc)" -DCMAKE_CUDA_ARCHITECTURES="$arch" \
      -DCMAKE_CXX_FLAGS="$nvml_flags" -DCMAKE_CUDA_FLAGS="$nvml_flags" \
      -DCMAKE_EXE_LINKER_FLAGS="-L$build/link -L$stubs" "${boost_args[@]}" &&
      cmake --build "$build/nvbandwidth" -j "$(nproc)"
  } > "$log" 2>&1 && cp "$build/nvbandwidth/nvbandwidth" "$build/bin/" && ok nvbandwidth ||
    build_failed nvbandwidth "$log"
}

# Prints NCCL's directory (include/nccl.h and lib/libnccl.so.2 under it) or nothing.
find_nccl() {
  local dir
  dir=$(python3 -c 'import nvidia.nccl, os; print(list(nvidia.nccl.__path__)[0])' 2>/dev/null)
  if [ -n "$dir" ] && [ -f "$dir/include/nccl.h" ] && [ -e "$dir/lib/libnccl.so.2" ]; then
    echo "$dir" && return
  fi
  for dir in /usr /usr/local/nccl /usr/local; do
    if [ -f "$dir/include/nccl.h" ]; then
      local lib
      lib=$(ls "$dir"/lib*/libnccl.so.2 "$dir"/lib/*-linux-gnu/libnccl.so.2 2>/dev/null | head -1)
      [ -n "$lib" ] && echo "$dir|$(dirname "$lib")" && return
    fi
  done
}

build_nccl_tests() {
  local log=$build/logs/all_reduce_perf.txt found inc lib home=$build/nccl-home gencode=""
  [ -f "$src/nccl-tests/src/Makefile" ] ||
    { fail all_reduce_perf "no sources in $src/nccl-tests"; return; }
  found=$(find_nccl)
  [ -n "$found" ] ||
    { fail all_reduce_perf "no NCCL (pip nvidia-nccl-cu12, or nccl.h + libnccl.so.2)"; return; }
  if [[ $found == *"|"* ]]; then
    inc=${found%%|*}/include lib=${found#*|}
  else
    inc=$found/include lib=$found/lib
  fi
  # The wheel ships libnccl.so.2 only: -lnccl needs the unversioned link, made here.
  rm -rf "$home" && mkdir -p "$home/lib" && ln -s "$inc" "$home/include"
  ln -s "$lib/libnccl.so.2" "$home/lib/libnccl.so"
  libpath+=("$lib") # and the toolkit's libcudart.so, which all_reduce_perf loads (-lcudart)
  [ -d "$cuda/lib64" ] && libpath+=("$cuda/lib64")
  for a in ${arch//;/ }; do gencode+=" -gencode=arch=compute_$a,code=sm_$a"; done
  make -C "$src/nccl-tests/src" "$build/nccl-tests/all_reduce_perf" MPI=0 \
    BUILDDIR="$build/nccl-tests" NCCL_HOME="$home" CUDA_HOME="$cuda" NVCC_GENCODE="$gencode" \
    -j "$(nproc)" > "$log" 2>&1 && cp "$build/nccl-tests/all_reduce_perf" "$build/bin/" &&
    ok all_reduce_perf || build_failed all_reduce_perf "$log"
}

build_p2p() {
  local log=$build/logs/p2pBandwidthLatencyTest.txt
  local dir=$src/cuda-samples/Samples/5_Domain_Specific/p2pBandwidthLatencyTest
  local gencode=()
  [ -f "$dir/p2pBandwidthLatencyTest.cu" ] ||
    { fail p2pBandwidthLatencyTest "no sources in $dir"; return; }
  for a in ${arch//;/ }; do gencode+=("-gencode=arch=compute_$a,code=sm_$a"); done
  nvcc -O3 -std=c++17 "${gencode[@]}" -I"$src/cuda-samples/Common" \
    "$dir/p2pBandwidthLatencyTest.cu" -o "$build/bin/p2pBandwidthLatencyTest" > "$log" 2>&1 &&
    ok p2pBandwidthLatencyTest || build_failed p2pBandwidthLatencyTest "$log"
}

build_nvbandwidth
build_nccl_tests
build_p2p
{
  echo "# written by tests/gpu/ref-build.sh: the libraries the reference tools load"
  joined=$(IFS=:; echo "${libpath[*]}")
  echo "export LD_LIBRARY_PATH=\"$joined\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}\""
} > "$build/env.sh"
exit $failed
