#!/usr/bin/env bash
# run.sh NAME...: replay the regression inputs of each libFuzzer harness,
# then fuzz it for FUZZ_SECONDS on a copy of its seed corpus.
#
#   BUILD_FUZZ    where `make fuzz-build` put the harnesses (build-fuzz)
#   FUZZ_SECONDS  fuzzing time per harness (60); 0 replays only
#
# The committed corpus (tests/fuzz/corpus/NAME) is copied into
# $BUILD_FUZZ/corpus/NAME, which keeps growing from run to run; it is never
# written back.  Crashes, leaks and timeouts go to $BUILD_FUZZ/artifacts/NAME/
# and fail the run; full logs are in $BUILD_FUZZ/logs/NAME.log.
set -u
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD_FUZZ=${BUILD_FUZZ:-build-fuzz}
case "$BUILD_FUZZ" in /*) ;; *) BUILD_FUZZ="$TOP/$BUILD_FUZZ" ;; esac
FUZZ_SECONDS=${FUZZ_SECONDS:-60}
SRC="$TOP/tests/fuzz"
failed=0 npass=0 nfail=0

# Options per harness: the largest input worth trying, and a dictionary.
opts_for() {
	case "$1" in
	request) echo "-max_len=70000 -dict=$SRC/request.dict" ;;
	policy) echo "-max_len=65536" ;;
	blob) echo "-max_len=5000" ;;
	audit_verify) echo "-max_len=40000" ;;
	stmt) echo "-max_len=2048 -dict=$SRC/stmt.dict" ;;
	*) echo "run.sh: no options for harness $1" >&2; return 1 ;;
	esac
}

for name in "$@"; do
	bin="$BUILD_FUZZ/fuzz_$name"
	opts=$(opts_for "$name") || { failed=1; continue; }
	common="-timeout=10 -rss_limit_mb=2048 $opts"
	if [ ! -x "$bin" ]; then
		nfail=$((nfail + 1)); echo "not ok - fuzz $name: $bin is missing (make fuzz-build)"
		failed=1
		continue
	fi
	mkdir -p "$BUILD_FUZZ/logs" "$BUILD_FUZZ/artifacts/$name" \
		"$BUILD_FUZZ/corpus/$name"
	log="$BUILD_FUZZ/logs/$name.log"
	: >"$log"

	# Every input that once crashed runs once, plainly.
	regs=()
	if [ -d "$SRC/regressions/$name" ]; then
		for f in "$SRC/regressions/$name"/*; do
			[ -f "$f" ] && regs+=("$f")
		done
	fi
	if [ ${#regs[@]} -gt 0 ]; then
		# shellcheck disable=SC2086
		if "$bin" $common "${regs[@]}" >>"$log" 2>&1; then
			npass=$((npass + 1)); echo "ok - fuzz $name: ${#regs[@]} regression input(s) pass"
		else
			nfail=$((nfail + 1)); echo "not ok - fuzz $name: a regression input fails (see $log)"
			grep -E '^(==[0-9]+==ERROR|SUMMARY|.*check failed|Running:)' \
				"$log" | tail -5 | sed 's/^/#   /'
			failed=1
			continue
		fi
	fi
	[ "$FUZZ_SECONDS" -gt 0 ] || continue

	cp "$SRC/corpus/$name"/* "$BUILD_FUZZ/corpus/$name/"
	# shellcheck disable=SC2086
	if "$bin" $common -max_total_time="$FUZZ_SECONDS" -print_final_stats=1 \
		-artifact_prefix="$BUILD_FUZZ/artifacts/$name/" \
		"$BUILD_FUZZ/corpus/$name" >>"$log" 2>&1; then
		stats=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -1 |
			sed -E 's/^#([0-9]+)[[:space:]]+DONE[[:space:]]+/\1 runs, /; s/ lim:.*//')
		npass=$((npass + 1)); echo "ok - fuzz $name: ${FUZZ_SECONDS}s, $stats"
	else
		nfail=$((nfail + 1)); echo "not ok - fuzz $name: finding in $BUILD_FUZZ/artifacts/$name/ (log $log)"
		grep -E '^(==[0-9]+==ERROR|SUMMARY|.*check failed|artifact_prefix|Test unit written)' \
			"$log" | tail -5 | sed 's/^/#   /'
		failed=1
	fi
done
echo "fuzz: $npass passed, $nfail failed"
exit "$failed"
