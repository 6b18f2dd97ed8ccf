#!/usr/bin/env bash
# shellcheck disable=SC2016 # '$VAR' in single quotes is for the shell the command starts, on purpose
# tools/dnsaware with real binaries: options to variables, LD_PRELOAD kept, bad values, the library
# search (DNSAWARE_LIB, a baked installed path, a build tree beside the sources, nothing), its parts
# (dnsaware-*.sh), the JVM property, every refusal (a static binary and a Go-marked one built here,
# setuid/setgid/setcap copies, a missing command), --force, --check, --help, --version, shellcheck.
# Usage: test_wrapper.sh WRAPPER LIBRARY   (LIBRARY: a built libdnsaware.so)
# Prints "ok - ..." per check and "FAIL: ..." for each failure; exits 1 if any failed.
set -uo pipefail

if (($# != 2)); then
	echo "usage: $0 WRAPPER LIBRARY" >&2
	exit 2
fi
wrapper=$(readlink -f -- "$1")
library=$(readlink -f -- "$2")
here=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
[[ -x $wrapper ]] || { echo "FAIL: $wrapper is not an executable file"; exit 1; }
[[ -f $library ]] || { echo "FAIL: $library does not exist (ninja -C build)"; exit 1; }

# A clean slate: nothing the wrapper reads may leak in from whoever runs the test.
while IFS='=' read -r name _; do
	[[ $name == DNSAWARE_* ]] && unset "$name"
done < <(env)
unset LD_PRELOAD JAVA_TOOL_OPTIONS JAVA_HOME
export LC_ALL=C

tmp=$(mktemp -d /tmp/dnsaware-wrapper-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" || exit 1

failures=0
checks=0
ok() { checks=$((checks + 1)); echo "ok - $*"; }
fail() { checks=$((checks + 1)); failures=$((failures + 1)); echo "FAIL: $*"; }
# show FILE: a captured stream, indented, for a failure's context.
show() { sed 's/^/    | /' "$1"; }

# run [VAR=VALUE...] -- ARGS...: runs ARGS (with the variables set) capturing out, err and status.
run() {
	local assignments=()
	while [[ $1 != -- ]]; do
		assignments+=("$1")
		shift
	done
	shift
	env "${assignments[@]}" "$@" >"$tmp/out" 2>"$tmp/err"
	status=$?
}
lines() { local n; n=$(wc -l <"$1"); echo "$n"; }

# expect_refusal NAME PATTERN ARGS...: the wrapper (with DNSAWARE_LIB set) exits 2 with exactly one
# stderr line matching PATTERN, prints nothing on stdout, and runs nothing.
expect_refusal() {
	local name=$1 pattern=$2
	shift 2
	run DNSAWARE_LIB="$library" -- "$wrapper" "$@"
	if ((status == 2)) && [[ $(lines "$tmp/err") == 1 && ! -s $tmp/out ]] && grep -Eq -- "$pattern" "$tmp/err"; then
		ok "$name: exit 2, one line: $(cat "$tmp/err")"
	else
		fail "$name: expected exit 2 and one stderr line matching '$pattern'; got status $status"
		echo "    stdout:"; show "$tmp/out"; echo "    stderr:"; show "$tmp/err"
	fi
}

# --- fixtures ------------------------------------------------------------------------------------

cc=${CC:-gcc}
if ! "$cc" -O -o hello "$here/hello.c" 2>"$tmp/err"; then
	echo "FAIL: cannot build the dynamic test program with $cc:"; show "$tmp/err"; exit 1
fi
"$cc" -O -static -o hello-static "$here/hello.c" 2>"$tmp/err" || { echo "FAIL: gcc -static failed:"; show "$tmp/err"; exit 1; }
# A stand-in for a Go binary: the dynamic program plus the .go.buildinfo section every Go binary
# since Go 1.13 carries, which starts with the magic the wrapper looks for. (A real Go binary would
# do as well; golang-go is not installed here.) Go's header is 32 bytes: magic, pointer size, flags.
printf '\377 Go buildinf:\010\002%s' "0123456789abcdef" >buildinfo
objcopy --add-section .go.buildinfo=buildinfo hello hello-go ||
	{ echo "FAIL: objcopy could not add .go.buildinfo"; exit 1; }
printf 'int dnsaware_test_extra;\n' | "$cc" -shared -fPIC -x c -o extra.so - || { echo "FAIL: cannot build extra.so"; exit 1; }

# --- options to variables -------------------------------------------------------------------------

# option value variable: every option the wrapper has for a DNSAWARE_* variable.
option_table=(
	"--ttl-floor 2s DNSAWARE_TTL_FLOOR"
	"--ttl-ceiling 10m DNSAWARE_TTL_CEILING"
	"--max-age 1h DNSAWARE_MAX_AGE"
	"--idle 250ms DNSAWARE_IDLE"
	"--drain-timeout 0 DNSAWARE_DRAIN_TIMEOUT"
	"--stale-after 3 DNSAWARE_STALE_AFTER"
	"--metrics-names 8 DNSAWARE_METRICS_NAMES"
	"--cooldown 45 DNSAWARE_COOLDOWN"
	"--hosts *.internal,api.example.com DNSAWARE_HOSTS"
	"--exclude db.internal DNSAWARE_EXCLUDE"
	"--log debug DNSAWARE_LOG"
	"--log-file $tmp/dnsaware.log DNSAWARE_LOG_FILE"
	"--stats $tmp/stats.prom DNSAWARE_STATS_FILE"
	"--stats-interval 500ms DNSAWARE_STATS_INTERVAL"
	"--nameservers 127.0.0.1:5353,10.0.0.2 DNSAWARE_NAMESERVERS"
	"--stale-max 2d DNSAWARE_STALE_MAX"
	"--resolve-timeout 0 DNSAWARE_RESOLVE_TIMEOUT"
	"--state-dir $tmp/state DNSAWARE_STATE_DIR"
)
# option value variable: the options that take no value.
flag_table=(
	"--no-redirect 0 DNSAWARE_REDIRECT"
	"--no-learn-dns 0 DNSAWARE_LEARN_DNS"
	"--cache 1 DNSAWARE_CACHE"
	"--balance 1 DNSAWARE_BALANCE"
	"--disable 1 DNSAWARE_DISABLE"
)
variable_count=$((${#option_table[@]} + ${#flag_table[@]}))
for form in separate joined; do
	args=()
	for row in "${option_table[@]}"; do
		read -r option value _ <<<"$row"
		if [[ $form == separate ]]; then args+=("$option" "$value"); else args+=("$option=$value"); fi
	done
	for row in "${flag_table[@]}"; do
		read -r option _ <<<"$row"
		args+=("$option")
	done
	# --log-file, --stats and --state-dir point into $tmp so the library, which really loads here,
	# is harmless.
	run DNSAWARE_LIB="$library" -- "$wrapper" "${args[@]}" -- env
	if ((status != 0)); then
		fail "options ($form form): the wrapper exited $status"; show "$tmp/err"; continue
	fi
	wrong=()
	for row in "${option_table[@]}" "${flag_table[@]}"; do
		read -r option value variable <<<"$row"
		grep -qxF -- "$variable=$value" "$tmp/out" || wrong+=("$option: no $variable=$value")
	done
	if ((${#wrong[@]} == 0)); then
		ok "options ($form form): all $variable_count DNSAWARE_* variables set"
	else
		fail "options ($form form): ${wrong[*]}"; show "$tmp/out"
	fi
done

# Not given: the environment's value stays; given: the option wins; none is invented.
run DNSAWARE_LIB="$library" DNSAWARE_IDLE=7s DNSAWARE_LOG=info -- "$wrapper" --log error env
if ((status == 0)) && grep -qx 'DNSAWARE_IDLE=7s' "$tmp/out" && grep -qx 'DNSAWARE_LOG=error' "$tmp/out" &&
	[[ $(grep -c '^DNSAWARE_' "$tmp/out") == 3 ]]; then
	ok "an option not given leaves the environment's DNSAWARE_* value; a given one replaces it"
else
	fail "environment values: status $status"; show "$tmp/out"
fi

# Arguments reach the command untouched, including ones that look like the wrapper's options.
run DNSAWARE_LIB="$library" -- "$wrapper" --idle 1s ./hello 'a b' '' --idle '*' -- '$x'
if ((status == 0)) && [[ $(cat "$tmp/out") == 'hello-ran [a b] [] [--idle] [*] [--] [$x]' ]]; then
	ok "the command's arguments are passed untouched"
else
	fail "arguments: status $status, output: $(cat "$tmp/out")"
fi

# --- LD_PRELOAD --------------------------------------------------------------------------------------

preload_of() { # ARGS...: LD_PRELOAD as the command sees it
	run DNSAWARE_LIB="$library" "$@" -- "$wrapper" /bin/sh -c 'printf "%s\n" "$LD_PRELOAD"'
}
preload_of
if [[ $status == 0 && $(cat "$tmp/out") == "$library" ]]; then
	ok "LD_PRELOAD unset before: the library alone"
else
	fail "LD_PRELOAD unset before: got '$(cat "$tmp/out")' (status $status)"
fi
preload_of LD_PRELOAD="$tmp/extra.so"
if [[ $(cat "$tmp/out") == "$library $tmp/extra.so" ]]; then
	ok "a pre-existing LD_PRELOAD stays, after the library"
else
	fail "LD_PRELOAD with extra.so: got '$(cat "$tmp/out")'"
fi
preload_of LD_PRELOAD="$tmp/extra.so:$tmp/extra.so"
if [[ $(cat "$tmp/out") == "$library:$tmp/extra.so:$tmp/extra.so" ]]; then
	ok "a colon-separated LD_PRELOAD keeps its form"
else
	fail "colon-separated LD_PRELOAD: got '$(cat "$tmp/out")'"
fi
preload_of LD_PRELOAD="$tmp/extra.so $library"
if [[ $(cat "$tmp/out") == "$tmp/extra.so $library" ]]; then
	ok "the library already in LD_PRELOAD is not added twice"
else
	fail "library already there: got '$(cat "$tmp/out")'"
fi
run DNSAWARE_LIB="$library" -- "$wrapper" "$wrapper" /bin/sh -c 'printf "%s\n" "$LD_PRELOAD"'
if [[ $status == 0 && $(cat "$tmp/out") == "$library" ]]; then
	ok "the wrapper run through itself adds the library once"
else
	fail "nested wrapper: got '$(cat "$tmp/out")' (status $status)"
	[[ $status == 0 ]] || show "$tmp/err"
fi

# --- bad values ----------------------------------------------------------------------------------------

rm -f marker
bad_cases=(
	"--idle=abc|--idle=abc is not a duration"
	"--ttl-floor|5x|--ttl-floor=5x is not a duration"
	"--max-age=1.5s|--max-age=1.5s is not a duration"
	"--cooldown=-1|--cooldown=-1 is not a duration"
	"--idle=0|--idle=0 is out of range"
	"--drain-timeout=721h|--drain-timeout=721h is out of range"
	"--stats-interval=50ms|--stats-interval=50ms is out of range"
	"--stale-after=0|--stale-after=0 is not a count"
	"--stale-after|101|--stale-after=101 is not a count"
	"--metrics-names|257|--metrics-names=257 is not a number of names"
	"--log=loud|--log=loud is not a log level"
	"--stale-max=1.5d|--stale-max=1.5d is not a duration"
	"--stale-max|31d|--stale-max=31d is out of range"
	"--resolve-timeout=1D|--resolve-timeout=1D is not a duration"
	"--resolve-timeout=9999999999d|--resolve-timeout=9999999999d is out of range"
	"--max-age=99999999999ms|--max-age=99999999999ms is out of range"
	"--cache=1|--cache=1 takes no value"
	"--bogus|--bogus is not an option"
	"--force=yes|--force=yes takes no value"
	"--ttl-floor=10m|--ttl-floor=10m is above the ceiling"
)
for case in "${bad_cases[@]}"; do
	IFS='|' read -r -a parts <<<"$case"
	pattern=${parts[-1]}
	unset 'parts[-1]'
	# The command would create a file: a bad value must stop everything before it runs.
	expect_refusal "bad value ${parts[*]}" "^dnsaware: $pattern.*accepted" "${parts[@]}" touch marker
done
expect_refusal "an option missing its value" "^dnsaware: --idle needs a value" --idle
expect_refusal "no command" "^dnsaware: no command given" --idle 2s
if [[ ! -e marker ]]; then
	ok "no bad value ran the command"
else
	fail "a bad value still ran the command"
fi
expect_refusal "a value with a newline stays one line" "^dnsaware: --hosts=a\?b +\.\.\. is too long \(accepted: at most 1023 bytes\)$" "--hosts=a
b$(printf '%1100s' '')" true

# --- library search ----------------------------------------------------------------------------------

run DNSAWARE_LIB="$tmp/nowhere/libdnsaware.so" -- "$wrapper" true
if [[ $status == 2 && $(lines "$tmp/err") == 1 ]] && grep -q "^dnsaware: DNSAWARE_LIB=$tmp/nowhere/libdnsaware.so " "$tmp/err"; then
	ok "DNSAWARE_LIB pointing nowhere: exit 2, $(cat "$tmp/err")"
else
	fail "DNSAWARE_LIB nowhere: status $status"
	show "$tmp/err"
fi

# The parts the wrapper sources (dnsaware-*.sh) go beside it in a source tree, in the baked directory
# (inst/share/dnsaware) once installed; partial/tools lacks one.
parts=("$(dirname -- "$wrapper")"/dnsaware-*.sh)
mkdir -p inst/bin inst/lib inst/share/dnsaware tree/tools tree/build/src tree/out/src empty/tools partial/tools
cp "$library" inst/lib/libdnsaware.so
sed -e "s|@DNSAWARE_INSTALLED_LIB@|$tmp/inst/lib/libdnsaware.so|" -e 's|@DNSAWARE_VERSION@|9.8.7|' \
	-e "s|@DNSAWARE_PARTS_DIR@|$tmp/inst/share/dnsaware|" "$wrapper" >inst/bin/dnsaware
cp "${parts[@]}" inst/share/dnsaware/
for dir in tree/tools empty/tools partial/tools; do cp "$wrapper" "${parts[@]}" "$dir/"; done
cp inst/bin/dnsaware partial/tools/dnsaware-installed
rm partial/tools/dnsaware-inspect.sh
chmod +x inst/bin/dnsaware tree/tools/dnsaware empty/tools/dnsaware partial/tools/dnsaware*
cp "$library" tree/build/src/libdnsaware.so
cp "$library" tree/out/src/libdnsaware.so

run -- inst/bin/dnsaware /bin/sh -c 'printf "%s\n" "$LD_PRELOAD"'
if [[ $status == 0 && $(cat "$tmp/out") == "$tmp/inst/lib/libdnsaware.so" ]]; then
	ok "a wrapper with a baked installed path uses it"
else
	fail "baked installed path: got '$(cat "$tmp/out")' (status $status)"
	show "$tmp/err"
fi
run -- inst/bin/dnsaware --version
if [[ $(cat "$tmp/out") == "dnsaware 9.8.7" ]]; then
	ok "a wrapper with a baked version prints it"
else
	fail "baked --version: $(cat "$tmp/out")"
fi
run DNSAWARE_LIB="$library" -- inst/bin/dnsaware /bin/sh -c 'printf "%s\n" "$LD_PRELOAD"'
if [[ $(cat "$tmp/out") == "$library" ]]; then
	ok "DNSAWARE_LIB comes before the installed path"
else
	fail "DNSAWARE_LIB vs installed: '$(cat "$tmp/out")'"
fi

run -- tree/tools/dnsaware /bin/sh -c 'printf "%s\n" "$LD_PRELOAD"'
if [[ $status == 0 && $(cat "$tmp/out") == "$tmp/tree/build/src/libdnsaware.so" ]]; then
	ok "a wrapper in a source tree finds <tree>/build/src/libdnsaware.so"
else
	fail "build tree: got '$(cat "$tmp/out")' (status $status)"
	show "$tmp/err"
fi
run DNSAWARE_BUILD_DIR=out -- tree/tools/dnsaware /bin/sh -c 'printf "%s\n" "$LD_PRELOAD"'
if [[ $(cat "$tmp/out") == "$tmp/tree/out/src/libdnsaware.so" ]]; then
	ok "DNSAWARE_BUILD_DIR=out finds <tree>/out/src/libdnsaware.so"
else
	fail "DNSAWARE_BUILD_DIR: got '$(cat "$tmp/out")'"
fi
ln -s "$tmp/tree/tools/dnsaware" inst/bin/dnsaware-link
run -- inst/bin/dnsaware-link /bin/sh -c 'printf "%s\n" "$LD_PRELOAD"'
if [[ $(cat "$tmp/out") == "$tmp/tree/build/src/libdnsaware.so" ]]; then
	ok "a symlink to the wrapper finds the build tree beside the real script"
else
	fail "symlinked wrapper: got '$(cat "$tmp/out")'"
fi

run -- empty/tools/dnsaware touch marker
if [[ $status == 2 && $(lines "$tmp/err") == 1 && ! -e marker ]] &&
	grep -qF "dnsaware: libdnsaware.so not found (looked in: $tmp/empty/build/src/libdnsaware.so); set DNSAWARE_LIB or build it (ninja -C build)" "$tmp/err"; then
	ok "no library anywhere: exit 2, $(cat "$tmp/err")"
else
	fail "no library: status $status"; show "$tmp/err"
fi
run -- empty/tools/dnsaware --version
if [[ $(cat "$tmp/out") == "dnsaware unknown" ]]; then
	ok "--version with no meson.build beside it: dnsaware unknown"
else
	fail "fake tree --version: $(cat "$tmp/out")"
fi

# A part missing: one line naming it, exit 2, nothing run. The installed copy looks only in the
# baked directory (beside it, partial/tools lacks another), the source tree's only beside itself.
mv inst/share/dnsaware/dnsaware-check.sh inst/share/dnsaware/away
for copy in dnsaware:partial/tools/dnsaware-inspect.sh dnsaware-installed:inst/share/dnsaware/dnsaware-check.sh; do
	run DNSAWARE_LIB="$library" -- "partial/tools/${copy%%:*}" touch marker
	if [[ $status == 2 && $(lines "$tmp/err") == 1 && ! -s $tmp/out && ! -e marker ]] &&
		grep -qxF "dnsaware: $tmp/${copy#*:} is missing or unreadable: dnsaware needs this part of it (installed with it, or beside tools/dnsaware in the source tree)" "$tmp/err"; then
		ok "a part missing for partial/tools/${copy%%:*}: exit 2, $(cat "$tmp/err")"
	else
		fail "a part missing for partial/tools/${copy%%:*}: status $status"; show "$tmp/err"
	fi
done
mv inst/share/dnsaware/away inst/share/dnsaware/dnsaware-check.sh

# --- JVM -------------------------------------------------------------------------------------------------

java_bin=$(type -P java || true)
if [[ -z $java_bin ]]; then
	fail "java is not installed (needed for the JVM checks)"
else
	java_home=$(dirname -- "$(dirname -- "$(readlink -f -- "$java_bin")")")
	# java_picked_up NAME EXPECTED [VAR=VALUE...] -- ARGS...: the JAVA_TOOL_OPTIONS java reports.
	java_picked_up() {
		local name=$1 expected=$2
		shift 2
		run DNSAWARE_LIB="$library" "$@"
		local line
		line=$(grep '^Picked up JAVA_TOOL_OPTIONS:' "$tmp/err")
		if ((status == 0)) && [[ $line == "Picked up JAVA_TOOL_OPTIONS: $expected" ]] && grep -q 'version' "$tmp/err"; then
			ok "$name: $line"
		else
			fail "$name: expected 'Picked up JAVA_TOOL_OPTIONS: $expected', status $status"; show "$tmp/err"
		fi
	}
	java_picked_up "java with JAVA_TOOL_OPTIONS=-Dfoo=bar" "-Dfoo=bar -Dsun.net.inetaddr.ttl=5" \
		JAVA_TOOL_OPTIONS=-Dfoo=bar -- "$wrapper" java -version
	java_picked_up "--ttl-floor 200ms rounds up to 1 s" "-Dsun.net.inetaddr.ttl=1" -- "$wrapper" --ttl-floor 200ms java -version
	java_picked_up "DNSAWARE_TTL_FLOOR=1500ms from the environment" "-Dsun.net.inetaddr.ttl=2" \
		DNSAWARE_TTL_FLOOR=1500ms -- "$wrapper" java -version
	java_picked_up "\$JAVA_HOME/bin/java" "-Dsun.net.inetaddr.ttl=5" JAVA_HOME="$java_home" -- "$wrapper" "$java_home/bin/java" -version
	printf '#!/bin/sh\n# starts the app\nexec java "$@"\n' >run-app
	printf '#!/bin/sh\nJAVACMD="$JAVA_HOME/bin/java"\nset -- -Dapp=1 "$@"\n"$JAVACMD" "$@"\n' >run-gradle-like
	chmod +x run-app run-gradle-like
	java_picked_up "a shell script that execs java" "-Dsun.net.inetaddr.ttl=5" -- "$wrapper" ./run-app -version
	java_picked_up "a script that runs \$JAVACMD" "-Dsun.net.inetaddr.ttl=5" JAVA_HOME="$java_home" -- "$wrapper" ./run-gradle-like -version
	java_picked_up "a user-set -Dsun.net.inetaddr.ttl=60 is left alone" "-Xss1m -Dsun.net.inetaddr.ttl=60" \
		JAVA_TOOL_OPTIONS="-Xss1m -Dsun.net.inetaddr.ttl=60" -- "$wrapper" --ttl-floor 1s java -version
fi
run DNSAWARE_LIB="$library" -- "$wrapper" env
if ! grep -q '^JAVA_TOOL_OPTIONS=' "$tmp/out"; then
	ok "a program that is not a JVM gets no JAVA_TOOL_OPTIONS"
else
	fail "env got JAVA_TOOL_OPTIONS: $(grep '^JAVA_TOOL_OPTIONS=' "$tmp/out")"
fi

# --- refusals ------------------------------------------------------------------------------------------

# expect_forced NAME ARGS...: with --force it runs, with one warning line.
expect_forced() {
	local name=$1
	shift
	run DNSAWARE_LIB="$library" -- "$wrapper" --force "$@"
	if ((status == 0)) && [[ $(cat "$tmp/out") == hello-ran* && $(lines "$tmp/err") == 1 ]] &&
		grep -q '^dnsaware: warning: running .* anyway (--force): ' "$tmp/err"; then
		ok "$name with --force runs, warning: $(cat "$tmp/err")"
	else
		fail "$name with --force: status $status"; show "$tmp/out"; show "$tmp/err"
	fi
}

run DNSAWARE_LIB="$library" -- "$wrapper" ./hello
if [[ $status == 0 && $(cat "$tmp/out") == hello-ran && ! -s $tmp/err ]]; then
	ok "a dynamic binary runs"
else
	fail "dynamic binary: status $status"
	show "$tmp/err"
fi
expect_refusal "a static binary" "^dnsaware: refusing to run \./hello-static: it is a static binary" ./hello-static
expect_forced "a static binary" ./hello-static
expect_refusal "a Go binary (.go.buildinfo)" "^dnsaware: refusing to run \./hello-go: it is a Go binary, which makes raw syscalls the shim cannot see" ./hello-go
expect_forced "a Go binary" ./hello-go

cp hello hello-setuid
cp hello hello-setgid
chmod u+s hello-setuid
chmod g+s hello-setgid
expect_refusal "a setuid binary" "^dnsaware: refusing to run \./hello-setuid: it is setuid, and the loader ignores LD_PRELOAD" ./hello-setuid
expect_refusal "a setgid binary" "^dnsaware: refusing to run \./hello-setgid: it is setgid, and the loader ignores LD_PRELOAD" ./hello-setgid
cp hello hello-setcap
setcap_bin=$(type -P setcap || true)
for candidate in /usr/sbin/setcap /sbin/setcap; do
	[[ -z $setcap_bin && -x $candidate ]] && setcap_bin=$candidate
done
if [[ -n $setcap_bin ]]; then
	if "$setcap_bin" cap_net_bind_service+ep hello-setcap 2>"$tmp/err"; then
		expect_refusal "a binary with file capabilities" "^dnsaware: refusing to run \./hello-setcap: it has file capabilities \(cap_net_bind_service[=+]ep\)" ./hello-setcap
	else
		fail "setcap failed (the tests run as root): $(cat "$tmp/err")"
	fi
else
	fail "setcap is not installed (libcap2-bin)"
fi

expect_refusal "a command not in PATH" "^dnsaware: no-such-command-here: command not found" no-such-command-here
expect_refusal "a missing path" "^dnsaware: \./no-such-file: command not found" ./no-such-file
expect_refusal "a command not found, even with --force" "^dnsaware: no-such-command-here: command not found" --force no-such-command-here
expect_refusal "a file that is not executable" "^dnsaware: \./buildinfo: not executable" ./buildinfo

# The ELF reader for the classes and byte orders the test cannot build: headers written here
# (e_phoff right after the header, one program header, PT_INTERP or PT_LOAD), seen by --check.
# emit ORDER SIZE VALUE: VALUE as SIZE bytes in byte order ORDER (le/be).
emit() {
	local order=$1 size=$2 value=$3 i byte out=''
	for ((i = 0; i < size; i++)); do
		if [[ $order == le ]]; then byte=$(((value >> (8 * i)) & 255)); else byte=$(((value >> (8 * (size - 1 - i))) & 255)); fi
		out+=$(printf '\\%03o' "$byte")
	done
	printf '%b' "$out"
}
# fake_elf FILE CLASS ORDER PTYPE
fake_elf() {
	local file=$1 class=$2 order=$3 ptype=$4 word=4 ehsize=52 phentsize=32
	((class == 64)) && word=8 ehsize=64 phentsize=56
	{
		printf '\177ELF'
		emit le 1 $((class == 64 ? 2 : 1))
		emit le 1 "$([[ $order == le ]] && echo 1 || echo 2)"
		emit le 1 1
		emit le 9 0
		emit "$order" 2 2        # e_type ET_EXEC
		emit "$order" 2 62       # e_machine
		emit "$order" 4 1        # e_version
		emit "$order" "$word" 0  # e_entry
		emit "$order" "$word" "$ehsize" # e_phoff
		emit "$order" "$word" 0  # e_shoff
		emit "$order" 4 0        # e_flags
		emit "$order" 2 "$ehsize"
		emit "$order" 2 "$phentsize"
		emit "$order" 2 1        # e_phnum
		emit "$order" 6 0        # e_shentsize, e_shnum, e_shstrndx
		emit "$order" 4 "$ptype"
		emit "$order" $((phentsize - 4)) 0
	} >"$file"
	chmod +x "$file"
}
elf_ok=1
for class in 32 64; do
	for order in le be; do
		fake_elf "elf$class$order-static" "$class" "$order" 1
		fake_elf "elf$class$order-dynamic" "$class" "$order" 3
		run DNSAWARE_LIB="$library" -- "$wrapper" --check "./elf$class$order-static"
		{ ((status == 2)) && grep -q "^refusal: .*static binary" "$tmp/out"; } || { elf_ok=0; fail "$class-bit $order ELF without PT_INTERP: status $status"; show "$tmp/out"; }
		run DNSAWARE_LIB="$library" -- "$wrapper" --check "./elf$class$order-dynamic"
		{ ((status == 0)) && grep -q "dynamically linked" "$tmp/out"; } || { elf_ok=0; fail "$class-bit $order ELF with PT_INTERP: status $status"; show "$tmp/out"; }
	done
done
((elf_ok)) && ok "hand-made ELF headers, 32/64-bit, little/big-endian: static and dynamic told apart"

# --- --check -----------------------------------------------------------------------------------------------

run DNSAWARE_LIB="$library" LD_PRELOAD="$tmp/extra.so" -- "$wrapper" --check --idle 2s touch marker
if ((status == 0)) && [[ ! -e marker ]] && grep -qF "library:     $library" "$tmp/out" &&
	grep -qF "LD_PRELOAD=$library $tmp/extra.so" "$tmp/out" && grep -qF "DNSAWARE_IDLE=2s (from --idle)" "$tmp/out" &&
	grep -q "^verdict: *would run it" "$tmp/out"; then
	ok "--check on an allowed command: exit 0, names the library, LD_PRELOAD and variables, runs nothing"
else
	fail "--check allowed: status $status, marker $([[ -e marker ]] && echo created || echo absent)"; show "$tmp/out"; show "$tmp/err"
fi
# Every option's variable is among those --check shows (ALL_VARS), and they are all counted.
check_args=()
for row in "${option_table[@]}"; do
	read -r option value _ <<<"$row"
	check_args+=("$option=$value")
done
for row in "${flag_table[@]}"; do
	read -r option _ <<<"$row"
	check_args+=("$option")
done
run DNSAWARE_LIB="$library" -- "$wrapper" --check "${check_args[@]}" true
wrong=()
for row in "${option_table[@]}" "${flag_table[@]}"; do
	read -r option value variable <<<"$row"
	grep -qF -- "$variable=$value (from $option)" "$tmp/out" || wrong+=("$variable")
done
if ((status == 0 && ${#wrong[@]} == 0)) && ! grep -q 'variables unset' "$tmp/out"; then
	ok "--check with every option: all $variable_count variables shown, none left unset"
else
	fail "--check with every option: status $status, not shown: ${wrong[*]}"; show "$tmp/out"
fi
run DNSAWARE_LIB="$library" -- "$wrapper" --check --idle 2s true
if ((status == 0)) && grep -qF "$((variable_count - 1)) of the $variable_count DNSAWARE_* variables unset" "$tmp/out"; then
	ok "--check counts $variable_count DNSAWARE_* variables"
else
	fail "--check count: status $status, expected '$((variable_count - 1)) of the $variable_count'"; show "$tmp/out"
fi
# The d unit, as the library takes it: 30d is the longest duration.
run DNSAWARE_LIB="$library" -- "$wrapper" --check --stale-max 30d --resolve-timeout=1d --max-age 30d true
if ((status == 0)) && grep -qF "DNSAWARE_STALE_MAX=30d (from --stale-max)" "$tmp/out" &&
	grep -qF "DNSAWARE_RESOLVE_TIMEOUT=1d (from --resolve-timeout)" "$tmp/out"; then
	ok "durations in days: --stale-max 30d, --resolve-timeout=1d, --max-age 30d accepted"
else
	fail "durations in days: status $status"; show "$tmp/out"; show "$tmp/err"
fi

run DNSAWARE_LIB="$library" -- "$wrapper" --check ./hello-static
if ((status == 2)) && grep -q "^refusal: *it is a static binary" "$tmp/out" && grep -q "^verdict: *would not run it" "$tmp/out"; then
	ok "--check on a static binary: exit 2, says why"
else
	fail "--check refused: status $status"
	show "$tmp/out"
fi
run DNSAWARE_LIB="$library" -- "$wrapper" --check --force ./hello-go
if ((status == 0)) && grep -q "Go binary.*overridden by --force" "$tmp/out"; then
	ok "--check --force on a Go binary: exit 0, names the overridden refusal"
else
	fail "--check --force: status $status"
	show "$tmp/out"
fi
run DNSAWARE_LIB="$library" -- "$wrapper" --check ./run-app
if ((status == 0)) && grep -q "interpreter is not checked" "$tmp/out" && grep -q "JAVA_TOOL_OPTIONS=-Dsun.net.inetaddr.ttl=5" "$tmp/out"; then
	ok "--check on a script: its interpreter is not checked, and it is a JVM"
else
	fail "--check script: status $status"
	show "$tmp/out"
fi
run -- empty/tools/dnsaware --check true
if ((status == 2)) && grep -q "libdnsaware.so not found" "$tmp/out"; then
	ok "--check without a library: exit 2, says where it looked"
else
	fail "--check no library: status $status"
	show "$tmp/out"
fi

# --- --help, --version, shellcheck -----------------------------------------------------------------------

run -- "$wrapper" --help
missing=()
for option in --ttl-floor --ttl-ceiling --max-age --idle --drain-timeout --stale-after --cooldown --no-redirect --no-learn-dns \
	--hosts --exclude --log --log-file --stats --stats-interval --nameservers --stale-max --resolve-timeout --cache --balance --metrics-names \
	--state-dir --disable --force --check --help --version \
	DNSAWARE_TTL_FLOOR DNSAWARE_TTL_CEILING DNSAWARE_MAX_AGE DNSAWARE_IDLE DNSAWARE_DRAIN_TIMEOUT DNSAWARE_STALE_AFTER \
	DNSAWARE_REDIRECT DNSAWARE_COOLDOWN DNSAWARE_HOSTS DNSAWARE_EXCLUDE DNSAWARE_LOG DNSAWARE_LOG_FILE \
	DNSAWARE_STATS_FILE DNSAWARE_STATS_INTERVAL DNSAWARE_NAMESERVERS DNSAWARE_LEARN_DNS DNSAWARE_STALE_MAX \
	DNSAWARE_RESOLVE_TIMEOUT DNSAWARE_CACHE DNSAWARE_BALANCE DNSAWARE_METRICS_NAMES DNSAWARE_STATE_DIR DNSAWARE_DISABLE DNSAWARE_LIB; do
	grep -q -- "$option\b" "$tmp/out" || missing+=("$option")
done
if ((status == 0 && ${#missing[@]} == 0)); then
	ok "--help: exit 0, every option and its variable"
else
	fail "--help: status $status, missing: ${missing[*]}"
fi

expected_version=$(sed -n "s/^[[:space:]]*version:[[:space:]]*'\([^']*\)'.*/\1/p" "$(dirname -- "$wrapper")/../meson.build" 2>/dev/null | head -n 1)
run -- "$wrapper" --version
if [[ -n $expected_version ]]; then
	if [[ $(cat "$tmp/out") == "dnsaware $expected_version" ]]; then
		ok "--version: $(cat "$tmp/out")"
	else
		fail "--version: '$(cat "$tmp/out")', expected dnsaware $expected_version"
	fi
else
	if grep -Eqx 'dnsaware [0-9][^ ]*' "$tmp/out"; then
		ok "--version: $(cat "$tmp/out")"
	else
		fail "--version: '$(cat "$tmp/out")'"
	fi
fi

# -x follows the wrapper into its parts, -a reports on them too (alone, they lack each other's variables).
if shellcheck_bin=$(type -P shellcheck); then
	if (cd "$(dirname -- "$wrapper")" && "$shellcheck_bin" -x -a "$wrapper") >"$tmp/out" 2>&1; then
		ok "shellcheck -x -a (the wrapper and its parts): clean ($("$shellcheck_bin" --version | sed -n 's/^version: //p'))"
	else
		fail "shellcheck -x -a reports:"; show "$tmp/out"
	fi
else
	fail "shellcheck is not installed (apt-get install shellcheck)"
fi

if ((failures > 0)); then
	echo "$failures of $checks checks failed"
	exit 1
fi
echo "PASS: all $checks checks"
