package loadtest

import (
	"bufio"
	"os"
	"os/exec"
	"runtime"
	"testing"
	"time"
)

// TestTreeCPUCountsChildren runs a child that burns 300 ms of CPU and
// expects that time in this process's tree, under the child's name.
func TestTreeCPUCountsChildren(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("reads /proc")
	}
	before, err := TreeCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// This test binary again (see TestMain): it spins until it has used
	// 300 ms of CPU, says so on stdout, then idles until killed.
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), "LOADTEST_BURN=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	ready := make(chan bool, 1)
	go func() { ready <- bufio.NewScanner(out).Scan() }()
	select {
	case ok := <-ready:
		if !ok {
			t.Fatal("the child exited early")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the child did not burn its CPU within 30 s")
	}
	by, err := TreeCPUByName(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	after, _ := TreeCPU(os.Getpid())
	child, err := TreeCPU(cmd.Process.Pid)
	if err != nil || child < 250*time.Millisecond {
		t.Fatalf("child's own CPU %v (%v), want about 300 ms", child, err)
	}
	// /proc counts in 10 ms ticks: allow a little under 300 ms.
	if by["loadtest.test"] < 250*time.Millisecond || after-before < 250*time.Millisecond {
		t.Fatalf("child CPU not counted: by name %v, tree %v → %v", by, before, after)
	}
	if _, err := TreeCPU(1 << 30); err == nil {
		t.Fatal("want an error for a process that does not exist")
	}
}

// TestMain doubles as the child of TestTreeCPUCountsChildren.
func TestMain(m *testing.M) {
	if os.Getenv("LOADTEST_BURN") != "" {
		for ownCPU() < 300*time.Millisecond+20*time.Millisecond {
		}
		os.Stdout.WriteString("burnt\n")
		time.Sleep(time.Minute)
		os.Exit(0)
	}
	os.Exit(m.Run())
}
