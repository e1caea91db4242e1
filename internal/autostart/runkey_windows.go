//go:build windows

package autostart

import (
	"errors"
	"fmt"

	"golang.org/x/sys/windows/registry"
)

// RunKeyPath is the current user's Run key, under HKEY_CURRENT_USER.
const RunKeyPath = `Software\Microsoft\Windows\CurrentVersion\Run`

func newRunKey(exec []string) Entry { return NewRunKey(CurrentUserRun{}, exec) }

// CurrentUserRun is HKCU\Software\Microsoft\Windows\CurrentVersion\Run,
// opened for each call (it is touched only when the user toggles it).
type CurrentUserRun struct{}

func (CurrentUserRun) Value(name string) (string, bool, error) {
	k, err := registry.OpenKey(registry.CURRENT_USER, RunKeyPath, registry.QUERY_VALUE)
	if errors.Is(err, registry.ErrNotExist) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("open Run key: %w", err)
	}
	defer k.Close()
	v, _, err := k.GetStringValue(name)
	if errors.Is(err, registry.ErrNotExist) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("read Run value: %w", err)
	}
	return v, true, nil
}

func (CurrentUserRun) SetValue(name, value string) error {
	k, _, err := registry.CreateKey(registry.CURRENT_USER, RunKeyPath, registry.SET_VALUE)
	if err != nil {
		return fmt.Errorf("open Run key: %w", err)
	}
	defer k.Close()
	return k.SetStringValue(name, value)
}

func (CurrentUserRun) DeleteValue(name string) error {
	k, err := registry.OpenKey(registry.CURRENT_USER, RunKeyPath, registry.SET_VALUE)
	if errors.Is(err, registry.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("open Run key: %w", err)
	}
	defer k.Close()
	if err := k.DeleteValue(name); err != nil && !errors.Is(err, registry.ErrNotExist) {
		return err
	}
	return nil
}
