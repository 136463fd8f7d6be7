#!/usr/bin/env bash
# One command, on a machine with CuPy and a CUDA GPU, from a checkout, without network:
#
#     scripts/gpu-check.sh [REPORT.md]          (default: docs/gpu-report.md)
#
#   1. environment: the GPU (nvidia-smi), CuPy, CUDA, NumPy, and which optional test packages
#      import (a missing one skips what needs it, and the report says so)
#   2. tests: python -m pytest -m "not network" (every test runs on each backend, cupy included)
#   3. parity: python -m xnn parity numpy cupy, chapter and deep models, float64 and float32
#   4. fused kernels: the cupy tests and a float64 parity run again with XNN_CUPY_FUSED=1
#   5. benchmarks: python -m xnn bench, when xnn/bench exists; then again with the fused
#      kernels when stage 4 passed
#
# Each stage has a time limit and the whole run stays under 9 minutes. A failed stage is
# reported and the next one runs; the exit status is 1 when any stage failed, else 0. The
# project runs from this working tree (PYTHONPATH=$PWD): nothing is installed or downloaded.
#
# Knobs (environment variables):
#   PYTHON=python3                          the interpreter
#   XNN_GPU_CHECK_BACKENDS="numpy cupy"     the parity pair; "numpy array_api_strict" dry-runs
#                                           everything but the GPU parts on a CPU-only machine
#   XNN_GPU_CHECK_BENCH_ARGS="--quick"      arguments for the benchmarks ("" for the full run)
#   XNN_GPU_CHECK_PARITY_STEPS=50           optimizer steps per parity run
#   XNN_GPU_CHECK_BUDGET=520                seconds for all stages together
#   PYTEST_ADDOPTS="-k cupy"                (read by pytest) run only the cupy-parametrized tests
set -u -o pipefail

cd "$(dirname "$0")/.." || exit 1
ROOT=$PWD
REPORT=${1:-docs/gpu-report.md}
PY=${PYTHON:-python3}
read -r -a PAIR <<<"${XNN_GPU_CHECK_BACKENDS:-numpy cupy}"
BENCH_ARGS=${XNN_GPU_CHECK_BENCH_ARGS---quick}
STEPS=${XNN_GPU_CHECK_PARITY_STEPS:-50}
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
export CUPY_TF32=0          # TF32 matmuls (~1e-3 relative) would fail float32 parity, rightly
export PYTHONDONTWRITEBYTECODE=1
DEADLINE=${XNN_GPU_CHECK_BUDGET:-520}  # seconds for all stages (+5 s kill grace, the report: < 9 min)
LOGS=$(mktemp -d "${TMPDIR:-/tmp}/xnn-gpu-check.XXXXXX") || exit 1
trap 'rm -rf "$LOGS"' EXIT

NAMES=() RESULTS=() TIMES=() NOTES=() COMMANDS=() FAILED=0 STAGE_RC=0

say() { printf '[gpu-check %3ds] %s\n' "$SECONDS" "$*" >&2; }

# quoted WORD...: the words as one shell-quoted command line, for the report
quoted() { local IFS=' '; printf '%s' "$(printf '%q ' "$@")" | sed 's/ $//'; }

# record NAME RESULT SECONDS NOTE COMMAND: one row of the summary
record() {
    NAMES+=("$1") RESULTS+=("$2") TIMES+=("$3") NOTES+=("$4") COMMANDS+=("$5")
    case $2 in passed | skipped) ;; *) FAILED=1 ;; esac
    say "$1: $2${4:+ ($4)}"
}

