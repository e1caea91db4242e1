# synctray — the two commands of the README are `make run` and `make test`.
# Go from /usr/local/go where it is not on PATH yet.
export PATH := $(PATH):/usr/local/go/bin
GO      ?= go
BIN     := bin/synctray
# The fyne tool (fyne package), pinned, built for this machine.
FYNE    := bin/tools/fyne
# Debian packages: to build and run, cgo for SQLite and Fyne (GLFW, X11);
# to test, also Chromium for the browser tests and Xvfb/DBus/ImageMagick
# for the tray tests and screenshots.
RUN_PKGS  := gcc libc6-dev pkg-config libgl1-mesa-dev libx11-dev libxcursor-dev libxrandr-dev \
	libxinerama-dev libxi-dev libxxf86vm-dev
# To build and test the packages: mingw-w64 (the Windows build), wine (to
# run it), nsis (the installer), desktop-file-utils and binutils (to check
# the .deb).
RELEASE_PKGS := gcc-mingw-w64-x86-64 wine wine64 nsis desktop-file-utils binutils
# PostgreSQL: the upstream's team store (the tests start a private cluster).
TEST_PKGS := $(RUN_PKGS) chromium xvfb xauth dbus imagemagick postgresql $(RELEASE_PKGS)

# The version is FyneApp.toml's, the one place it is written.
VERSION := $(shell sed -n 's/^Version *= *"\(.*\)"/\1/p' FyneApp.toml)
# Binaries name the commit they were built from (`synctray version`): some
# machines set GOFLAGS=-buildvcs=false; stamp where there is a checkout.
export GOFLAGS := $(filter-out -buildvcs=%,$(GOFLAGS)) -buildvcs=auto

.PHONY: run test deps node-deps build bench fuzz vet clean package windows windows-tests installer deb release test-wine

run: APT_PKGS = $(RUN_PKGS)
run: deps build
	./$(BIN)

build:
	$(GO) build -o $(BIN) .

