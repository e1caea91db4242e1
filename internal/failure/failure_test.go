package failure

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestOfStatusFollowsTheDesignTable(t *testing.T) {
	tests := []struct {
		mode   Mode
		status int
		want   Kind
	}{
		{V1, 200, Delivered}, {V1, 204, Delivered},
		{V1, 400, Poison}, {V1, 413, Poison}, {V1, 422, Poison},
		{V1, 401, Unauthorized}, {V1, 403, Unauthorized},
		{V1, 404, Protocol}, {V1, 405, Protocol}, {V1, 501, Protocol}, {V1, 302, Protocol}, {V1, 410, Protocol},
		{V1, 408, Transient}, {V1, 425, Transient}, {V1, 429, Transient},
		{V1, 500, Transient}, {V1, 502, Transient}, {V1, 503, Transient}, {V1, 504, Transient},
		{HTTP, 201, Delivered},
		{HTTP, 400, Refused}, {HTTP, 404, Refused}, {HTTP, 405, Refused}, {HTTP, 410, Refused},
		{HTTP, 413, Refused}, {HTTP, 415, Refused}, {HTTP, 422, Refused},
		{HTTP, 409, Busy}, {HTTP, 401, Unauthorized}, {HTTP, 403, Unauthorized},
		{HTTP, 301, Redirect}, {HTTP, 307, Redirect},
		{HTTP, 429, Transient}, {HTTP, 503, Transient}, {HTTP, 408, Transient},
	}
	for _, tt := range tests {
		if got := OfStatus(tt.mode, tt.status); got != tt.want {
			t.Errorf("OfStatus(%v, %d) = %v, want %v", tt.mode, tt.status, got, tt.want)
		}
	}
}

func TestClassifySortsErrors(t *testing.T) {
	wrapped := fmt.Errorf("send batch: %w", &HTTPError{Mode: V1, StatusCode: 401})
	if got := Classify(wrapped); got != Unauthorized {
		t.Errorf("Classify(wrapped 401) = %v, want unauthorized", got)
	}
	if got := Classify(&HTTPError{Mode: V1, StatusCode: 400, ContentType: "application/json"}); got != Poison {
		t.Errorf("Classify(v1 400 JSON) = %v, want poison", got)
	}
	if got := Classify(&HTTPError{Mode: V1, StatusCode: 400, ContentType: "text/html"}); got != Protocol {
		t.Errorf("Classify(v1 400 HTML) = %v, want protocol: a web server's 400 fails no action", got)
	}
	if got := Classify(&ProtocolError{Reason: "x"}); got != Protocol {
		t.Errorf("Classify(protocol error) = %v", got)
	}
	if got := Classify(errors.New("dial tcp: connection refused")); got != Transient {
		t.Errorf("Classify(network) = %v", got)
	}
	if got := Classify(nil); got != Delivered {
		t.Errorf("Classify(nil) = %v", got)
	}
}

func TestSummaryIsOneShortLineWithoutTransportNoise(t *testing.T) {
	// A real refused connection.
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	_, err := http.Post("http://"+addr+"/v1/actions", "application/json", strings.NewReader("{}"))
	if err == nil {
		t.Fatal("post to a closed port succeeded")
	}
	if got := Summary(err); got != "Upstream not reachable" {
		t.Errorf("Summary(%q) = %q", err, got)
	}
	if got := Summary(fmt.Errorf("send: %w", context.DeadlineExceeded)); got != "Upstream did not answer in time" {
		t.Errorf("Summary(deadline) = %q", got)
	}
	long := errors.New(strings.Repeat("word ", 100) + "\n\tsecond line")
	got := Summary(long)
	if utf8.RuneCountInString(got) > MaxLine || strings.ContainsAny(got, "\n\t") {
		t.Errorf("Summary is %d runes or multi-line: %q", utf8.RuneCountInString(got), got)
	}
}

func TestHTMLAnswersAreSummedUpByTheirTitle(t *testing.T) {
	page := "<!DOCTYPE html><html><head><title>501 Not Implemented</title><style>p{}</style></head><body>" +
		strings.Repeat("<p>noise</p>", 1000) + "</body></html>"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusNotImplemented)
		fmt.Fprint(w, page)
	}))
	defer srv.Close()
	resp, err := http.Post(srv.URL+"/v1/actions", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	he := ReadHTTPError(resp, V1, srv.URL)
	he.Protocol = "synctray protocol v1"
	want := srv.URL + " does not speak synctray protocol v1 (POST /v1/actions answered 501 text/html)"
	if got := Summary(he); got != want {
		t.Errorf("Summary = %q\nwant      %q", got, want)
	}
	if len(he.Body) != DetailBytes {
		t.Errorf("kept %d bytes of the body, want the first %d", len(he.Body), DetailBytes)
	}
	if d := Detail(fmt.Errorf("send: %w", he)); !strings.Contains(d, "text/html") || !strings.Contains(d, "<title>") {
		t.Errorf("Detail lacks the content type or the body: %.200q", d)
	}
	if got := Line("<html><body><h1>Bad</h1><script>x()</script> gateway</body></html>"); got != "Bad gateway" {
		t.Errorf("Line(html) = %q", got)
	}
}

