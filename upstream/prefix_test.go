package upstream

import (
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestAPathPrefixIsKeptOnEveryRequest(t *testing.T) {
	for _, prefix := range []string{"/myapi", "/my%2Fapi", "/a/b%20c"} {
		t.Run("under "+prefix, func(t *testing.T) {
			st := openTestStore(t)
			srv := NewServer(st, Options{})
			var mu sync.Mutex
			var seen []string
			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				p := r.URL.EscapedPath()
				mu.Lock()
				seen = append(seen, p)
				mu.Unlock()
				rest, ok := strings.CutPrefix(p, prefix)
				if !ok {
					http.NotFound(w, r)
					return
				}
				r2 := r.Clone(r.Context())
				r2.URL.Path, r2.URL.RawPath = rest, ""
				srv.ServeHTTP(w, r2)
			}))
			t.Cleanup(func() { srv.Close(); ts.Close() })
			c := &Client{BaseURL: ts.URL + prefix + "/"}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			if _, err := c.Send(ctx, []Action{act("a", "t", `1`)}); err != nil {
				t.Fatalf("send: %v", err)
			}
			if err := c.Health(ctx); err != nil {
				t.Fatalf("health: %v", err)
			}
			if _, _, err := c.Events(ctx, 0, 1); err != nil {
				t.Fatalf("events: %v", err)
			}
			got := make(chan Event, 1)
			go c.Follow(ctx, 0, time.Hour, func(e Event) {
				select {
				case got <- e:
				default:
				}
			})
			select {
			case <-got:
			case <-ctx.Done():
				t.Fatal("no event through Follow")
			}
			cancel()
			mu.Lock()
			defer mu.Unlock()
			want := []string{prefix + "/v1/actions", prefix + "/v1/stats", prefix + "/v1/events", prefix + "/v1/events/ws"}
			for _, w := range want {
				if !slices.Contains(seen, w) {
					t.Errorf("no request to %s; requests: %v", w, seen)
				}
			}
		})
	}
}
