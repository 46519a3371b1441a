#!/bin/sh
# Builds disque-server for packaging and installs it into a staging directory: the build
# stage of docker/Dockerfile, and something CI can run on the host.
#
#   docker/build.sh SOURCE_DIR STAGING_DIR [extra cmake configure arguments...]
#
# It configures SOURCE_DIR in its own build directory (no tests, no benchmarks), builds,
# and runs `DESTDIR=STAGING_DIR cmake --install BUILD_DIR --prefix /usr`, so that
# STAGING_DIR holds the installed tree: usr/bin/disque-server,
# usr/share/man/man1/disque-server.1, etc/disque/disque.conf,
# usr/lib/systemd/system/disque-server.service (whatever CMakeLists.txt's install rules
# lay out). The build packages (Debian: cmake make g++ pkg-config libasio-dev
# libspdlog-dev libfmt-dev libcli11-dev) must already be installed: installing them is
# the Dockerfile's job (or the Makefile's `deps`), not this script's.
#
# Environment:
#   BUILD_DIR   the CMake build directory (default: SOURCE_DIR/build-release); reused if
#               it exists, so a second run only rebuilds what changed
#   BUILD_TYPE  CMAKE_BUILD_TYPE (default: RelWithDebInfo, the optimization level the test
#               suite and the benchmarks run; the debug info makes core dumps readable)
#   JOBS        parallel build jobs (default: the number of cores)
set -eu

usage() {
  echo "usage: $0 SOURCE_DIR STAGING_DIR [extra cmake configure arguments...]" >&2
  exit 2
}

[ $# -ge 2 ] || usage
source_dir=$1
staging_dir=$2
shift 2

if ! command -v cmake >/dev/null 2>&1; then
  echo "build.sh: error: cmake is not installed (Debian: apt-get install cmake make g++" \
       "pkg-config libasio-dev libspdlog-dev libfmt-dev libcli11-dev)" >&2
  exit 1
fi
if [ ! -f "$source_dir/CMakeLists.txt" ]; then
  echo "build.sh: error: $source_dir has no CMakeLists.txt (the first argument is the source tree)" >&2
  exit 1
fi

# Absolute paths: DESTDIR and the build directory must not depend on the directory
# cmake runs from.
source_dir=$(cd "$source_dir" && pwd)
mkdir -p "$staging_dir"
staging_dir=$(cd "$staging_dir" && pwd)
build_dir=${BUILD_DIR:-$source_dir/build-release}
mkdir -p "$build_dir"
build_dir=$(cd "$build_dir" && pwd)
build_type=${BUILD_TYPE:-RelWithDebInfo}
jobs=${JOBS:-$(nproc 2>/dev/null || echo 2)}

# CMAKE_INSTALL_PREFIX=/usr at configure time as well as at install time: paths computed
# when configuring (GNUInstallDirs' FULL_ variables, the systemd unit's ExecStart) then
# agree with where `cmake --install --prefix /usr` puts the files.
echo "build.sh: configuring $source_dir in $build_dir ($build_type)"
cmake -S "$source_dir" -B "$build_dir" \
  -DCMAKE_BUILD_TYPE="$build_type" \
  -DCMAKE_INSTALL_PREFIX=/usr \
  -DDISQUE_BUILD_TESTS=OFF \
  -DDISQUE_BUILD_BENCH=OFF \
  "$@"

echo "build.sh: building with $jobs jobs"
cmake --build "$build_dir" -j "$jobs"

echo "build.sh: installing into $staging_dir"
DESTDIR=$staging_dir cmake --install "$build_dir" --prefix /usr

if [ ! -x "$staging_dir/usr/bin/disque-server" ]; then
  echo "build.sh: error: cmake --install did not install $staging_dir/usr/bin/disque-server" >&2
  exit 1
fi
echo "build.sh: done: $staging_dir/usr/bin/disque-server"
