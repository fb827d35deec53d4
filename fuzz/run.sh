#!/bin/sh
# Runs fuzz targets one after another, one process each, for SECONDS each (default 300).
#   fuzz/run.sh [SECONDS] [TARGET...]      (default: every target; see docs/fuzzing.md)
# New inputs go to fuzz/corpus-work/TARGET (not in git); the committed seeds in
# fuzz/corpus/TARGET are read too. Each run's output is in fuzz/logs/TARGET.log, crashes in
# fuzz/artifacts/TARGET/. Prints one summary line per target.
set -eu
cd "$(dirname "$0")"
secs=${1:-300}
[ $# -gt 0 ] && shift
targets=${*:-$(cargo +nightly fuzz list)}
mkdir -p logs
for t in $targets; do
    mkdir -p "corpus-work/$t" "corpus/$t"
    dict=""
    case $t in
        ssh_option | ssh_config) dict="-dict=dict/ssh_config.dict" ;;
        profile_toml) dict="-dict=dict/profile_toml.dict" ;;
    esac
    start=$(date +%s)
    status=0
    # shellcheck disable=SC2086 # $dict is one word or none
    cargo +nightly fuzz run "$t" "corpus-work/$t" "corpus/$t" -- \
        -max_total_time="$secs" -timeout=10 -print_final_stats=1 $dict \
        >"logs/$t.log" 2>&1 || status=$?
    end=$(date +%s)
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "logs/$t.log")
    last=$(grep -E '^#[0-9]+' "logs/$t.log" | tail -n 1)
    crashes=$(find "artifacts/$t" -type f 2>/dev/null | wc -l)
    echo "$t: exit $status, $((end - start)) s, execs ${execs:-?}, crash files $crashes, last: $last"
done
