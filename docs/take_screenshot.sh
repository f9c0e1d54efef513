#!/usr/bin/env bash
# Takes docs/screenshot.png: the app explaining the demo clip, in a virtual X display.
#   needs: apt-get install xvfb imagemagick x11-utils, and Qt's system libraries (README.md, What you need)
#   usage: docs/take_screenshot.sh [app options, e.g. --model PATH --backend onnxruntime]
#   WAIT=60 docs/take_screenshot.sh   waits longer before the shot (the model must have loaded)
set -euo pipefail
cd "$(dirname "$0")/.."
screen=${SCREEN_NUMBER:-:98}
Xvfb "$screen" -screen 0 1600x1000x24 >/dev/null 2>&1 &
xvfb=$!
settings=$(mktemp -d)  # fresh settings: the shot shows the defaults, the user's own stay untouched
app=""
trap 'kill $app $xvfb 2>/dev/null || true; rm -rf "$settings"' EXIT
sleep 2
DISPLAY=$screen XDG_CONFIG_HOME=$settings .venv/bin/python run_app.py --source assets/demo/box.mp4 "$@" &
app=$!
sleep "${WAIT:-45}"
window=$(DISPLAY=$screen xwininfo -root -tree | awk '/Live saliency explainer/ && !/ 1x1\+/ {print $1; exit}')
DISPLAY=$screen import -window "${window:-root}" docs/screenshot.png
echo "wrote docs/screenshot.png (window ${window:-root})"
