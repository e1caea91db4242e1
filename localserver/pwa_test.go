package localserver_test

import (
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	"github.com/gorilla/websocket"

	"synctray/internal/testsupport"
	"synctray/localserver"
	"synctray/localserver/outbox"
	"synctray/localserver/push"
	"synctray/localserver/syncer"
	"synctray/upstream"
)

func testAssets(sw string) fstest.MapFS {
	return fstest.MapFS{
		"index.html": {Data: []byte("<!doctype html><html><title>t</title></html>")},
		"app.js":     {Data: []byte("console.log('app')")},
		"sw.js":      {Data: []byte(sw)},
	}
}

func TestServiceWorkerScript(t *testing.T) {
	sw := "const VERSION = '__SYNCTRAY_VERSION__'; const PRECACHE = __SYNCTRAY_PRECACHE__;"
	e := startHost(t, localserver.Config{Assets: testAssets(sw)})
	resp, data := e.req("GET", "/sw.js", nil, map[string]string{"Authorization": ""})
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/javascript") {
		t.Fatalf("GET /sw.js = %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if resp.Header.Get("ETag") != `"`+m0(data)+`"` || resp.Header.Get("Last-Modified") != "" {
		t.Errorf("ETag %q, Last-Modified %q; want the version as ETag and no Last-Modified (a restart within a second must not answer 304)",
			resp.Header.Get("ETag"), resp.Header.Get("Last-Modified"))
	}
	if resp.Header.Get("Cache-Control") != "no-cache" {
		t.Errorf("Cache-Control = %q, want no-cache (browsers must see a new worker)", resp.Header.Get("Cache-Control"))
	}
	m := regexp.MustCompile(`^const VERSION = '([0-9a-f]{16})'; const PRECACHE = (\[.*\]);$`).FindStringSubmatch(string(data))
	if m == nil {
		t.Fatalf("sw.js = %s, want the version and precache list filled in", data)
	}
	var list []string
	mustUnmarshal(t, []byte(m[2]), &list)
	if strings.Join(list, ",") != "/,/app.js" {
		t.Fatalf("precache = %v, want [/ /app.js]", list)
	}

	// Any asset change makes a new version.
	e2 := startHost(t, localserver.Config{Assets: func() fstest.MapFS {
		a := testAssets(sw)
		a["app.js"] = &fstest.MapFile{Data: []byte("console.log('app v2')")}
		return a
	}()})
	_, data2 := e2.req("GET", "/sw.js", nil, nil)
	if strings.Contains(string(data2), m[1]) {
		t.Fatalf("version %s unchanged after an asset changed", m[1])
	}
}

// m0 returns the version filled into a test sw.js.
func m0(sw []byte) string {
	m := regexp.MustCompile(`VERSION = '([0-9a-f]+)'`).FindSubmatch(sw)
	if m == nil {
		return ""
	}
	return string(m[1])
}

func TestManifestType(t *testing.T) {
	a := testAssets("")
	a["manifest.webmanifest"] = &fstest.MapFile{Data: []byte(`{"name":"x"}`)}
	e := startHost(t, localserver.Config{Assets: a})
	resp, _ := e.req("GET", "/manifest.webmanifest", nil, nil)
	if ct := resp.Header.Get("Content-Type"); ct != "application/manifest+json" {
		t.Fatalf("Content-Type = %q, want application/manifest+json", ct)
	}
}

func TestWebSocketsCloseOnShutdown(t *testing.T) {
	e := startHost(t, localserver.Config{})
	c := dialWS(t, e)
	testsupport.WaitFor(t, "subscription", func() bool { return e.host.Hub().Subscribers() == 1 })
	e.stop()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		_, _, err := c.ReadMessage()
		if err == nil {
			continue // events published while stopping
		}
		if !websocket.IsCloseError(err, websocket.CloseGoingAway) {
			t.Fatalf("read after shutdown: %v, want a going-away close", err)
		}
		return
	}
}

func TestShellMethods(t *testing.T) {
	e := startHost(t, localserver.Config{})
	resp, _ := e.req("POST", "/index.html", "x", nil)
	if resp.StatusCode != 405 {
		t.Fatalf("POST on a shell file = %d, want 405", resp.StatusCode)
	}
}

func subscription(t *testing.T, endpoint string) map[string]any {
	priv, _ := ecdh.P256().GenerateKey(rand.Reader)
	auth := make([]byte, 16)
	rand.Read(auth)
	return map[string]any{"endpoint": endpoint, "expirationTime": nil, "keys": map[string]string{
		"p256dh": base64.RawURLEncoding.EncodeToString(priv.PublicKey().Bytes()),
		"auth":   base64.RawURLEncoding.EncodeToString(auth),
	}}
}

// fakePushService counts pushes per path.
type fakePushService struct {
	mu    sync.Mutex
	paths []string
}

func (f *fakePushService) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.paths = append(f.paths, r.URL.Path)
	f.mu.Unlock()
	w.WriteHeader(http.StatusCreated)
}

func (f *fakePushService) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.paths)
}

