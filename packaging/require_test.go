package packaging

import (
	"fmt"
	"os"
	"testing"
)

// cannot skips the test for want of a package or a tool, or fails it when
// the packages are required: CI sets SYNCTRAY_REQUIRE_PACKAGES=1 after
// building every package.
func cannot(t *testing.T, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if os.Getenv("SYNCTRAY_REQUIRE_PACKAGES") == "1" {
		t.Fatal(msg + " (SYNCTRAY_REQUIRE_PACKAGES=1)")
	}
	t.Skip(msg + "; SYNCTRAY_REQUIRE_PACKAGES=1 makes this a failure")
}
