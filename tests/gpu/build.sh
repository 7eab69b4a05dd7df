# Sourced by the GPU scripts (run.sh, bench.sh): builds peerscope on a bare GPU machine into
# build-gpu/ without tests; jansson from the Debian packages carried in .deps/ when the machine
# lacks it; the CUDA kernels when nvcc is there. Sets $ps to the CLI. Needs $OUT and log().
prefix_args=()
if ! echo '#include <jansson.h>' | cc -E - >/dev/null 2>&1 && ls .deps/*.deb >/dev/null 2>&1; then
  mkdir -p .deps/root
  for deb in .deps/*.deb; do dpkg -x "$deb" .deps/root; done
  # Its .pc file names /usr as the prefix: search the unpacked tree directly instead.
  prefix_args=(-DCMAKE_PREFIX_PATH="$PWD/.deps/root/usr" -DCMAKE_DISABLE_FIND_PACKAGE_PkgConfig=ON)
  export LD_LIBRARY_PATH="$PWD/.deps/root/usr/lib/x86_64-linux-gnu:${LD_LIBRARY_PATH:-}"
fi
# capture/--replay need libarchive through pkg-config; a bare machine builds without them.
archive=OFF
if [ ${#prefix_args[@]} -eq 0 ] && pkg-config --exists libarchive 2>/dev/null; then archive=ON; fi
export PATH="$PATH:/usr/local/cuda/bin"
log "build"
cmake -S . -B build-gpu -G Ninja -DCMAKE_BUILD_TYPE=Release -DPS_BUILD_TESTS=OFF -DPS_WITH_CURL=OFF \
  -DPS_WITH_ARCHIVE=$archive -DPS_CUDA_ARCHS="${PS_CUDA_ARCHS:-90}" "${prefix_args[@]}" \
  > "$OUT/build.txt" 2>&1 && ninja -C build-gpu >> "$OUT/build.txt" 2>&1
if [ $? -ne 0 ]; then tail -30 "$OUT/build.txt"; exit 1; fi
grep -E "nvcc|without the benchmark kernels" "$OUT/build.txt" | head -3
ps=build-gpu/bin/peerscope
