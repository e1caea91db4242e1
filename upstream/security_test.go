package upstream

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/gorilla/websocket"
)

// send makes a request to the test server with the given Host (empty: the
// server's own) and headers and returns the status and error code.
func (e *testEnv) send(t *testing.T, method, path, host, body string, hdr map[string]string) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.ts.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var eb errorBody
	json.NewDecoder(resp.Body).Decode(&eb)
	return resp.StatusCode, eb.Error.Code
}

const oneAction = `{"actions":[{"key":"k1","type":"message","payload":{"text":"hi"}}]}`

var jsonType = map[string]string{"Content-Type": "application/json"}

func TestHostCheck(t *testing.T) {
	e := newEnv(t, Options{})
	_, port, err := net.SplitHostPort(e.ts.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}

	t.Run("a foreign Host is refused on every path", func(t *testing.T) {
		for _, p := range []struct{ method, path, body string }{
			{"GET", "/healthz", ""}, {"GET", "/v1/events", ""}, {"GET", "/v1/stats", ""}, {"POST", "/v1/actions", oneAction},
		} {
			for _, host := range []string{"example.com", "example.com:" + port, "127.0.0.1.nip.io:" + port} {
				if code, ec := e.send(t, p.method, p.path, host, p.body, jsonType); code != http.StatusForbidden || ec != "forbidden_host" {
					t.Errorf("%s %s with Host %q: %d %q, want 403 forbidden_host", p.method, p.path, host, code, ec)
				}
			}
		}
		if keys, _ := e.store.AppliedKeys(context.Background()); len(keys) != 0 {
			t.Fatalf("applied %v through a foreign Host", keys)
		}
	})
	t.Run("loopback names with another port are refused", func(t *testing.T) {
		for _, host := range []string{"127.0.0.1:1", "localhost:1", "localhost", "127.0.0.1"} {
			if code, _ := e.send(t, "GET", "/v1/events", host, "", nil); code != http.StatusForbidden {
				t.Errorf("Host %q: %d, want 403", host, code)
			}
		}
	})
	t.Run("its own address and loopback names with its port are accepted", func(t *testing.T) {
		for _, host := range []string{"", "127.0.0.1:" + port, "localhost:" + port, "LOCALHOST:" + port, "[::1]:" + port} {
			if code, ec := e.send(t, "GET", "/v1/events", host, "", nil); code != http.StatusOK {
				t.Errorf("Host %q: %d %q, want 200", host, code, ec)
			}
		}
	})
	t.Run("AllowedHosts lets named hosts in", func(t *testing.T) {
		e := newEnv(t, Options{AllowedHosts: []string{"upstream.example", "api.example:8443"}})
		for host, want := range map[string]int{
			"upstream.example": 200, "upstream.example:9000": 200, "api.example:8443": 200,
			"api.example": 403, "api.example:8444": 403, "example.com": 403,
		} {
			if code, _ := e.send(t, "GET", "/v1/events", host, "", nil); code != want {
				t.Errorf("Host %q: %d, want %d", host, code, want)
			}
		}
	})
	t.Run("InsecureSkipHostCheck accepts any Host", func(t *testing.T) {
		e := newEnv(t, Options{InsecureSkipHostCheck: true})
		if code, _ := e.send(t, "GET", "/v1/events", "example.com", "", nil); code != 200 {
			t.Fatalf("Host example.com: %d, want 200", code)
		}
	})
}

func TestBrowserRequestsAreRefused(t *testing.T) {
	e := newEnv(t, Options{})
	applied := func(t *testing.T) []string {
		t.Helper()
		keys, err := e.store.AppliedKeys(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return keys
	}
	t.Run("a cross-site no-cors text/plain POST is refused and not applied", func(t *testing.T) {
		// What fetch(url, {mode: "no-cors", method: "POST", body}) sends from another site.
		hdr := map[string]string{"Content-Type": "text/plain;charset=UTF-8", "Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "no-cors"}
		if code, ec := e.send(t, "POST", "/v1/actions", "", oneAction, hdr); code != http.StatusForbidden || ec != "forbidden_origin" {
			t.Fatalf("status %d %q, want 403 forbidden_origin", code, ec)
		}
		if keys := applied(t); len(keys) != 0 {
			t.Fatalf("applied %v", keys)
		}
	})
	t.Run("a text/plain POST without Origin gets 415 and is not applied", func(t *testing.T) {
		for _, ct := range []string{"text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", ""} {
			hdr := map[string]string{}
			if ct != "" {
				hdr["Content-Type"] = ct
			}
			if code, ec := e.send(t, "POST", "/v1/actions", "", oneAction, hdr); code != http.StatusUnsupportedMediaType || ec != "unsupported_media_type" {
				t.Errorf("Content-Type %q: %d %q, want 415 unsupported_media_type", ct, code, ec)
			}
		}
		if keys := applied(t); len(keys) != 0 {
			t.Fatalf("applied %v", keys)
		}
	})
	t.Run("reading events from a web page is refused", func(t *testing.T) {
		for _, hdr := range []map[string]string{
			{"Origin": "https://evil.example"},
			{"Origin": "null"},
			{"Sec-Fetch-Site": "cross-site"},
			{"Sec-Fetch-Site": "same-site"},
		} {
			if code, _ := e.send(t, "GET", "/v1/events", "", "", hdr); code != http.StatusForbidden {
				t.Errorf("headers %v: %d, want 403", hdr, code)
			}
		}
	})
	t.Run("a WebSocket from a web page is refused", func(t *testing.T) {
		u := "ws" + strings.TrimPrefix(e.ts.URL, "http") + "/v1/events/ws"
		_, resp, err := websocket.DefaultDialer.Dial(u, http.Header{"Origin": {e.ts.URL}})
		if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
			t.Fatalf("dial with Origin: err %v, resp %v; want 403", err, resp)
		}
	})
	t.Run("the upgrader itself refuses any Origin", func(t *testing.T) {
		r := &http.Request{Header: http.Header{"Origin": {"http://" + e.ts.Listener.Addr().String()}}, Host: e.ts.Listener.Addr().String(), URL: &url.URL{}}
		if e.srv.up.CheckOrigin == nil || e.srv.up.CheckOrigin(r) {
			t.Fatal("CheckOrigin accepts a same-host Origin; want every Origin refused")
		}
		r.Header.Del("Origin")
		if !e.srv.up.CheckOrigin(r) {
			t.Fatal("CheckOrigin refuses a request without Origin")
		}
	})
	t.Run("a JSON POST from a program is applied", func(t *testing.T) {
		if code, ec := e.send(t, "POST", "/v1/actions", "", oneAction, map[string]string{"Content-Type": "application/json; charset=utf-8"}); code != 200 {
			t.Fatalf("status %d %q, want 200", code, ec)
		}
		if keys := applied(t); strings.Join(keys, ",") != "k1" {
			t.Fatalf("applied %v, want [k1]", keys)
		}
	})
}
