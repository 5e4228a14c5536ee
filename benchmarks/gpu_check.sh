#!/usr/bin/env bash
# The GPU checks of one short device session, in order of importance; results under $1.
#
#   NPS_DATA=/path/to/data bash benchmarks/gpu_check.sh OUT [speed] [tests] [bench]
#
# speed: the speed figures first, while nothing else runs (launch-bound code is sensitive to
#        a busy CPU): 512² with a 256² hole (with PatchMatch and a profile), 2048² and 4096²
#        with proportional holes, 4096x2732 with the same hole, and the CPU path.
# tests: the suite, CUDA cases first; one CPU thread per xdist worker (16 workers with 16
#        threads each starved the machine in the first sessions) and a per-test time limit,
#        so a hung test fails instead of stopping the run before pytest prints its summary.
# bench: the quick suite on CUDA (nps and Telea; PatchMatch takes minutes per photo).
set -u
out=${1:?usage: gpu_check.sh OUT [speed] [tests] [bench]}
shift
steps=${*:-speed tests bench}
mkdir -p "$out"
speed="python3 -m neural_patch_synth.bench.speed --device cuda --warmup 1"
for step in $steps; do
  echo "=== $(date +%T) $step"
  case $step in
    speed)
      $speed --patchmatch --json "$out/speed-512.json" --profile "$out/profile-512.txt"
      $speed --photo 2048x2048 --size 1024 --json "$out/speed-2048.json"
      $speed --photo 4096x4096 --size 2048 --json "$out/speed-4096.json"
      $speed --photo 4096x2732 --json "$out/speed-4096x2732.json"
      python3 -m neural_patch_synth.bench.speed --device cpu --warmup 1 --json "$out/speed-512-cpu.json" ;;
    tests)
      export OMP_NUM_THREADS=1
      python3 -m pytest -q -p no:cacheprovider -n 8 --timeout 120 -rfEs -k cuda > "$out/tests-cuda.txt" 2>&1
      tail -3 "$out/tests-cuda.txt"
      python3 -m pytest -q -p no:cacheprovider -n 8 --timeout 120 -rfE > "$out/tests.txt" 2>&1
      tail -3 "$out/tests.txt"
      unset OMP_NUM_THREADS ;;
    bench)
      python3 -m neural_patch_synth.cli bench --suite quick --out "$out/quick" --methods nps telea \
        --device cuda -q && head -3 "$out/quick/summary.md" ;;
    *) echo "unknown step $step" >&2; exit 2 ;;
  esac
done
