#!/bin/sh
# wine-env.sh DIR -- a fresh, throwaway 64-bit WINEPREFIX in DIR for testing
# synctray's Windows build and installer under wine on Linux.
#
#   packaging/windows/wine-env.sh /tmp/pfx        # run: prints the prefix on stdout
#   . packaging/windows/wine-env.sh /tmp/pfx      # sourced from bash: also exports
#                                                 # WINEPREFIX, WINEARCH, WINEDEBUG=-all and
#                                                 # WINEDLLOVERRIDES=winemenubuilder.exe=d
#   WINE_ENV_DIR=/tmp/pfx . packaging/windows/wine-env.sh   # sourced from sh/dash
#                                                 # (whose "." passes no arguments)
#   WINEPREFIX=/tmp/pfx WINEDLLOVERRIDES=winemenubuilder.exe=d wine bin/synctray.exe version
#   WINEPREFIX=/tmp/pfx wineserver -k             # when done
#
# It runs `wineboot -i` (headless: wine 8 needs no display for it; Mono and
# Gecko are not installed, synctray needs neither), then builds the
# test-only stand-in bcryptprimitives.dll (testdll/bcryptprimitives.c, see
# there) with mingw straight into the prefix's system32: Debian 12's wine 8
# lacks that DLL and every Go >= 1.24 .exe dies at start without it.
# THE STAND-IN IS FOR TEST PREFIXES ONLY: never put it in a package.
#
# Needs: wine (Debian: wine wine64), gcc-mingw-w64-x86-64. Progress and the
# wineboot time go to stderr; stdout is only the prefix's path.
# Env: WINE_ENV_TIMEOUT (seconds for wineboot, default 300), WINE (default wine),
# CC_MINGW (default x86_64-w64-mingw32-gcc), WINE_ENV_PERSIST=1 (keep the
# prefix's wineserver running until `wineserver -k`: faster test runs).

wine_env_setup() {
	_we_dir=${1:-${WINE_ENV_DIR:-}}
	if [ -z "$_we_dir" ]; then
		echo "usage: wine-env.sh DIR (a new or empty directory for the WINEPREFIX)" >&2
		return 2
	fi
	if [ -e "$_we_dir" ] && [ -n "$(ls -A "$_we_dir" 2>/dev/null)" ]; then
		echo "wine-env.sh: $_we_dir exists and is not empty: give a new directory" >&2
		return 2
	fi
	mkdir -p "$_we_dir" || return 1
	_we_dir=$(cd "$_we_dir" && pwd) || return 1
	_we_cc=${CC_MINGW:-x86_64-w64-mingw32-gcc}
	for _we_cmd in "${WINE:-wine}" wineboot wineserver "$_we_cc"; do
		if ! command -v "$_we_cmd" >/dev/null 2>&1; then
			echo "wine-env.sh: $_we_cmd not found (apt-get install wine wine64 gcc-mingw-w64-x86-64)" >&2
			return 1
		fi
	done
	_we_src=$(cd "$(dirname "$_we_script")" && pwd)/testdll/bcryptprimitives.c
	if [ ! -f "$_we_src" ]; then
		echo "wine-env.sh: $_we_src not found" >&2
		return 1
	fi

	_we_t0=$(date +%s.%N)
	# WINE_ENV_PERSIST=1: a wineserver that lasts until `wineserver -k`, so
	# that the services wineboot starts stay up for the next wine calls
	# (else the server exits 3 s after its last client, and the next call
	# pays ~5 s to start them again). Its stdio is /dev/null: a server
	# started by a later call would keep that call's output pipes open.
	if [ "${WINE_ENV_PERSIST:-}" = 1 ]; then
		WINEPREFIX=$_we_dir wineserver -p </dev/null >/dev/null 2>&1
	fi
	# mscoree/mshtml disabled: no "install Mono/Gecko?" dialogs (and no
	# downloads) during wineboot; winemenubuilder disabled: no .desktop
	# files or menu entries in the real $HOME for the prefix's shortcuts.
	WINEPREFIX=$_we_dir WINEARCH=win64 WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml=;winemenubuilder.exe=d" \
		timeout "${WINE_ENV_TIMEOUT:-300}" wineboot -i >/dev/null 2>&1
	_we_rc=$?
	_we_t1=$(date +%s.%N)
	# wine's exit codes are not to be trusted: check what it made.
	_we_sys32=$_we_dir/drive_c/windows/system32
	# (system.reg is only written when the wineserver exits, ~3 s later.)
	if [ ! -f "$_we_sys32/kernel32.dll" ] || [ ! -e "$_we_dir/dosdevices/c:" ]; then
		echo "wine-env.sh: wineboot -i failed in $_we_dir (exit $_we_rc): no system32/kernel32.dll or dosdevices/c:" >&2
		return 1
	fi
	echo "wine-env.sh: wineboot -i took $(awk "BEGIN{printf \"%.1f\", $_we_t1 - $_we_t0}") s" >&2

	# TEST-ONLY stand-in DLL, into this throwaway prefix only.
	if ! "$_we_cc" -O2 -shared -s -o "$_we_sys32/bcryptprimitives.dll" "$_we_src" -ladvapi32; then
		echo "wine-env.sh: building the stand-in bcryptprimitives.dll failed" >&2
		return 1
	fi
	echo "wine-env.sh: test-only stand-in bcryptprimitives.dll in $_we_sys32" >&2
	echo "$_we_dir"
}

# Sourced or run? When sourced, $0 is the caller's shell, not this file.
case ${0##*/} in
wine-env.sh)
	_we_script=$0
	wine_env_setup "$@"
	exit $?
	;;
*)
	# Sourced: the file's own path is not portable to find in sh; bash has
	# BASH_SOURCE, otherwise set WINE_ENV_SCRIPT or source it from the
	# repository root.
	if [ -n "${BASH_SOURCE:-}" ]; then
		# shellcheck disable=SC3028,SC3054
		_we_script=${BASH_SOURCE[0]}
	else
		_we_script=${WINE_ENV_SCRIPT:-packaging/windows/wine-env.sh}
	fi
	if _we_prefix=$(wine_env_setup "$@"); then
		export WINEPREFIX="$_we_prefix" WINEARCH=win64 WINEDEBUG=-all WINEDLLOVERRIDES="winemenubuilder.exe=d"
		echo "$WINEPREFIX"
	else
		false
	fi
	;;
esac