func TestSummaryOfStatuses(t *testing.T) {
	tests := []struct {
		e    *HTTPError
		want string
	}{
		{&HTTPError{Mode: V1, StatusCode: 401, Code: "unauthorized"}, "Upstream refused the token (401 Unauthorized): unauthorized"},
		{&HTTPError{Mode: V1, StatusCode: 503}, "Upstream is unavailable (503 Service Unavailable)"},
		{&HTTPError{Mode: HTTP, StatusCode: 422, Message: "title is required"}, "Upstream refused it (422 Unprocessable Entity): title is required"},
		{&HTTPError{Mode: HTTP, StatusCode: 302, Location: "https://login.example/"}, "Upstream redirected to https://login.example/ (302), which is not followed"},
	}
	for _, tt := range tests {
		if got := Summary(tt.e); got != tt.want {
			t.Errorf("Summary(%d) = %q, want %q", tt.e.StatusCode, got, tt.want)
		}
	}
}

func TestBackoffHonoursRetryAfterUpToTheCap(t *testing.T) {
	b := Backoff{Min: time.Second, Max: 5 * time.Minute, Jitter: func() float64 { return 0.5 }}
	if got := b.Delay(1, 0); got != 500*time.Millisecond {
		t.Errorf("first delay = %v, want 500ms", got)
	}
	if got := b.Delay(30, 0); got != 150*time.Second {
		t.Errorf("delay after 30 failures = %v, want half the 5m cap", got)
	}
	if got := b.Delay(1, 999999999*time.Second); got != 5*time.Minute {
		t.Errorf("delay with a huge Retry-After = %v, want the 5m cap", got)
	}
	if got := b.Delay(1, 20*time.Second); got != 20*time.Second {
		t.Errorf("delay with Retry-After 20s = %v", got)
	}
	zero := Backoff{Min: time.Second, Max: time.Minute, Jitter: func() float64 { return 0 }}
	if got := zero.Delay(1, 0); got != 100*time.Millisecond {
		t.Errorf("a zero draw waits %v, want the 100ms floor", got)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	if got := ParseRetryAfter("120", now); got != 2*time.Minute {
		t.Errorf("seconds: %v", got)
	}
	if got := ParseRetryAfter(now.Add(time.Minute).Format(http.TimeFormat), now); got != time.Minute {
		t.Errorf("date: %v", got)
	}
	if got := ParseRetryAfter("soon", now); got != 0 {
		t.Errorf("garbage: %v", got)
	}
}

func TestDetailNamesTheRequestOnce(t *testing.T) {
	he := &HTTPError{Mode: HTTP, Base: "http://127.0.0.1:7919/api", Method: "PATCH", Path: "/api/todos/7", StatusCode: 404}
	if d := he.Detail(); !strings.HasPrefix(d, "PATCH http://127.0.0.1:7919/api/todos/7 → 404 Not Found") {
		t.Fatalf("Detail = %q, want the URL with its prefix once", d)
	}
}

func TestHeadEndsOnAWholeCharacter(t *testing.T) {
	tests := []struct {
		in   string
		max  int
		want string
	}{
		{"abc", 5, "abc"},               // shorter than max
		{"abcdef", 5, "abcde"},          // ASCII: cut at max
		{"ab€d", 5, "ab€"},              // the cut falls after a whole character
		{"abc€", 5, "abc"},              // the cut splits "€" (3 bytes) after 2
		{"abcd€", 5, "abcd"},            // after 1
		{"a😀b", 4, "a"},                 // a 4-byte character, after 3
		{"abcd\xe2\x82", 9, "abcd"},     // an incomplete character at the end
		{"abcd\xff\xfe", 5, "abcd\xff"}, // invalid bytes are bytes: cut at max
	}
	for _, tt := range tests {
		if got := string(Head([]byte(tt.in), tt.max)); got != tt.want {
			t.Errorf("Head(%q, %d) = %q, want %q", tt.in, tt.max, got, tt.want)
		}
	}
}