# stage NAME LIMIT COMMAND...: run COMMAND under `timeout`, output to $LOGS/NAME.{out,err}
stage() {
    local name=$1 limit=$2 left start rc command
    shift 2
    command=$(quoted "$@")
    left=$((DEADLINE - SECONDS))
    if ((left < 15)); then
        STAGE_RC=skipped
        record "$name" "TIMED OUT" 0 "not started: the time budget is spent" "$command"
        return 0
    fi
    ((limit > left)) && limit=$left
    say "$name: running (limit ${limit}s): $command"
    start=$SECONDS
    timeout --kill-after=5 "$limit" "$@" >"$LOGS/$name.out" 2>"$LOGS/$name.err"
    rc=$?
    STAGE_RC=$rc
    case $rc in
        0) record "$name" "passed" $((SECONDS - start)) "" "$command" ;;
        124 | 137) record "$name" "TIMED OUT" $((SECONDS - start)) "after ${limit}s" "$command" ;;
        *) record "$name" "FAILED" $((SECONDS - start)) "exit status $rc" "$command" ;;
    esac
}

# importable MODULE: whether $PY can import MODULE
importable() { "$PY" -c "import $1" >/dev/null 2>&1; }

# xnn_command WORD: how to run `xnn WORD` from this tree (python -m xnn once __main__ exists)
xnn_command() {
    if [[ -f xnn/__main__.py ]]; then
        XNN_CMD=("$PY" -m xnn "$1")
    else
        XNN_CMD=("$PY" -c "import sys; from xnn.$1 import main; sys.exit(main(sys.argv[1:]))")
    fi
}

# -- 1. environment ------------------------------------------------------------------------
environment() {
    local start=$SECONDS note="" name reason
    {
        echo "| what | version |"
        echo "|---|---|"
        timeout 60 "$PY" - <<'EOF' || echo "| (versions) | the version probe failed |"
import importlib
import platform


def version(module):
    try:
        return getattr(importlib.import_module(module), "__version__", "installed")
    except Exception as exc:  # any import failure is a fact for the report
        return f"not importable ({type(exc).__name__})"


print(f"| Python | {platform.python_version()} ({platform.machine()}) |")
for module in ("numpy", "cupy", "array_api_strict", "array_api_compat", "hypothesis", "pytest"):
    print(f"| {module} | {version(module)} |")
try:
    import cupy

    runtime = cupy.cuda.runtime
    props = runtime.getDeviceProperties(0)
    name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
    for label, number in (("CUDA runtime", runtime.runtimeGetVersion()),
                          ("CUDA driver API", runtime.driverGetVersion())):
        print(f"| {label} | {number // 1000}.{number % 1000 // 10} |")
    print(f"| CUDA device 0 | {name}, compute capability {props['major']}.{props['minor']}, "
          f"{props['totalGlobalMem'] / 2**30:.1f} GiB |")
except Exception as exc:
    print(f"| CUDA | not usable through CuPy ({type(exc).__name__}: {str(exc)[:120]}) |")
EOF
        echo
        echo '```text'
        if command -v nvidia-smi >/dev/null 2>&1; then
            timeout 30 nvidia-smi --query-gpu=name,driver_version,memory.total,compute_cap \
                --format=csv 2>&1 || echo "nvidia-smi failed"
        else
            echo "nvidia-smi: not found"
        fi
        echo '```'
    } >"$LOGS/environment.md"
    for name in "${PAIR[@]}"; do
        reason=$(timeout 60 "$PY" -c "from xnn.backends import get_backend; get_backend('$name')" \
            2>&1 | tail -n 1) || note+="backend $name unavailable: $reason; "
    done
    if [[ -n $note ]]; then
        record "environment" "FAILED" $((SECONDS - start)) "${note%; }" "probe"
    else
        record "environment" "passed" $((SECONDS - start)) "backends: ${PAIR[*]}" "probe"
    fi
}

