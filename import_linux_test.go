/*
Copyright 2026 The auditops Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"unsafe"
)

// TestImportProgressOnlyOnATerminal: 'manager import' writes its progress
// line to stderr when stderr is a terminal (here a real pseudo-terminal),
// and nothing there in a pipe; stdout's summary is the same either way.
func TestImportProgressOnlyOnATerminal(t *testing.T) {
	dir := t.TempDir()
	var log bytes.Buffer
	for i := range 50 {
		fmt.Fprintf(&log, `{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"a-%d","stage":"ResponseComplete","requestURI":"/api/v1/namespaces/team-a/pods","verb":"list","user":{"username":"alice"},"objectRef":{"resource":"pods","namespace":"team-a","apiVersion":"v1"},"responseStatus":{"metadata":{},"code":200},"requestReceivedTimestamp":"2026-11-22T08:00:%02d.000001Z","stageTimestamp":"2026-11-22T08:00:%02d.000002Z"}`+"\n", i, i, i)
	}
	logFile := filepath.Join(dir, "audit.log")
	if err := os.WriteFile(logFile, log.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name     string
		terminal bool
	}{{"pipe", false}, {"terminal", true}} {
		t.Run(tc.name, func(t *testing.T) {
			// stderr is the writing end; what the user would see is read
			// from the other.
			var stderr, reader *os.File
			if tc.terminal {
				reader, stderr = openPTY(t)
			} else {
				var err error
				if reader, stderr, err = os.Pipe(); err != nil {
					t.Fatal(err)
				}
			}
			defer reader.Close()
			var stdout bytes.Buffer
			args := []string{"--store", "sqlite://" + filepath.Join(dir, tc.name+".db"), logFile}
			err := importFiles(context.Background(), args, &stdout, stderr)
			stderr.Close()
			if err != nil {
				t.Fatal(err)
			}
			seen := readAll(t, reader)
			if want := "imported 1 files: 50 events read, 50 stored, 0 already stored"; !strings.Contains(stdout.String(), want) {
				t.Errorf("stdout %q lacks %q", stdout.String(), want)
			}
			if !tc.terminal {
				if seen != "" {
					t.Errorf("a pipe got progress output %q", seen)
				}
				return
			}
			// The terminal's line discipline shows "\n" as "\r\n".
			want := "\rfiles 1/1, 50 events read (50 stored, 0 duplicates, 0 skipped, 0 invalid), "
			if !strings.HasPrefix(seen, want) || !strings.HasSuffix(seen, "\x1b[K\r\n") {
				t.Errorf("the terminal saw %q, want a line starting %q and ending in a newline", seen, want)
			}
		})
	}
}

// openPTY opens a pseudo-terminal pair with the kernel's /dev/ptmx, as
// script(1) and terminal emulators do: the master, and the slave a program
// sees as its terminal.
func openPTY(t *testing.T) (master, slave *os.File) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Fatalf("opening /dev/ptmx: %v", err)
	}
	var unlock int32
	if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, master.Fd(), syscall.TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock))); errno != 0 {
		t.Fatalf("unlocking the pty: %v", errno)
	}
	var n uint32
	if _, _, errno := syscall.Syscall(syscall.SYS_IOCTL, master.Fd(), syscall.TIOCGPTN, uintptr(unsafe.Pointer(&n))); errno != 0 {
		t.Fatalf("the pty's number: %v", errno)
	}
	slave, err = os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		master.Close()
		t.Fatalf("opening the pty's slave: %v", err)
	}
	return master, slave
}

// readAll reads what was written to the other end, closed by now: a pipe
// ends with EOF, a pty's master with EIO once its slave is closed.
func readAll(t *testing.T, r *os.File) string {
	t.Helper()
	var b bytes.Buffer
	_, err := io.Copy(&b, r)
	if err != nil && !errors.Is(err, syscall.EIO) {
		t.Fatal(err)
	}
	return b.String()
}
