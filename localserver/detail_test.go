package localserver_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"unicode/utf8"

	"synctray/internal/testsupport"
	"synctray/localserver"
	"synctray/localserver/outbox"
)

// The upstream's answer is kept on the action's history, its first 4 KiB
// cut between characters, whether the action goes back to the queue (a
// 503) or fails (a batch refused with 400).
func TestTheUpstreamsAnswerIsKeptOnTheHistoryCutBetweenCharacters(t *testing.T) {
	const detailBytes = 4 << 10
	// Three-byte characters; the prefixes put the 4 KiB cut inside one.
	text := "xx" + strings.Repeat("€", 3000)
	json := `{"error":{"code":"bad","message":"x` + strings.Repeat("€", 3000) + `"}}`
	var status atomic.Int64
	status.Store(http.StatusServiceUnavailable)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if status.Load() == http.StatusServiceUnavailable {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte(text))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		w.Write([]byte(json))
	}))
	defer up.Close()
	kept := func(body string) string { // its first 4 KiB, less the character they cut
		cut := detailBytes
		for !utf8.RuneStart(body[cut]) {
			cut--
		}
		if cut == detailBytes {
			t.Fatal("the 4 KiB cut splits no character: the test shows nothing")
		}
		return body[:cut]
	}
	check := func(what string, a localserver.ActionWithHistory, body string) {
		t.Helper()
		last := a.History[len(a.History)-1].Detail
		if !utf8.ValidString(last) || strings.ContainsRune(last, utf8.RuneError) || !strings.HasSuffix(last, "\n"+kept(body)) {
			end := last[max(0, len(last)-40):]
			t.Errorf("%s: history detail of %d bytes ends %q, want the answer's first %d bytes whole (%d)", what, len(last), end, detailBytes, len(kept(body)))
		}
	}

	e := startHost(t, localserver.Config{UpstreamURL: up.URL})
	_, act := e.post(testsupport.NewKey(), "message", `{"text":"hi"}`)
	testsupport.WaitFor(t, "the 503 recorded", func() bool {
		a := e.get(act.ID)
		return a.State == outbox.Queued && a.Attempts == 1 && a.LastError != ""
	})
	check("queued again after a 503", e.get(act.ID), text)

	status.Store(http.StatusBadRequest)
	e.req("POST", "/api/sync", nil, nil)
	a := e.get(act.ID)
	if a.State != outbox.Failed {
		t.Fatalf("after a 400: %s, want failed", a.State)
	}
	check("failed after a 400", a, json)
}
