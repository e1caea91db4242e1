//go:build !unix

package pgtest

import "syscall"

// credential: the cluster runs as this user (no root to step down from).
func credential(dir string) (*struct{}, error) { return nil, nil }

func procAttr(cred *struct{}, group bool) *syscall.SysProcAttr { return nil }
