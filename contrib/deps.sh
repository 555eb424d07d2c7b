# shellcheck shell=bash
# Sourced by contrib/check, contrib/demo and contrib/bench/run-bench: installs the Debian
# packages sigbusfs needs to build and test (or those named), when some are missing (root
# only; others get the apt-get line).
SIGBUSFS_PACKAGES="gcc pkg-config meson ninja-build libfuse3-dev fuse3 check libsqlite3-dev
 libjson-c-dev python3 clang clang-format sqlite3"

# deps_install [PACKAGE...]: the packages named, or SIGBUSFS_PACKAGES.
deps_install() {
  local missing="" p
  [ $# -gt 0 ] || set -- $SIGBUSFS_PACKAGES
  for p in "$@"; do
    dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed' ||
      missing="$missing $p"
  done
  [ -z "$missing" ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    echo "missing packages:$missing; run: apt-get install$missing" >&2
    return 1
  fi
  echo "installing:$missing"
  # another apt-get may hold the lock for a while
  apt-get -o DPkg::Lock::Timeout=300 update -qq &&
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq \
      --no-install-recommends $missing >/dev/null
}

# Configures build/NAME with the extra meson options given (once; an existing build
# directory gets them through meson configure) and builds it.
deps_build() {
  local name=$1
  shift
  if [ ! -f "build/$name/build.ninja" ]; then
    meson setup "build/$name" "$@" >"build/$name.setup.log" 2>&1 ||
      { cat "build/$name.setup.log" >&2; return 1; }
  elif [ $# -gt 0 ]; then
    meson configure "build/$name" "$@" >"build/$name.setup.log" 2>&1 ||
      { cat "build/$name.setup.log" >&2; return 1; }
  fi
  ninja -C "build/$name" >"build/$name.build.log" 2>&1 ||
    { tail -n 60 "build/$name.build.log" >&2; return 1; }
}
