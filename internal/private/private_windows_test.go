//go:build windows

package private

import (
	"strings"
	"testing"

	"golang.org/x/sys/windows"
)

// openToEveryone gives path a DACL that allows Everyone (WD) full access.
func openToEveryone(t *testing.T, path string) {
	sd, err := windows.SecurityDescriptorFromString("D:P(A;;FA;;;WD)")
	if err != nil {
		t.Fatal(err)
	}
	dacl, _, err := sd.DACL()
	if err != nil {
		t.Fatal(err)
	}
	if err := windows.SetNamedSecurityInfo(path, windows.SE_FILE_OBJECT,
		windows.DACL_SECURITY_INFORMATION|windows.PROTECTED_DACL_SECURITY_INFORMATION, nil, nil, dacl, nil); err != nil {
		t.Fatal(err)
	}
}

func TestExposedWindowsNamesEveryone(t *testing.T) {
	f := t.TempDir() + `\f`
	if err := writeEmpty(f); err != nil {
		t.Fatal(err)
	}
	openToEveryone(t, f)
	how, fix, err := Exposed(f)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(how, "Everyone") && !strings.Contains(how, "S-1-1-0") {
		t.Errorf("Exposed = %q, want it to name Everyone", how)
	}
	if !strings.Contains(fix, "icacls FILE ") {
		t.Errorf("fix = %q, want an icacls command", fix)
	}
}

func writeEmpty(path string) error {
	h, err := windows.CreateFile(windows.StringToUTF16Ptr(path), windows.GENERIC_WRITE, 0, nil, windows.CREATE_NEW, 0, 0)
	if err != nil {
		return err
	}
	return windows.CloseHandle(h)
}
