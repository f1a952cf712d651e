#!/usr/bin/env bash
# Make sure the Debian packages Lunxun needs are installed.
#   scripts/system-deps.sh demo   what the product needs to run
#   scripts/system-deps.sh test   that, plus what the test suite drives (browser, PDF tools, PostgreSQL)
# As root, missing packages are installed with apt-get; otherwise the exact command is printed.
set -euo pipefail

profile=${1:-demo}
packages=(
  ffmpeg                # video probing and transcoding
  fonts-noto-cjk        # Chinese text in pages, certificates and the lecture clip of the video tests and bench
  fonts-hanazono        # certificates: the rare CJK Extension B-F name characters Noto lacks
  libharfbuzz-subset0   # without it WeasyPrint silently subsets fonts in pure Python, 10-50x slower
  libpango-1.0-0 libpangoft2-1.0-0  # WeasyPrint's text layout
  gettext               # compiles the translations (msgfmt)
  nginx libnginx-mod-rtmp  # live lectures: the RTMP server, live HLS ladder, recording (docs/live.md)
)
if [ "$profile" = bench ]; then
  packages+=(
    wrk                 # HTTP load generator for the progress-report benchmark
    postgresql          # benchmarks run on SQLite and on PostgreSQL
  )
fi
if [ "$profile" = test ]; then
  packages+=(
    chromium            # the real browser the end-to-end tests drive through Playwright
    poppler-utils       # pdftotext / pdffonts read certificates back
    zbar-tools          # zbarimg reads QR codes back
    postgresql          # the suite runs a second time on PostgreSQL
    redis-server        # the scale-profile run: cache and RQ task queue
  )
fi

missing=()
for pkg in "${packages[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
  [ "$status" = "install ok installed" ] || missing+=("$pkg")
done
# hls.js (the player) comes from the npm registry; any npm on PATH will do.
if ! command -v npm >/dev/null 2>&1; then
  missing+=(npm)
fi
# A Debian python3 without ensurepip cannot create the virtual environment.
if ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
  missing+=(python3-venv)
fi

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -eq 0 ]; then
  echo "Installing system packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
else
  echo "Lunxun needs these Debian packages, which are not installed:" >&2
  echo "    sudo apt-get install -y ${missing[*]}" >&2
  echo "Run that command (or run make as root), then run make again." >&2
  exit 1
fi