# Installs the Debian packages that are missing (with sudo when not root).
APT_PKGS ?= $(TEST_PKGS)
deps:
	@missing=""; for p in $(APT_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q --no-install-recommends $$missing; \
	fi

# json-server from npm, the REST backend of the example app's browser tests
# (e2e/todo_test.go), at the version .ci/node/package-lock.json pins, so
# that the tests need no network; node and npm from Debian when missing.
NODE_DEPS := .ci/node/node_modules/json-server/package.json
node-deps: $(NODE_DEPS)
$(NODE_DEPS): .ci/node/package.json .ci/node/package-lock.json
	@command -v npm >/dev/null || { \
	  echo "installing: nodejs npm"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q --no-install-recommends nodejs npm; \
	}
	npm ci --no-audit --no-fund --prefix .ci/node
	@touch $@

# Every test in one `go test` call (it shares the build cache), then the
# host and the upstream under the race detector.
# The packages are built first (make release) and tested with the rest
# (packaging/): SYNCTRAY_REQUIRE_PACKAGES=1 makes a missing one a failure.
test: APT_PKGS = $(TEST_PKGS)
test: deps node-deps release windows-tests
	$(GO) vet ./...
	$(WINDOWS_ENV) $(GO) vet ./...
	# macOS cannot be cross-built here (cgo needs Apple's SDK): vet what is pure Go, the platform code included.
	CGO_ENABLED=0 GOOS=darwin GOARCH=arm64 $(GO) vet $(DARWIN_VET_PKGS)
	SYNCTRAY_REQUIRE_POSTGRES=1 $(GO) test -count=1 -shuffle=on -timeout 20m $$($(GO) list ./... | grep -v /packaging)
	# The packages after the rest: wine and apt would load the 2 cores
	# under the timing-sensitive tests (slow clients, DBus).
	SYNCTRAY_REQUIRE_PACKAGES=1 $(GO) test -count=1 -timeout 20m ./packaging/...
	# The concurrent core again under the race detector.
	$(GO) test -race -count=1 -timeout 10m ./localserver/... ./upstream/... ./internal/...
	@cat artifacts/*.txt 2>/dev/null || true

bench: deps
	$(GO) test -run '^$$' -bench . -benchmem -timeout 30m ./...

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzDecodeActionRequest -fuzztime 60s ./localserver/

# The Linux package: bin/synctray.tar.xz (the binary, a .desktop file, the
# icon and a Makefile: `sudo make install` puts them under /usr/local, or
# /usr where /usr/local does not exist; `make user-install` under ~/.local).
# Metadata from FyneApp.toml; the fyne tool comes from the Go module proxy.
package: APT_PKGS = $(RUN_PKGS)
package: deps $(FYNE)
	mkdir -p bin && cp FyneApp.toml bin/FyneApp.toml.orig
	$(FYNE) package --os linux --release --app-version $(VERSION) || { mv bin/FyneApp.toml.orig FyneApp.toml; exit 1; }
	mv bin/FyneApp.toml.orig FyneApp.toml
	mv synctray.tar.xz bin/synctray-$(VERSION)-linux-amd64.tar.xz

# Windows, cross-built on Debian with mingw-w64 (cgo for Fyne and SQLite):
# bin/synctray.exe, a GUI-subsystem build with the icon, version info and
# manifest, by `fyne package` (pinned). The fyne tool is built for this
# machine first, without the mingw CC. fyne package bumps Build in
# FyneApp.toml: the file is put back.
WINDOWS_ENV := CGO_ENABLED=1 GOOS=windows GOARCH=amd64 CC=x86_64-w64-mingw32-gcc
$(FYNE):
	GOBIN=$(CURDIR)/bin/tools $(GO) install fyne.io/tools/cmd/fyne@v1.7.4

windows: APT_PKGS = $(RUN_PKGS) gcc-mingw-w64-x86-64
windows: deps $(FYNE)
	mkdir -p bin && cp FyneApp.toml bin/FyneApp.toml.orig
	$(WINDOWS_ENV) $(FYNE) package --os windows --release --app-version $(VERSION) || { mv bin/FyneApp.toml.orig FyneApp.toml; exit 1; }
	mv bin/FyneApp.toml.orig FyneApp.toml
	mv synctray.exe bin/synctray.exe

DARWIN_VET_PKGS := ./internal/autostart ./internal/private ./internal/failure ./localserver/datadir \
	./localserver/outbox ./localserver/httpup ./upstream/protocol

# The core packages' tests built for Windows, run under wine by
# packaging/crosstests_test.go: bin/windows-tests/<path with _>.test.exe.
CORE_PKGS := ./internal/... ./localserver/... ./upstream/... ./cli/...
windows-tests: APT_PKGS = $(RUN_PKGS) gcc-mingw-w64-x86-64
windows-tests: deps
	rm -rf bin/windows-tests && mkdir -p bin/windows-tests
	for p in $$($(GO) list -f '{{if or .TestGoFiles .XTestGoFiles}}{{.ImportPath}}{{end}}' $(CORE_PKGS)); do \
	  $(WINDOWS_ENV) $(GO) test -c -o bin/windows-tests/$$(echo $${p#synctray/} | tr / _).test.exe $$p || exit 1; \
	done

# Every package this machine builds, into bin/, with SHA256SUMS.
release: package deb windows installer
	cd bin && sha256sum synctray-$(VERSION)-linux-amd64.tar.xz synctray_$(VERSION)_amd64.deb synctray.exe synctray-setup.exe > SHA256SUMS
	@cat bin/SHA256SUMS

# The Debian package: bin/synctray_<version>_amd64.deb, made by nfpm (from
# the Go module proxy, pinned) from packaging/linux/nfpm.yaml: the binary
# (stripped), the .desktop file, the icons, the man page and the
# copyright file (synctray's terms and the licenses of every Go module in
# the binary). The one version is FyneApp.toml's. Before packing,
# packaging/linux/check-depends.sh checks that nfpm.yaml's Depends has the
# package of every library the binary links (objdump: NEEDED) or GLFW
# loads (the libX*.so names in it); without binutils it fails, naming it.
# Needs binutils (objdump, strings) and dpkg; packaging/deb_test.go tests
# the result (desktop-file-validate: desktop-file-utils). The files' times
# are the last commit's (SOURCE_DATE_EPOCH): the same binary and tree give
# the same .deb, byte for byte.
NFPM    := github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.45.2
DEB_BIN := bin/deb/synctray
deb:
	mkdir -p bin/deb && $(GO) build -ldflags "-s -w" -o $(DEB_BIN) .   # stripped, as Debian ships programs
	sh packaging/linux/check-depends.sh $(DEB_BIN) packaging/linux/nfpm.yaml
	gzip -9n < packaging/linux/synctray.1 > bin/deb/synctray.1.gz
	$(GO) run ./packaging/debcopyright $(DEB_BIN) > bin/deb/copyright
	rm -f bin/synctray_*_amd64.deb
	VERSION=$(VERSION) SOURCE_DATE_EPOCH=$$(git log -1 --format=%ct 2>/dev/null || date +%s) \
	  $(GO) run $(NFPM) pkg --packager deb --config packaging/linux/nfpm.yaml --target bin/
	@ls -l bin/synctray_$(VERSION)_amd64.deb

# The per-user NSIS installer bin/synctray-setup.exe of bin/synctray.exe
# (packaging/windows/synctray.nsi: its options /S, /AUTOSTART=1|0, and the
# uninstaller's /PURGE=1 are described there).
WIN_EXE   := bin/synctray.exe
SETUP_EXE := bin/synctray-setup.exe

installer: $(SETUP_EXE)
$(SETUP_EXE): windows packaging/windows/synctray.nsi FyneApp.toml
	@$(MAKE) --no-print-directory deps APT_PKGS="nsis"
	@test -n "$(VERSION)" || { echo "no Version in FyneApp.toml"; exit 1; }
	makensis -V2 -NOCD -DEXE=$(WIN_EXE) -DVERSION=$(VERSION) -DOUTFILE=$(SETUP_EXE) packaging/windows/synctray.nsi

# The wine smoke tests of the .exe and the installer (packaging/wine_test.go),
# failing instead of skipping when something is missing.
test-wine: installer
	@$(MAKE) --no-print-directory deps APT_PKGS="wine wine64 gcc-mingw-w64-x86-64"
	SYNCTRAY_REQUIRE_PACKAGES=1 $(GO) test -count=1 -v -run Wine ./packaging/

clean:
	rm -rf bin
