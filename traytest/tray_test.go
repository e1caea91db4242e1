package traytest

import (
	"context"
	"image"
	_ "image/png"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"synctray/app/icons"
	"synctray/internal/testsupport"
	"synctray/localserver/outboxdb"
)

// Icon colours (drawn by package icons).
var (
	colourSynced  = icons.Synced.Hex()
	colourQueued  = icons.Queued.Hex()
	colourOffline = icons.Offline.Hex()
)

// TestTrayOverDBus runs the real binary under Xvfb and a private session
// bus, and uses its tray the way a panel does: it reads the menu over
// dbusmenu, clicks items, and checks the host really did what they say.
func TestTrayOverDBus(t *testing.T) {
	disp := display(t)
	bus := sessionBus(t)
	w := newWatcher(t, bus)
	home := t.TempDir()
	p := start(t, env(home, disp, bus), t.TempDir(), testsupport.FreeAddr(t))
	p.waitHealthy(t)
	item := w.item(t)

	menuIs := func(want ...string) func() bool {
		return func() bool { return labels(w.menu(t, item)) == strings.Join(want, " | ") }
	}
	rest := []string{"---", "Open synctray", "Outbox…", "Sync now"}
	testsupport.WaitFor(t, "the menu of an empty outbox", menuIs(append(append([]string{"Online · all synced (disabled)"}, rest...),
		"Work offline", "Start at login", "---", "Quit")...))
	if c := w.iconColour(t, item); c != colourSynced {
		t.Errorf("icon colour %s, want the synced one %s", c, colourSynced)
	}

	// Work offline really pauses sync.
	w.click(t, item, "Work offline")
	testsupport.WaitFor(t, "work offline in the host", func() bool { return p.status(t).WorkOffline })
	testsupport.WaitFor(t, "the menu says working offline", menuIs(append(append([]string{"Working offline · all synced (disabled)"}, rest...),
		"Work offline [x]", "Start at login", "---", "Quit")...))
	testsupport.WaitFor(t, "the offline icon", func() bool { return w.iconColour(t, item) == colourOffline })

	p.enqueue(t, 3, "from the test")
	testsupport.WaitFor(t, "the status line counts the queue", menuIs(append(append([]string{"Working offline · 3 queued (disabled)"}, rest...),
		"Work offline [x]", "Start at login", "---", "Quit")...))
	time.Sleep(300 * time.Millisecond)
	if st := p.status(t); st.Counts["queued"] != 3 || st.Counts["synced"] != 0 {
		t.Fatalf("working offline, counts %v: want 3 queued, none synced", st.Counts)
	}

	// Sync now really sends them to the built-in upstream.
	w.click(t, item, "Sync now")
	testsupport.WaitFor(t, "three actions synced", func() bool {
		st := p.status(t)
		return st.Counts["synced"] == 3 && st.Counts["queued"] == 0
	})
	testsupport.WaitFor(t, "the status line after the sync", menuIs(append(append([]string{"Working offline · all synced (disabled)"}, rest...),
		"Work offline [x]", "Start at login", "---", "Quit")...))
	// The backlog went out after working offline: one desktop notification.
	// It expires by itself, so that they do not pile up on screen.
	testsupport.WaitFor(t, "the back-online notification", func() bool {
		return slices.ContainsFunc(w.notifications(), func(n note) bool {
			return n == note{App: "io.github.synctray", Summary: "Back online", Body: "3 actions synced", Timeout: 10000}
		})
	})

	// Back to automatic sync; an action enqueued now goes out by itself.
	w.click(t, item, "Work offline")
	testsupport.WaitFor(t, "automatic sync again", func() bool { return !p.status(t).WorkOffline })
	p.enqueue(t, 1, "automatic")
	testsupport.WaitFor(t, "synced by itself", func() bool { return p.status(t).Counts["synced"] == 4 })
	testsupport.WaitFor(t, "online and synced", menuIs(append(append([]string{"Online · all synced (disabled)"}, rest...),
		"Work offline", "Start at login", "---", "Quit")...))
	if c := w.iconColour(t, item); c != colourSynced {
		t.Errorf("icon colour %s, want the synced one %s", c, colourSynced)
	}

	// Start at login writes the XDG autostart entry.
	w.click(t, item, "Start at login")
	desktop := filepath.Join(home, ".config", "autostart", "io.github.synctray.desktop")
	testsupport.WaitFor(t, "the autostart file", func() bool { _, err := os.Stat(desktop); return err == nil })
	testsupport.WaitFor(t, "Start at login checked", func() bool { return strings.Contains(labels(w.menu(t, item)), "Start at login [x]") })
	b, _ := os.ReadFile(desktop)
	if !strings.Contains(string(b), "\nExec="+binary+" ") || !strings.Contains(string(b), `"--data-dir=`+p.dir+`"`) {
		t.Errorf("autostart file:\n%s", b)
	}
	w.click(t, item, "Start at login")
	testsupport.WaitFor(t, "the autostart file removed", func() bool { _, err := os.Stat(desktop); return os.IsNotExist(err) })

	// Quit is graceful: the process exits 0 and the outbox is closed.
	w.click(t, item, "Quit")
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		t.Fatal("Quit did not stop synctray within 15 s")
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("exit %d after Quit\n%s", code, p.log.String())
	}
	checkClosedOutbox(t, p.dir, 4)
}

