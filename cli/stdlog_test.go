package cli

import (
	"encoding/json"
	"errors"
	"log"
	"strings"
	"testing"

	"fyne.io/fyne/v2"

	"synctray/internal/testsupport"
)

func TestFynesErrorsBecomeOneJSONRecordEach(t *testing.T) {
	var out testsupport.SyncBuffer
	c := common{logLevel: "info", logFormat: "json"}
	l, err := c.logger(&out)
	if err != nil {
		t.Fatal(err)
	}
	restore := routeStdLog(l)
	fyne.LogError("failed to load the tray icon", errors.New("no such file"))
	fyne.LogError("a reason without a cause", nil)
	log.Printf("http: a line\nof a library")
	restore()
	log.Print("after restore: not in the app's log")

	lines := strings.Split(strings.TrimRight(out.String(), "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d log lines, want one per event (3):\n%s", len(lines), out.String())
	}
	var recs []map[string]string
	for _, line := range lines {
		var r map[string]string
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("log line %q is not JSON: %v", line, err)
		}
		recs = append(recs, r)
	}
	if r := recs[0]; r["level"] != "ERROR" || r["msg"] != "Fyne error: failed to load the tray icon" || r["cause"] != "no such file" || !strings.Contains(r["at"], "stdlog_test.go:") {
		t.Errorf("first record %v, want the Fyne error with its cause and where", r)
	}
	if r := recs[1]; r["msg"] != "Fyne error: a reason without a cause" || r["cause"] != "" || r["at"] == "" {
		t.Errorf("second record %v, want the Fyne error without a cause", r)
	}
	if r := recs[2]; r["level"] != "WARN" || r["msg"] != "http: a line of a library" {
		t.Errorf("third record %v, want the library's line as one", r)
	}
}
