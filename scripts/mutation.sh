#!/usr/bin/env bash
# Mutation testing of xnn's core modules with mutmut (not run by CI; results: docs/testing.md).
#
#   scripts/mutation.sh                      every module of [tool.mutmut] only_mutate, afresh
#   scripts/mutation.sh xnn.nn.activations xnn/core/random.py    only these modules, afresh
#   scripts/mutation.sh --continue           finish an interrupted run (kept results stand;
#                                            mutmut re-tests the functions whose code changed)
#   scripts/mutation.sh --recheck            re-test only the last run's surviving mutants,
#                                            against the tests as they are now (after adding
#                                            tests for them)
#   scripts/mutation.sh --summary            only print the summary of the last run
#
# mutmut copies the package and the tests into mutants/ (git-ignored), runs the tests once to
# learn which tests call which function, then runs, for each mutant, only the tests that call
# the mutated function (stopping at the first failure). Settings: [tool.mutmut] in
# pyproject.toml. Environment: MUTATION_JOBS (parallel mutants, default: the number of CPUs),
# MUTATION_MINUTES (time limit of the mutmut run, default 55: then it stops, the summary says
# how much was checked, and --continue goes on from there).
set -euo pipefail
cd "$(dirname "$0")/.."

continue_run=0
summary_only=0
recheck=0
patterns=()
for argument in "$@"; do
    case "$argument" in
        --continue) continue_run=1 ;;
        --summary) summary_only=1 ;;
        --recheck) recheck=1 continue_run=1 ;;
        -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
        -*) echo "unknown option $argument (see --help)" >&2; exit 2 ;;
        *)  module="${argument%.py}"; module="${module//\//.}"
            patterns+=("$module.*") ;;
    esac
done

if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
    .venv/bin/pip install -q -e ".[test]"
fi
. .venv/bin/activate
python -c "import mutmut" 2>/dev/null || pip install -q "mutmut>=3.8,<4"  # as the [mutation] extra
# the backend-parametrized tests on NumPy and its stand-in GPU only: probing torch imports it in
# every mutant's test process (about 1 s each); the torch kernels are not mutated
export XNN_TEST_BACKENDS="${XNN_TEST_BACKENDS-numpy,array_api_strict}"

summary() {
    python - <<'EOF'
import json
from collections import Counter
from pathlib import Path

KILLED = {1, 3}  # pytest failed (3: an internal error, also a kill)
TIMEOUT = {24, -24, 36, 152, 255}  # the tests hung or ran away: caught too
rows, survivors, totals = [], [], Counter()
for meta in sorted(Path("mutants").rglob("*.py.meta")):
    module = ".".join(meta.relative_to("mutants").with_suffix("").with_suffix("").parts)
    codes = json.loads(meta.read_text())["exit_code_by_key"]
    counts = Counter()
    for name, code in codes.items():
        if code is None:
            counts["not checked"] += 1
        elif code in KILLED or code in TIMEOUT:
            counts["killed"] += 1
        else:
            counts["survived" if code == 0 else "no tests" if code in (5, 33) else
                   f"other ({code})"] += 1
            survivors.append(f"{name}  [{'survived' if code == 0 else code}]")
    checked = sum(counts.values()) - counts["not checked"]
    if not checked:
        continue
    totals.update(counts)
    rows.append((module, counts, checked))
if not rows:
    raise SystemExit("no mutation results in mutants/: run scripts/mutation.sh first")
print(f"{'module':32} {'mutants':>7} {'killed':>7} {'alive':>6} {'unrun':>6} {'kill rate':>9}")
for module, counts, checked in rows + [("all", totals, sum(r[2] for r in rows))]:
    alive = checked - counts["killed"]
    print(f"{module:32} {checked:7} {counts['killed']:7} {alive:6} {counts['not checked']:6} "
          f"{100 * counts['killed'] / checked:8.1f}%")
print(f"\n{len(survivors)} not killed (mutmut show NAME prints one; mutmut browse lists them):")
print("\n".join(f"  {s}" for s in survivors))
EOF
}

if [ "$summary_only" = 1 ]; then
    summary
    exit 0
fi
if [ "$continue_run" = 0 ]; then
    rm -rf mutants  # afresh: a result from older code or older tests would mislead
fi
mkdir -p mutants
if [ "$recheck" = 1 ]; then  # the names of the mutants that were not killed
    mapfile -t patterns < <(python - <<'EOF'
import json
from pathlib import Path

for meta in sorted(Path("mutants").rglob("*.py.meta")):
    for name, code in json.loads(meta.read_text())["exit_code_by_key"].items():
        if code is not None and code not in (1, 3, 24, -24, 36, 152, 255):
            print(name)
EOF
)
    if [ "${#patterns[@]}" = 0 ]; then
        echo "no surviving mutants to re-check (run scripts/mutation.sh first)" >&2
        exit 1
    fi
    echo "re-checking ${#patterns[@]} surviving mutants against the current tests"
fi
jobs="${MUTATION_JOBS:-$(nproc)}"
minutes="${MUTATION_MINUTES:-55}"
started=$(date +%s)
status=0
# SIGINT: mutmut stops its workers and keeps every result so far (--continue goes on)
timeout --signal=INT --kill-after=60 "$((minutes * 60))" \
    mutmut run --max-children "$jobs" ${patterns[@]+"${patterns[@]}"} > mutants/run.log 2>&1 \
    || status=$?
tail -c 2000 mutants/run.log | tr '\r' '\n' | grep -v '^\s*$' | tail -n 5 || true
echo "mutmut ran $(( ($(date +%s) - started) / 60 )) min with $jobs parallel mutants (exit $status)"
summary
if [ "$status" = 124 ]; then
    echo "stopped after $minutes min: scripts/mutation.sh --continue goes on" >&2
fi
