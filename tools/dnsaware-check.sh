# shellcheck shell=bash
# dnsaware-check.sh: a part of dnsaware (tools/dnsaware), sourced by it at start, not run on its
# own. The --check report: what would be run and why, from what the command line, the library
# search, inspect_command and the environment found. Only a function: nothing runs when it is
# sourced.

# --- --check ----------------------------------------------------------------------------------

# check_report COMMAND [ARG...]: prints the report and exits 0 if the command would run, 2 if not.
check_report() {
	verdict=0
	printf 'dnsaware --check (nothing is run)\n'
	if [[ -n $command_error ]]; then
		printf 'command:     %s\n' "$command_error"
		verdict=2
	else
		shown_real=''
		[[ $real == "$command_arg" ]] || shown_real=" -> $real"
		case $file_kind in
		elf) printf 'command:     %s%s (ELF %s-bit %s)\n' "$(shown "$command_arg")" "$shown_real" \
			"${elf_class:-?}" "$([[ $elf_order == le ]] && echo little-endian || echo big-endian)" ;;
		*) printf 'command:     %s%s (%s)\n' "$(shown "$command_arg")" "$shown_real" "$file_kind" ;;
		esac
		printf 'checks:      %s\n' "$(joined '; ' "found and executable" "${notes[@]}")"
		if [[ -n $reasons ]]; then
			if ((force)); then
				printf 'refusal:     %s (overridden by --force)\n' "$reasons"
			else
				printf 'refusal:     %s\n' "$reasons"
				verdict=2
			fi
		fi
	fi
	if [[ -n $lib ]]; then
		printf 'library:     %s (from %s; looked in: %s)\n' "$lib" "$lib_source" "$(joined ', ' "${looked_in[@]}")"
	else
		printf 'library:     %s\n' "$lib_error"
		verdict=2
	fi
	if [[ -n $lib ]]; then
		printf 'environment: LD_PRELOAD=%s%s\n' "$new_preload" "${preload_note:+ ($preload_note)}"
	else
		printf 'environment: LD_PRELOAD unchanged (no library)\n'
	fi
	unset_count=0
	for var in "${ALL_VARS[@]}"; do
		if [[ -v opt_value[$var] ]]; then
			printf '             %s=%s (from %s)\n' "$var" "$(shown "${opt_value[$var]}")" "${opt_name[$var]}"
		elif [[ -v $var ]]; then
			printf '             %s=%s (already in the environment)\n' "$var" "$(shown "${!var}")"
		else
			unset_count=$((unset_count + 1))
		fi
	done
	((unset_count == 0)) || printf '             %d of the %d DNSAWARE_* variables unset: the library defaults apply to them\n' \
		"$unset_count" "${#ALL_VARS[@]}"
	if ((java_options_changed)); then
		printf '             JAVA_TOOL_OPTIONS=%s (%s)\n' "$(shown "$JAVA_TOOL_OPTIONS")" "$java_note"
	elif [[ -n $java_note ]]; then
		printf '             JAVA_TOOL_OPTIONS unchanged (%s)\n' "$java_note"
	else
		printf '             JAVA_TOOL_OPTIONS unchanged (not a JVM)\n'
	fi
	quoted=()
	for word in "$@"; do
		quoted+=("$(printf '%q' "$word")")
	done
	printf 'would run:   %s\n' "$(joined ' ' "${quoted[@]}")"
	if ((verdict == 0)); then
		if [[ -n $reasons ]]; then
			printf 'verdict:     would run it anyway (--force); exit status 0\n'
		else
			printf 'verdict:     would run it; exit status 0\n'
		fi
	else
		printf 'verdict:     would not run it; exit status 2\n'
	fi
	exit "$verdict"
}
