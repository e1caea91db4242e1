// Package e2e tests synctray's PWA in a real headless Chromium, driven over
// the DevTools protocol with chromedp, against a real local host
// (localserver) and a real reference upstream, both in the test process.
//
// Each test starts its own upstream, its own host on a port picked once
// (so the host can be stopped and started again on the same origin, as a
// user's host would be) and its own browser with a fresh profile, and
// checks what the upstream's store and the page (its DOM and IndexedDB)
// really hold. Where a test needs the host to misbehave (a 503 for the
// worker's replay) or needs to count requests, a small reverse proxy
// stands between the browser and the host.
//
// The tests need Chromium at /usr/bin/chromium (Debian package
// "chromium"); without it they fail rather than skip, so CI cannot pass
// without running them. Screenshots go to artifacts/ at the repository root.
//
//	go test ./e2e/                       # the tests
//	go test -run '^$' -bench . ./e2e/    # BenchmarkReplay1000
package e2e
