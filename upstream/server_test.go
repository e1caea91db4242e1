package upstream

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"synctray/internal/failure"
)

type testEnv struct {
	store  *SQLiteStore
	srv    *Server
	ts     *httptest.Server
	client *Client
}

func newEnv(t *testing.T, opts Options) *testEnv {
	t.Helper()
	st := openTestStore(t)
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	srv := NewServer(st, opts)
	ts := httptest.NewServer(srv)
	t.Cleanup(func() {
		srv.Close()
		ts.Close()
	})
	return &testEnv{store: st, srv: srv, ts: ts, client: &Client{BaseURL: ts.URL, Token: opts.Token, HTTP: ts.Client()}}
}

func asHTTPError(t *testing.T, err error, status int) *HTTPError {
	t.Helper()
	var he *HTTPError
	if !errors.As(err, &he) {
		t.Fatalf("error %v (%T) is not an *HTTPError", err, err)
	}
	if he.StatusCode != status {
		t.Fatalf("status = %d, want %d (%v)", he.StatusCode, status, he)
	}
	return he
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestHTTPSendSemantics(t *testing.T) {
	ctx := ctxT(t)
	e := newEnv(t, Options{})
	res, err := e.client.Send(ctx, []Action{
		act("a", "note", `{"n":1}`), act("a", "note", `{"n":1}`), act("r", "note", `{"_reject":"bad"}`),
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := statuses(res); got != "a=applied a=duplicate r=rejected(bad)" {
		t.Fatalf("results: %s", got)
	}
	res, err = e.client.Send(ctx, []Action{act("r", "note", `{}`), act("a", "note", `{}`)})
	if err != nil {
		t.Fatal(err)
	}
	if got := statuses(res); got != "r=rejected(bad) a=duplicate" {
		t.Fatalf("resend results: %s", got)
	}
	st, err := e.client.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := (Stats{Applied: 1, Duplicates: 2, Rejected: 2}); st != want {
		t.Fatalf("stats = %+v, want %+v", st, want)
	}
	if err := e.client.Health(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestHTTPEventsPaging(t *testing.T) {
	ctx := ctxT(t)
	e := newEnv(t, Options{})
	var batch []Action
	for i := range 7 {
		batch = append(batch, act(fmt.Sprint("k", i), "t", fmt.Sprintf(`{"i":%d}`, i)))
	}
	if _, err := e.client.Send(ctx, batch); err != nil {
		t.Fatal(err)
	}
	var keys []string
	var after int64
	for pages := 0; ; pages++ {
		evs, next, err := e.client.Events(ctx, after, 3)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) == 0 {
			if next != after {
				t.Fatalf("empty page: next = %d, want %d", next, after)
			}
			if pages != 3 {
				t.Fatalf("%d pages, want 3", pages)
			}
			break
		}
		if next != evs[len(evs)-1].Cursor {
			t.Fatalf("next = %d, want last cursor %d", next, evs[len(evs)-1].Cursor)
		}
		for _, ev := range evs {
			if ev.Cursor <= after {
				t.Fatalf("cursor %d not after %d", ev.Cursor, after)
			}
			keys = append(keys, ev.Key)
		}
		after = next
	}
	if got := strings.Join(keys, ","); got != "k0,k1,k2,k3,k4,k5,k6" {
		t.Fatalf("keys = %s", got)
	}
}

func TestAuth(t *testing.T) {
	ctx := ctxT(t)
	e := newEnv(t, Options{Token: "s3cret"})
	for _, tok := range []string{"", "wrong"} {
		c := *e.client
		c.Token = tok
		_, err := c.Send(ctx, []Action{act("a", "t", `{}`)})
		he := asHTTPError(t, err, http.StatusUnauthorized)
		if he.Code != "unauthorized" || failure.Classify(he) != failure.Unauthorized {
			t.Fatalf("token %q: %+v", tok, he)
		}
		if _, _, err := c.Events(ctx, 0, 0); err == nil {
			t.Fatalf("token %q: events allowed", tok)
		}
		if err := c.Health(ctx); err == nil {
			t.Fatalf("token %q: healthy", tok)
		}
	}
	if _, err := e.client.Send(ctx, []Action{act("a", "t", `{}`)}); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(e.ts.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || strings.TrimSpace(string(body)) != `{"ok":true}` {
		t.Fatalf("healthz: %d %s", resp.StatusCode, body)
	}
	keys, _ := e.store.AppliedKeys(ctx)
	if len(keys) != 1 {
		t.Fatalf("applied %v", keys)
	}
}

func TestFaultFail(t *testing.T) {
	ctx := ctxT(t)
	e := newEnv(t, Options{Faults: Faults{FailRate: 1}})
	_, err := e.client.Send(ctx, []Action{act("a", "t", `{}`)})
	he := asHTTPError(t, err, http.StatusServiceUnavailable)
	if failure.Classify(he) != failure.Transient || he.Code != "unavailable" {
		t.Fatalf("%+v", he)
	}
	if keys, _ := e.store.AppliedKeys(ctx); len(keys) != 0 {
		t.Fatalf("applied %v despite failure", keys)
	}
	e.srv.SetFaults(Faults{})
	if res, err := e.client.Send(ctx, []Action{act("a", "t", `{}`)}); err != nil || res[0].Status != StatusApplied {
		t.Fatalf("after clearing faults: %v %v", res, err)
	}
}

func TestFaultThrottle(t *testing.T) {
	ctx := ctxT(t)
	e := newEnv(t, Options{Faults: Faults{ThrottleRate: 1, RetryAfter: 1500 * time.Millisecond}})
	_, err := e.client.Send(ctx, []Action{act("a", "t", `{}`)})
	he := asHTTPError(t, err, http.StatusTooManyRequests)
	if failure.Classify(he) != failure.Transient || he.RetryAfter != 2*time.Second {
		t.Fatalf("%+v", he)
	}
	e.srv.SetFaults(Faults{ThrottleRate: 1}) // default RetryAfter
	_, err = e.client.Send(ctx, []Action{act("a", "t", `{}`)})
	if he := asHTTPError(t, err, http.StatusTooManyRequests); he.RetryAfter != time.Second {
		t.Fatalf("%+v", he)
	}
	if keys, _ := e.store.AppliedKeys(ctx); len(keys) != 0 {
		t.Fatalf("applied %v despite throttling", keys)
	}
}

func TestFaultDrop(t *testing.T) {
	ctx := ctxT(t)
	e := newEnv(t, Options{Faults: Faults{DropRate: 1}})
	batch := []Action{act("a", "t", `{}`), act("b", "t", `{}`)}
	_, err := e.client.Send(ctx, batch)
	if err == nil {
		t.Fatal("dropped connection gave no error")
	}
	var he *HTTPError
	if errors.As(err, &he) {
		t.Fatalf("want a network error, got %v", he)
	}
	if keys, _ := e.store.AppliedKeys(ctx); strings.Join(keys, ",") != "a,b" {
		t.Fatalf("applied %v, want a,b", keys)
	}
	e.srv.SetFaults(Faults{})
	res, err := e.client.Send(ctx, batch)
	if err != nil {
		t.Fatal(err)
	}
	if got := statuses(res); got != "a=duplicate b=duplicate" {
		t.Fatalf("resend: %s", got)
	}
}

func TestFaultDown(t *testing.T) {
	ctx := ctxT(t)
	e := newEnv(t, Options{Token: "tok"})
	e.srv.SetFaults(Faults{Down: true})
	_, err := e.client.Send(ctx, []Action{act("a", "t", `{}`)})
	asHTTPError(t, err, http.StatusServiceUnavailable)
	_, _, err = e.client.Events(ctx, 0, 0)
	asHTTPError(t, err, http.StatusServiceUnavailable)
	asHTTPError(t, e.client.Health(ctx), http.StatusServiceUnavailable)
	resp, err := http.Get(e.ts.URL + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("healthz while down: %d", resp.StatusCode)
	}
	e.srv.SetFaults(Faults{})
	if err := e.client.Health(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestFaultLatency(t *testing.T) {
	e := newEnv(t, Options{Faults: Faults{Latency: 50 * time.Millisecond}})
	start := time.Now()
	if _, err := e.client.Send(ctxT(t), []Action{act("a", "t", `{}`)}); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 50*time.Millisecond {
		t.Fatalf("answered after %v", d)
	}
	// A client that gives up does not get its batch applied.
	e.srv.SetFaults(Faults{Latency: time.Minute})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if _, err := e.client.Send(ctx, []Action{act("b", "t", `{}`)}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
	if keys, _ := e.store.AppliedKeys(context.Background()); strings.Join(keys, ",") != "a" {
		t.Fatalf("applied %v", keys)
	}
}

func TestBadRequests(t *testing.T) {
	e := newEnv(t, Options{})
	post := func(body []byte) (int, errorBody) {
		resp, err := http.Post(e.ts.URL+"/v1/actions", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var eb errorBody
		json.NewDecoder(resp.Body).Decode(&eb)
		return resp.StatusCode, eb
	}
	if code, eb := post([]byte(`{"actions":[`)); code != 400 || eb.Error.Code != "bad_request" {
		t.Fatalf("malformed: %d %+v", code, eb)
	}
	if code, _ := post([]byte(`{"actions":[]} {}`)); code != 400 {
		t.Fatalf("trailing data: %d", code)
	}
	many, _ := json.Marshal(actionsRequest{Actions: make([]Action, MaxBatch+1)})
	if code, eb := post(many); code != 400 || eb.Error.Code != "too_many_actions" {
		t.Fatalf("too many: %d %+v", code, eb)
	}
	huge := []byte(`{"actions":[{"key":"x","type":"t","payload":"` + strings.Repeat("a", MaxBodyBytes) + `"}]}`)
	if code, eb := post(huge); code != 413 || eb.Error.Code != "too_large" {
		t.Fatalf("too large: %d %+v", code, eb)
	}
	if code, _ := post([]byte(`{"actions":[]}`)); code != 200 {
		t.Fatalf("empty batch: %d", code)
	}
	for path, want := range map[string]int{"/v1/actions": 405, "/v1/nope": 404, "/v1/events?after=x": 400} {
		resp, err := http.Get(e.ts.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		var eb errorBody
		err = json.NewDecoder(resp.Body).Decode(&eb)
		resp.Body.Close()
		if resp.StatusCode != want || err != nil || eb.Error.Code == "" {
			t.Fatalf("GET %s: %d %+v %v", path, resp.StatusCode, eb, err)
		}
	}
	if keys, _ := e.store.AppliedKeys(context.Background()); len(keys) != 0 {
		t.Fatalf("applied %v", keys)
	}
}

func dialWS(t *testing.T, e *testEnv, after int64) *websocket.Conn {
	t.Helper()
	u := "ws" + strings.TrimPrefix(e.ts.URL, "http") + fmt.Sprintf("/v1/events/ws?after=%d", after)
	conn, _, err := websocket.DefaultDialer.Dial(u, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func readEvent(t *testing.T, conn *websocket.Conn) Event {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	var ev Event
	if err := conn.ReadJSON(&ev); err != nil {
		t.Fatal(err)
	}
	return ev
}

func TestWSBacklogThenLive(t *testing.T) {
	ctx := ctxT(t)
	e := newEnv(t, Options{})
	if _, err := e.client.Send(ctx, []Action{act("a", "t", `1`), act("b", "t", `2`), act("c", "t", `3`)}); err != nil {
		t.Fatal(err)
	}
	evs, _, _ := e.client.Events(ctx, 0, 0)
	conn := dialWS(t, e, evs[0].Cursor)
	var got []string
	last := evs[0].Cursor
	check := func(n int) {
		for range n {
			ev := readEvent(t, conn)
			if ev.Cursor <= last {
				t.Fatalf("cursor %d after %d", ev.Cursor, last)
			}
			last = ev.Cursor
			got = append(got, ev.Key+"="+string(ev.Payload))
		}
	}
	check(2)
	for _, k := range []string{"d", "e"} {
		if _, err := e.client.Send(ctx, []Action{act(k, "t", `"`+k+`"`), act("a", "t", `1`)}); err != nil {
			t.Fatal(err)
		}
	}
	check(2)
	if s := strings.Join(got, " "); s != `b=2 c=3 d="d" e="e"` {
		t.Fatalf("stream: %s", s)
	}

	e.srv.Close()
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := conn.ReadMessage(); err == nil {
		t.Fatal("connection still open after Server.Close")
	}
}

func TestWSLaggingSubscriberDropped(t *testing.T) {
	ctx := ctxT(t)
	e := newEnv(t, Options{})
	e.srv.subBuf = 1
	conn := dialWS(t, e, 0)
	// Wait until the handler has subscribed, past its backlog.
	for subscribed := false; !subscribed; {
		subscribed = e.store.hub.Len() == 1
		time.Sleep(time.Millisecond)
	}
	// One batch outruns a buffer of one: the handler would have to write
	// each event before the store publishes the next.
	var batch []Action
	for i := range 500 {
		batch = append(batch, act(fmt.Sprint("k", i), "t", `1`))
	}
	if _, err := e.client.Send(ctx, batch); err != nil {
		t.Fatal(err)
	}
	// Some events may still be delivered; then a close frame.
	for {
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, _, err := conn.ReadMessage()
		if err == nil {
			continue
		}
		if !websocket.IsCloseError(err, websocket.CloseTryAgainLater) {
			t.Fatalf("err = %v, want close 1013", err)
		}
		break
	}
}
