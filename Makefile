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
TEST_PKGS := $(RUN_PKGS) chromium xvfb xauth dbus imagemagick

.PHONY: run test deps node-deps build bench fuzz vet clean package windows installer test-wine

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
test: APT_PKGS = $(TEST_PKGS)
test: deps node-deps
	$(GO) vet ./...
	$(GO) test -count=1 -shuffle=on -timeout 20m ./...
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
package: deps
	$(GO) run fyne.io/tools/cmd/fyne@v1.7.4 package --os linux --release
	mkdir -p bin && mv synctray.tar.xz bin/

# Windows, cross-built here with mingw: bin/synctray.exe, and the per-user
# NSIS installer bin/synctray-setup.exe (packaging/windows/synctray.nsi:
# its options /S, /AUTOSTART=1|0, and the uninstaller's /PURGE=1 are
# described there). VERSION comes from FyneApp.toml.
VERSION   := $(shell sed -n 's/^Version *= *"\(.*\)"/\1/p' FyneApp.toml)
WIN_EXE   := bin/synctray.exe
SETUP_EXE := bin/synctray-setup.exe

# PLACEHOLDER, the integrator replaces it (with the GUI-subsystem build with
# icon, `fyne package --os windows`): for now the plain console cross build.
windows:
	@$(MAKE) --no-print-directory deps APT_PKGS="gcc-mingw-w64-x86-64"
	CGO_ENABLED=1 GOOS=windows GOARCH=amd64 CC=x86_64-w64-mingw32-gcc $(GO) build -o $(WIN_EXE) .

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
