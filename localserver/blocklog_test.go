package localserver_test

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"synctray/internal/failure"
	"synctray/internal/testsupport"
	"synctray/localserver"
	"synctray/localserver/syncer"
)

// A block by a web server's HTML 404 is logged as one short line; the
// page itself is kept on the action's history only.
func TestABlockIsLoggedInOneShortLineWithoutTheUpstreamsPage(t *testing.T) {
	page := "<!DOCTYPE html>\n<html><head><title>404 Not Found</title></head><body>\n" +
		strings.Repeat("<p>This is not the page you are looking for.</p>\n", 60) + "</body></html>\n"
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusNotFound)
		w.Write([]byte(page))
	}))
	defer up.Close()
	var logs testsupport.SyncBuffer
	e := startHost(t, localserver.Config{UpstreamURL: up.URL, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	_, act := e.post(testsupport.NewKey(), "message", `{"text":"hi"}`)
	testsupport.WaitFor(t, "blocked, the action queued again", func() bool {
		st := e.status()
		return st.State == syncer.StateBlocked && st.Counts["syncing"] == 0
	})
	if p := e.status().Problem; p == nil || p.Code != failure.CodeProtocol {
		t.Fatalf("problem = %+v, want protocol", p)
	}

	var blocked []string
	for line := range strings.Lines(logs.String()) {
		if strings.Contains(line, "sync blocked") {
			blocked = append(blocked, line)
		}
	}
	want := "does not speak synctray protocol v1 (POST /v1/actions answered 404 text/html)"
	if len(blocked) != 1 || !strings.Contains(blocked[0], want) || len(blocked[0]) > 400 {
		t.Fatalf("block log lines = %q, want one line under 400 bytes saying %q", blocked, want)
	}
	if out := logs.String(); strings.Contains(out, "<p>") || strings.Contains(out, "DOCTYPE") {
		t.Fatalf("the log holds the upstream's page:\n%s", out)
	}
	if h := e.get(act.ID).History; !strings.Contains(h[len(h)-1].Detail, "<p>This is not the page you are looking for.</p>") {
		t.Fatalf("the history does not keep the page: %q", h[len(h)-1].Detail)
	}
}
