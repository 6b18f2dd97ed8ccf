# shellcheck shell=bash
# dnsaware-inspect.sh: a part of dnsaware (tools/dnsaware), sourced by it at start, not run on its
# own. The command: how the program to run is found (as exec will find it) and inspected, the ELF
# header read with od (inspect_elf), a JVM recognised (detect_jvm), and what that makes a refusal
# or a note for --check (inspect_command). Only functions and their variables: nothing runs when it
# is sourced. Uses die, shown, check_only and the constants of dnsaware.

# --- the command --------------------------------------------------------------------------------

# ELF inspection with od: sets elf_class (32/64), elf_order (le/be), elf_type, elf_interp
# (yes/no/unknown). Returns 1 when the file is not ELF (or cannot be read).
elf_bytes=()
field_value=0
# field OFFSET SIZE: the unsigned number at OFFSET in elf_bytes, in the file's byte order.
field() {
	local offset=$1 size=$2 i
	field_value=0
	for ((i = 0; i < size; i++)); do
		if [[ $elf_order == le ]]; then
			field_value=$((field_value | (elf_bytes[offset + i] << (8 * i))))
		else
			field_value=$(((field_value << 8) | elf_bytes[offset + i]))
		fi
	done
}
elf_class='' elf_order='' elf_type=0 elf_interp=unknown
inspect_elf() {
	local file=$1 phoff phentsize phnum size i
	mapfile -t elf_bytes < <(od -An -v -t u1 -w1 -N 64 -- "$file" 2>/dev/null)
	((${#elf_bytes[@]} >= 52)) || return 1
	((elf_bytes[0] == 127 && elf_bytes[1] == 69 && elf_bytes[2] == 76 && elf_bytes[3] == 70)) || return 1
	case $((elf_bytes[4])) in 1) elf_class=32 ;; 2) elf_class=64 ;; *) elf_class='' ;; esac
	case $((elf_bytes[5])) in 1) elf_order=le ;; 2) elf_order=be ;; *) elf_order='' ;; esac
	[[ -n $elf_class && -n $elf_order ]] || return 0
	((elf_class == 32 || ${#elf_bytes[@]} >= 64)) || return 0
	field 16 2
	elf_type=$field_value
	if ((elf_class == 64)); then
		# e_phoff is 8 bytes; one of 2^48 or more is nonsense (and could wrap bash's arithmetic).
		if [[ $elf_order == le ]]; then
			((elf_bytes[38] == 0 && elf_bytes[39] == 0)) || return 0
		else
			((elf_bytes[32] == 0 && elf_bytes[33] == 0)) || return 0
		fi
		field 32 8
		phoff=$field_value
		field 54 2
		phentsize=$field_value
		field 56 2
		phnum=$field_value
	else
		field 28 4
		phoff=$field_value
		field 42 2
		phentsize=$field_value
		field 44 2
		phnum=$field_value
	fi
	# 0xffff means the count is elsewhere (PN_XNUM); leave such a file alone.
	((phentsize >= 4 && phnum < 65535)) || return 0
	size=$(wc -c <"$file")
	((phoff > 0 && phoff + phnum * phentsize <= size)) || return 0
	mapfile -t elf_bytes < <(od -An -v -t u1 -w1 -j "$phoff" -N $((phnum * phentsize)) -- "$file" 2>/dev/null)
	((${#elf_bytes[@]} == phnum * phentsize)) || return 0
	elf_interp=no
	for ((i = 0; i < phnum; i++)); do
		field $((i * phentsize)) 4
		if ((field_value == 3)); then # PT_INTERP
			elf_interp=yes
			break
		fi
	done
	return 0
}

# A JVM, for JAVA_TOOL_OPTIONS: named java (as given, as found in PATH, or once symlinks are
# followed), or $JAVA_HOME/bin/java, or a shell script that execs one where you can tell. The
# script heuristic is deliberately simple, a grep of lines that are not comments:
#   exec ... java / exec "$JAVA" / exec "$JAVACMD" / exec "$JAVA_CMD" / exec "$JAVA_EXE"
#   (an exec line whose program word is java or one of those variables), or
#   any line naming $JAVA_HOME/bin/java or $JAVACMD (gradle's and maven's start scripts).
# A script that builds the java path some other way is not recognised (set JAVA_TOOL_OPTIONS
# yourself); a false match only adds a harmless property to JAVA_TOOL_OPTIONS.
jvm_reason=''
detect_jvm() {
	local name
	for name in "$command_arg" "$resolved" "$real"; do
		if [[ ${name##*/} == java ]]; then
			jvm_reason="it is named java"
			return 0
		fi
	done
	if [[ -n ${JAVA_HOME:-} && -e $JAVA_HOME/bin/java && $(readlink -f -- "$JAVA_HOME/bin/java") == "$real" ]]; then
		jvm_reason="it is \$JAVA_HOME/bin/java"
		return 0
	fi
	if [[ $file_kind == script ]] && LC_ALL=C grep -a -q -E \
		-e '^[[:space:]]*exec[[:space:]]([^#]*[^[:alnum:]_])?(java|JAVA|JAVACMD|JAVA_CMD|JAVA_EXE)([^[:alnum:]_]|$)' \
		-e '^[^#]*\$\{?JAVA_HOME\}?/bin/java([^[:alnum:]_]|$)' \
		-e '^[^#]*\$\{?JAVACMD([^[:alnum:]_]|$)' \
		-- "$real" 2>/dev/null; then
		jvm_reason="it is a script that execs java"
		return 0
	fi
	return 1
}

# inspect_command COMMAND: finds COMMAND and inspects it. Sets command_arg, resolved, real (the
# file once symlinks are followed), command_error, file_kind, refusals (each a reason), notes (for
# --check) and jvm_reason. A command not found or not executable ends it here, unless --check.
inspect_command() {
	command_arg=$1
	resolved='' real='' command_error=''
	if [[ $command_arg == */* ]]; then
		if [[ ! -e $command_arg ]]; then
			command_error="$(shown "$command_arg"): command not found (no such file)"
		elif [[ -d $command_arg ]]; then
			command_error="$(shown "$command_arg"): command not found (it is a directory)"
		elif [[ ! -x $command_arg ]]; then
			command_error="$(shown "$command_arg"): not executable"
		else
			resolved=$command_arg
		fi
	# type -P rather than command -v: for a name like true or echo, command -v answers with the shell
	# builtin, while exec runs the file PATH finds, which is the one to inspect.
	elif ! resolved=$(type -P -- "$command_arg"); then
		resolved=''
		command_error="$(shown "$command_arg"): command not found (in PATH)"
	fi
	if [[ -n $resolved ]]; then
		real=$(readlink -f -- "$resolved")
	fi
	if [[ -n $command_error ]] && ((check_only == 0)); then
		die "$command_error"
	fi

	# What the checks found: refusals (each a reason), and notes for --check.
	refusals=()
	notes=()
	file_kind=''

	getcap_bin=''
	if [[ -n $real ]]; then
		# od, not read: read would skip NUL bytes and take "\0#!" for "#!".
		first_two=$(od -An -v -t x1 -N 2 -- "$real" 2>/dev/null | tr -d ' \n' || true)
		if [[ $first_two == 2321 ]]; then
			file_kind=script
			IFS= read -r interpreter_line <"$real" || true
			notes+=("a script (${interpreter_line:0:80}): only binaries are inspected, its interpreter is not checked")
		elif inspect_elf "$real"; then
			file_kind=elf
		elif [[ ! -r $real ]]; then
			file_kind=unreadable
			notes+=("it cannot be read, so it was not inspected")
		else
			file_kind=other
			notes+=("neither ELF nor a #! script: not inspected")
		fi

		if [[ -u $real ]]; then
			refusals+=("it is setuid, and the loader ignores LD_PRELOAD for setuid programs")
		else
			notes+=("not setuid")
		fi
		if [[ -g $real ]]; then
			refusals+=("it is setgid, and the loader ignores LD_PRELOAD for setgid programs")
		else
			notes+=("not setgid")
		fi
		getcap_bin=$(type -P getcap || true)
		for candidate in /usr/sbin/getcap /sbin/getcap; do
			[[ -n $getcap_bin ]] && break
			[[ -x $candidate ]] && getcap_bin=$candidate
		done
		if [[ -z $getcap_bin ]]; then
			notes+=("file capabilities not checked (getcap is not installed)")
		else
			capabilities=$("$getcap_bin" "$real" 2>/dev/null || true)
			if [[ -n $capabilities ]]; then
				capabilities=${capabilities#"$real"}
				capabilities=${capabilities# }
				capabilities=${capabilities#= }
				refusals+=("it has file capabilities ($(shown "$capabilities")), and the loader ignores LD_PRELOAD for such programs")
			else
				notes+=("no file capabilities")
			fi
		fi
		if [[ $file_kind == elf ]]; then
			if LC_ALL=C grep -a -q -F -e "$GO_BUILDINFO_MAGIC" -- "$real" 2>/dev/null; then
				refusals+=("it is a Go binary, which makes raw syscalls the shim cannot see")
			else
				notes+=("not a Go binary")
			fi
			if [[ -n $elf_class && -n $elf_order ]]; then
				if ((elf_type != 2 && elf_type != 3)); then
					notes+=("ELF type $elf_type is not an executable: not checked for static linking")
				elif [[ $elf_interp == no ]]; then
					refusals+=("it is a static binary (no ELF interpreter), so nothing can be preloaded into it")
				elif [[ $elf_interp == yes ]]; then
					notes+=("dynamically linked (has an ELF interpreter)")
				else
					notes+=("ELF program headers unreadable: not checked for static linking")
				fi
			else
				notes+=("ELF class or byte order unknown: not checked for static linking")
			fi
		fi
		detect_jvm || true
	fi
}
