//go:build !windows

package main

// attachConsole is needed only by Windows GUI-subsystem builds.
func attachConsole() {}
