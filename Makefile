# synctray — the two commands of the README are `make run` and `make test`.
# Go from /usr/local/go where it is not on PATH yet.
export PATH := $(PATH):/usr/local/go/bin
GO      ?= go
BIN     := bin/synctray
# Debian packages: to build and run, cgo for SQLite and Fyne (GLFW, X11);
# to test, also Chromium for the browser tests and Xvfb/DBus/ImageMagick
# for the tray tests and screenshots.
RUN_PKGS  := gcc libc6-dev pkg-config libgl1-mesa-dev libx11-dev libxcursor-dev libxrandr-dev \
	libxinerama-dev libxi-dev libxxf86vm-dev
# To build and test the packages: mingw-w64 (the Windows build), wine (to
# run it), nsis (the installer), desktop-file-utils and binutils (to check
# the .deb).
RELEASE_PKGS := gcc-mingw-w64-x86-64 wine wine64 nsis desktop-file-utils binutils
TEST_PKGS := $(RUN_PKGS) chromium xvfb xauth dbus imagemagick $(RELEASE_PKGS)

# The version is FyneApp.toml's, the one place it is written.
VERSION := $(shell sed -n 's/^Version *= *"\(.*\)"/\1/p' FyneApp.toml)
# Binaries name the commit they were built from (`synctray version`): some
# machines set GOFLAGS=-buildvcs=false; stamp where there is a checkout.
export GOFLAGS := $(filter-out -buildvcs=%,$(GOFLAGS)) -buildvcs=auto

.PHONY: run test deps node-deps build bench fuzz vet clean package windows windows-tests installer deb release

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
	SYNCTRAY_REQUIRE_PACKAGES=1 $(GO) test -count=1 -shuffle=on -timeout 20m ./...
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
FYNE := bin/tools/fyne
$(FYNE):
	GOBIN=$(CURDIR)/bin/tools $(GO) install fyne.io/tools/cmd/fyne@v1.7.4

windows: APT_PKGS = $(RUN_PKGS) gcc-mingw-w64-x86-64
windows: deps $(FYNE)
	mkdir -p bin && cp FyneApp.toml bin/FyneApp.toml.orig
	$(WINDOWS_ENV) $(FYNE) package --os windows --release --app-version $(VERSION) || { mv bin/FyneApp.toml.orig FyneApp.toml; exit 1; }
	mv bin/FyneApp.toml.orig FyneApp.toml
	mv synctray.exe bin/synctray.exe

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

clean:
	rm -rf bin
