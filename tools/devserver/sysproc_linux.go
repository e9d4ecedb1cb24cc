package devserver

import "syscall"

// sysProcAttr puts a server in its own process group and has the kernel
// kill it when the thread that started it dies, so a crashed or killed
// parent leaves no server behind.
func sysProcAttr(cred *syscall.Credential) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL, Credential: cred}
}
