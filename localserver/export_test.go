package localserver_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"testing"

	"synctray/internal/testsupport"
	"synctray/localserver"
	"synctray/localserver/outbox"
)

func TestExportEndpoint(t *testing.T) {
	e := startHost(t, localserver.Config{WorkOffline: true})
	var keys []string
	for range 5 {
		k := testsupport.NewKey()
		if code, _ := e.post(k, "message", `{"text":"hi"}`); code/100 != 2 {
			t.Fatalf("enqueue = %d", code)
		}
		keys = append(keys, k)
	}
	lines := func(t *testing.T, query string) []localserver.ExportLine {
		t.Helper()
		resp, data := e.req("GET", "/api/actions/export?"+query, nil, nil)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/x-ndjson" {
			t.Fatalf("export = %d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), data)
		}
		var out []localserver.ExportLine
		sc := bufio.NewScanner(bytes.NewReader(data))
		for sc.Scan() {
			var l localserver.ExportLine
			if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
				t.Fatalf("line %q: %v", sc.Text(), err)
			}
			out = append(out, l)
		}
		return out
	}

	t.Run("streams every action oldest first with its summary and history", func(t *testing.T) {
		got := lines(t, "")
		if len(got) != 5 {
			t.Fatalf("%d lines, want 5", len(got))
		}
		for i, l := range got {
			if l.Key != keys[i] || l.Summary != "hi" || len(l.History) != 1 || l.History[0].To != outbox.Queued {
				t.Fatalf("line %d = %+v, want key %s with summary and its one history entry", i, l, keys[i])
			}
		}
	})

	t.Run("filters by state and by creation time", func(t *testing.T) {
		if got := lines(t, "state=failed"); len(got) != 0 {
			t.Fatalf("failed: %d lines, want none", len(got))
		}
		all := lines(t, "")
		since := all[3].CreatedAt.Format("2006-01-02T15:04:05.999999999Z07:00")
		if got := lines(t, "state=queued&since="+url.QueryEscape(since)); len(got) < 2 || got[0].CreatedAt.Before(all[3].CreatedAt) {
			t.Fatalf("since %s: %d lines, want those created at or after it", since, len(got))
		}
	})

	t.Run("refuses a bad state or time with 400, and a request without the token with 401", func(t *testing.T) {
		for _, q := range []string{"state=lost", "since=yesterday"} {
			if resp, data := e.req("GET", "/api/actions/export?"+q, nil, nil); resp.StatusCode != http.StatusBadRequest {
				t.Errorf("%s = %d %s, want 400", q, resp.StatusCode, data)
			}
		}
		if resp, _ := e.req("GET", "/api/actions/export", nil, map[string]string{"Authorization": ""}); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("without token = %d, want 401", resp.StatusCode)
		}
	})
}
