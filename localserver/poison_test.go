package localserver_test

import (
	"net/http"
	"strings"
	"testing"

	"synctray/internal/testsupport"
	"synctray/localserver"
	"synctray/localserver/outbox"
	"synctray/localserver/syncer"
)

func TestWhatTheUpstreamCannotTakeIsRefusedAtEnqueue(t *testing.T) {
	e := startHost(t, localserver.Config{})

	t.Run("a payload nested 9,998 deep is refused with 400 and a reason", func(t *testing.T) {
		deep := strings.Repeat("[", 9998) + strings.Repeat("]", 9998)
		resp, data := e.req("POST", "/api/actions", `{"type":"message","payload":`+deep+`}`, map[string]string{"Idempotency-Key": testsupport.NewKey()})
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(data), "nests deeper than 1000 levels") {
			t.Fatalf("enqueue = %d %s, want 400 saying how deep it may nest", resp.StatusCode, data)
		}
	})

	t.Run("a payload of 50,000 '<' is sent as it is and synced", func(t *testing.T) {
		st, a := e.post(testsupport.NewKey(), "message", `{"text":"`+strings.Repeat("<", 50000)+`"}`)
		if st != http.StatusAccepted {
			t.Fatalf("enqueue = %d", st)
		}
		testsupport.WaitFor(t, "synced", func() bool { return e.get(a.ID).State == outbox.Synced })
	})

	t.Run("40 payloads of 256 KiB go out in requests under the upstream's body limit", func(t *testing.T) {
		big := `"` + strings.Repeat("x", outbox.MaxPayloadBytes-2) + `"`
		var ids []int64
		for range 40 {
			st, a := e.post(testsupport.NewKey(), "blob", big)
			if st != http.StatusAccepted {
				t.Fatalf("enqueue = %d", st)
			}
			ids = append(ids, a.ID)
		}
		testsupport.WaitFor(t, "all 40 synced", func() bool { return e.get(ids[len(ids)-1]).State == outbox.Synced })
		for _, id := range ids {
			if a := e.get(id); a.State != outbox.Synced {
				t.Fatalf("action %d = %s %q, want synced", id, a.State, a.LastError)
			}
		}
	})
}

func TestABatchSizeAboveTheProtocolLimitIsRefusedAtStart(t *testing.T) {
	_, err := localserver.Open(localserver.Config{DataDir: t.TempDir(), Addr: "127.0.0.1:0", UpstreamURL: "http://127.0.0.1:1",
		Sync: syncer.Options{BatchSize: 1001}})
	if err == nil || !strings.Contains(err.Error(), "want 1 to 1000") {
		t.Fatalf("Open with batch size 1001: %v, want a refusal naming the limit", err)
	}
}
