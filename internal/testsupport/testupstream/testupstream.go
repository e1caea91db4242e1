// Package testupstream runs the reference upstream for tests. It is apart
// from testsupport so that the upstream's own tests can use testsupport
// without an import cycle. Only tests import it.
package testupstream

import (
	"net/http/httptest"
	"path/filepath"
	"testing"

	"synctray/upstream"
)

// New opens a reference upstream on a store in a temporary directory,
// without serving it: for a test that puts its own handler in front. The
// server and the store are closed when the test ends.
func New(tb testing.TB, opts upstream.Options) (*upstream.Server, upstream.Store) {
	tb.Helper()
	srv, store := open(tb, opts)
	tb.Cleanup(func() { srv.Close(); store.Close() })
	return srv, store
}

// Start is New served on a loopback httptest server; it returns the
// server, its store and its base URL. All three are closed when the test
// ends, the upstream's own connections (event streams) first.
func Start(tb testing.TB, opts upstream.Options) (*upstream.Server, upstream.Store, string) {
	tb.Helper()
	srv, store := open(tb, opts)
	ts := httptest.NewServer(srv)
	tb.Cleanup(func() { srv.Close(); ts.Close(); store.Close() })
	return srv, store, ts.URL
}

func open(tb testing.TB, opts upstream.Options) (*upstream.Server, upstream.Store) {
	tb.Helper()
	store, err := upstream.OpenStore(filepath.Join(tb.TempDir(), "upstream.db"))
	if err != nil {
		tb.Fatal(err)
	}
	return upstream.NewServer(store, opts), store
}
