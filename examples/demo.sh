#!/usr/bin/env bash
# `make demo`: the main job on the embedded defaults, with no cloud account and no services.
# Pools and deployments from examples/demo.yaml; runs scheduled now and a few seconds ahead; the local function
# (`push-pool dispatch`, what the timer trigger does) submits them as local processes and follows them up.
set -euo pipefail
cd "$(dirname "$0")"
export PUSH_POOL_HOME="${PUSH_POOL_HOME:-$(mktemp -d -t push-pools-demo-XXXXXX)}"
export COLUMNS="${COLUMNS:-150}"

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run_id() { push-pool run "$@" --output json | python3 -c 'import json, sys; print(json.load(sys.stdin)["id"])'; }

step "The embedded store lives in $PUSH_POOL_HOME"
push-pool apply demo.yaml
push-pool ls

step "What a run of 'compute' would execute (push-pool preview: renders, touches nothing)"
push-pool preview local --deployment compute

step "Schedule runs: three now, one in 8 seconds, and two 'report' runs"
hello=$(run_id hello)
flaky=$(run_id flaky)
long_job=$(run_id long-job)
run_id compute --in 8s >/dev/null
compute_due=$(( $(date +%s) + 8 ))
run_id report >/dev/null  # no report_date: the pool's template requires one, so this run will crash
if ! push-pool run report --job-variables '{"report_date": "yesterday"}'; then
  echo "(refused at once: 'yesterday' is not a YYYY-MM-DD date)"
fi
push-pool runs ls

step "Tick 1: submit the due runs (the report without its date crashes, with the reason)"
push-pool dispatch
sleep 1

step "Tick 2: read the processes (exit 0 → COMPLETED, non-zero → CRASHED, alive → RUNNING)"
push-pool dispatch
push-pool runs ls

step "A run's own output (push-pool runs logs), and a crash's reason with the last lines of its output"
push-pool runs logs "$hello"
push-pool runs inspect "$flaky"

step "Cancel the long job while it runs; tick 3 stops it"
push-pool runs cancel "$long_job"
push-pool dispatch

step "Tick 4: 'compute' is due now"
sleep $(( compute_due - $(date +%s) > 0 ? compute_due - $(date +%s) : 0 ))
push-pool dispatch
sleep 1

step "Tick 5: it finished"
push-pool dispatch
push-pool runs ls

step "The long job's history, and the pool as the executor left it"
push-pool runs inspect "$long_job"
push-pool inspect local
