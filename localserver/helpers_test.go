package localserver_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"synctray/internal/testsupport"
	"synctray/internal/testsupport/testupstream"
	"synctray/localserver"
	"synctray/localserver/outbox"
	"synctray/upstream"
)

// env is a real host on 127.0.0.1:0 with a real reference upstream.
type env struct {
	t       testing.TB
	host    *localserver.Host
	url     string
	token   string
	dataDir string
	cfg     localserver.Config

	up      *upstream.Server
	upStore upstream.Store
	upURL   string

	cancel func()
	done   chan error
}

// startHost opens and runs a host; cfg.DataDir and cfg.UpstreamURL are
// filled in when empty.
func startHost(t testing.TB, cfg localserver.Config) *env {
	t.Helper()
	e := &env{t: t}
	if cfg.UpstreamURL == "" {
		e.up, e.upStore, e.upURL = testupstream.Start(t, upstream.Options{})
		cfg.UpstreamURL = e.upURL
	}
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	if cfg.Logger == nil {
		cfg.Logger = testsupport.Logger(t)
	}
	e.cfg = cfg
	e.dataDir = cfg.DataDir
	e.start()
	return e
}

func (e *env) start() {
	e.t.Helper()
	h, err := localserver.Open(e.cfg)
	if err != nil {
		e.t.Fatalf("open host: %v", err)
	}
	e.host, e.url, e.token = h, h.URL(), h.Token()
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel, e.done = cancel, make(chan error, 1)
	go func() { e.done <- h.Run(ctx) }()
	e.t.Cleanup(e.stop)
}

// stop shuts the host down and waits for Run to return.
func (e *env) stop() {
	if e.cancel == nil {
		return
	}
	e.cancel()
	e.cancel = nil
	select {
	case err := <-e.done:
		if err != nil {
			e.t.Errorf("host Run: %v", err)
		}
	case <-time.After(15 * time.Second):
		e.t.Fatal("host did not stop within 15 s")
	}
}

// restart stops the host and starts it again on the same data dir and port.
func (e *env) restart() {
	e.t.Helper()
	addr := strings.TrimPrefix(e.url, "http://")
	e.stop()
	e.cfg.Addr = addr
	e.start()
}

// req sends an authorized request; hdr adds or (with "") removes headers.
func (e *env) req(method, path string, body any, hdr map[string]string) (*http.Response, []byte) {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	r, err := http.NewRequest(method, e.url+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	r.Header.Set("Authorization", "Bearer "+e.token)
	if body != nil {
		r.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		if k == "Host" {
			r.Host = v
			continue
		}
		if v == "" {
			r.Header.Del(k)
			continue
		}
		r.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp, data
}

// post enqueues one action and returns it with the HTTP status.
func (e *env) post(key, typ, payload string) (int, outbox.Action) {
	e.t.Helper()
	resp, data := e.req("POST", "/api/actions", `{"type":"`+typ+`","payload":`+payload+`}`, map[string]string{"Idempotency-Key": key})
	var a outbox.Action
	if resp.StatusCode/100 == 2 {
		mustUnmarshal(e.t, data, &a)
	}
	return resp.StatusCode, a
}

func (e *env) status() localserver.Status {
	e.t.Helper()
	resp, data := e.req("GET", "/api/status", nil, nil)
	if resp.StatusCode != 200 {
		e.t.Fatalf("status: %d %s", resp.StatusCode, data)
	}
	var st localserver.Status
	mustUnmarshal(e.t, data, &st)
	return st
}

func (e *env) get(id int64) localserver.ActionWithHistory {
	e.t.Helper()
	resp, data := e.req("GET", "/api/actions/"+itoa(id), nil, nil)
	if resp.StatusCode != 200 {
		e.t.Fatalf("get %d: %d %s", id, resp.StatusCode, data)
	}
	var a localserver.ActionWithHistory
	mustUnmarshal(e.t, data, &a)
	return a
}

func (e *env) appliedKeys() []string {
	e.t.Helper()
	keys, err := e.upStore.AppliedKeys(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return keys
}

// upstreamEvents returns the keys the upstream applied, in apply order.
func (e *env) upstreamEvents() []string {
	e.t.Helper()
	var keys []string
	var after int64
	for {
		evs, err := e.upStore.Events(context.Background(), after, 1000)
		if err != nil {
			e.t.Fatal(err)
		}
		if len(evs) == 0 {
			return keys
		}
		for _, ev := range evs {
			keys = append(keys, ev.Key)
			after = ev.Cursor
		}
	}
}

func mustUnmarshal(t testing.TB, data []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("decode %s: %v", data, err)
	}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }
