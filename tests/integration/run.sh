#!/usr/bin/env bash
# Run every integration test; print one summary line.
cd "$(dirname "$0")" || exit 1
pass=0 fail=0 failed_tests=""
for t in t_*.sh; do
	echo "== $t"
	out=$(bash "$t" 2>&1); rc=$?
	echo "$out"
	p=$(grep -c '^ok - ' <<<"$out"); f=$(grep -c '^not ok - ' <<<"$out")
	pass=$((pass + p)); fail=$((fail + f))
	if [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then
		fail=$((fail + 1)); echo "not ok - $t exited $rc"
	fi
	[ $rc -eq 0 ] || failed_tests="$failed_tests $t"
done
[ -z "$failed_tests" ] || echo "failed:$failed_tests"
echo "integration: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
