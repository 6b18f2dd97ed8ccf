# shellcheck shell=bash
# dnsaware-values.sh: a part of dnsaware (tools/dnsaware), sourced by it at start, not run on its
# own. The values: the library's duration grammar (parse_duration, env_duration) and the check of
# each option's value (set_option, which records it in opt_value and opt_name). Only functions and
# their variables: nothing runs when it is sourced. Uses die, shown and the constants of dnsaware.

# --- values -----------------------------------------------------------------------------------

# Parses the library's duration grammar, ^[0-9]+(ms|s|m|h|d)?$, into parsed_ms.
# Returns 0, or 1 when it is not a duration, or 2 when it is above 720h.
parsed_ms=0
parse_duration() {
	local digits multiplier
	[[ $1 =~ ^([0123456789]+)(ms|s|m|h|d)?$ ]] || return 1
	case ${BASH_REMATCH[2]} in
	ms) multiplier=1 ;;
	m) multiplier=60000 ;;
	h) multiplier=3600000 ;;
	d) multiplier=86400000 ;;
	*) multiplier=1000 ;;
	esac
	[[ ${BASH_REMATCH[1]} =~ ^0*(.*)$ ]]
	digits=${BASH_REMATCH[1]:-0}
	# Eleven digits or more is out of range in any unit (even in ms, above 720h); the test keeps
	# bash's arithmetic from wrapping (ten digits of days still fit in 63 bits).
	((${#digits} <= 10)) || return 2
	parsed_ms=$((10#$digits * multiplier))
	((parsed_ms <= DURATION_MAX_MS)) || return 2
	return 0
}

# A duration from the environment as the library will take it: sets env_ms and env_text to its
# value, or to the default when it is unset or invalid (the library warns and uses the default).
env_ms=0 env_text=''
env_duration() {
	local value=$1 default_ms=$2 default_text=$3
	if [[ -n $value ]] && parse_duration "$value" && ((parsed_ms >= 1)); then
		env_ms=$parsed_ms env_text=$value
	else
		env_ms=$default_ms env_text="$default_text (the default)"
	fi
}

declare -A opt_value=() # DNSAWARE_* variable -> value given by an option
declare -A opt_name=()  # DNSAWARE_* variable -> the option that set it, as written

# Checks one option's value and records it, or ends with one line naming option, value and form.
set_option() {
	local option=$1 var=$2 kind=$3 value=$4
	local as_written
	as_written="$option=$(shown "$value")"
	case $kind in
	duration:*)
		local min_ms=${kind#duration:} min_text status=0
		parse_duration "$value" || status=$?
		((status != 1)) || die "$as_written is not a duration (accepted: $DURATION_FORM)"
		if ((status == 0 && parsed_ms < min_ms)); then
			status=2
		fi
		if ((status == 2)); then
			case $min_ms in
			0) min_text=0 ;;
			100) min_text=100ms ;;
			*) min_text=1ms ;;
			esac
			die "$as_written is out of range (accepted: a duration from $min_text to 720h)"
		fi
		;;
	count)
		local digits=''
		if [[ $value =~ ^0*([0123456789]*)$ ]]; then
			digits=${BASH_REMATCH[1]}
		fi
		if [[ -z $digits || ${#digits} -gt 3 ]] || ((10#$digits > 100)); then
			die "$as_written is not a count (accepted: a whole number from 1 to 100)"
		fi
		;;
	names)
		if [[ ! $value =~ ^[0123456789]{1,4}$ ]] || ((10#$value > 256)); then
			die "$as_written is not a number of names (accepted: a whole number from 0 to 256)"
		fi
		;;
	level)
		case $value in
		off | error | warn | info | debug) ;;
		*) die "$as_written is not a log level (accepted: off, error, warn, info, debug)" ;;
		esac
		;;
	string)
		((${#value} <= STRING_MAX)) ||
			die "$as_written is too long (accepted: at most $STRING_MAX bytes)"
		;;
	esac
	opt_value[$var]=$value
	opt_name[$var]=$option
}
