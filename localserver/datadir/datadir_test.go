package datadir_test

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"

	"synctray/internal/testsupport"
	"synctray/localserver/datadir"
)

func TestPrepare(t *testing.T) {
	t.Run("a new data dir is made 0700", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "a", "synctray")
		if err := datadir.Prepare(dir); err != nil {
			t.Fatal(err)
		}
		testsupport.CheckPrivate(t, dir)
	})

	t.Run("an existing 0755 data dir is narrowed to 0700", func(t *testing.T) {
		testsupport.UnixModes(t)
		dir := filepath.Join(t.TempDir(), "synctray")
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		os.Chmod(dir, 0o755) // whatever the umask
		if err := datadir.Prepare(dir); err != nil {
			t.Fatal(err)
		}
		if m := testsupport.Perm(t, dir); m != 0o700 {
			t.Fatalf("mode = %v, want 0700", m)
		}
	})

	t.Run("a data dir owned by another user is refused and left alone", func(t *testing.T) {
		testsupport.UnixModes(t) // owners and modes: on Windows the ACL decides
		if os.Geteuid() != 0 {
			// Without root no directory can be given away; a system one
			// (owned by root) is another user's.
			err := datadir.Prepare("/usr")
			if err == nil || !strings.Contains(err.Error(), "belongs to another user") {
				t.Fatalf("Prepare(/usr) as uid %d: %v, want a refusal", os.Geteuid(), err)
			}
			return
		}
		dir := filepath.Join(t.TempDir(), "theirs")
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		os.Chmod(dir, 0o755)
		if err := os.Chown(dir, 4242, 4242); err != nil {
			t.Fatal(err)
		}
		err := datadir.Prepare(dir)
		if err == nil || !strings.Contains(err.Error(), "belongs to another user") || !strings.Contains(err.Error(), dir) {
			t.Fatalf("err = %v, want a refusal naming the dir and its owner", err)
		}
		if m := testsupport.Perm(t, dir); m != 0o755 {
			t.Fatalf("mode = %v: another user's dir was changed", m)
		}
	})

	t.Run("a file where the data dir should be is refused", func(t *testing.T) {
		p := filepath.Join(t.TempDir(), "f")
		os.WriteFile(p, nil, 0o600)
		if err := datadir.Prepare(p); err == nil {
			t.Fatal("a plain file was accepted as the data dir")
		}
	})
}

func TestRestrictFiles(t *testing.T) {
	t.Run("files other users can read become 0600, except those kept", func(t *testing.T) {
		testsupport.UnixModes(t)
		dir := t.TempDir()
		for name, mode := range map[string]os.FileMode{"outbox.db": 0o644, "outbox.db-wal": 0o666, "events-cursor": 0o640, "ok": 0o600, "api-token": 0o644} {
			os.WriteFile(filepath.Join(dir, name), []byte("x"), mode)
			os.Chmod(filepath.Join(dir, name), mode)
		}
		os.Mkdir(filepath.Join(dir, "upstream"), 0o755)
		changed, err := datadir.RestrictFiles(dir, "api-token")
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(changed)
		if want := []string{"events-cursor", "outbox.db", "outbox.db-wal"}; !slices.Equal(changed, want) {
			t.Fatalf("changed %v, want %v", changed, want)
		}
		for _, name := range []string{"outbox.db", "outbox.db-wal", "events-cursor", "ok"} {
			if m := testsupport.Perm(t, filepath.Join(dir, name)); m != 0o600 {
				t.Errorf("%s: mode %v, want 0600", name, m)
			}
		}
		if m := testsupport.Perm(t, filepath.Join(dir, "api-token")); m != 0o644 {
			t.Errorf("api-token: mode %v, want it kept for its own check", m)
		}
	})
}

func TestWriteFileAtomic(t *testing.T) {
	t.Run("replaces the content, mode 0600, and leaves no temporary file", func(t *testing.T) {
		dir := t.TempDir()
		p := filepath.Join(dir, "events-cursor")
		os.WriteFile(p, []byte("1\n"), 0o644)
		if err := datadir.WriteFileAtomic(p, []byte("42\n")); err != nil {
			t.Fatal(err)
		}
		if b, _ := os.ReadFile(p); string(b) != "42\n" {
			t.Fatalf("content = %q, want 42", b)
		}
		testsupport.CheckPrivate(t, p)
		if entries, _ := os.ReadDir(dir); len(entries) != 1 {
			t.Fatalf("%d files in the dir, want only the target", len(entries))
		}
	})

	t.Run("replaces the file rather than writing into it", func(t *testing.T) {
		// A reader holding the old file sees the old content whole: the
		// new one is a new file renamed over it.
		if runtime.GOOS == "windows" {
			t.Skip("Windows refuses to rename over a file another handle holds open")
		}
		p := filepath.Join(t.TempDir(), "c")
		datadir.WriteFileAtomic(p, []byte("old"))
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := datadir.WriteFileAtomic(p, []byte("new content")); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 64)
		n, _ := f.Read(buf)
		if string(buf[:n]) != "old" {
			t.Fatalf("the open old file reads %q: it was written in place", buf[:n])
		}
	})

	t.Run("a failed rename keeps what was there and removes the temporary file", func(t *testing.T) {
		dir := t.TempDir()
		target := filepath.Join(dir, "busy")
		os.MkdirAll(filepath.Join(target, "child"), 0o700) // a non-empty dir cannot be renamed over
		if err := datadir.WriteFileAtomic(target, []byte("x")); err == nil {
			t.Fatal("write over a non-empty directory succeeded")
		}
		entries, _ := os.ReadDir(dir)
		if len(entries) != 1 || entries[0].Name() != "busy" {
			t.Fatalf("dir holds %v, want only the untouched target", entries)
		}
	})
}

func TestLock(t *testing.T) {
	t.Run("a second lock on the same dir fails at once naming the holder", func(t *testing.T) {
		dir := t.TempDir()
		l, err := datadir.Acquire(dir)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Release()
		if err := l.Record("http://127.0.0.1:7717"); err != nil {
			t.Fatal(err)
		}
		_, err = datadir.Acquire(dir)
		var inUse *datadir.InUseError
		if !errors.As(err, &inUse) {
			t.Fatalf("second Acquire: %v, want an InUseError", err)
		}
		want := "data dir " + dir + " is in use by synctray (pid " + strconv.Itoa(os.Getpid()) + ", http://127.0.0.1:7717)"
		if !strings.HasPrefix(err.Error(), want) {
			t.Fatalf("message = %q, want it to start %q", err, want)
		}
	})

	t.Run("released, the dir can be locked again", func(t *testing.T) {
		dir := t.TempDir()
		l, err := datadir.Acquire(dir)
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Release(); err != nil {
			t.Fatal(err)
		}
		if err := l.Release(); err != nil {
			t.Fatalf("second Release: %v", err)
		}
		l2, err := datadir.Acquire(dir)
		if err != nil {
			t.Fatalf("Acquire after Release: %v", err)
		}
		l2.Release()
	})

	t.Run("the lock file is private", func(t *testing.T) {
		dir := t.TempDir()
		l, err := datadir.Acquire(dir)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Release()
		testsupport.CheckPrivate(t, filepath.Join(dir, datadir.LockFile))
	})
}
