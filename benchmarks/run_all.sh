#!/usr/bin/env bash
# Every benchmark in one command, each beside its baseline measured in the same
# invocation; prints each script's table and collects their last lines (one JSON
# object of figures each) into benchmarks/results.jsonl.
#   bash benchmarks/run_all.sh            (from the repository, after the README's install)
#   SUSTAINED_SECONDS=60 bash benchmarks/run_all.sh   (a shorter sustained-load benchmark)
# Run it on a quiet machine: the broker, the harness and the pipelines share its cores.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-.venv/bin/python}
out=benchmarks/results.jsonl
: > "$out"
for script in bench_dispatch bench_overhead bench_scorer; do
  printf '\n== %s\n' "$script"
  "$python" "benchmarks/$script.py" | tee "/tmp/ppipe-$script.log"
  tail -n 1 "/tmp/ppipe-$script.log" >> "$out"
done
# a container's network cost (needs a Docker engine: `bash scripts/test` starts one)
printf '\n== bench_container\n'
if "$python" -c 'from ppipe_stream.runtime.docker import docker_client; docker_client().close()' 2>/dev/null; then
  "$python" benchmarks/bench_container.py | tee /tmp/ppipe-bench_container.log
  tail -n 1 /tmp/ppipe-bench_container.log >> "$out"
else
  echo "bench_container: no Docker engine reachable (DOCKER_HOST): not measured"
fi
# sustained load per broker: 3 runs of SUSTAINED_SECONDS (600: half an hour in all)
printf '\n== bench_sustained\n'
"$python" benchmarks/bench_sustained.py --seconds "${SUSTAINED_SECONDS:-600}" | tee /tmp/ppipe-bench_sustained.log
tail -n 1 /tmp/ppipe-bench_sustained.log >> "$out"
printf '\nfigures: %s\n' "$out"
