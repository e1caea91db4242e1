package upstream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"synctray/internal/failure"
)

// follower runs Client.Follow in the background and collects what it gets.
type follower struct {
	mu     sync.Mutex
	events []Event
	cancel context.CancelFunc
	done   chan error
}

func follow(c *Client, after int64, poll time.Duration) *follower {
	ctx, cancel := context.WithCancel(context.Background())
	f := &follower{cancel: cancel, done: make(chan error, 1)}
	go func() {
		f.done <- c.Follow(ctx, after, poll, func(e Event) {
			f.mu.Lock()
			f.events = append(f.events, e)
			f.mu.Unlock()
		})
	}()
	return f
}

// waitKeys waits until n events arrived and returns their keys.
func (f *follower) waitKeys(t *testing.T, n int) string {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		f.mu.Lock()
		evs := append([]Event(nil), f.events...)
		f.mu.Unlock()
		if len(evs) >= n || time.Now().After(deadline) {
			var keys []string
			for i, e := range evs {
				if i > 0 && e.Cursor <= evs[i-1].Cursor {
					t.Fatalf("cursor %d after %d", e.Cursor, evs[i-1].Cursor)
				}
				keys = append(keys, e.Key)
			}
			return strings.Join(keys, ",")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (f *follower) stop(t *testing.T) {
	t.Helper()
	f.cancel()
	select {
	case err := <-f.done:
		if err != nil {
			t.Fatalf("Follow returned %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Follow did not return after cancel")
	}
}

func sendKeys(t *testing.T, c *Client, keys ...string) {
	t.Helper()
	var batch []Action
	for _, k := range keys {
		batch = append(batch, act(k, "t", `{}`))
	}
	if _, err := c.Send(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
}

// proxy serves e's API through a handler that counts polls and can refuse
// the WebSocket endpoint.
func proxy(t *testing.T, e *testEnv, noWS bool, polls *atomic.Int64) *Client {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/events/ws":
			if noWS {
				http.NotFound(w, r)
				return
			}
		case "/v1/events":
			polls.Add(1)
		}
		e.srv.ServeHTTP(w, r)
	}))
	t.Cleanup(ts.Close)
	return &Client{BaseURL: ts.URL + "/", Token: e.client.Token}
}

func TestFollowWebSocket(t *testing.T) {
	e := newEnv(t, Options{Token: "tok"})
	var polls atomic.Int64
	c := proxy(t, e, false, &polls)
	sendKeys(t, c, "a", "b")
	f := follow(c, 0, 10*time.Millisecond)
	if got := f.waitKeys(t, 2); got != "a,b" {
		t.Fatalf("backlog: %s", got)
	}
	sendKeys(t, c, "c", "a", "d")
	sendKeys(t, c, "e")
	if got := f.waitKeys(t, 5); got != "a,b,c,d,e" {
		t.Fatalf("live: %s", got)
	}
	f.stop(t)
	if n := polls.Load(); n != 0 {
		t.Fatalf("%d polls while the WebSocket worked", n)
	}
}

func TestFollowReconnectsAfterServerClose(t *testing.T) {
	e := newEnv(t, Options{})
	sendKeys(t, e.client, "a")
	f := follow(e.client, 0, 10*time.Millisecond)
	if got := f.waitKeys(t, 1); got != "a" {
		t.Fatalf("got %s", got)
	}
	// Closing the server's subscribers makes Follow reconnect or poll; it
	// must neither lose nor repeat events.
	e.srv.Close()
	sendKeys(t, e.client, "b", "c")
	if got := f.waitKeys(t, 3); got != "a,b,c" {
		t.Fatalf("after close: %s", got)
	}
	f.stop(t)
}

func TestFollowFallsBackToPolling(t *testing.T) {
	e := newEnv(t, Options{Token: "tok"})
	var polls atomic.Int64
	c := proxy(t, e, true, &polls)
	var keys []string
	for i := range 1205 { // more than one page
		keys = append(keys, fmt.Sprintf("k%04d", i))
	}
	sendKeys(t, c, keys[:1000]...)
	sendKeys(t, c, keys[1000:1200]...)
	ev, _, err := c.Events(context.Background(), 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	f := follow(c, ev[0].Cursor, 10*time.Millisecond)
	if got := f.waitKeys(t, 1199); got != strings.Join(keys[1:1200], ",") {
		t.Fatalf("backlog over polling: %d events", strings.Count(got, ",")+1)
	}
	sendKeys(t, c, keys[1200:]...)
	if got := f.waitKeys(t, 1204); got != strings.Join(keys[1:], ",") {
		t.Fatalf("live over polling: ...%s", got[len(got)-40:])
	}
	f.stop(t)
	if polls.Load() == 0 {
		t.Fatal("no polls")
	}
}

func TestFollowBadBaseURL(t *testing.T) {
	c := &Client{BaseURL: "ftp://example.invalid"}
	if err := c.Follow(context.Background(), 0, time.Second, func(Event) {}); err == nil {
		t.Fatal("no error for a non-HTTP base URL")
	}
}

func TestSendValidatesAnswer(t *testing.T) {
	answers := map[string]string{
		"count": `{"results":[{"key":"a","status":"applied"}]}`,
		"keys":  `{"results":[{"key":"b","status":"applied"},{"key":"a","status":"applied"}]}`,
		"json":  `{"results":`,
	}
	for name, body := range answers {
		ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte(body))
		}))
		c := &Client{BaseURL: ts.URL}
		_, err := c.Send(context.Background(), []Action{act("a", "t", `{}`), act("b", "t", `{}`)})
		ts.Close()
		if err == nil || !strings.HasPrefix(err.Error(), "send batch: ") {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}

