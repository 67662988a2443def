#!/usr/bin/env bash
# Mutation score of the core numerical modules (issue 22, item 7). A measurement, not
# a CI step: it prints, per target, the share of mutants the target's FAST tests kill.
#
#   bash benchmarks/mutation.sh [TARGET ...]     (default: every target below)
#   MUTATION_RESUME=1 bash benchmarks/mutation.sh TARGET   (continue a stopped run,
#       or rerun only the survivors of a finished one against the current tests)
#
# mutmut 2.5.1 (a well-kept mutation tester) goes into a scratch venv under
# $MUTATION_DIR (default /tmp/asa-mutation), never into the project's lock or venv.
# It mutates a scratch COPY of the working tree (tracked and untracked-not-ignored
# files), so the repository is never touched; ../shared is linked beside the copy for
# the real-audio tests. Each mutant runs the target's tests with the project's venv
# ($PROJECT_VENV, default .venv) under `nice -n 10`. Where a target names functions,
# only their lines are mutated (a patch file of those lines, mutmut --use-patch-file).
#
# Output: one line per target, "TARGET: K of N mutants killed (P%); S survived, T timed
# out", then the survivors' diffs; also $MUTATION_DIR/results/TARGET.txt.
# Timeouts (a mutant that makes the tests hang, e.g. an endless loop) count as killed.
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
WORK="${MUTATION_DIR:-/tmp/asa-mutation}"
PROJECT_VENV="${PROJECT_VENV:-$REPO/.venv}"
PY="$PROJECT_VENV/bin/python"
[ -x "$PY" ] || { echo "no project venv at $PROJECT_VENV (set PROJECT_VENV)" >&2; exit 2; }

# name|file|functions (comma separated, Class.method allowed; empty = whole file)|tests
TARGETS=(
  "losses|asa_jax/losses.py||tests/test_losses.py"
  "degrade_label|input_pipeline/corpora/degrade.py|voice_error,label,Applied.pitch_error_cents,Applied.timing_error_seconds,Applied.voice_error,Applied.scores,Degradation.validate|tests/test_degrade.py -k 'label or voice_terms or applied_scores or validate'"
  "degrade_edits|input_pipeline/corpora/degrade.py|_smooth_noise,_moving_average,_pitch_edits,_time_map,_warp_envelope,degrade|tests/test_degrade_measured.py tests/test_degrade.py"
  "dtw_melody|asa_jax/baselines/dtw_melody.py|dtw_cost,_reachable|tests/test_molina.py -k dtw_cost"
  "pearson|asa_jax/evaluation/pearson.py|pearson,with_interval|tests/test_evaluation.py -k 'pearson or correlate'"
  "bootstrap|asa_jax/evaluation/bootstrap.py|pearson_r,pearson_interval|tests/test_evaluation.py -k 'bootstrap or correlate or pearson'"
  "calibration|asa_jax/evaluation/calibration.py|Calibration.__call__,_pearson,metrics,_fit_logistic,fit|tests/test_assess.py -k 'calibration or constant or least_squares'"
)

mkdir -p "$WORK/results"
if [ ! -x "$WORK/venv/bin/mutmut" ]; then
  echo "== installing mutmut 2.5.1 into the scratch venv $WORK/venv"
  python3 -m venv "$WORK/venv"
  "$WORK/venv/bin/pip" install -q "mutmut==2.5.1" "whatthepatch==1.0.7"
fi
MUTMUT="$WORK/venv/bin/mutmut"

# run_mutmut NAME SRC FILE TESTS [PATCH OPTIONS]: mutmut run, resumed up to 5 times.
run_mutmut() {
  local name=$1 src=$2 file=$3 tests=$4; shift 4
  local attempt log pid
  for attempt in 1 2 3 4 5; do
    log="$WORK/$name/run.$attempt.log"
    (cd "$src" && PYTHONPATH="$src" exec "$MUTMUT" run --paths-to-mutate "$file" \
        --tests-dir tests --runner "nice -n 10 $PY -m pytest -x -q -p no:cacheprovider $tests" \
        --test-time-multiplier 4 --simple-output --no-progress "$@" > "$log" 2>&1) &
    pid=$!
    while kill -0 "$pid" 2>/dev/null; do
      if grep -q "^Traceback" "$log"; then
        pkill -TERM -P "$pid" 2>/dev/null || true  # its test run, if any
        kill -TERM "$pid" 2>/dev/null || true
      fi
      sleep 5
    done
    wait "$pid" 2>/dev/null || true
    cp "$REPO/$file" "$src/$file"  # A stopped run leaves its mutant in place.
    grep -q "^Traceback" "$log" || break
  done
}

