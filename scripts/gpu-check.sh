#!/usr/bin/env bash
# One command, on a machine with CuPy and a CUDA GPU, from a checkout, without network:
#
#     scripts/gpu-check.sh [--dry-run] [REPORT.md]     (default report: docs/gpu-report.md)
#
# The stages, the most telling first (each has a time limit; a failed one is reported and the
# next one still runs):
#   probe              versions (Python, NumPy, CuPy, CUDA, NVRTC, nvidia-smi), then one tiny
#                      elementwise kernel and one matmul on the GPU with CuPy itself, then
#                      xnn.backends.get_backend for each backend. When CuPy cannot compile or
#                      run kernels (no NVRTC, no cuBLAS, no device), that is one line and every
#                      later stage is skipped with it as the reason.
#   tests              python -m pytest -m "gpu and not network": the cupy-parametrized tests
#                      and the gpu-marked ones (test files importing a missing optional
#                      package are left out, and the report says so)
#   parity-{chapter,deep}-float64   python -m xnn parity numpy cupy ... --dtype float64
#   fused-parity       the deep model's float64 parity again with XNN_CUPY_FUSED=1
#   fused-tests        the tests stage again (same selection, same checks), XNN_CUPY_FUSED=1
#   parity-{chapter,deep}-float32   as above, in float32
#   torch-parity       python -m xnn parity numpy torch:cuda --model deep --dtype float64 (the
#                      PyTorch backend on the GPU; skipped, saying why, without torch)
#   dask-cuda          python -m xnn sweep momentum --seeds 2 --backend cupy on tiny IDX data:
#                      dask-cuda's LocalCUDACluster, one worker per GPU (skipped, saying why,
#                      without dask.distributed or dask-cuda)
#   benchmarks         python -m xnn bench --quick --no-compile, when 60 s of the budget are left
#   benchmarks-fused   the same, --backends cupy --no-torch --no-jax, with XNN_CUPY_FUSED=1, when
#                      both fused stages passed and 30 s are left
#
# The report is rewritten (atomically) before and after every stage, so a run that is killed
# still leaves what it measured. Its title is the verdict: "works" (every stage passed; only
# the benchmarks, torch-parity and dask-cuda may be skipped), "BROKEN: <stages> failed", or "INCOMPLETE"
# (still running, interrupted, or a check skipped for lack of time). By default all stages
# share 390 s and a stage that overruns is killed 5 s after its limit: the whole run, report
# included, ends within 7 minutes. A stage that would start with under 10 s left is skipped
# ("not started: the time budget is spent"). Exit status: 0 for "works", 1 otherwise, 2 for
# bad arguments, 128+N when stopped by signal N (TERM, INT, HUP: the running stage is stopped
# and the report says so).
#
# --dry-run: a rehearsal on any CPU machine: array_api_strict stands in for the GPU (the probe
# runs its kernels on array_api_strict's second device, parity is numpy vs array_api_strict,
# pytest runs -m "not gpu and not network", the benchmarks run on numpy, torch-parity on torch's
# CPU, the sweep on numpy with one worker), with the same stages,
# time accounting and report. XNN_GPU_CHECK_BACKENDS="numpy array_api_strict" does the same.
#
# The project runs from this working tree (PYTHONPATH=$PWD): nothing is installed or
# downloaded. The report's commit comes from $XNN_COMMIT, else git, else the first line of
# .xnn-commit at the repository root (write it with `git describe --always --dirty
# >.xnn-commit` before copying the tree to a machine without .git), else "commit unknown".
#
# Knobs (environment variables):
#   PYTHON=python3                          the interpreter
#   XNN_GPU_CHECK_BACKENDS="numpy cupy"     the parity backends; without cupy: a dry run
#   XNN_GPU_CHECK_BENCH_ARGS="--quick --no-compile"   more arguments for the benchmarks (""
#                                           for the full run, torch.compile included; give
#                                           it the time with XNN_GPU_CHECK_BUDGET)
#   XNN_GPU_CHECK_PARITY_STEPS=50           optimizer steps per parity run
#   XNN_GPU_CHECK_BUDGET=390                seconds for all stages together
#   XNN_GPU_CHECK_MARKS="gpu and not network"   pytest -m for the tests stages ("not network":
#                                           every backend; dry run default "not gpu and not
#                                           network")
#   PYTEST_ADDOPTS="-k kernels"             (read by pytest) narrow the tests stages further
#   XNN_COMMIT=<commit>                     the commit named in the report
set -u -o pipefail

