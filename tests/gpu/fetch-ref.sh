#!/usr/bin/env bash
# Gathers what tests/gpu/bench.sh needs to build NVIDIA's reference tools on a GPU machine
# that cannot download: their public sources (nvbandwidth, nccl-tests, cuda-samples'
# p2pBandwidthLatencyTest) and Boost.Program_options (nvbandwidth's one dependency) as Debian
# packages, unpacked there into a temporary prefix, never into /, and NVML's header (a wheel).
# Everything lands in .ref/ (git-ignored; pass it to the device tool with `carry: [".ref"]`,
# about 11 MB).
#   tests/gpu/fetch-ref.sh            clones from github.com
#   PEERSCOPE_REF_MIRROR=DIR ...      clones DIR/<owner>+<name>/repo instead (a local mirror)
set -euo pipefail
cd "$(dirname "$0")/../.."
ref=.ref
rm -rf "$ref/src" "$ref/debs" "$ref/build" # a build inside would be carried too
mkdir -p "$ref/src" "$ref/debs"

# $1 owner/name, $2 destination, $3... paths to keep (default: all)
take() {
  local repo=$1 dest=$2 git_dir tmp=
  shift 2
  if [ -n "${PEERSCOPE_REF_MIRROR:-}" ]; then
    # Archive straight from the mirror: a mirror may lack blobs of files we do not take, which
    # makes a clone of it fail (cuda-samples did), while `git archive` of our paths works.
    git_dir=$PEERSCOPE_REF_MIRROR/${repo/\//+}/repo
  else
    tmp=$(mktemp -d)
    git clone -q --no-checkout --depth 1 --filter=blob:none "https://github.com/$repo" "$tmp/repo"
    git_dir=$tmp/repo
  fi
  mkdir -p "$dest"
  git -C "$git_dir" archive HEAD "$@" | tar x -C "$dest"
  echo "$repo $(git -C "$git_dir" rev-parse HEAD)" >> "$ref/src/VERSIONS"
  [ -z "$tmp" ] || rm -rf "$tmp"
}
take NVIDIA/nvbandwidth "$ref/src/nvbandwidth"
take NVIDIA/nccl-tests "$ref/src/nccl-tests"
take NVIDIA/cuda-samples "$ref/src/cuda-samples" Common/helper_cuda.h Common/helper_string.h \
  Common/helper_timer.h Common/helper_functions.h Common/exception.h Common/helper_image.h \
  Samples/5_Domain_Specific/p2pBandwidthLatencyTest/p2pBandwidthLatencyTest.cu

(cd "$ref/debs" && apt-get download libboost1.74-dev libboost-program-options1.74-dev \
  libboost-program-options1.74.0 >/dev/null 2>&1) && ls "$ref"/debs/*.deb >/dev/null ||
  echo "fetch-ref: apt-get download failed: nvbandwidth will not build" >&2
# nvml.h, for nvbandwidth where the machine's toolkit lacks it (a header-only wheel, 150 KB).
mkdir -p "$ref/wheels" && rm -f "$ref"/wheels/*.whl
pip download -q --no-deps -d "$ref/wheels" nvidia-nvml-dev >/dev/null 2>&1 ||
  echo "fetch-ref: pip download nvidia-nvml-dev failed: nvbandwidth needs the toolkit's nvml.h" >&2
cat "$ref/src/VERSIONS"
du -sh "$ref"
