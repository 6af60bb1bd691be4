#!/usr/bin/env bash
# Runs the decoder training step of `./moelora bench --decoder` and of bench/decoder_step.py
# (PyTorch) alternately in one sitting, Java first, so that both see the same machine; prints each
# round's tokens/s and, per adapter family, the medians, the ratio Java / PyTorch and both splits
# (those of each side's median round).
# Measured, not asserted.
#
#   bench/compare-pytorch.sh [--adapter lora|tied-lora|moelora|all] [--rounds 3] [--steps 10] [--warmup 3]
#                            [--blas nd4j|system] [--openblas-threads 1]
#
# --blas nd4j (the default) preloads into the Python process the OpenBLAS 0.3.19 that ND4J itself
# uses (from its Maven jar, extracted under cluster/target/), because Debian's python3-torch calls
# the system's libblas.so.3, which on a machine without an OpenBLAS package is the reference BLAS
# (a few GFLOP/s); --blas system leaves it alone. OPENBLAS_NUM_THREADS is --openblas-threads (1, so
# that OpenBLAS starts no threads beside torch's two). Needs the cluster jar built
# (`mvn -pl cluster -am package -DskipTests`) and /usr/bin/python3 with torch.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
adapter=all rounds=3 steps=10 warmup=3 blas=nd4j threads=1
while [[ $# -gt 0 ]]; do
  case "$1" in
    --adapter) adapter="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    --steps) steps="$2"; shift 2 ;;
    --warmup) warmup="$2"; shift 2 ;;
    --blas) blas="$2"; shift 2 ;;
    --openblas-threads) threads="$2"; shift 2 ;;
    -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "compare-pytorch.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
  esac
done
case "$adapter" in
  all) families=(lora tied-lora moelora) ;;
  lora|tied-lora|moelora) families=("$adapter") ;;
  *) echo "compare-pytorch.sh: --adapter must be one of lora, tied-lora, moelora, all; got '$adapter'" >&2; exit 2 ;;
esac
[[ "$rounds" =~ ^[1-9][0-9]*$ ]] || { echo "compare-pytorch.sh: --rounds must be a positive integer, got '$rounds'" >&2; exit 2; }
[[ "$blas" == nd4j || "$blas" == system ]] || { echo "compare-pytorch.sh: --blas must be nd4j or system, got '$blas'" >&2; exit 2; }

python_env=(env "OPENBLAS_NUM_THREADS=$threads")
if [[ "$blas" == nd4j ]]; then
  cp_file="$here/cluster/target/classpath.txt"
  [[ -f "$cp_file" ]] || { echo "compare-pytorch.sh: $cp_file is missing; build first: mvn -pl cluster -am package -DskipTests" >&2; exit 2; }
  jar=$(tr ':' '\n' < "$cp_file" | grep -E '/openblas-[^/]*-linux-x86_64\.jar$' | head -1)
  [[ -n "$jar" && -f "$jar" ]] || { echo "compare-pytorch.sh: no ND4J OpenBLAS linux-x86_64 jar on the classpath" >&2; exit 2; }
  lib="$here/cluster/target/pytorch-openblas"
  if [[ ! -f "$lib/libopenblas.so.0" ]]; then
    mkdir -p "$lib"
    (cd "$lib" && unzip -q -o -j "$jar" 'org/bytedeco/openblas/linux-x86_64/*.so*')
  fi
  python_env+=("LD_LIBRARY_PATH=$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "LD_PRELOAD=$lib/libopenblas.so.0")
fi

log="$here/runs/compare-pytorch-$(date +%Y%m%d-%H%M%S)"
mkdir -p "$log"
value() { sed -n "s/^$1=\([0-9.]*\).*/\1/p" "$2" | head -1; }
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print a[int(NR/2)+1]}'; }

echo "load_at_start=$(cut -d' ' -f1-3 /proc/loadavg)  logs: $log"
for f in "${families[@]}"; do
  jt="" pt=""
  for ((r = 1; r <= rounds; r++)); do
    "$here/moelora" bench --decoder --adapter "$f" --steps "$steps" --warmup "$warmup" > "$log/java-$f-$r.txt"
    "${python_env[@]}" /usr/bin/python3 "$here/bench/decoder_step.py" --adapter "$f" --steps "$steps" --warmup "$warmup" > "$log/pytorch-$f-$r.txt"
    j=$(value tokens_per_s "$log/java-$f-$r.txt") p=$(value tokens_per_s "$log/pytorch-$f-$r.txt")
    jt+=" $j" pt+=" $p"
    echo "$f round $r: java $j tokens/s, pytorch $p tokens/s (load $(cut -d' ' -f1 /proc/loadavg))"
  done
  jm=$(echo "$jt" | median) pm=$(echo "$pt" | median)
  # the splits and other figures of the median round of each side
  jl=$(grep -l "^tokens_per_s=$jm\$" "$log"/java-"$f"-*.txt | head -1) pl=$(grep -l "^tokens_per_s=$pm\$" "$log"/pytorch-"$f"-*.txt | head -1)
  jn=$(value trainable_parameters "$jl") pn=$(value trainable_parameters "$pl")
  [[ "$jn" == "$pn" ]] || echo "WARNING: $f trains $jn parameters in Java but $pn in PyTorch: not the same step" >&2
  awk -v f="$f" -v j="$jm" -v p="$pm" -v n="$jn" -v t="$(value tokens_per_step "$jl")" -v gf="$(value gflop_per_step "$jl")" \
      -v jf="$(value forward_ms "$jl")" -v jb="$(value backward_ms "$jl")" -v jo="$(value optimizer_ms "$jl")" \
      -v pf="$(value forward_ms "$pl")" -v pb="$(value backward_ms "$pl")" -v po="$(value optimizer_ms "$pl")" \
      -v js="$(value sgemm_gflop_per_s "$jl")" -v ps="$(value sgemm_gflop_per_s "$pl")" \
      -v jfr="$(value sgemm_fraction "$jl")" -v jh="$(value heap_bytes_per_step "$jl")" \
      -v jloss="$(value loss "$jl")" -v ploss="$(value loss "$pl")" 'BEGIN {
    printf "%s: java %d tokens/s, pytorch %d tokens/s (medians of %s rounds), java/pytorch %.2f; trainable %s; loss %s vs %s\n", f, j, p, '"$rounds"', j / p, n, jloss, ploss
    printf "%s:   java    split forward %s / backward %s / optimizer %s ms, sgemm %s GFLOP/s, fraction %s, heap %s bytes/step\n", f, jf, jb, jo, js, jfr, jh
    printf "%s:   pytorch split forward %s / backward %s / optimizer %s ms, sgemm %s GFLOP/s, fraction %.3f (the Java step'"'"'s %s GFLOP)\n", f, pf, pb, po, ps, gf * p / t / ps, gf
  }'
done
echo "load_at_end=$(cut -d' ' -f1-3 /proc/loadavg)"
grep -h '^blas=' "$log"/pytorch-*.txt | sort -u
grep -h '^machine:' "$log"/java-*.txt | sort -u
grep -h '^machine:' "$log"/pytorch-*.txt | sort -u
