#!/usr/bin/env bash
# Every benchmark, one after the other, each printing its figures beside the targets
# (../shared/targets.md). Record the output in bench/RESULTS.md with the machine and date.
#   bash bench/run.sh 2>&1 | tee /tmp/bench.txt
set -euo pipefail
cd "$(dirname "$0")/.."
py=.venv/bin/python
echo "# $(date -u '+%Y-%m-%d %H:%M UTC') — $(uname -n), $(nproc) cores, $(uname -m), load $(cut -d' ' -f1-3 /proc/loadavg)"
for bench in bench_hub bench_tail bench_screens bench_hostile bench_printer bench_kiosk bench_display bench_outage bench_ics bench_stats bench_central bench_booking bench_phone; do
  echo
  echo "## $bench"
  SDL_VIDEODRIVER=offscreen KIVY_NO_ARGS=1 KIVY_NO_CONSOLELOG=1 "$py" "bench/$bench.py"
done
