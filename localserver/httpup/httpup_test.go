package httpup

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"synctray/localserver/outbox"
)

func TestARecordedWriteRoundTrips(t *testing.T) {
	for name, body := range map[string][]byte{
		"json":   []byte(`{"title":"milk <&>"}`),
		"text":   []byte("plain text\nwith lines"),
		"binary": {0xff, 0x00, 0xfe, 0x10},
		"none":   nil,
	} {
		t.Run(name, func(t *testing.T) {
			r := Request{Method: "PATCH", Path: "/todos/7?x=%2F", Header: map[string]string{"Content-Type": "application/octet-stream"}, Body: body}
			raw, err := r.Payload()
			if err != nil {
				t.Fatal(err)
			}
			again, _ := r.Payload()
			if !bytes.Equal(raw, again) {
				t.Fatal("the same request encodes differently: key reuse could not be told from a resend")
			}
			got, err := Parse(raw)
			if err != nil {
				t.Fatal(err)
			}
			if got.Method != r.Method || got.Path != r.Path || !bytes.Equal(got.Body, r.Body) || got.Header["Content-Type"] != r.Header["Content-Type"] {
				t.Fatalf("got %+v, want %+v", got, r)
			}
		})
	}
}

func TestFromPageKeepsOnlyWhatTheUpstreamNeeds(t *testing.T) {
	req := httptest.NewRequest("POST", "/upstream/todos?list=home&x=a%2Fb", strings.NewReader("{}"))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("If-Match", `"v1"`)
	req.Header.Set("Cookie", "session=secret")
	req.Header.Set("Authorization", "Bearer host-token")
	req.Header.Set("X-Request-Id", "r1")
	req.Header.Set("X-Other", "dropped")
	r, err := FromPage(req, []byte("{}"), []string{"X-Request-Id", "Cookie"})
	if err != nil {
		t.Fatal(err)
	}
	if r.Path != "/todos?list=home&x=a%2Fb" {
		t.Errorf("path = %q, want the path and raw query below /upstream", r.Path)
	}
	want := map[string]string{"Content-Type": "application/json", "If-Match": `"v1"`, "X-Request-Id": "r1"}
	if len(r.Header) != len(want) {
		t.Errorf("headers = %v, want %v", r.Header, want)
	}
	for k, v := range want {
		if r.Header[k] != v {
			t.Errorf("%s = %q, want %q", k, r.Header[k], v)
		}
	}
	if _, err := FromPage(httptest.NewRequest("GET", "/upstream/x", nil), nil, nil); err == nil {
		t.Error("a GET was recorded as a write")
	}
	if _, err := FromPage(httptest.NewRequest("POST", "/upstreamx", nil), nil, nil); err == nil {
		t.Error("a path outside /upstream/ was accepted")
	}
	if err := CheckForward([]string{"Authorization"}); err == nil {
		t.Error("--forward-header Authorization was accepted")
	}
}

func TestTheForwarderKeepsTheUpstreamsPathPrefix(t *testing.T) {
	var got *http.Request
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Clone(r.Context())
		w.Header().Set("Location", "/api/v2/todos/1")
		w.Header().Set("Set-Cookie", "tracking=1")
		w.WriteHeader(201)
		w.Write([]byte(`{"id":1}`))
	}))
	defer srv.Close()
	base, _ := url.Parse(srv.URL + "/api/v2/")
	f := &Forwarder{Base: base, Headers: http.Header{"Authorization": {"Bearer up"}}}
	raw, _ := Request{Method: "POST", Path: "/todos/a%2Fb?q=1", Body: []byte(`{}`)}.Payload()
	ans, err := f.Forward(t.Context(), outbox.Action{Key: "0190a0b0-0000-7000-8000-000000000001", Payload: raw})
	if err != nil {
		t.Fatal(err)
	}
	if got.URL.EscapedPath() != "/api/v2/todos/a%2Fb" || got.URL.RawQuery != "q=1" {
		t.Errorf("sent %s?%s, want /api/v2/todos/a%%2Fb?q=1", got.URL.EscapedPath(), got.URL.RawQuery)
	}
	if got.Header.Get("Idempotency-Key") != "0190a0b0-0000-7000-8000-000000000001" || got.Header.Get("Authorization") != "Bearer up" {
		t.Errorf("headers %v, want the key and the host's credentials", got.Header)
	}
	if ans.Status != 201 || ans.Header["Location"] != "/api/v2/todos/1" || ans.Header["Set-Cookie"] != "" || string(ans.Body) != `{"id":1}` {
		t.Errorf("answer %+v, want 201 with Location and body, no Set-Cookie", ans)
	}
}

func TestPeopleReadHTTPActionsAsRequests(t *testing.T) {
	raw, _ := Request{Method: "PUT", Path: "/todos/7", Header: map[string]string{"Content-Type": "application/json"}, Body: []byte(`{"title":""}`)}.Payload()
	refused, _ := json.Marshal(Answer{Status: 422, Header: map[string]string{"Content-Type": "application/json"}, Body: []byte(`{"message":"title is required"}`)})
	created, _ := json.Marshal(Answer{Status: 201, Body: []byte("ok")})
	cases := []struct {
		a    outbox.Action
		want string
	}{
		{outbox.Action{State: outbox.Queued, Payload: raw}, "PUT /todos/7"},
		{outbox.Action{State: outbox.Synced, Payload: raw, Response: created}, "PUT /todos/7 → 201 Created"},
		{outbox.Action{State: outbox.Failed, Payload: raw, Response: refused}, "PUT /todos/7 → failed: 422 title is required"},
	}
	for _, c := range cases {
		if got := Summary(c.a); got != c.want {
			t.Errorf("Summary = %q, want %q", got, c.want)
		}
	}
	d := Detail(outbox.Action{State: outbox.Failed, Payload: raw, Response: refused})
	for _, want := range []string{"PUT /todos/7", "Content-Type: application/json", `"title": ""`, "answer: 422 Unprocessable Entity", `"message": "title is required"`} {
		if !strings.Contains(d, want) {
			t.Errorf("Detail lacks %q:\n%s", want, d)
		}
	}
	bin, _ := Request{Method: "POST", Path: "/blobs", Header: map[string]string{"Content-Type": "image/png"}, Body: []byte{0x89, 'P', 'N', 'G', 0, 0xff}}.Payload()
	if d := Detail(outbox.Action{Payload: bin}); !strings.Contains(d, "(6 bytes of image/png)") {
		t.Errorf("binary body shown as %q, want its size", d)
	}
}
