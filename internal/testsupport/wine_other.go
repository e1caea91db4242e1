//go:build !windows

package testsupport

// UnderWine reports whether this process runs under wine: never here.
func UnderWine() bool { return false }