func TestSendNetworkError(t *testing.T) {
	ts := httptest.NewServer(http.NotFoundHandler())
	url := ts.URL
	ts.Close()
	c := &Client{BaseURL: url}
	_, err := c.Send(context.Background(), []Action{act("a", "t", `{}`)})
	if err == nil || !strings.HasPrefix(err.Error(), "send batch: ") {
		t.Fatalf("err = %v", err)
	}
}

func TestHTTPErrorFromPlainText(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", time.Now().Add(90*time.Second).UTC().Format(http.TimeFormat))
		http.Error(w, "gateway says no", http.StatusBadGateway)
	}))
	defer ts.Close()
	c := &Client{BaseURL: ts.URL}
	_, err := c.Send(context.Background(), []Action{act("a", "t", `{}`)})
	he := asHTTPError(t, err, http.StatusBadGateway)
	if he.Message != "gateway says no" || failure.Classify(he) != failure.Transient {
		t.Fatalf("%+v", he)
	}
	if he.RetryAfter < 80*time.Second || he.RetryAfter > 90*time.Second {
		t.Fatalf("RetryAfter = %v", he.RetryAfter)
	}
}

func TestRetryAfterIsParsedAsSecondsOrDate(t *testing.T) {
	now := time.Now()
	for in, want := range map[string]time.Duration{
		"": 0, "3": 3 * time.Second, " 1 ": time.Second, "0": 0, "-5": 0, "soon": 0,
		"Mon, 01 Jan 2001 00:00:00 GMT": 0,
	} {
		if got := failure.ParseRetryAfter(in, now); got != want {
			t.Errorf("ParseRetryAfter(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestSendRefusesAnswersThatBreakTheProtocol(t *testing.T) {
	for name, answer := range map[string]string{
		"no results array": `{"ok":true}`,
		"not JSON":         `<html><body>hello</body></html>`,
		"wrong count":      `{"results":[]}`,
		"wrong key":        `{"results":[{"key":"b","status":"applied"}]}`,
		"unknown status":   `{"results":[{"key":"a","status":"ok"}]}`,
	} {
		t.Run(name, func(t *testing.T) {
			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, answer)
			}))
			defer ts.Close()
			c := &Client{BaseURL: ts.URL}
			_, err := c.Send(context.Background(), []Action{act("a", "t", `{}`)})
			if k := failure.Classify(err); k != failure.Protocol {
				t.Fatalf("err = %v: kind %v, want protocol", err, k)
			}
			if s := failure.Summary(err); !strings.HasPrefix(s, ts.URL+" does not speak synctray protocol v1 (POST /v1/actions answered 200") {
				t.Errorf("Summary = %q", s)
			}
		})
	}
}

func TestSendReadsAnswersThroughALimit(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"results":[{"key":"a","status":"applied","error":"`)
		chunk := strings.Repeat("x", 1<<20)
		for range 40 { // 40 MiB, more than the client reads
			if _, err := io.WriteString(w, chunk); err != nil {
				return
			}
		}
		io.WriteString(w, `"}]}`)
	}))
	defer ts.Close()
	c := &Client{BaseURL: ts.URL}
	_, err := c.Send(context.Background(), []Action{act("a", "t", `{}`)})
	var pe *failure.ProtocolError
	if !errors.As(err, &pe) || !strings.Contains(pe.Reason, "larger than 16 MiB") {
		t.Fatalf("err = %v, want a protocol error about the size", err)
	}
}

func TestSendDoesNotEscapeHTMLInPayloads(t *testing.T) {
	var got []byte
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, _ = io.ReadAll(r.Body)
		io.WriteString(w, `{"results":[{"key":"a","status":"applied"}]}`)
	}))
	defer ts.Close()
	c := &Client{BaseURL: ts.URL}
	if _, err := c.Send(context.Background(), []Action{act("a", "t", `"<<<&>"`)}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(got), `"payload":"<<<&>"`) {
		t.Fatalf("body sent = %s, want the payload bytes as stored", got)
	}
}

func TestARedirectIsNotFollowedAndIsNotTheProtocol(t *testing.T) {
	var gets int
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			gets++
		}
		http.Redirect(w, r, "/elsewhere", http.StatusFound)
	}))
	defer ts.Close()
	_, err := (&Client{BaseURL: ts.URL}).Send(context.Background(), []Action{act("a", "t", `{}`)})
	if k := failure.Classify(err); k != failure.Protocol {
		t.Fatalf("err = %v: kind %v, want protocol", err, k)
	}
	if gets != 0 {
		t.Fatalf("the client followed the redirect with %d GETs", gets)
	}
}