// checkClosedOutbox checks that the outbox was closed cleanly (its WAL
// checkpointed away), is intact, and holds the synced actions.
func checkClosedOutbox(t *testing.T, dir string, synced int) {
	t.Helper()
	if fi, err := os.Stat(filepath.Join(dir, "outbox.db-wal")); err == nil && fi.Size() > 0 {
		t.Errorf("outbox.db-wal is %d bytes after exit: the database was not closed", fi.Size())
	}
	db, err := outboxdb.Open(filepath.Join(dir, "outbox.db"), outboxdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	if err := db.IntegrityCheck(ctx); err != nil {
		t.Errorf("outbox integrity: %v", err)
	}
	counts, err := db.Counts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if counts["synced"] != synced {
		t.Errorf("outbox counts %v, want %d synced", counts, synced)
	}
}

// TestInspectorWindowUnderXvfb opens the inspector of a running tray app
// through the single-instance path (a second synctray start), screenshots
// it, and stops the app with SIGTERM.
func TestInspectorWindowUnderXvfb(t *testing.T) {
	need(t, "import")
	disp := display(t)
	bus := sessionBus(t)
	w := newWatcher(t, bus)
	home, dir, addr := t.TempDir(), t.TempDir(), testsupport.FreeAddr(t)
	environ := env(home, disp, bus)
	p := start(t, environ, dir, addr, "--work-offline")
	p.waitHealthy(t)
	w.item(t) // the tray is up, the window hidden
	p.enqueue(t, 4, "hello")
	if code := p.api(t, "POST", "/api/sync", nil, nil); code != 200 {
		t.Fatalf("POST /api/sync: %d", code)
	}
	p.enqueue(t, 3, "later")

	blank := screenshot(t, disp, filepath.Join(t.TempDir(), "before.png"))
	if blank > 2 {
		t.Fatalf("the screen has %d colours before the window was shown: want it blank", blank)
	}

	second := exec.Command(binary, "--data-dir", dir, "--addr", addr)
	second.Env = environ
	out, err := second.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "showing its window") {
		t.Fatalf("second start: %v\n%s", err, out)
	}

	shot := filepath.Join(artifacts(t), "inspector.png")
	var colours int
	testsupport.WaitFor(t, "the window on screen", func() bool {
		colours = screenshot(t, disp, shot)
		return colours >= 8
	})
	time.Sleep(500 * time.Millisecond) // let the rows arrive, then the final shot
	colours = screenshot(t, disp, shot)
	t.Logf("inspector screenshot: %s (%d colours)", shot, colours)

	p.stop(t)
	checkClosedOutbox(t, dir, 4)
}

