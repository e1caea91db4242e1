//go:build windows

package main

import (
	"log"
	"os"

	"golang.org/x/sys/windows"
)

var procAttachConsole = windows.NewLazySystemDLL("kernel32.dll").NewProc("AttachConsole")

const attachParentProcess = ^uint32(0) // ATTACH_PARENT_PROCESS

// attachConsole lets the GUI-subsystem build (linked with -H windowsgui,
// so that starting it from Explorer opens no console window) print its
// --help, version and CLI output when it is run from cmd or PowerShell:
// it starts with no standard handles, so it attaches to its parent's
// console and writes to CONOUT$. Handles it already has (output
// redirected to a file or a pipe, or a console build) are kept as they
// are. A console's shell does not wait for a GUI program: the prompt may
// come back before the output (run `synctray.exe version | more`, or
// `start /wait`, to wait).
func attachConsole() {
	out := usable(windows.STD_OUTPUT_HANDLE)
	errs := usable(windows.STD_ERROR_HANDLE)
	if out && errs {
		return
	}
	if r, _, _ := procAttachConsole.Call(uintptr(attachParentProcess)); r == 0 {
		return // started from Explorer, or the parent has no console
	}
	con, err := os.OpenFile("CONOUT$", os.O_WRONLY, 0)
	if err != nil {
		return
	}
	if !out {
		os.Stdout = con
		windows.SetStdHandle(windows.STD_OUTPUT_HANDLE, windows.Handle(con.Fd()))
	}
	if !errs {
		os.Stderr = con
		windows.SetStdHandle(windows.STD_ERROR_HANDLE, windows.Handle(con.Fd()))
		log.SetOutput(os.Stderr)
	}
}

// usable reports whether the standard handle n leads somewhere.
func usable(n uint32) bool {
	h, err := windows.GetStdHandle(n)
	if err != nil || h == 0 || h == windows.InvalidHandle {
		return false
	}
	t, err := windows.GetFileType(h)
	return err == nil && t != windows.FILE_TYPE_UNKNOWN
}
