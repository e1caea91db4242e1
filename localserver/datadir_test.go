package localserver_test

import (
	"context"
	"encoding/json"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"synctray/internal/testsupport"
	"synctray/localserver"
	"synctray/localserver/outbox"
	"synctray/localserver/outboxdb"
)

// openErr opens a host on dir and returns the error, closing a host that
// did open.
func openErr(t *testing.T, dir, upURL string, reset bool) error {
	t.Helper()
	h, err := localserver.Open(localserver.Config{DataDir: dir, Addr: "127.0.0.1:0", UpstreamURL: upURL, ResetOutbox: reset,
		Logger: testsupport.Logger(t)})
	if err == nil {
		h.Close()
	}
	return err
}

func TestDataDirLock(t *testing.T) {
	t.Run("a second host on the same data dir fails at once, naming the first", func(t *testing.T) {
		e := startHost(t, localserver.Config{WorkOffline: true})
		err := openErr(t, e.dataDir, e.upURL, false)
		want := "data dir " + e.dataDir + " is in use by synctray (pid " + strconv.Itoa(os.Getpid()) + ", " + e.url + ")"
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("second Open: %v\nwant it to say %q", err, want)
		}
		// The first host is untouched.
		if code, _ := e.post(testsupport.NewKey(), "message", `{}`); code != 202 {
			t.Fatalf("first host after the refused second: POST = %d", code)
		}
	})

	t.Run("once the first host stops, the data dir opens again", func(t *testing.T) {
		e := startHost(t, localserver.Config{WorkOffline: true})
		e.stop()
		if err := openErr(t, e.dataDir, e.upURL, false); err != nil {
			t.Fatalf("Open after the first host stopped: %v", err)
		}
	})

	t.Run("a host that fails to open releases the data dir", func(t *testing.T) {
		busy, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer busy.Close()
		dir := t.TempDir()
		_, err = localserver.Open(localserver.Config{DataDir: dir, Addr: busy.Addr().String(), UpstreamURL: "http://127.0.0.1:1"})
		if err == nil || !strings.Contains(err.Error(), "taken") {
			t.Fatalf("Open on a taken port: %v", err)
		}
		// ... and it was still a first start: no outbox is missing.
		if err := openErr(t, dir, "http://127.0.0.1:1", false); err != nil {
			t.Fatalf("Open after a failed first start: %v", err)
		}
	})
}

