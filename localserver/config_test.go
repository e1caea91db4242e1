package localserver_test

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"synctray/internal/testsupport"
	"synctray/internal/testsupport/testupstream"
	"synctray/localserver"
	"synctray/localserver/syncer"
	"synctray/upstream"
)

func TestOpenRefusesABadConfiguration(t *testing.T) {
	cases := []struct {
		name   string
		url    string
		batch  int
		errHas string
	}{
		{"an address without a scheme is refused", "127.0.0.1:7760", 0, "not an absolute URL"},
		{"a name and port without a scheme is refused", "localhost:7760", 0, "not an absolute URL"},
		{"words are refused", "not a url", 0, "not an absolute URL"},
		{"a path alone is refused", "/v1", 0, "not an absolute URL"},
		{"http without a host is refused", "http://", 0, "not an absolute URL"},
		{"ftp is refused", "ftp://x", 0, `scheme "ftp" is not supported`},
		{"a WebSocket URL is refused", "ws://127.0.0.1:7718", 0, `scheme "ws" is not supported`},
		{"a query is refused", "http://127.0.0.1:7718/?x=1", 0, "query or fragment"},
		{"credentials in the URL are refused and not echoed", "http://me:s3cret@127.0.0.1:7718", 0, "--upstream-token-file"},
		{"a batch above the protocol's 1,000 is refused", "http://127.0.0.1:1", upstream.MaxBatch + 1, "want 1 to 1000"},
		{"a negative batch size is refused", "http://127.0.0.1:1", -1, "want 1 to 1000"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			h, err := localserver.Open(localserver.Config{
				DataDir: dir, Addr: "127.0.0.1:0", UpstreamURL: c.url,
				Sync:   syncer.Options{BatchSize: c.batch},
				Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
			})
			if err == nil {
				h.Close()
				t.Fatalf("Open(%q, batch %d) succeeded; want an error containing %q", c.url, c.batch, c.errHas)
			}
			if !strings.Contains(err.Error(), c.errHas) || strings.Contains(err.Error(), "s3cret") {
				t.Fatalf("error %q; want it to contain %q (and no secret)", err, c.errHas)
			}
			if _, err := os.Stat(dir); !os.IsNotExist(err) {
				t.Fatalf("data dir created (%v) for a configuration that is refused", err)
			}
		})
	}
	t.Run("http and https URLs with a path prefix are accepted", func(t *testing.T) {
		for _, u := range []string{"http://127.0.0.1:7718", "https://sync.example/myapi/", "http://[::1]:7718/a/b"} {
			if err := localserver.ValidateUpstreamURL(u); err != nil {
				t.Errorf("ValidateUpstreamURL(%q) = %v, want nil", u, err)
			}
		}
	})
}

func TestAnUpstreamPathPrefixIsKept(t *testing.T) {
	srv, store := testupstream.New(t, upstream.Options{})
	var mu sync.Mutex
	var seen []string
	mux := http.NewServeMux()
	mux.Handle("/myapi/", http.StripPrefix("/myapi", srv))
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Method+" "+r.URL.Path)
		mu.Unlock()
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(ts.Close)

	e := startHost(t, localserver.Config{UpstreamURL: ts.URL + "/myapi/"})
	key := testsupport.NewKey()
	if code, _ := e.post(key, "message", `{"text":"hi"}`); code != 202 {
		t.Fatalf("enqueue: %d", code)
	}
	if resp, data := e.req("POST", "/api/sync", nil, nil); resp.StatusCode != 200 {
		t.Fatalf("sync: %d %s", resp.StatusCode, data)
	}
	if keys, _ := store.AppliedKeys(t.Context()); !slices.Equal(keys, []string{key}) {
		t.Fatalf("upstream applied %v, want [%s]", keys, key)
	}
	testsupport.WaitFor(t, "the host to follow the events under the prefix", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return slices.Contains(seen, "GET /myapi/v1/events/ws")
	})
	mu.Lock()
	defer mu.Unlock()
	if !slices.Contains(seen, "POST /myapi/v1/actions") {
		t.Fatalf("requests %v; want POST /myapi/v1/actions", seen)
	}
	for _, s := range seen {
		if !strings.Contains(s, " /myapi/") {
			t.Fatalf("request %q left the prefix /myapi/ (all: %v)", s, seen)
		}
	}
}

func TestAHostOnAnotherLoopbackAddressWorks(t *testing.T) {
	for _, ip := range []string{"127.0.0.2", "::1"} {
		t.Run("on "+ip, func(t *testing.T) {
			if ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0")); err != nil {
				t.Skipf("this machine has no loopback address %s (%v)", ip, err)
			} else {
				ln.Close()
			}
			e := startHost(t, localserver.Config{Addr: net.JoinHostPort(ip, "0")})
			if want := "http://" + net.JoinHostPort(ip, ""); !strings.HasPrefix(e.url, want) {
				t.Fatalf("URL %q, want it on %s", e.url, want)
			}
			if resp, data := e.req("GET", "/api/status", nil, nil); resp.StatusCode != 200 {
				t.Fatalf("GET /api/status with Host %s: %d %s", e.url, resp.StatusCode, data)
			}
			if code, _ := e.post(testsupport.NewKey(), "message", `{"text":"hi"}`); code != 202 {
				t.Fatalf("enqueue: %d", code)
			}
			resp, data := e.req("POST", "/api/actions", `{"type":"message","payload":{}}`, map[string]string{"Origin": e.url, "Idempotency-Key": testsupport.NewKey()})
			if resp.StatusCode != 202 {
				t.Fatalf("enqueue with Origin %s: %d %s", e.url, resp.StatusCode, data)
			}
			if resp, _ := e.req("GET", "/api/status", nil, map[string]string{"Host": "example.com"}); resp.StatusCode != 403 {
				t.Fatalf("Host example.com: %d, want 403", resp.StatusCode)
			}

			// The login link points at this address and its cookie opens the API.
			link := e.host.LoginURL()
			if !strings.HasPrefix(link, e.url+"/login?token=") {
				t.Fatalf("login link %q is not on %s", link, e.url)
			}
			noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			resp, err := noRedirect.Get(link)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusSeeOther || len(resp.Cookies()) != 1 {
				t.Fatalf("login: %d, cookies %v; want 303 and a session cookie", resp.StatusCode, resp.Cookies())
			}
			req, _ := http.NewRequest("GET", e.url+"/api/status", nil)
			req.AddCookie(resp.Cookies()[0])
			resp, err = http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("GET /api/status with the session cookie: %d, want 200", resp.StatusCode)
			}
			if _, err := url.Parse(link); err != nil {
				t.Fatal(err)
			}
		})
	}
}
