package app

import (
	"encoding/json"
	"strings"
	"testing"

	"fyne.io/fyne/v2/widget"

	"synctray/localserver/httpup"
	"synctray/localserver/outbox"
)

func TestTheDetailPaneShowsAnHTTPWriteAsARequestAndItsAnswer(t *testing.T) {
	f := newFakeHost()
	raw, _ := httpup.Request{Method: "PUT", Path: "/todos/7", Header: map[string]string{"Content-Type": "application/json"}, Body: []byte(`{"title":""}`)}.Payload()
	a := f.add(httpup.ActionType, outbox.Failed, string(raw))
	ans, _ := json.Marshal(httpup.Answer{Status: 422, Header: map[string]string{"Content-Type": "application/json"}, Body: []byte(`{"message":"title is required"}`)})
	f.mu.Lock()
	f.acts[a.ID-1].Response = ans
	f.acts[a.ID-1].Summary = httpup.Summary(f.acts[a.ID-1])
	f.mu.Unlock()
	app, in := openInspector(t, f, Options{})
	inspect(app, func() { in.table.Select(widget.TableCellID{Row: 0}) })
	waitFor(t, app, "the detail pane", func() bool { return strings.Contains(in.payload.Text, "answer: 422") })
	inspect(app, func() {
		for _, want := range []string{"PUT /todos/7", "Content-Type: application/json", `"message": "title is required"`} {
			if !strings.Contains(in.payload.Text, want) {
				t.Errorf("detail pane lacks %q:\n%s", want, in.payload.Text)
			}
		}
		if !strings.HasPrefix(in.fields.Text, "PUT /todos/7 → failed: 422 title is required\n") {
			t.Errorf("fields = %q, want the write's summary first", in.fields.Text)
		}
	})
}