wanted=("$@")
for spec in "${TARGETS[@]}"; do
  IFS="|" read -r name file functions tests <<<"$spec"
  if [ ${#wanted[@]} -gt 0 ] && [[ ! " ${wanted[*]} " =~ " $name " ]]; then
    continue
  fi
  src="$WORK/$name/src"
  if [ "${MUTATION_RESUME:-0}" = 1 ] && [ -f "$src/.mutmut-cache" ]; then
    # Resume: keep the cache (killed mutants stay killed; survivors are tested again
    # when the tests changed), take the current tests and the current target file
    # (mutants of its changed lines are new and tested; those of removed lines go).
    # This is also the survivors-only rerun after new tests.
    rm -rf "$src/tests" && cp -r "$REPO/tests" "$src/tests"
    cp "$REPO/$file" "$src/$file"
  else
    rm -rf "$WORK/$name"
    mkdir -p "$src"
    (cd "$REPO" && git ls-files -co --exclude-standard -z | xargs -0 tar -cf - ) | tar -xf - -C "$src"
  fi
  [ -e "$REPO/../shared" ] && ln -sfn "$(cd "$REPO/.." && pwd)/shared" "$WORK/$name/shared"
  patch_opt=()
  if [ -n "$functions" ]; then
    # A patch that "adds" the named functions' lines: mutmut mutates only those.
    "$PY" - "$src" "$file" "$functions" > "$WORK/$name/functions.patch" <<'PY'
import ast, sys
root, path, names = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
lines = open(f"{root}/{path}", encoding="utf-8").read().splitlines()
tree = ast.parse("\n".join(lines))
found = {}
for node in ast.walk(tree):
  if isinstance(node, ast.ClassDef):
    for sub in node.body:
      if isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef)):
        found[f"{node.name}.{sub.name}"] = sub
  elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
    found.setdefault(node.name, node)
missing = [n for n in names if n not in found]
if missing:
  sys.exit(f"{path}: no function {missing}")
print(f"--- a/{path}\n+++ b/{path}")
for n in names:
  node = found[n]
  start, end = node.lineno, node.end_lineno
  print(f"@@ -{start - 1},0 +{start},{end - start + 1} @@")
  for line in lines[start - 1:end]:
    print(f"+{line}")
PY
    patch_opt=(--use-patch-file "$WORK/$name/functions.patch")
  fi
  echo "== $name: mutating $file${functions:+ ($functions)} against: $tests"
  start=$(date +%s)
  # mutmut 2.5.1 can stop on a cache lookup error ("Attribute Mutant.line is
  # required"), leaving the file mutated: restore it and resume (the cache keeps the
  # mutants already tested), at most 3 times.
  # After that error mutmut's main process does not exit: a watcher stops it.
  run_mutmut "$name" "$src" "$file" "$tests" "${patch_opt[@]}"
  (cd "$src" && "$PY" - "$name" "$(( $(date +%s) - start ))" <<'PY'
import sqlite3, sys
name, seconds = sys.argv[1], sys.argv[2]
db = sqlite3.connect(".mutmut-cache")
counts = dict(db.execute("SELECT status, COUNT(*) FROM Mutant GROUP BY status"))
killed, timeout = counts.get("ok_killed", 0), counts.get("bad_timeout", 0)
survived = counts.get("bad_survived", 0) + counts.get("ok_suspicious", 0)
untested = counts.get("untested", 0)
total = killed + timeout + survived
share = 100.0 * (killed + timeout) / total if total else float("nan")
print(f"{name}: {killed + timeout} of {total} mutants killed ({share:.1f}%); "
      f"{survived} survived, {timeout} timed out, {untested} not run; {seconds} s")
PY
  ) | tee "$WORK/results/$name.txt"
  (cd "$src" && ids=$("$MUTMUT" result-ids survived 2>/dev/null | grep -E '^[0-9 ]+$' || true)
   for id in $ids; do echo "-- survivor $id"; "$MUTMUT" show "$id" 2>/dev/null | grep "^[-+]"; done
  ) | tee -a "$WORK/results/$name.txt"
done
