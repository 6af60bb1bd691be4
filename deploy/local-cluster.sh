#!/usr/bin/env bash
# Starts an expert-parallel MoELoRA run as four JVMs on this machine (127.0.0.1): a coordinator,
# one router and two expert nodes, each joining the same Pekko Cluster and sending tensors over
# Aeron UDP. Extra arguments are passed to every node (e.g. --set train.steps=50).
# Logs: runs/<run.name>/nodes/*.log; the coordinator prints progress and the evaluation.
set -euo pipefail
cd "$(dirname "$0")/.."
export MOELORA_JAVA_OPTS="${MOELORA_JAVA_OPTS:--Xmx2g}"
name="cluster-$(date +%Y%m%d-%H%M%S)"
logs="runs/$name/nodes"
mkdir -p "$logs"
common=(--set adapter.type=moelora --set run.name="$name" --set runtime.routers=1 --set runtime.expert-nodes=2
        --set 'cluster.seed-nodes=["pekko://moelora@127.0.0.1:2551"]' "$@")
./moelora --version > /dev/null   # build once before the nodes start in parallel
./moelora node --role router "${common[@]}" --set cluster.port=2552 --set cluster.data-port=40201 > "$logs/router.log" 2>&1 &
./moelora node --role expert "${common[@]}" --set cluster.port=2553 --set cluster.data-port=40202 > "$logs/expert-1.log" 2>&1 &
./moelora node --role expert "${common[@]}" --set cluster.port=2554 --set cluster.data-port=40203 > "$logs/expert-2.log" 2>&1 &
trap 'kill $(jobs -p) 2>/dev/null || true' EXIT
./moelora node --role coordinator "${common[@]}" --set cluster.port=2551
wait