// screenshot saves the root window as a PNG and returns its number of
// distinct colours (1 for a blank screen).
func screenshot(t *testing.T, disp, path string) int {
	t.Helper()
	cmd := exec.Command("import", "-display", disp, "-window", "root", path)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("import: %v\n%s", err, out)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, _, err := image.Decode(f)
	if err != nil {
		t.Fatalf("decode %s: %v", path, err)
	}
	seen := map[[3]uint32]bool{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y += 2 {
		for x := b.Min.X; x < b.Max.X; x += 2 {
			r, g, bl, _ := img.At(x, y).RGBA()
			seen[[3]uint32{r >> 8, g >> 8, bl >> 8}] = true
		}
	}
	return len(seen)
}

// TestWithoutSessionBus runs the app with a display but no DBus: no tray,
// the window instead, and a clean stop on SIGTERM (no panic in godbus).
func TestWithoutSessionBus(t *testing.T) {
	disp := display(t)
	p := start(t, env(t.TempDir(), disp, ""), t.TempDir(), testsupport.FreeAddr(t))
	p.waitHealthy(t)
	testsupport.WaitFor(t, "the log line", func() bool { return strings.Contains(p.log.String(), "no session bus") })
	if code := p.api(t, "POST", "/api/ui/show", nil, nil); code != 200 {
		t.Errorf("POST /api/ui/show: %d, want 200 (the window)", code)
	}
	p.enqueue(t, 2, "no bus")
	testsupport.WaitFor(t, "synced without a tray", func() bool { return p.status(t).Counts["synced"] == 2 })
	p.stop(t)
	checkClosedOutbox(t, p.dir, 2)
}

// TestWithoutDisplay runs `synctray` where there is no display: it serves
// like `synctray serve` and says so.
func TestWithoutDisplay(t *testing.T) {
	p := start(t, env(t.TempDir(), "", ""), t.TempDir(), testsupport.FreeAddr(t))
	p.waitHealthy(t)
	want := "no display: running without the tray; `synctray serve` does this explicitly"
	testsupport.WaitFor(t, "the log line", func() bool { return strings.Contains(p.log.String(), want) })
	if code := p.api(t, "POST", "/api/ui/show", nil, nil); code != 501 {
		t.Errorf("POST /api/ui/show: %d, want 501 (no window)", code)
	}
	p.stop(t)
}

// TestSecondStartOpensTheBrowserWhenServing: a second `synctray` next to a
// running `synctray serve` (no window) opens the browser through a login
// link and exits 0, instead of failing on the port.
func TestSecondStartOpensTheBrowserWhenServing(t *testing.T) {
	dir, addr, home := t.TempDir(), testsupport.FreeAddr(t), t.TempDir()
	p := start(t, env(home, "", ""), dir, addr, "serve")
	p.waitHealthy(t)

	bin := t.TempDir()
	opened := filepath.Join(t.TempDir(), "opened")
	script := "#!/bin/sh\necho \"$1\" > " + opened + "\n"
	if err := os.WriteFile(filepath.Join(bin, "xdg-open"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	second := exec.Command(binary, "--data-dir", dir, "--addr", addr)
	second.Env = env(home, "", "", "PATH="+bin+":"+os.Getenv("PATH"))
	out, err := second.CombinedOutput()
	if err != nil {
		t.Fatalf("second start: %v\n%s", err, out)
	}
	testsupport.WaitFor(t, "the browser opened", func() bool {
		b, _ := os.ReadFile(opened)
		return strings.Contains(string(b), p.base+"/login?token=")
	})
	if !strings.Contains(string(out), "without a window") {
		t.Errorf("second start said:\n%s", out)
	}
	p.stop(t)
}

// TestInspectorWithALargeOutboxUnderXvfb shows the outbox window over
// 100,000 queued actions at its default size and keeps a screenshot.
func TestInspectorWithALargeOutboxUnderXvfb(t *testing.T) {
	need(t, "import")
	disp := display(t)
	bus := sessionBus(t)
	w := newWatcher(t, bus)
	src := prefilled(t)
	home, dir, addr := t.TempDir(), t.TempDir(), testsupport.FreeAddr(t)
	for _, name := range []string{"outbox.db", "outbox.db-wal"} {
		if b, err := os.ReadFile(filepath.Join(src, name)); err == nil {
			if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
				t.Fatal(err)
			}
		}
	}
	environ := env(home, disp, bus)
	p := start(t, environ, dir, addr, "--work-offline")
	p.waitHealthy(t)
	w.item(t)
	if st := p.status(t); st.Counts["queued"] != bigOutbox {
		t.Fatalf("counts %v, want %d queued", st.Counts, bigOutbox)
	}
	second := exec.Command(binary, "--data-dir", dir, "--addr", addr)
	second.Env = environ
	if out, err := second.CombinedOutput(); err != nil || !strings.Contains(string(out), "showing its window") {
		t.Fatalf("second start: %v\n%s", err, out)
	}
	shot := filepath.Join(artifacts(t), "inspector-100k.png")
	testsupport.WaitFor(t, "the window on screen", func() bool { return screenshot(t, disp, shot) >= 8 })
	time.Sleep(500 * time.Millisecond) // let the first page arrive, then the final shot
	t.Logf("inspector screenshot over %d actions: %s (%d colours)", bigOutbox, shot, screenshot(t, disp, shot))
	p.stop(t)
}
