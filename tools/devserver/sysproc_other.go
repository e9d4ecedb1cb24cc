//go:build unix && !linux

package devserver

import "syscall"

// sysProcAttr puts a server in its own process group. Without Linux's
// Pdeathsig the server outlives a parent that is killed with SIGKILL; a
// parent that exits normally stops its servers.
func sysProcAttr(cred *syscall.Credential) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Credential: cred}
}