func TestPush(t *testing.T) {
	ps := &fakePushService{}
	pts := httptest.NewServer(ps)
	defer pts.Close()
	e := startHost(t, localserver.Config{Push: push.Options{Coalesce: 20 * time.Millisecond},
		Sync: syncer.Options{MinBackoff: 10 * time.Millisecond, MaxBackoff: 20 * time.Millisecond, ProbeEvery: 10 * time.Millisecond}})

	resp, data := e.req("GET", "/api/push/key", nil, nil)
	var key struct{ Key string }
	mustUnmarshal(t, data, &key)
	if b, err := base64.RawURLEncoding.DecodeString(key.Key); resp.StatusCode != 200 || err != nil || len(b) != 65 {
		t.Fatalf("push key = %d %s, want a 65-byte P-256 key", resp.StatusCode, data)
	}

	if resp, data := e.req("POST", "/api/push/subscriptions", subscription(t, "http://push.example/x"), nil); resp.StatusCode != 400 {
		t.Fatalf("non-https endpoint = %d %s, want 400", resp.StatusCode, data)
	}
	if resp, data := e.req("POST", "/api/push/subscriptions", subscription(t, pts.URL+"/sub1"), nil); resp.StatusCode != 201 {
		t.Fatalf("subscribe = %d %s", resp.StatusCode, data)
	}

	t.Run("a message from another client is pushed and listed", func(t *testing.T) {
		c := &upstream.Client{BaseURL: e.upURL}
		key := testsupport.NewKey()
		if _, err := c.Send(context.Background(), []upstream.Action{{Key: key, Type: "message", Payload: json.RawMessage(`{"text":"from elsewhere"}`)}}); err != nil {
			t.Fatal(err)
		}
		testsupport.WaitFor(t, "a push", func() bool { return ps.count() >= 1 })
		var got struct{ Messages []localserver.Message }
		testsupport.WaitFor(t, "the message in /api/messages", func() bool {
			_, data := e.req("GET", "/api/messages?limit=10", nil, nil)
			mustUnmarshal(t, data, &got)
			return len(got.Messages) > 0 && got.Messages[len(got.Messages)-1].Key == key
		})
	})

	t.Run("our own messages are not pushed back to us", func(t *testing.T) {
		before := ps.count()
		_, a := e.post(testsupport.NewKey(), "message", `{"text":"mine"}`)
		testsupport.WaitFor(t, "synced", func() bool { return e.get(a.ID).State == outbox.Synced })
		testsupport.WaitFor(t, "its echo in /api/messages, marked as ours", func() bool {
			_, data := e.req("GET", "/api/messages?limit=1", nil, nil)
			return strings.Contains(string(data), a.Key) && strings.Contains(string(data), `"own":true`)
		})
		time.Sleep(100 * time.Millisecond) // longer than the coalescing window
		if n := ps.count(); n != before {
			t.Fatalf("pushes went from %d to %d for our own message", before, n)
		}
	})

	t.Run("a rejected action is pushed", func(t *testing.T) {
		before := ps.count()
		e.post(testsupport.NewKey(), "message", `{"_reject":"spam"}`)
		testsupport.WaitFor(t, "a push about the rejection", func() bool { return ps.count() > before })
	})

	t.Run("the backlog synced after being offline is announced once", func(t *testing.T) {
		sub := e.host.Subscribe(0)
		defer sub.Close()
		e.up.SetFaults(upstream.Faults{Down: true})
		for i := 0; i < 3; i++ {
			e.post(testsupport.NewKey(), "message", `{}`)
		}
		testsupport.WaitFor(t, "offline", func() bool { return !e.status().Online })
		e.up.SetFaults(upstream.Faults{})
		deadline := time.After(15 * time.Second)
		for {
			select {
			case ev := <-sub.C:
				if ev.Kind == "report" && ev.Report.AfterOffline {
					if ev.Report.Synced != 3 {
						t.Fatalf("report = %+v, want 3 synced after offline", ev.Report)
					}
					return
				}
			case <-deadline:
				t.Fatal("no after-offline report")
			}
		}
	})

	t.Run("unsubscribing removes the subscription", func(t *testing.T) {
		resp, data := e.req("DELETE", "/api/push/subscriptions", map[string]string{"endpoint": pts.URL + "/sub1"}, nil)
		if resp.StatusCode != 200 || !strings.Contains(string(data), `"removed":true`) {
			t.Fatalf("unsubscribe = %d %s", resp.StatusCode, data)
		}
	})
}

func TestShowWindow(t *testing.T) {
	e := startHost(t, localserver.Config{})
	if resp, _ := e.req("POST", "/api/ui/show", nil, nil); resp.StatusCode != 501 {
		t.Fatalf("show without a window = %d, want 501", resp.StatusCode)
	}
	shown := make(chan struct{}, 1)
	e2 := startHost(t, localserver.Config{OnShow: func() bool { shown <- struct{}{}; return true }})
	if resp, _ := e2.req("POST", "/api/ui/show", nil, nil); resp.StatusCode != 200 {
		t.Fatalf("show = %d, want 200", resp.StatusCode)
	}
	select {
	case <-shown:
	default:
		t.Fatal("OnShow not called")
	}
}

// The live "report" event says why a sync stopped in the host's one line,
// as the status does, not the transport's raw text ("dial tcp …").
func TestTheLiveReportSaysWhyInOneLine(t *testing.T) {
	e := startHost(t, localserver.Config{UpstreamURL: "http://" + testsupport.FreeAddr(t)}) // nothing listens there
	sub := e.host.Subscribe(0)
	defer sub.Close()
	e.post(testsupport.NewKey(), "message", `{}`)
	deadline := time.After(15 * time.Second)
	for {
		select {
		case ev := <-sub.C:
			if ev.Kind != "report" || ev.Report.Error == "" {
				continue
			}
			if got := ev.Report.Error; strings.Contains(got, "dial tcp") || strings.Contains(got, "connect:") || got != e.status().LastError {
				t.Fatalf("report error %q, want the host's one line %q", got, e.status().LastError)
			}
			return
		case <-deadline:
			t.Fatal("no report with an error")
		}
	}
}
