package localserver_test

import (
	"encoding/json"
	"testing"

	"synctray/localserver"
)

// FuzzDecodeActionRequest checks that the action decoder never panics and
// accepts only what the outbox can store. Its seed corpus runs in go test.
func FuzzDecodeActionRequest(f *testing.F) {
	const key = "0192f6a4-7c2e-7d3a-9b1e-2f4c6a8e0b1d"
	seeds := []string{
		`{"type":"message","payload":{"text":"hi"}}`,
		`{"type":"message","payload":"plain"}`,
		`{"type":"note","payload":[1,2,{"a":null}]}`,
		`{"type":"m","payload":null}`,
		`{"type":"","payload":{}}`,
		`{"type":"m"}`,
		`{"payload":{}}`,
		`{"type":"m","payload":{},"x":1}`,
		`{"type":"m","payload":{}}{}`,
		`{"type":5,"payload":{}}`,
		`[]`, `null`, ``, `{`, `{"type":"m","payload":{"a":"\ud800"}}`,
		"{\"type\":\"m\",\"payload\":\"\xff\"}",
	}
	for _, s := range seeds {
		f.Add(key, []byte(s))
	}
	f.Add("not-a-uuid", []byte(seeds[0]))
	f.Add("", []byte(seeds[0]))
	f.Fuzz(func(t *testing.T, key string, body []byte) {
		n, err := localserver.DecodeActionRequest(key, body)
		if err != nil {
			return
		}
		if n.Key != key || n.Type == "" || !json.Valid(n.Payload) {
			t.Fatalf("accepted %q / %q as %+v", key, body, n)
		}
		if err := n.Validate(); err != nil {
			t.Fatalf("accepted an action its own validation refuses: %v", err)
		}
	})
}
