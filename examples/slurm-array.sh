#!/bin/bash
# One sweep split over a Slurm job array: submit with `sbatch examples/slurm-array.sh`. Each
# task runs the same command with --shard auto, which reads its shard from SLURM_ARRAY_TASK_ID
# (counted from SLURM_ARRAY_TASK_MIN, in SLURM_ARRAY_TASK_STEP steps) and the count from
# SLURM_ARRAY_TASK_COUNT. One --seed for all tasks makes the shards disjoint and complete.
# Tasks need root to open the NIC (here through sudo); xdpscan then drops to `nobody` itself.
#
# Replace the targets, ports, interface and rate with yours; the addresses below are RFC 2544's
# benchmarking range, which is only meant for labs.
#SBATCH --job-name=xdpscan-sweep
#SBATCH --array=1-8
#SBATCH --exclusive
#SBATCH --output=xdpscan-%A_%a.log
set -euo pipefail

out="${RESULTS_DIR:-$PWD/results}"
mkdir -p "$out"
shard="${SLURM_ARRAY_TASK_ID}"
exec sudo -E xdpscan 198.18.0.0/15 -p 22,80,443 \
    --seed 4242 --shard auto \
    -i "${SCAN_IF:-eth1}" --rate 1M \
    -oJ "$out/shard-$shard.ndjson" \
    -m "$out/shard-$shard.meta.json" \
    --resume-file "$out/shard-$shard.resume.json"
