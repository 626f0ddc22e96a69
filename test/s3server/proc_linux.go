package s3server

import "syscall"

// sysProcAttr ends the server with the test process, should the test be
// killed before its cleanup runs.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
