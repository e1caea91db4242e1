package upstream

import (
	"encoding/json"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"synctray/internal/testsupport"
)

func TestHealthzSaysWhetherTheDatabaseAnswers(t *testing.T) {
	e := newEnv(t, Options{Token: "tok"})
	if code, body := testsupport.Get(t, e.ts.URL+"/healthz", ""); code != 200 || strings.TrimSpace(body) != `{"ok":true}` {
		t.Fatalf("healthz with the store open: %d %s", code, body)
	}
	e.store.Close() // what a store that cannot be read looks like
	code, body := testsupport.Get(t, e.ts.URL+"/healthz", "")
	var eb errorBody
	if code != http.StatusServiceUnavailable || json.Unmarshal([]byte(body), &eb) != nil ||
		eb.Error.Code != "database_unreachable" || len(body) > 200 {
		t.Fatalf("healthz with the store closed: %d %s; want 503 with a short JSON error", code, body)
	}
}

// metricValue returns the value of the sample whose name and labels are
// series (e.g. `x_total{result="applied"}`) in a text exposition.
func metricValue(t *testing.T, exposition, series string) float64 {
	t.Helper()
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindStringSubmatch(exposition)
	if m == nil {
		t.Fatalf("no %s in the metrics:\n%s", series, exposition)
	}
	v, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestMetricsCountResultsAndTimeBatchesBehindTheToken(t *testing.T) {
	ctx := ctxT(t)
	e := newEnv(t, Options{Token: "tok"})
	for _, tok := range []string{"", "wrong"} {
		if code, _ := testsupport.Get(t, e.ts.URL+"/metrics", tok); code != http.StatusUnauthorized {
			t.Fatalf("metrics with token %q: %d, want 401", tok, code)
		}
	}
	if _, err := e.client.Send(ctx, []Action{act("a", "t", `{}`), act("a", "t", `{}`), act("r", "t", `{"_reject":"no"}`), act("b", "t", `{}`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.client.Send(ctx, []Action{act("b", "t", `{}`)}); err != nil {
		t.Fatal(err)
	}
	code, body := testsupport.Get(t, e.ts.URL+"/metrics", "tok")
	if code != 200 {
		t.Fatalf("metrics: %d %s", code, body)
	}
	for series, want := range map[string]float64{
		`synctray_upstream_actions_total{result="applied"}`:   2,
		`synctray_upstream_actions_total{result="duplicate"}`: 2,
		`synctray_upstream_actions_total{result="rejected"}`:  1,
		`synctray_upstream_batch_duration_seconds_count`:      2,
		`synctray_upstream_batch_errors_total`:                0,
		`synctray_upstream_ws_subscribers`:                    0,
	} {
		if got := metricValue(t, body, series); got != want {
			t.Errorf("%s = %v, want %v", series, got, want)
		}
	}
	if !strings.Contains(body, "go_goroutines") {
		t.Errorf("no Go runtime metrics:\n%s", body)
	}
}
