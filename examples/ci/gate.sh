#!/bin/sh
# Run the toolctl canary gate in CI, keep its reports, and act on the verdict.
#
#   examples/ci/gate.sh --baseline v1.8.2 --candidate v1.9.0-rc1 [--db store.duckdb]
#                       [--report-dir gate-report] [-- more `toolctl gate` options]
#
# Writes <report-dir>/gate.json (the verdict and every check) and <report-dir>/junit.xml
# (one test case per check) whatever the verdict, so CI can publish them.
# Runs the command in $ON_PROMOTE, $ON_HOLD, $ON_ROLLBACK, $ON_INCONCLUSIVE or $ON_ERROR
# (through `sh -c`; unset = only report) for the verdict's branch.
# Under GitHub Actions it also writes `decision` and `exit_code` to $GITHUB_OUTPUT and a
# summary to $GITHUB_STEP_SUMMARY.
#
# Environment: TOOLCTL (the command, default `toolctl`; e.g. "python -m toolctl"),
# TOOLCTL_DB (the store, when --db is not given), TOOLCTL_TOKEN (a live `toolctl serve`).
#
# Exit status: the gate's own codes (README "Exit codes"), so a caller can branch again:
#   0 promote, 10 hold, 20 rollback, 30 inconclusive, 40 gate error, 2 usage;
#   1 when toolctl could not run (or another error), or when the branch's hook failed.
set -u

usage() {
    echo "usage: $0 --baseline VERSION --candidate VERSION [--db PATH] [--report-dir DIR] [-- GATE_OPTIONS]" >&2
    exit 2
}

baseline="" candidate="" db="" report_dir="gate-report"
while [ $# -gt 0 ]; do
    case "$1" in
        --baseline) [ $# -ge 2 ] || usage; baseline=$2; shift 2 ;;
        --candidate) [ $# -ge 2 ] || usage; candidate=$2; shift 2 ;;
        --db) [ $# -ge 2 ] || usage; db=$2; shift 2 ;;
        --report-dir) [ $# -ge 2 ] || usage; report_dir=$2; shift 2 ;;
        --) shift; break ;;
        -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
        *) echo "Error: unknown option $1" >&2; usage ;;
    esac
done
[ -n "$baseline" ] && [ -n "$candidate" ] || { echo "Error: --baseline and --candidate are required" >&2; usage; }

mkdir -p "$report_dir" || exit 1
json="$report_dir/gate.json" junit="$report_dir/junit.xml"
rm -f "$json" "$junit"

# ${TOOLCTL} is split into words on purpose ("python -m toolctl").
if [ -n "$db" ]; then
    ${TOOLCTL:-toolctl} --db "$db" gate --baseline "$baseline" --candidate "$candidate" \
        --format json --junit "$junit" "$@" > "$json"
else
    ${TOOLCTL:-toolctl} gate --baseline "$baseline" --candidate "$candidate" \
        --format json --junit "$junit" "$@" > "$json"
fi
rc=$?

case $rc in
    0)   decision=promote;      hook=${ON_PROMOTE:-} ;;
    10)  decision=hold;         hook=${ON_HOLD:-} ;;
    20)  decision=rollback;     hook=${ON_ROLLBACK:-} ;;
    30)  decision=inconclusive; hook=${ON_INCONCLUSIVE:-} ;;
    2)   decision=usage;        hook=${ON_ERROR:-} ;;
    40)  decision=error;        hook=${ON_ERROR:-} ;;
    127) decision=error;        hook=${ON_ERROR:-}; rc=1
         echo "Error: cannot run '${TOOLCTL:-toolctl}'" >&2
         echo "Hint: install toolctl or set TOOLCTL" >&2 ;;
    *)   decision=error;        hook=${ON_ERROR:-}; rc=1 ;;
esac

reason=""
if [ -s "$json" ] && command -v python3 >/dev/null 2>&1; then
    reason=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1])).get("reason", ""))' "$json" 2>/dev/null)
fi
echo "gate: $decision (exit $rc) $candidate vs $baseline${reason:+: $reason}"
[ -f "$junit" ] && echo "gate: JUnit report $junit"

if [ -n "${GITHUB_OUTPUT:-}" ]; then
    { echo "decision=$decision"; echo "exit_code=$rc"; } >> "$GITHUB_OUTPUT"
fi
if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then
    { echo "### Canary gate: $decision"; echo; echo "\`$candidate\` vs \`$baseline\` (exit $rc)";
      [ -n "$reason" ] && { echo; echo "$reason"; }; } >> "$GITHUB_STEP_SUMMARY"
fi

if [ -n "$hook" ]; then
    DECISION=$decision GATE_EXIT_CODE=$rc GATE_JSON=$json GATE_JUNIT=$junit \
        BASELINE=$baseline CANDIDATE=$candidate sh -c "$hook" || {
        echo "Error: the $decision hook failed: $hook" >&2
        exit 1
    }
fi
exit $rc
