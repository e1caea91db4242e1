//go:build !windows

package autostart

func newRunKey(exec []string) Entry { return nil } // only Windows has a registry