usage() { sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
if ((BASH_VERSINFO[0] < 4)); then
    echo "gpu-check: needs bash 4 or later (this is $BASH_VERSION)" >&2
    exit 2
fi

DRY_RUN=0 REPORT=""
for arg in "$@"; do
    case $arg in
        --dry-run) DRY_RUN=1 ;;
        -h | --help) usage; exit 0 ;;
        -*) echo "gpu-check: unknown option $arg (see --help)" >&2; exit 2 ;;
        *)
            [[ -z $REPORT ]] || { echo "gpu-check: one report path at most" >&2; exit 2; }
            REPORT=$arg
            ;;
    esac
done
[[ -z $REPORT || $REPORT == /* ]] || REPORT=$PWD/$REPORT  # relative to where it was called

cd "$(dirname "$0")/.." || exit 1
ROOT=$(pwd -P)
REPORT=${REPORT:-$ROOT/docs/gpu-report.md}
PY=${PYTHON:-python3}
if ((DRY_RUN)); then
    if [[ ${XNN_GPU_CHECK_BACKENDS:-} == *cupy* ]]; then
        echo "gpu-check: --dry-run runs without cupy; XNN_GPU_CHECK_BACKENDS names it" >&2
        exit 2
    fi
    read -r -a PAIR <<<"${XNN_GPU_CHECK_BACKENDS:-numpy array_api_strict}"
else
    read -r -a PAIR <<<"${XNN_GPU_CHECK_BACKENDS:-numpy cupy}"
fi
if ((${#PAIR[@]} < 2)); then
    echo "gpu-check: XNN_GPU_CHECK_BACKENDS needs two or more backends" >&2
    exit 2
fi
DEVICE=${PAIR[-1]}  # the backend on trial: cupy, or its stand-in in a dry run
if [[ " ${PAIR[*]} " == *" cupy "* ]]; then
    DEVICE=cupy
else
    DRY_RUN=1
fi
if ((DRY_RUN)); then
    MARKS=${XNN_GPU_CHECK_MARKS:-not gpu and not network}
    BENCH_BACKENDS=numpy FUSED_BENCH_BACKENDS=numpy
else
    MARKS=${XNN_GPU_CHECK_MARKS:-gpu and not network}
    BENCH_BACKENDS="" FUSED_BENCH_BACKENDS=cupy
fi
BENCH_ARGS=${XNN_GPU_CHECK_BENCH_ARGS---quick --no-compile}
STEPS=${XNN_GPU_CHECK_PARITY_STEPS:-50}
DEADLINE=${XNN_GPU_CHECK_BUDGET:-390}  # seconds for all stages (+5 s kill grace, the report)
if [[ ! $DEADLINE =~ ^[0-9]+$ || ! $STEPS =~ ^[0-9]+$ ]]; then
    echo "gpu-check: XNN_GPU_CHECK_BUDGET and XNN_GPU_CHECK_PARITY_STEPS must be whole numbers" >&2
    exit 2
fi
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
export CUPY_TF32=0          # TF32 matmuls (~1e-3 relative) would fail float32 parity, rightly
export PYTHONDONTWRITEBYTECODE=1
export XNN_GPU_CHECK_RUNNING=1  # tests/test_gpu_check.py skips itself inside a check
LOGS=$(mktemp -d "${TMPDIR:-/tmp}/xnn-gpu-check.XXXXXX") || exit 1
SCRATCH="$(dirname "$REPORT")/.gpu-check-tmp.$$"  # the report is written here, then renamed
trap 'rm -rf "$LOGS" "$SCRATCH"' EXIT

PLAN=(probe tests parity-chapter-float64 parity-deep-float64 fused-parity fused-tests
    parity-chapter-float32 parity-deep-float32 torch-parity dask-cuda benchmarks
    benchmarks-fused)
OPTIONAL="torch-parity dask-cuda benchmarks benchmarks-fused"  # may be skipped, saying why
declare -A RESULT=() TIME=() NOTE=() COMMAND=()
STATE=running CURRENT="" STAGE_START=0 CHILD="" STAGE_RC=0 BROKEN_DEVICE="" FUSED_OK=0

say() { printf '[gpu-check %3ds] %s\n' "$SECONDS" "$*" >&2; }

# quoted WORD...: the words as one shell-quoted command line, for the report
quoted() { local IFS=' '; printf '%s' "$(printf '%q ' "$@")" | sed 's/ $//'; }

# record NAME RESULT SECONDS NOTE COMMAND: one row of the summary; rewrites the report
record() {
    RESULT[$1]=$2 TIME[$1]=$3 NOTE[$1]=$4 COMMAND[$1]=$5
    say "$1: $2${4:+ ($4)}"
    write_report
}

# note NAME TEXT: add TEXT to NAME's notes (and rewrite the report)
note() {
    [[ -n $2 ]] || return 0
    NOTE[$1]="${NOTE[$1]:+${NOTE[$1]}; }$2"
    write_report
}

# limited LIMIT OUT ERR COMMAND...: COMMAND's status, 124 or 137 when stopped at LIMIT seconds
# (or at the budget's end, if sooner). It runs in the background so that a signal to this
# script stops it at once (see interrupted).
limited() {
    local limit=$1 out=$2 err=$3 left rc
    shift 3
    left=$((DEADLINE - SECONDS))
    ((left < 1)) && return 124
    ((limit > left)) && limit=$left
    timeout --kill-after=5 "$limit" "$@" >"$out" 2>"$err" </dev/null &
    CHILD=$!
    wait "$CHILD"
    rc=$?
    CHILD=""
    return "$rc"
}

# skip_reason: why a stage must not start now ("" when it may)
skip_reason() {
    if [[ -n $BROKEN_DEVICE ]]; then
        echo "the probe failed: ${BROKEN_DEVICE%%:*}"
    elif ((DEADLINE - SECONDS < 10)); then
        echo "not started: the time budget (${DEADLINE}s) is spent"
    fi
}

# stage NAME LIMIT COMMAND...: run COMMAND with limited, output to $LOGS/NAME.{out,err}
stage() {
    local name=$1 limit=$2 start command reason
    shift 2
    command=$(quoted "$@")
    reason=$(skip_reason)
    if [[ -n $reason ]]; then
        STAGE_RC=skipped
        record "$name" "skipped" 0 "$reason" "$command"
        return 0
    fi
    ((limit > DEADLINE - SECONDS)) && limit=$((DEADLINE - SECONDS))
    say "$name: running (limit ${limit}s): $command"
    CURRENT=$name STAGE_START=$SECONDS
    write_report
    start=$SECONDS
    limited "$limit" "$LOGS/$name.out" "$LOGS/$name.err" "$@"
    STAGE_RC=$?
    CURRENT=""
    case $STAGE_RC in
        0) record "$name" "passed" $((SECONDS - start)) "" "$command" ;;
        124 | 137) record "$name" "TIMED OUT" $((SECONDS - start)) "after ${limit}s" "$command" ;;
        *) record "$name" "FAILED" $((SECONDS - start)) "exit status $STAGE_RC" "$command" ;;
    esac
}

# interrupted SIGNAL NUMBER: stop the running command, report, exit 128 + NUMBER
# shellcheck disable=SC2317  # (called by the traps below)
interrupted() {
    trap '' TERM INT HUP
    if [[ -n $CHILD ]]; then
        kill -TERM "$CHILD" 2>/dev/null
        wait "$CHILD" 2>/dev/null
    fi
    STATE="interrupted by SIG$1${CURRENT:+ during $CURRENT}"
    if [[ -n $CURRENT ]]; then
        record "$CURRENT" "INTERRUPTED" $((SECONDS - STAGE_START)) "stopped by SIG$1" \
            "${COMMAND[$CURRENT]:--}"
    else
        write_report
    fi
    exit $((128 + $2))
}
trap 'interrupted TERM 15' TERM
trap 'interrupted INT 2' INT
trap 'interrupted HUP 1' HUP

# joined WORD...: the words joined by "; "
joined() {
    local out="" word
    for word in "$@"; do out+="${out:+; }$word"; done
    printf '%s' "$out"
}

# importable MODULE: whether $PY can import MODULE
importable() { "$PY" -c "import $1" >/dev/null 2>&1; }

# the report's commit: $XNN_COMMIT, git, .xnn-commit, else unknown
commit_line() {
    local commit="" source="" dirty=""
    if [[ -n ${XNN_COMMIT:-} ]]; then
        commit=$XNN_COMMIT source="XNN_COMMIT"
    elif [[ $(git -C "$ROOT" rev-parse --show-toplevel 2>/dev/null) == "$ROOT" ]] &&
        commit=$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null); then
        source=git
        git -C "$ROOT" diff --quiet HEAD -- 2>/dev/null || dirty=" (with uncommitted changes)"
    elif [[ -s $ROOT/.xnn-commit ]]; then
        read -r commit <"$ROOT/.xnn-commit"
        source=".xnn-commit"
    fi
    if [[ -z $commit ]]; then
        echo "commit unknown (no XNN_COMMIT, no .git, no .xnn-commit)"
        return
    fi
    if [[ $commit == *-dirty ]]; then
        commit=${commit%-dirty} dirty=" (with uncommitted changes)"
    fi
    echo "commit \`$commit\`$dirty (from $source)"
}
COMMIT_LINE=$(commit_line)

# -- the probe ------------------------------------------------------------------------------
cat >"$LOGS/versions.py" <<'EOF'
import importlib.metadata as metadata
import platform

distributions = metadata.packages_distributions()  # e.g. cupy -> cupy-cuda13x


def version(module):
    names = distributions.get(module) or [module.replace("_", "-")]
    try:
        found = metadata.version(names[0])
    except metadata.PackageNotFoundError:
        return "not installed"
    return found if names[0] in (module, module.replace("_", "-")) else f"{found} ({names[0]})"


print(f"| Python | {platform.python_version()} ({platform.machine()}) |")
for module in ("numpy", "cupy", "array_api_strict", "hypothesis", "pytest", "torch"):
    print(f"| {module} | {version(module)} |")
if version("cupy") != "not installed":
    try:
        import cupy

        runtime = cupy.cuda.runtime
        for label, number in (("CUDA runtime", runtime.runtimeGetVersion()),
                              ("CUDA driver API", runtime.driverGetVersion())):
            print(f"| {label} | {number // 1000}.{number % 1000 // 10} |")
        try:
            major, minor = cupy.cuda.nvrtc.getVersion()
            print(f"| NVRTC | {major}.{minor} |")
        except Exception as exc:
            message = " ".join(str(exc).split())[:120]
            print(f"| NVRTC | not loadable ({type(exc).__name__}: {message}) |")
        props = runtime.getDeviceProperties(0)
        name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
        print(f"| CUDA device 0 | {name}, compute capability {props['major']}.{props['minor']}, "
              f"{props['totalGlobalMem'] / 2**30:.1f} GiB |")
    except Exception as exc:  # any failure is a fact for the report
        message = " ".join(str(exc).split())[:120]
        print(f"| CUDA | not usable through CuPy ({type(exc).__name__}: {message}) |")
EOF

# Which backends xnn itself can use (xnn.backends.get_backend); exit 1 if any cannot
cat >"$LOGS/backends.py" <<'EOF'
import sys

from xnn.backends import get_backend

unavailable = 0
for name in sys.argv[1:]:
    try:
        get_backend(name)
    except Exception as exc:
        print(f"xnn backend {name} unavailable: {' '.join(str(exc).split())}")
        unavailable += 1
    else:
        print(f"xnn backend {name}: available")
sys.exit(1 if unavailable else 0)
EOF

# One elementwise kernel (with a reduction) and one matmul, with the array library itself.
# Failure: one line on stderr, exit 1.
cat >"$LOGS/device_probe.py" <<'EOF'
import importlib
import sys

name = sys.argv[1]
label = "CuPy" if name == "cupy" else name


def line(exc):
    return f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"


try:
    xp = importlib.import_module(name)
except Exception as exc:
    sys.exit(f"{label} cannot be imported: {line(exc)}")
where, options = "the CPU", {}
try:
    if name == "cupy":
        if xp.cuda.runtime.getDeviceCount() < 1:
            raise RuntimeError("no CUDA device")
        props = xp.cuda.runtime.getDeviceProperties(0)
        where = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
    elif name == "array_api_strict":
        where, options = "array_api_strict's device1", {"device": xp.Device("device1")}
except Exception as exc:
    sys.exit(f"{label} sees no device: {line(exc)}")
step = "an elementwise kernel, sum(x * 2 + 1)"
try:
    x = xp.reshape(xp.arange(6, dtype=xp.float64, **options), (2, 3))
    total = float(xp.sum(x * 2.0 + 1.0))
    step = "a matrix product, x @ x.T"
    corner = float((x @ x.T)[1, 1])
except Exception as exc:
    sys.exit(f"{label} cannot compile/run kernels: {step} raised {line(exc)}")
if (total, corner) != (36.0, 50.0):
    sys.exit(f"{label} computes wrong results: sum(x * 2 + 1) = {total} (expected 36), "
             f"(x @ x.T)[1, 1] = {corner} (expected 50)")
print(f"{label}: an elementwise kernel and a matrix product ran on {where}, right results")
EOF

probe() {
    local start=$SECONDS reason problems=() line rc
    line="$PY versions.py; $PY device_probe.py $DEVICE; $PY backends.py ${PAIR[*]}"
    CURRENT=probe STAGE_START=$SECONDS
    COMMAND[probe]=$line
    write_report
    {
        echo "| what | version |"
        echo "|---|---|"
        limited 60 "$LOGS/versions.out" "$LOGS/versions.err" "$PY" "$LOGS/versions.py"
        cat "$LOGS/versions.out"
        [[ -s $LOGS/versions.out ]] || echo "| (versions) | the version probe failed |"
        echo
        echo '```text'
        if ((DRY_RUN)); then
            echo "dry run: $DEVICE stands in for the GPU; nvidia-smi not asked"
        elif command -v nvidia-smi >/dev/null 2>&1; then
            limited 30 "$LOGS/smi.out" "$LOGS/smi.err" nvidia-smi \
                --query-gpu=name,driver_version,memory.total,compute_cap --format=csv ||
                echo "nvidia-smi failed: $(tail -n 1 "$LOGS/smi.err")"
            cat "$LOGS/smi.out"
        else
            echo "nvidia-smi: not found"
        fi
        echo '```'
    } >"$LOGS/environment.part"
    mv "$LOGS/environment.part" "$LOGS/environment.md"
    limited 90 "$LOGS/probe.out" "$LOGS/device.err" "$PY" "$LOGS/device_probe.py" "$DEVICE"
    rc=$?
    case $rc in
        0) ;;
        124 | 137) BROKEN_DEVICE="the kernel probe of $DEVICE did not finish in time" ;;
        *) BROKEN_DEVICE=$(tail -n 1 "$LOGS/device.err") ;;
    esac
    ((rc)) && BROKEN_DEVICE=${BROKEN_DEVICE:-the kernel probe of $DEVICE failed (exit status $rc)}
    [[ -n $BROKEN_DEVICE ]] && problems+=("$BROKEN_DEVICE")
    cat "$LOGS/versions.err" "$LOGS/device.err" >>"$LOGS/probe.err" 2>/dev/null
    if ! limited 60 "$LOGS/backends.out" "$LOGS/backends.err" "$PY" "$LOGS/backends.py" \
        "${PAIR[@]}"; then
        reason=$(grep -m 1 ' unavailable: ' "$LOGS/backends.out" || tail -n 1 "$LOGS/backends.err")
        reason=${reason:-xnn.backends.get_backend stopped without a word}
        problems+=("$reason")
        BROKEN_DEVICE=${BROKEN_DEVICE:-$reason}
    fi
    cat "$LOGS/backends.out" >>"$LOGS/probe.out"
    cat "$LOGS/backends.err" >>"$LOGS/probe.err"
    CURRENT=""
    if ((${#problems[@]})); then
        record probe "FAILED" $((SECONDS - start)) "$(joined "${problems[@]}")" "$line"
    else
        record probe "passed" $((SECONDS - start)) "$(head -n 1 "$LOGS/probe.out")" "$line"
    fi
}

# -- the tests ------------------------------------------------------------------------------
# One selection and one set of checks for both test stages: test files that import a missing
# optional package are left out (and the notes say so).
PYTEST_ARGS=() PYTEST_NOTES=""
pytest_args() {
    local module file left=()
    PYTEST_ARGS=(-m "$MARKS" -q -rs -p no:cacheprovider --ignore tests/test_gpu_check.py)
    for module in hypothesis array_api_strict; do
        importable "$module" && continue
        while read -r file; do
            PYTEST_ARGS+=(--ignore "$file")
        done < <(grep -lE "^\s*(import|from)\s+$module\b" tests/*.py 2>/dev/null)
        left+=("$module missing: the test files that import it left out")
    done
    if ! importable array_api_strict && [[ $MARKS != gpu\ and* && $MARKS != gpu ]]; then
        PYTEST_ARGS[1]="gpu and ($MARKS)"
        left+=("array_api_strict missing: only the gpu tests (-m \"gpu and ($MARKS)\")")
    fi
    PYTEST_NOTES=$(joined ${left[@]+"${left[@]}"})
}

# tests NAME LIMIT [VARIABLE=VALUE...]: pytest with PYTEST_ARGS (and the variables set)
tests() {
    local name=$1 limit=$2 summary
    shift 2
    if [[ -z $(skip_reason) ]] && ! importable pytest; then
        record "$name" "FAILED" 0 "pytest is not installed" "$PY -m pytest"
        STAGE_RC=1
        return
    fi
    stage "$name" "$limit" ${1+env "$@"} "$PY" -m pytest "${PYTEST_ARGS[@]}"
    [[ $STAGE_RC == skipped ]] && return
    local rc=$STAGE_RC
    summary=$(grep -E '(passed|failed|error|skipped|deselected)' "$LOGS/$name.out" | tail -n 1)
    note "$name" "$PYTEST_NOTES"
    note "$name" "$summary"
    STAGE_RC=$rc
}

# -- parity ---------------------------------------------------------------------------------
# parity NAME MODEL DTYPE [VARIABLE=VALUE...]: xnn parity over PAIR
parity() {
    local name=$1 model=$2 dtype=$3 verdict
    shift 3
    stage "$name" 45 ${1+env "$@"} "$PY" -m xnn parity "${PAIR[@]}" --model "$model" \
        --dtype "$dtype" --steps "$STEPS" --json "$LOGS/$name.json"
    local rc=$STAGE_RC
    case $rc in
        0) verdict=$(worst_differences "$LOGS/$name.json") ;;
        1) verdict="$(grep -m 1 '^DIVERGED' "$LOGS/$name.out"); $(worst_differences \
            "$LOGS/$name.json")" ;;
        3) verdict="backend unavailable: $(tail -n 1 "$LOGS/$name.err")" ;;
        skipped | 124 | 137) verdict="" ;;
        *) verdict=$(tail -n 1 "$LOGS/$name.err") ;;
    esac
    note "$name" "$verdict"
    STAGE_RC=$rc
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
    loss = max((float(s["loss_rel"]) for s in comparison["steps"][1:]), default=0.0)
    if float(worst["max_rel"]) == 0:
        params = "every parameter identical at every step"
    else:
        params = (f"worst parameter {worst['name']} {float(worst['max_rel']):.1e} relative at "
                  f"step {worst['worst_step']}")
    print(f"{comparison['backend']}: {params}, worst loss {loss:.1e} relative")
EOF
}

# -- the PyTorch backend ----------------------------------------------------------------------
torch_parity() {
    local saved=("${PAIR[@]}") device=torch:cuda module
    ((DRY_RUN)) && device=torch
    for module in torch array_api_compat; do
        if [[ -z $(skip_reason) ]] && ! importable "$module"; then
            record torch-parity "skipped" 0 "$module is not installed (pip install" \
                "'xnn-dlfs[torch]')" "-"
            return
        fi
    done
    PAIR=(numpy "$device")
    parity torch-parity deep float64
    PAIR=("${saved[@]}")
}

# -- a Dask sweep, one worker per GPU ----------------------------------------------------------
dask_cuda() {
    local args=(--backend cupy) module modules=(distributed dask_cuda)
    ((DRY_RUN)) && args=(--backend numpy --workers 1) modules=(distributed)
    for module in "${modules[@]}"; do
        if [[ -z $(skip_reason) ]] && ! importable "$module"; then
            record dask-cuda "skipped" 0 "$module is not installed (pip install" \
                "'xnn-dlfs[distributed]' dask-cuda)" "-"
            return
        fi
    done
    "$PY" - "$LOGS/idx" <<'EOF' >/dev/null 2>&1
import sys
from pathlib import Path

import numpy as np

from xnn.data import write_idx

rng, directory = np.random.default_rng(0), Path(sys.argv[1])
directory.mkdir(parents=True, exist_ok=True)
for prefix, rows in (("train", 600), ("t10k", 100)):
    labels = rng.integers(0, 10, rows).astype(np.uint8)
    write_idx(directory / f"{prefix}-images-idx3-ubyte.gz",
              rng.integers(0, 256, (rows, 28, 28)).astype(np.uint8))
    write_idx(directory / f"{prefix}-labels-idx1-ubyte.gz", labels)
EOF
    stage dask-cuda 90 "$PY" -m xnn sweep momentum --seeds 2 --epochs 1 --data "$LOGS/idx" \
        --out "$LOGS/sweep" --no-progress --no-checkpoints "${args[@]}"
    local rc=$STAGE_RC
    [[ -s $LOGS/sweep/runs.jsonl ]] && note dask-cuda "$("$PY" - "$LOGS/sweep/runs.jsonl" \
        <<'EOF' 2>/dev/null
import json
import sys

runs = [json.loads(line) for line in open(sys.argv[1])]
where = sorted({f"{r['worker']} ({r['ran_on']}, CUDA_VISIBLE_DEVICES="
                f"{r['cuda_visible_devices']})" for r in runs})
print(f"{len(runs)} runs on", ", ".join(where))
EOF
)"
    STAGE_RC=$rc
}

# -- benchmarks -----------------------------------------------------------------------------
# too_little SECONDS: why a stage that needs about SECONDS does not start
too_little() { echo "not started: $((DEADLINE - SECONDS))s of the budget left, it needs about $1s"; }

benchmarks() {
    local extra=() backends=()
    read -r -a extra <<<"$BENCH_ARGS"
    [[ -n $BENCH_BACKENDS ]] && backends=(--backends "$BENCH_BACKENDS")
    if [[ -z $(skip_reason) ]] && ((DEADLINE - SECONDS < 60)); then  # it would not finish
        record benchmarks "skipped" 0 "$(too_little 60)" "-"
    else
        stage benchmarks 120 "$PY" -m xnn bench ${backends[@]+"${backends[@]}"} \
            ${extra[@]+"${extra[@]}"}
    fi
    if ((FUSED_OK)) && [[ -z $(skip_reason) ]] && ((DEADLINE - SECONDS < 30)); then
        record benchmarks-fused "skipped" 0 "$(too_little 30)" "-"
    elif ((FUSED_OK)) || [[ -n $(skip_reason) ]]; then
        stage benchmarks-fused 60 env XNN_CUPY_FUSED=1 "$PY" -m xnn bench --backends \
            "$FUSED_BENCH_BACKENDS" --no-torch --no-jax --no-memory ${extra[@]+"${extra[@]}"}
    else
        record benchmarks-fused "skipped" 0 "fused-parity or fused-tests did not pass" "-"
    fi
}

# -- the report -----------------------------------------------------------------------------
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

# verdict: the report's title. "works" needs every stage but the $OPTIONAL ones to have passed.
verdict() {
    local name failed=() skipped=() pending=0 unchecked=0 list
    for name in "${PLAN[@]}"; do
        case ${RESULT[$name]:-} in
            "") ((pending += 1)) ;;
            passed | INTERRUPTED) ;;
            skipped) skipped+=("$name"); [[ " $OPTIONAL " == *" $name "* ]] || ((unchecked += 1));;
            FAILED) failed+=("$name") ;;
            *) failed+=("$name (${RESULT[$name],,})") ;;
        esac
    done
    list=$(IFS=,; echo "${failed[*]}")
    list=${list//,/, }
    if [[ $STATE == running ]]; then
        echo "INCOMPLETE: $((${#PLAN[@]} - pending)) of ${#PLAN[@]} stages done (the run had" \
            "not finished when this was written)${list:+; failed so far: $list}"
    elif [[ $STATE == interrupted* ]]; then
        echo "INCOMPLETE: $STATE${list:+; failed: $list}"
    elif [[ -n $list ]]; then
        echo "BROKEN: failed: $list"
    elif ((unchecked)); then
        echo "INCOMPLETE: nothing failed, but ${skipped[*]} did not run (reasons below)"
    elif ((${#skipped[@]})); then
        echo "works: every check passed; ${skipped[*]} did not run (reasons below)"
    else
        echo "works: all ${#PLAN[@]} stages passed"
    fi
}

write_report() {
    local name command mode=""
    ((DRY_RUN)) && mode=" --dry-run"
    mkdir -p "$(dirname "$REPORT")" || return 0
    {
        echo "# GPU check: $(verdict)"
        echo
        echo "\`scripts/gpu-check.sh$mode\` on ${HOSTNAME:-$(uname -n)}" \
            "at $(date -u '+%Y-%m-%d %H:%M UTC'), $COMMIT_LINE; backends ${PAIR[*]};" \
            "CUPY_TF32=$CUPY_TF32; ${SECONDS}s $([[ $STATE == running ]] && echo so far ||
                echo in all) (budget ${DEADLINE}s)."
        echo
        echo "| stage | result | seconds | notes |"
        echo "|---|---|---|---|"
        for name in "${PLAN[@]}"; do
            if [[ -n ${RESULT[$name]:-} ]]; then
                echo "| $name | ${RESULT[$name]} | ${TIME[$name]} | ${NOTE[$name]//|/\\|} |"
            elif [[ $name == "$CURRENT" ]]; then
                echo "| $name | running | | |"
            else
                echo "| $name | not run yet | | |"
            fi
        done
        echo
        echo "## Environment"
        echo
        if [[ -s $LOGS/environment.md ]]; then
            cat "$LOGS/environment.md"
        else
            echo "(not probed yet)"
        fi
        for name in "${PLAN[@]}"; do
            [[ -n ${RESULT[$name]:-} ]] || continue
            command=${COMMAND[$name]//$LOGS\//}
            echo
            echo "## $name: ${RESULT[$name]}"
            echo
            echo "\`$command\`"
            echo
            if [[ $name == benchmarks* && -s $LOGS/$name.out && ${RESULT[$name]} == passed ]]
            then
                cat "$LOGS/$name.out"
                echo
            elif [[ $name == tests || $name == fused-tests ]]; then
                test_output "$LOGS/$name.out"
            else
                fenced "output" "$LOGS/$name.out" 100
            fi
            fenced "standard error (last 30 lines)" "$LOGS/$name.err" 30
        done
    } >"$SCRATCH" && mv -f "$SCRATCH" "$REPORT"
}

# -- the run --------------------------------------------------------------------------------
say "backends ${PAIR[*]}$( ((DRY_RUN)) && echo " (dry run)"); budget ${DEADLINE}s;" \
    "report $REPORT; python $("$PY" -c 'import sys; print(sys.version.split()[0])' 2>&1)"
write_report
probe
pytest_args
tests tests 150
parity parity-chapter-float64 chapter float64
parity parity-deep-float64 deep float64
parity fused-parity deep float64 XNN_CUPY_FUSED=1
fused_parity=$STAGE_RC
tests fused-tests 120 XNN_CUPY_FUSED=1
[[ $fused_parity == 0 && $STAGE_RC == 0 ]] && FUSED_OK=1
parity parity-chapter-float32 chapter float32
parity parity-deep-float32 deep float32
torch_parity
dask_cuda
benchmarks
STATE=finished
write_report
say "report written to $REPORT: $(verdict)"
if [[ $(verdict) == works* ]]; then exit 0; fi
exit 1
