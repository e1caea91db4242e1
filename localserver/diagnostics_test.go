package localserver_test

import (
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"synctray/localserver"
)

func TestWrongMethodsOnKnownAPIPaths(t *testing.T) {
	e := startHost(t, localserver.Config{WorkOffline: true})
	cases := []struct {
		method, path, allow string
	}{
		{"DELETE", "/api/actions/1", "GET, HEAD"},
		{"PUT", "/api/actions", "GET, HEAD, POST"},
		{"GET", "/api/mode", "PUT"},
		{"GET", "/api/actions/1/cancel", "POST"},
		{"GET", "/api/sync", "POST"},
	}
	for _, c := range cases {
		t.Run(c.method+" "+c.path+" is 405 with Allow: "+c.allow, func(t *testing.T) {
			resp, body := e.req(c.method, c.path, nil, nil)
			if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != c.allow {
				t.Fatalf("%s %s = %d Allow %q %s, want 405 Allow %q", c.method, c.path, resp.StatusCode, resp.Header.Get("Allow"), body, c.allow)
			}
			var eb struct {
				Error localserver.ErrorBody `json:"error"`
			}
			if err := json.Unmarshal(body, &eb); err != nil || eb.Error.Code != "method_not_allowed" {
				t.Fatalf("body %s, want a JSON error with code method_not_allowed", body)
			}
		})
	}
	t.Run("an unknown API path is still 404", func(t *testing.T) {
		if resp, body := e.req("GET", "/api/nothing-here", nil, nil); resp.StatusCode != http.StatusNotFound {
			t.Fatalf("GET /api/nothing-here = %d %s, want 404", resp.StatusCode, body)
		}
	})
}

func TestHealthzNamesTheDataDir(t *testing.T) {
	e := startHost(t, localserver.Config{WorkOffline: true})
	resp, err := http.Get(e.url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var h struct {
		App     string `json:"app"`
		DataDir string `json:"data_dir"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		t.Fatal(err)
	}
	want, _ := filepath.Abs(e.dataDir)
	if h.App != "synctray" || h.DataDir != want {
		t.Fatalf("healthz app %q data_dir %q, want synctray and %q", h.App, h.DataDir, want)
	}
}

func TestATakenPortNamesWhoHoldsIt(t *testing.T) {
	t.Run("a synctray host is named as synctray, with its data dir", func(t *testing.T) {
		e := startHost(t, localserver.Config{WorkOffline: true})
		_, err := localserver.Listen(strings.TrimPrefix(e.url, "http://"))
		if err == nil || !strings.Contains(err.Error(), "synctray, already running there") || !strings.Contains(err.Error(), e.dataDir) {
			t.Fatalf("err = %v, want one saying synctray already runs there with data dir %s", err, e.dataDir)
		}
	})
	t.Run("another web server is not blamed on synctray", func(t *testing.T) {
		other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte(`{"ok":true,"app":"something-else"}`))
		}))
		defer other.Close()
		_, err := localserver.Listen(strings.TrimPrefix(other.URL, "http://"))
		if err == nil || strings.Contains(err.Error(), "synctray already") || !strings.Contains(err.Error(), "another program") {
			t.Fatalf("err = %v, want one saying another program holds the port", err)
		}
	})
	t.Run("a program that does not speak HTTP is not blamed on synctray", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				c.Write([]byte("SSH-2.0-nope\r\n"))
				c.Close()
			}
		}()
		_, err = localserver.Listen(ln.Addr().String())
		if err == nil || !strings.Contains(err.Error(), "another program") {
			t.Fatalf("err = %v, want one saying another program holds the port", err)
		}
	})
}
