package localserver_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"synctray/internal/failure"
	"synctray/internal/testsupport"
	"synctray/localserver"
	"synctray/localserver/outbox"
	"synctray/localserver/syncer"
)

func TestAFullDiskAnswers507AndSaysSo(t *testing.T) {
	e := startHost(t, localserver.Config{OutboxMaxPages: 40, WorkOffline: true})
	payload := `{"text":"` + strings.Repeat("x", 2000) + `"}`
	var stored int
	var resp *http.Response
	var data []byte
	for i := range 500 {
		resp, data = e.req("POST", "/api/actions", `{"type":"message","payload":`+payload+`}`, map[string]string{"Idempotency-Key": testsupport.NewKey()})
		if resp.StatusCode != http.StatusAccepted {
			break
		}
		stored = i + 1
	}
	if resp.StatusCode != http.StatusInsufficientStorage {
		t.Fatalf("after %d actions: %d %s, want 507", stored, resp.StatusCode, data)
	}
	want := fmt.Sprintf("The disk holding %s is full", filepath.Join(e.dataDir, "outbox.db"))
	var answer struct {
		Error struct{ Code, Message string }
	}
	json.Unmarshal(data, &answer)
	if answer.Error.Code != "insufficient_storage" || !strings.Contains(answer.Error.Message, want) {
		t.Fatalf("answer = %s, want insufficient_storage naming the file", data)
	}
	st := e.status()
	if st.State != syncer.StateBlocked || st.Problem == nil || st.Problem.Code != failure.CodeDiskFull {
		t.Fatalf("status = %+v, want blocked with disk_full", st)
	}
	if got := st.Counts["queued"]; got != stored {
		t.Fatalf("queued = %d, want the %d acknowledged ones kept", got, stored)
	}
	// The batch endpoint and cancel say the same.
	resp, data = e.req("POST", "/api/actions/batch", `{"actions":[{"key":"`+testsupport.NewKey()+`","type":"m","payload":`+payload+`}]}`, nil)
	if resp.StatusCode != http.StatusInsufficientStorage {
		t.Errorf("batch = %d %s, want 507", resp.StatusCode, data)
	}
	// Cancel: fill what room is left with the smallest actions, then
	// cancel actions until one needs room the disk does not have (each
	// cancel writes a row of history).
	total := stored
	for range 2000 {
		if resp, _ := e.req("POST", "/api/actions", `{"type":"m","payload":{}}`, map[string]string{"Idempotency-Key": testsupport.NewKey()}); resp.StatusCode != http.StatusAccepted {
			break
		}
		total++
	}
	for id := int64(1); id <= int64(total); id++ {
		resp, data = e.req("POST", "/api/actions/"+itoa(id)+"/cancel", nil, nil)
		if resp.StatusCode == http.StatusOK {
			continue
		}
		answer.Error.Code, answer.Error.Message = "", ""
		json.Unmarshal(data, &answer)
		if resp.StatusCode != http.StatusInsufficientStorage || answer.Error.Code != "insufficient_storage" || !strings.Contains(answer.Error.Message, want) {
			t.Fatalf("cancel %d = %d %s, want 507 insufficient_storage naming the file", id, resp.StatusCode, data)
		}
		if a := e.get(id); a.State != outbox.Queued {
			t.Fatalf("action %d is %s after a cancel the disk could not take, want queued", id, a.State)
		}
		return
	}
	t.Fatalf("all %d cancels went through: the disk was not full", total)
}
