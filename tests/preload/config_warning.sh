#!/bin/sh
# Bad configuration never harms the program: one warning line per bad value, naming the variable,
# the value and the accepted form; the program runs and exits as it would without the shim.
set -u
out=$(DNSAWARE_IDLE=abc DNSAWARE_STALE_AFTER=0 LD_PRELOAD="$1" /bin/echo program-ran 2>"$2")
status=$?
fail() { echo "FAIL: $*"; echo "--- stderr:"; cat "$2"; exit 1; }
[ "$status" -eq 0 ] || fail "the program exited $status" "$2"
[ "$out" = "program-ran" ] || fail "the program printed '$out'" "$2"
[ "$(wc -l <"$2")" -eq 2 ] || fail "expected exactly 2 warning lines" "$2"
grep -q "^dnsaware\[[0-9]*\]: warn DNSAWARE_IDLE=abc is not a duration (accepted: .*); using 100ms$" "$2" ||
	fail "no DNSAWARE_IDLE warning in the contract's form" "$2"
grep -q "^dnsaware\[[0-9]*\]: warn DNSAWARE_STALE_AFTER=0 .*accepted.*; using 2$" "$2" ||
	fail "no DNSAWARE_STALE_AFTER warning" "$2"
echo "PASS: two warning lines, program unharmed"
