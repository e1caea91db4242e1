// Package packaging holds the tests of the built packages in bin/ (the
// Debian package of `make deb`: deb_test.go; the Windows .exe and its
// installer: exe_test.go, wine_test.go, crosstests_test.go). The tests do not build the
// packages: without them they skip, or fail when SYNCTRAY_REQUIRE_PACKAGES=1
// (CI, after `make release`). The package files themselves are in linux/
// (nfpm.yaml, the .desktop file, the man page, the icons) and debcopyright/
// (the generator of the Debian copyright file).
package packaging
