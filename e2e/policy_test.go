package e2e

import (
	"testing"

	"synctray/internal/failure"
)

// TestWorkerPolicyIsTheGoPolicy checks, status by status, that the service
// workers' classifier (assets/sync-policy.js) is the Go one
// (internal/failure): one failure policy, not two that drift apart.
func TestWorkerPolicyIsTheGoPolicy(t *testing.T) {
	e := newEnv(t, options{})
	got := eval[map[string][]string](e, `new Promise((ok, fail) => {
		const s = document.createElement('script');
		s.src = '/sync-policy.js';
		s.onerror = fail;
		s.onload = () => {
			const out = { batch: [], single: [], transient: [] };
			for (let st = 100; st <= 599; st++) {
				out.batch.push(self.synctrayPolicy.classify(st, 'batch'));
				out.single.push(self.synctrayPolicy.classify(st, 'single'));
				out.transient.push(String(self.synctrayPolicy.isTransient(st)));
			}
			ok(out);
		};
		document.head.append(s);
	})`)
	if len(got["batch"]) != 500 || len(got["single"]) != 500 {
		t.Fatalf("the worker classified %d and %d statuses, want 500 each", len(got["batch"]), len(got["single"]))
	}
	diffs := 0
	for i := range 500 {
		st := 100 + i
		v1, http := failure.OfStatus(failure.V1, st), failure.OfStatus(failure.HTTP, st)
		if got["batch"][i] != v1.String() || got["single"][i] != http.String() {
			t.Errorf("status %d: worker says %s (batch) / %s (single), Go says %s / %s", st, got["batch"][i], got["single"][i], v1, http)
			diffs++
		}
		wantTransient := "false"
		if http == failure.Transient || http == failure.Busy {
			wantTransient = "true"
		}
		if got["transient"][i] != wantTransient {
			t.Errorf("status %d: isTransient = %s, want %s", st, got["transient"][i], wantTransient)
			diffs++
		}
		if diffs > 10 {
			t.Fatal("too many differences")
		}
	}
}
