package localserver_test

import (
	"encoding/json"
	"net/http"
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
