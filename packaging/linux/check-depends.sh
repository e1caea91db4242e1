#!/bin/sh
# check-depends.sh BINARY NFPM_YAML: fails unless the depends list of
# NFPM_YAML names the installed Debian package (dpkg -S) of every library
# BINARY links (objdump -p: NEEDED) or that GLFW loads with dlopen (the
# libX*.so.N names in it, found by strings). `make deb` runs it before
# packing; packaging/deb_test.go tests it. It needs binutils (objdump,
# strings) and dpkg, and fails, naming them, when they are missing: a check
# that cannot look must not pass.
set -e
if [ $# -ne 2 ] || [ ! -f "$1" ] || [ ! -f "$2" ]; then
	echo "usage: $0 BINARY NFPM_YAML" >&2
	exit 2
fi
bin=$1
yaml=$2
for c in objdump strings; do
	command -v "$c" >/dev/null 2>&1 || {
		echo "deb: $c is missing, and the check of the package's Depends needs it: apt-get install binutils" >&2
		exit 1
	}
done
command -v dpkg >/dev/null 2>&1 || {
	echo "deb: dpkg is missing, and the check of the package's Depends needs it (dpkg -S): apt-get install dpkg" >&2
	exit 1
}

depends=$(awk '/^depends:/ {f=1; next} f && /^  - / {print $2; next} {f=0}' "$yaml")
[ -n "$depends" ] || { echo "deb: $yaml has no depends list" >&2; exit 1; }
dump=$(objdump -p "$bin") || { echo "deb: objdump -p $bin failed" >&2; exit 1; }
linked=$(echo "$dump" | awk '$1 == "NEEDED" {print $2}')
[ -n "$linked" ] || { echo "deb: objdump -p $bin shows no NEEDED library: not the cgo build?" >&2; exit 1; }
# A Fyne build for X11 always names the libraries GLFW loads; none means
# strings saw nothing (or a build this check does not know).
loaded=$(strings "$bin" | grep -xE 'libX[A-Za-z0-9_-]*[.]so[.][0-9]+' | sort -u || true)
[ -n "$loaded" ] || {
	echo "deb: strings finds no libX*.so.N name in $bin (the libraries GLFW loads with dlopen)" >&2
	exit 1
}

for lib in $linked $loaded; do
	pkg=$(dpkg -S "/lib/x86_64-linux-gnu/$lib" "/usr/lib/x86_64-linux-gnu/$lib" 2>/dev/null | head -1 | cut -d: -f1)
	[ -n "$pkg" ] || { echo "deb: no installed package has $lib, which $bin needs" >&2; exit 1; }
	echo " $depends " | tr '\n' ' ' | grep -q " $pkg " || {
		echo "deb: $bin needs $lib, but $pkg is not in $yaml's depends" >&2
		exit 1
	}
done
