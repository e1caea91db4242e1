# synctray — the two commands of the README are `make run` and `make test`.
GO      ?= go
BIN     := bin/synctray
# Debian packages: cgo for SQLite and Fyne (GLFW, X11), Chromium for the
# browser tests, Xvfb/DBus/ImageMagick for the tray tests and screenshots.
APT_PKGS := gcc libc6-dev pkg-config libgl1-mesa-dev libx11-dev libxcursor-dev libxrandr-dev \
	libxinerama-dev libxi-dev libxxf86vm-dev chromium xvfb xauth dbus imagemagick

.PHONY: run test deps build bench fuzz vet clean

run: deps build
	./$(BIN)

build:
	$(GO) build -o $(BIN) .

# Installs the Debian packages that are missing (with sudo when not root).
deps:
	@missing=""; for p in $(APT_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q --no-install-recommends $$missing; \
	fi

# Every test, one `go test` call so the build cache is shared.
test: deps
	$(GO) vet ./...
	$(GO) test -count=1 -shuffle=on -timeout 20m ./...

bench: deps
	$(GO) test -run '^$$' -bench . -benchmem -timeout 30m ./...

fuzz:
	$(GO) test -run '^$$' -fuzz FuzzDecodeActionRequest -fuzztime 60s ./localserver/

clean:
	rm -rf bin