# -- 2. tests -----------------------------------------------------------------------------
tests() {
    local args=(-m "not network" -q -rs) skipped=() module file
    if ! importable pytest; then
        record "tests" "FAILED" 0 "pytest is not installed" "$PY -m pytest"
        return
    fi
    for module in hypothesis array_api_compat; do
        importable "$module" && continue
        for file in $(grep -lE "^\s*(import|from)\s+$module\b" tests/*.py 2>/dev/null); do
            args+=(--ignore "$file")
        done
        skipped+=("$module missing: its test files ignored")
    done
    if ! importable array_api_strict; then
        args+=(-k cupy)
        skipped+=("array_api_strict missing: only the cupy tests (-k cupy)")
    fi
    stage "tests" 240 "$PY" -m pytest "${args[@]}"
    if ((${#skipped[@]})); then
        local joined
        joined=$(IFS=';'; echo "${skipped[*]}")
        NOTES[-1]="${NOTES[-1]:+${NOTES[-1]}; }${joined//;/; }"
    fi
    local summary
    summary=$(grep -E '(passed|failed|error|skipped|deselected)' "$LOGS/tests.out" | tail -n 1)
    [[ -n $summary ]] && NOTES[-1]="${NOTES[-1]:+${NOTES[-1]}; }$summary"
}

# -- 3. parity ----------------------------------------------------------------------------
parity() {
    local model dtype name verdict
    xnn_command parity
    for model in chapter deep; do
        for dtype in float64 float32; do
            name="parity-$model-$dtype"
            stage "$name" 60 "${XNN_CMD[@]}" "${PAIR[@]}" --model "$model" --dtype "$dtype" \
                --steps "$STEPS" --json "$LOGS/$name.json"
            case $STAGE_RC in
                0) verdict=$(worst_differences "$LOGS/$name.json") ;;
                1) verdict="$(grep -m 1 '^DIVERGED' "$LOGS/$name.out"); $(worst_differences \
                    "$LOGS/$name.json")" ;;
                3) verdict="backend unavailable: $(tail -n 1 "$LOGS/$name.err")" ;;
                skipped) verdict="" ;;
                *) verdict=$(tail -n 1 "$LOGS/$name.err") ;;
            esac
            [[ -n $verdict ]] && NOTES[-1]="${NOTES[-1]:+${NOTES[-1]}; }$verdict"
        done
    done
}

# worst_differences JSON: the largest parameter and loss differences of a parity report
worst_differences() {
    [[ -s $1 ]] || return 0
    "$PY" - "$1" <<'EOF' 2>/dev/null
import json
import sys

report = json.load(open(sys.argv[1]))
for comparison in report["comparisons"]:
    worst = max(comparison["params"], key=lambda d: float(d["max_rel"]))
    loss = max(float(s["loss_rel"]) for s in comparison["steps"][1:])
    print(f"{comparison['backend']}: worst parameter {worst['name']} {float(worst['max_rel']):.1e}"
          f" relative at step {worst['worst_step']}, worst loss {loss:.1e} relative")
EOF
}

# -- 4. fused kernels ---------------------------------------------------------------------
FUSED_OK=0
fused() {
    if [[ ! -f xnn/cupy_kernels.py ]]; then
        record "fused" "skipped" 0 "xnn/cupy_kernels.py does not exist in this checkout" "-"
        return
    fi
    stage "fused-tests" 120 env XNN_CUPY_FUSED=1 "$PY" -m pytest -m "not network" -q -k cupy
    local ok=$STAGE_RC summary
    summary=$(grep -E '(passed|failed|error|skipped|deselected)' "$LOGS/fused-tests.out" |
        tail -n 1)
    [[ -n $summary ]] && NOTES[-1]="${NOTES[-1]:+${NOTES[-1]}; }$summary"
    xnn_command parity
    stage "fused-parity" 60 env XNN_CUPY_FUSED=1 "${XNN_CMD[@]}" "${PAIR[@]}" --model deep \
        --dtype float64 --steps "$STEPS" --json "$LOGS/fused-parity.json"
    [[ $STAGE_RC == 0 ]] && NOTES[-1]=$(worst_differences "$LOGS/fused-parity.json")
    [[ $ok == 0 && $STAGE_RC == 0 ]] && FUSED_OK=1
}

# -- 5. benchmarks ------------------------------------------------------------------------
benchmarks() {
    if [[ ! -e xnn/bench.py && ! -d xnn/bench ]]; then
        record "benchmarks" "skipped" 0 "xnn/bench does not exist in this checkout" "-"
        return
    fi
    xnn_command bench
    local extra=()
    read -r -a extra <<<"$BENCH_ARGS"
    stage "benchmarks" 150 "${XNN_CMD[@]}" ${extra[@]+"${extra[@]}"}
    if ((FUSED_OK)); then
        stage "benchmarks-fused" 120 env XNN_CUPY_FUSED=1 "${XNN_CMD[@]}" \
            ${extra[@]+"${extra[@]}"} --no-memory
    else
        record "benchmarks-fused" "skipped" 0 "the fused kernels did not pass stage 4" "-"
    fi
}

# -- the report ---------------------------------------------------------------------------
# fenced TITLE FILE LINES: the last LINES lines of FILE as a folded text block (if any)
fenced() {
    [[ -s $2 ]] || return 0
    printf '<details><summary>%s</summary>\n\n```text\n' "$1"
    tail -n "$3" "$2"
    printf '```\n\n</details>\n\n'
}

# test_output FILE: pytest's output without its SKIPPED lines, then each skip reason once
test_output() {
    [[ -s $1 ]] || return 0
    printf '<details><summary>pytest output</summary>\n\n```text\n'
    grep -v '^SKIPPED' "$1" | tail -n 60
    printf '```\n\n</details>\n\n'
    if grep -q '^SKIPPED' "$1"; then
        echo "Skip reasons (tests skipped, reason):"
        echo
        sed -nE 's/^SKIPPED \[([0-9]+)\] [^:]+(:[0-9]+)?: (.*)$/\1 \3/p' "$1" |
            awk '{n = $1; $1 = ""; sum[substr($0, 2)] += n} END {for (r in sum) print sum[r], r}' |
            sort -rn | sed -E 's/^([0-9]+) (.*)$/- \1: \2/'
        echo
    fi
}

write_report() {
    local i name verdict="all stages passed"
    ((FAILED)) && verdict="SOME STAGES FAILED"
    mkdir -p "$(dirname "$REPORT")"
    {
        echo "# GPU check: $verdict"
        echo
        echo "\`scripts/gpu-check.sh\` on $(hostname) at $(date -u '+%Y-%m-%d %H:%M UTC'), commit" \
            "\`$(git rev-parse --short HEAD 2>/dev/null || echo unknown)\`$(git diff --quiet \
            2>/dev/null || echo ' (with uncommitted changes)'); backends ${PAIR[*]};" \
            "CUPY_TF32=$CUPY_TF32; ${SECONDS}s in all."
        echo
        echo "| stage | result | seconds | notes |"
        echo "|---|---|---|---|"
        for i in "${!NAMES[@]}"; do
            echo "| ${NAMES[$i]} | ${RESULTS[$i]} | ${TIMES[$i]} | ${NOTES[$i]//|/\\|} |"
        done
        echo
        echo "## Environment"
        echo
        cat "$LOGS/environment.md"
        for i in "${!NAMES[@]}"; do
            name=${NAMES[$i]}
            [[ $name == environment ]] && continue
            echo
            echo "## $name: ${RESULTS[$i]}"
            echo
            echo "\`${COMMANDS[$i]//$LOGS\//}\`"
            echo
            if [[ $name == benchmarks* && -s $LOGS/$name.out && ${RESULTS[$i]} == passed ]]; then
                cat "$LOGS/$name.out"
                echo
            elif [[ $name == tests ]]; then
                test_output "$LOGS/$name.out"
            else
                fenced "output" "$LOGS/$name.out" 100
            fi
            fenced "standard error (last 30 lines)" "$LOGS/$name.err" 30
        done
    } >"$REPORT"
    say "report written to $REPORT"
}

say "backends ${PAIR[*]}; report $REPORT; python $("$PY" -c 'import sys; print(sys.version.split()[0])' 2>&1)"
environment
tests
parity
fused
benchmarks
write_report
exit "$FAILED"
