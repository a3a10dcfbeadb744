#!/usr/bin/env bash
# Installs what building OtelMon needs on Debian 12 (as root), and with --test what the tests
# need too. Installs only what is missing; never removes anything.
set -euo pipefail

build_pkgs=(gcc meson ninja-build pkg-config protobuf-c-compiler libprotobuf-c-dev libgrpc-dev
            libuv1-dev libyaml-dev zlib1g-dev libzstd-dev libhttp-parser-dev libjansson-dev
            libcurl4-openssl-dev libssl-dev)
# PCRE2: the regexes of processors (attributes, resource, filter)
build_pkgs+=(libpcre2-dev)
# clang + its runtime for libFuzzer and the sanitizers; node/npm for the OTel JS SDK tests.
test_pkgs=(clang libclang-rt-14-dev python3 valgrind openssl)
# Prometheus remote-write bodies are snappy-compressed (issue 10).
build_pkgs+=(libsnappy-dev)
# A real Prometheus (2.42, with promtool) for the Prometheus exporters' tests (issue 10).
test_pkgs+=(prometheus)
# libcrypt (libxcrypt): bcrypt, SHA-crypt and yescrypt for basicauth's htpasswd (issue 13);
# Apache's htpasswd makes the hashes its tests check.
build_pkgs+=(libcrypt-dev)
test_pkgs+=(apache2-utils)
# Headless Chromium loads the zpages extension's pages in its test (issue 13).
test_pkgs+=(chromium)
# libdeflate: whole-buffer gzip for the exporters and the OTLP receiver (issue 14).
build_pkgs+=(libdeflate-dev)
# ISA-L's igzip: the exporters' adaptive default gzip on data it compresses within 5% of zlib 6
# at a quarter of libdeflate's CPU (issue 14; loaded on first use: deploy/make-rootfs copies
# libisal2 into the image as it does libcurl).
build_pkgs+=(libisal-dev)
# nghttp2: HTTP/2 for the HTTP server's gRPC methods (src/h2_session.c), and the minimal
# server of bench/grpc_floor.c measured against gRPC's C core (issue 14).
build_pkgs+=(libnghttp2-dev)
# A real SMTP server (aiosmtpd, run by Debian's /usr/bin/python3) for the mail client's tests.
test_pkgs+=(python3-aiosmtpd)

# The alarmstore exporter (issue 11) stores runs in SQLite or MariaDB; its tests read SQLite
# with the sqlite3 CLI and start their own MariaDB server.
build_pkgs+=(libsqlite3-dev)
build_pkgs+=(libmariadb-dev)
test_pkgs+=(sqlite3)
test_pkgs+=(mariadb-server)
# The deploy/ stack's compose file is checked with Debian's docker-compose (`config`: no engine
# is needed to parse and resolve it).
test_pkgs+=(docker-compose)

want=("${build_pkgs[@]}")
if [[ "${1:-}" == "--test" ]]; then
  want+=("${test_pkgs[@]}")
  command -v node >/dev/null && command -v npm >/dev/null || want+=(nodejs npm)
fi

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}"
  SUDO=""
  [[ $(id -u) -eq 0 ]] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
