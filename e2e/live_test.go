package e2e

import (
	"testing"
	"time"
)

func TestAClosedSocketMarksTheHostUnreachableAtOnce(t *testing.T) {
	e := newEnv(t, options{})
	e.waitJS("online", `document.getElementById('conn').dataset.state === 'online'`)
	e.stopHost()
	// Without the socket's close, the page only noticed at its next API
	// call, ~27 s later; 5 s is a failure bound, not a speed claim.
	deadline := time.Now().Add(5 * time.Second)
	for eval[string](e, `document.getElementById('conn').dataset.state`) != "host-down" {
		if time.Now().After(deadline) {
			t.Fatalf("the pill still says %q 5 s after the host stopped", eval[string](e, `document.getElementById('conn').textContent`))
		}
		time.Sleep(50 * time.Millisecond)
	}
	e.startHost()
	e.waitJS("online again", `document.getElementById('conn').dataset.state === 'online'`)
}
