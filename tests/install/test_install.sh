#!/usr/bin/env bash
# meson install into a scratch DESTDIR: the library in libdir, the wrapper in bindir with the
# installed library path, the version and the directory of its parts baked in, its parts
# (dnsaware-*.sh) in DATADIR/dnsaware, and both man pages, which render.
# Usage: test_install.sh BUILD_DIR PREFIX LIBDIR BINDIR MANDIR VERSION DATADIR
set -euo pipefail
build=$1 prefix=$2 libdir=$3 bindir=$4 mandir=$5 version=$6 datadir=$7
dest=$(mktemp -d /tmp/dnsaware-install-XXXXXX)
trap 'rm -rf "$dest"' EXIT
failures=0

# check DESCRIPTION COMMAND...: one "ok" or "FAIL" line.
check() {
	local what=$1
	shift
	if "$@"; then
		echo "ok - $what"
	else
		echo "FAIL: $what"
		failures=$((failures + 1))
	fi
}

meson install -C "$build" --destdir "$dest" --no-rebuild --quiet >/dev/null

lib=$prefix/$libdir/libdnsaware.so
wrapper=$dest$prefix/$bindir/dnsaware
check "library installed as $lib" test -f "$dest$lib"
check "wrapper installed as $prefix/$bindir/dnsaware" test -x "$wrapper"
check "wrapper has the installed library path baked in" grep -qF "installed_lib='$lib'" "$wrapper"
check "dnsaware-stats installed as $prefix/$bindir/dnsaware-stats" test -x "$dest$prefix/$bindir/dnsaware-stats"
# The parts the wrapper sources: in DATADIR/dnsaware, not executable, their directory baked in.
parts=$prefix/$datadir/dnsaware
for part in values inspect check; do
	check "dnsaware-$part.sh installed as $parts/dnsaware-$part.sh, mode 644" \
		test "$(stat -c %a "$dest$parts/dnsaware-$part.sh" 2>/dev/null)" = 644
done
check "wrapper has the directory of its parts baked in" grep -qF "parts_dir='$parts'" "$wrapper"
# Run from DESTDIR, the wrapper looks for its parts where they will be installed (unless an
# installed dnsaware is there already): one line naming the first, exit status 2.
if [[ ! -e $parts/dnsaware-values.sh ]]; then
	out=$("$wrapper" --version 2>&1) && status=0 || status=$?
	check "the parts not in $parts yet, the installed wrapper says so (exit $status: $out)" \
		test "$status:$out" = "2:dnsaware: $parts/dnsaware-values.sh is missing or unreadable: dnsaware needs this part of it (installed with it, or beside tools/dnsaware in the source tree)"
fi
# The checks below run a copy of the wrapper whose parts' directory is moved into DESTDIR (that
# line alone changed); its library path stays as installed.
sed "s|^parts_dir='$parts'\$|parts_dir='$dest$parts'|" "$wrapper" >"$dest/dnsaware-in-destdir"
chmod +x "$dest/dnsaware-in-destdir"
check "the copy run from DESTDIR differs from the installed wrapper in that line only" \
	test "$(diff "$wrapper" "$dest/dnsaware-in-destdir" | grep -c '^[<>]')" = 2
wrapper=$dest/dnsaware-in-destdir
out=$("$wrapper" --version)
check "installed wrapper --version says dnsaware $version (said: $out)" test "$out" = "dnsaware $version"
# DESTDIR is not the real root: the installed wrapper looks for the library where it will be
# installed, and does not find it yet.
out=$(env -u DNSAWARE_LIB "$wrapper" --check /bin/true 2>&1) && status=0 || status=$?
check "without DNSAWARE_LIB the installed wrapper looks in $lib (exit $status)" \
	grep -qF "$lib" <<<"$out"
check "and, the library not being there yet, refuses with exit 2" test "$status" = 2
# shellcheck disable=SC2016 # $LD_PRELOAD is for the child shell to expand
out=$(DNSAWARE_LIB=$dest$lib "$wrapper" -- /bin/sh -c 'echo "$LD_PRELOAD"')
check "installed wrapper runs a command under the library (LD_PRELOAD=$out)" test "$out" = "$dest$lib"
for page in man1/dnsaware.1 man7/libdnsaware.7; do
	file=$dest$prefix/$mandir/$page
	lines=0
	[[ -f $file ]] && lines=$(MANWIDTH=80 man -l "$file" 2>/dev/null | wc -l)
	check "$page installed and renders ($lines lines)" test "$lines" -gt 20
done
if ((failures > 0)); then
	echo "$failures check(s) failed"
	exit 1
fi
echo "PASS install"
