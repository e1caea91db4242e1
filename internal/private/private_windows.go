//go:build windows

package private

import (
	"fmt"
	"os"
	"strings"
	"unsafe"

	"golang.org/x/sys/windows"
)

// restrict sets a protected DACL: full control for the current user and
// SYSTEM, nothing inherited from the parent. On a directory the entries
// are inherited by the files and directories created in it (OICI).
func restrict(path string, fi os.FileInfo) error {
	user, err := currentUser()
	if err != nil {
		return err
	}
	inherit := ""
	if fi.IsDir() {
		inherit = "OICI"
	}
	sd, err := windows.SecurityDescriptorFromString(fmt.Sprintf("D:P(A;%s;FA;;;%s)(A;%s;FA;;;SY)", inherit, user, inherit))
	if err != nil {
		return fmt.Errorf("security descriptor: %w", err)
	}
	dacl, _, err := sd.DACL()
	if err != nil {
		return fmt.Errorf("security descriptor: %w", err)
	}
	err = windows.SetNamedSecurityInfo(path, windows.SE_FILE_OBJECT,
		windows.DACL_SECURITY_INFORMATION|windows.PROTECTED_DACL_SECURITY_INFORMATION, nil, nil, dacl, nil)
	if err != nil {
		return fmt.Errorf("set ACL: %w", err)
	}
	return nil
}

// exposed names the accounts other than this user, SYSTEM and the
// Administrators that path's DACL allows any access.
func exposed(path string, fi os.FileInfo) (how, fix string, err error) {
	sd, err := windows.GetNamedSecurityInfo(path, windows.SE_FILE_OBJECT, windows.DACL_SECURITY_INFORMATION)
	if err != nil {
		return "", "", fmt.Errorf("read ACL: %w", err)
	}
	fix = `keep it to yourself: icacls FILE /inheritance:r /grant:r "%USERNAME%:F"`
	dacl, _, err := sd.DACL()
	if err != nil || dacl == nil {
		// No DACL at all means everyone has full access.
		return "no access control list: everyone has access", fix, nil
	}
	user, err := currentUser()
	if err != nil {
		return "", "", err
	}
	trusted := []*windows.SID{user}
	for _, k := range []windows.WELL_KNOWN_SID_TYPE{windows.WinLocalSystemSid, windows.WinBuiltinAdministratorsSid, windows.WinCreatorOwnerSid} {
		if sid, err := windows.CreateWellKnownSid(k); err == nil {
			trusted = append(trusted, sid)
		}
	}
	var others []string
	for i := uint32(0); i < uint32(dacl.AceCount); i++ {
		var ace *windows.ACCESS_ALLOWED_ACE
		if err := windows.GetAce(dacl, i, &ace); err != nil {
			return "", "", fmt.Errorf("read ACL entry %d: %w", i, err)
		}
		if ace.Header.AceType != windows.ACCESS_ALLOWED_ACE_TYPE || ace.Mask == 0 {
			continue
		}
		sid := (*windows.SID)(unsafe.Pointer(&ace.SidStart))
		if isTrusted(sid, trusted) {
			continue
		}
		others = append(others, accountName(sid))
	}
	if len(others) == 0 {
		return "", "", nil
	}
	return "its access control list allows " + strings.Join(others, ", "), fix, nil
}

func isTrusted(sid *windows.SID, trusted []*windows.SID) bool {
	for _, t := range trusted {
		if sid.Equals(t) {
			return true
		}
	}
	return false
}

func accountName(sid *windows.SID) string {
	account, domain, _, err := sid.LookupAccount("")
	if err != nil || account == "" {
		return sid.String()
	}
	if domain != "" {
		return domain + `\` + account
	}
	return account
}

// currentUser is the SID of the user this process runs as.
func currentUser() (*windows.SID, error) {
	tu, err := windows.GetCurrentProcessToken().GetTokenUser()
	if err != nil {
		return nil, fmt.Errorf("current user: %w", err)
	}
	return tu.User.Sid, nil
}