// modes returns the permission bits of every file and directory under dir.
func modes(t *testing.T, dir string) map[string]fs.FileMode {
	t.Helper()
	out := map[string]fs.FileMode{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out[rel] = fi.Mode().Perm()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func checkPrivate(t *testing.T, dir string, mustHave ...string) {
	t.Helper()
	m := modes(t, dir)
	for _, name := range mustHave {
		if _, ok := m[name]; !ok {
			t.Errorf("%s not in the data dir (have %v)", name, m)
		}
	}
	for name := range m {
		testsupport.CheckPrivate(t, filepath.Join(dir, name))
	}
}

func TestDataDirPermissions(t *testing.T) {
	t.Run("a new data dir and every file in it are private, SQLite's -wal and -shm included", func(t *testing.T) {
		e := startHost(t, localserver.Config{WorkOffline: true})
		e.post(testsupport.NewKey(), "message", `{}`)
		checkPrivate(t, e.dataDir, "outbox.db", "outbox.db-wal", "outbox.db-shm", "push.db", "push.db-wal", "api-token", "lock")
	})

	t.Run("an existing 0755 data dir with 0644 files ends up 0700 with 0600 files", func(t *testing.T) {
		testsupport.UnixModes(t)
		dir := filepath.Join(t.TempDir(), "synctray")
		os.Mkdir(dir, 0o755)
		db, err := outboxdb.Open(filepath.Join(dir, "outbox.db"), outboxdb.Options{})
		if err != nil {
			t.Fatal(err)
		}
		db.Close()
		os.WriteFile(filepath.Join(dir, "events-cursor"), []byte("0\n"), 0o644)
		os.WriteFile(filepath.Join(dir, "push.db-shm"), nil, 0o644)
		for _, name := range []string{".", "outbox.db", "events-cursor", "push.db-shm"} {
			if err := os.Chmod(filepath.Join(dir, name), map[bool]fs.FileMode{true: 0o755, false: 0o644}[name == "."]); err != nil {
				t.Fatal(err)
			}
		}
		e := startHost(t, localserver.Config{DataDir: dir, WorkOffline: true})
		e.post(testsupport.NewKey(), "message", `{}`)
		checkPrivate(t, dir, "outbox.db", "outbox.db-wal", "events-cursor", "push.db")
	})
}

// usedDataDir runs a host once on a new data dir, with one action queued,
// and returns the dir and the upstream URL.
func usedDataDir(t *testing.T) (dir, upURL string) {
	t.Helper()
	e := startHost(t, localserver.Config{WorkOffline: true})
	if code, _ := e.post(testsupport.NewKey(), "message", `{"text":"queued"}`); code != 202 {
		t.Fatalf("POST = %d", code)
	}
	e.stop()
	return e.dataDir, e.upURL
}

func TestOutboxFile(t *testing.T) {
	t.Run("a missing outbox in a data dir that had one is refused, naming the file", func(t *testing.T) {
		dir, upURL := usedDataDir(t)
		path := filepath.Join(dir, "outbox.db")
		for _, p := range []string{path, path + "-wal", path + "-shm"} {
			os.Remove(p)
		}
		err := openErr(t, dir, upURL, false)
		if err == nil || !strings.Contains(err.Error(), path+" is missing") || !strings.Contains(err.Error(), "--reset-outbox") {
			t.Fatalf("Open: %v, want a refusal naming %s and --reset-outbox", err, path)
		}
		if _, err := os.Stat(path); err == nil {
			t.Fatal("a refused start created a new outbox.db")
		}
	})

	t.Run("an emptied outbox (0 bytes) is refused, naming the file", func(t *testing.T) {
		dir, upURL := usedDataDir(t)
		path := filepath.Join(dir, "outbox.db")
		if err := os.Truncate(path, 0); err != nil {
			t.Fatal(err)
		}
		err := openErr(t, dir, upURL, false)
		if err == nil || !strings.Contains(err.Error(), path+" is empty") || !strings.Contains(err.Error(), "--reset-outbox") {
			t.Fatalf("Open: %v, want a refusal naming %s and --reset-outbox", err, path)
		}
	})

	t.Run("reset moves an emptied outbox aside and starts with a new one", func(t *testing.T) {
		dir, upURL := usedDataDir(t)
		path := filepath.Join(dir, "outbox.db")
		os.Truncate(path, 0)
		e := startHost(t, localserver.Config{DataDir: dir, UpstreamURL: upURL, ResetOutbox: true, WorkOffline: true})
		baks, _ := filepath.Glob(path + ".bak-*")
		if len(baks) != 1 {
			t.Fatalf("backups %v, want the emptied outbox.db moved aside", baks)
		}
		if fi, err := os.Stat(baks[0]); err != nil || fi.Size() != 0 {
			t.Fatalf("backup %s: %v, want the 0-byte file", baks[0], err)
		}
		if code, a := e.post(testsupport.NewKey(), "message", `{}`); code != 202 || a.ID != 1 {
			t.Fatalf("enqueue after reset = %d id %d, want 202 in a new outbox", code, a.ID)
		}
		// The new outbox is the data dir's outbox now: a restart keeps it.
		e.restart()
		if c := e.status().Counts; c[outbox.Queued] != 1 {
			t.Fatalf("counts after restart = %v, want the one queued action", c)
		}
	})

	t.Run("reset keeps a healthy outbox", func(t *testing.T) {
		dir, upURL := usedDataDir(t)
		e := startHost(t, localserver.Config{DataDir: dir, UpstreamURL: upURL, ResetOutbox: true, WorkOffline: true})
		if c := e.status().Counts; c[outbox.Queued] != 1 {
			t.Fatalf("counts = %v, want the queued action kept", c)
		}
		if baks, _ := filepath.Glob(filepath.Join(dir, "outbox.db.bak-*")); len(baks) != 0 {
			t.Fatalf("a healthy outbox was moved aside: %v", baks)
		}
	})

	t.Run("a damaged outbox is refused at start, naming the file; reset moves it aside", func(t *testing.T) {
		dir, upURL := usedDataDir(t)
		path := filepath.Join(dir, "outbox.db")
		db, err := outboxdb.Open(path, outboxdb.Options{})
		if err != nil {
			t.Fatal(err)
		}
		var batch []outbox.NewAction
		for i := 0; i < 2000; i++ {
			batch = append(batch, outbox.NewAction{Key: testsupport.NewKey(), Type: "message", Payload: json.RawMessage(`{"text":"` + strings.Repeat("x", 100) + `"}`)})
		}
		if _, err := db.EnqueueBatch(context.Background(), batch); err != nil {
			t.Fatal(err)
		}
		db.Close()
		testsupport.DamagePage(t, path, 30)

		err = openErr(t, dir, upURL, false)
		if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "damaged") || !strings.Contains(err.Error(), "--reset-outbox") {
			t.Fatalf("Open: %v, want a refusal naming %s as damaged and --reset-outbox", err, path)
		}
		if err := openErr(t, dir, upURL, true); err != nil {
			t.Fatalf("Open with reset: %v", err)
		}
		if baks, _ := filepath.Glob(path + ".bak-*"); len(baks) == 0 {
			t.Fatal("the damaged outbox was not moved aside")
		}
	})
}

func TestDataDirWithSpecialCharacters(t *testing.T) {
	t.Run("a data dir whose path holds ? # and % works", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), testsupport.OddName("my sync tray"))
		e := startHost(t, localserver.Config{DataDir: dir, WorkOffline: true})
		if code, _ := e.post(testsupport.NewKey(), "message", `{}`); code != 202 {
			t.Fatalf("POST = %d", code)
		}
		for _, name := range []string{"outbox.db", "push.db"} {
			if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
				t.Errorf("%s not in the data dir: %v", name, err)
			}
		}
	})
}
