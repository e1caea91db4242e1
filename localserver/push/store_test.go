package push_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"synctray/internal/testsupport"
	"synctray/localserver/push"
)

func TestStore(t *testing.T) {
	t.Run("a data dir whose path holds ? # and % keeps subscriptions in its own push.db", func(t *testing.T) {
		parent := t.TempDir()
		dir := filepath.Join(parent, testsupport.OddName("sync tray"))
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, "push.db")
		store, err := push.OpenStore(path)
		if err != nil {
			t.Fatalf("OpenStore: %v", err)
		}
		sub := newBrowser(t).subscription("https://push.example/a")
		if err := store.Add(context.Background(), sub); err != nil {
			t.Fatalf("Add: %v", err)
		}
		if err := store.Close(); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(path); err != nil {
			t.Fatalf("push.db is not in the data dir: %v", err)
		}
		if entries, _ := os.ReadDir(parent); len(entries) != 1 {
			t.Fatalf("%d entries beside the data dir, want none (a database was made at a cut path)", len(entries)-1)
		}
		store, err = push.OpenStore(path)
		if err != nil {
			t.Fatalf("reopen: %v", err)
		}
		defer store.Close()
		if subs, err := store.All(context.Background()); err != nil || len(subs) != 1 || subs[0].Endpoint != sub.Endpoint {
			t.Fatalf("after reopen: %v, %v; want the one subscription", subs, err)
		}
	})

	t.Run("push.db and its -wal and -shm are private", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "push.db")
		store, err := push.OpenStore(path)
		if err != nil {
			t.Fatal(err)
		}
		defer store.Close()
		if err := store.Add(context.Background(), newBrowser(t).subscription("https://push.example/b")); err != nil {
			t.Fatal(err)
		}
		for _, p := range []string{path, path + "-wal", path + "-shm"} {
			testsupport.CheckPrivate(t, p)
		}
	})
}
