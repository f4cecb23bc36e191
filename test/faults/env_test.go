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

// Package faults runs the real manager (bin/manager built with the
// faultinject tag) as a process against real stores and the real control
// plane of 'make run', does to it what a failing machine does (SIGKILL at
// random moments and between a commit and its answer, a store that stops),
// and asserts the durability invariants of spec/API.md: every acknowledged
// event stored exactly once, seq unique and in commit order, the store
// intact. FAULT_ROUNDS=N runs more rounds per scenario than CI's few.
package faults

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// env is the control plane of hack/run-local.sh, shared by every test of
// the package; the tests run their own manager processes against it.
var env struct {
	root, localDir, runDir, pki string
	managerBin                  string
	securePort                  int
	baseArgs                    []string // the manager's arguments from run-local.sh
}

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	wd, _ := os.Getwd()
	env.root = filepath.Clean(filepath.Join(wd, "..", ".."))
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		fmt.Fprintln(os.Stderr, "KUBEBUILDER_ASSETS is not set: run 'make test', which builds etcd, kube-apiserver and kubectl into bin/k8s")
		return 1
	}
	var err error
	env.localDir, err = os.MkdirTemp("", "auditops-faults-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(env.localDir)
	env.runDir = filepath.Join(env.localDir, "run")
	env.pki = filepath.Join(env.localDir, "pki")

	// The manager under test is this tree's, with the fault points on.
	env.managerBin = filepath.Join(env.localDir, "manager")
	build := exec.Command("go", "build", "-tags", "faultinject", "-o", env.managerBin, ".")
	build.Dir, build.Env = env.root, append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building the manager: %v\n%s", err, out)
		return 1
	}
	if env.securePort, err = freePort(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	script := filepath.Join(env.root, "hack", "run-local.sh")
	up := exec.Command(script)
	up.Env = append(os.Environ(), "RUN_LOCAL_DETACH=1", "LOCAL_DIR="+env.localDir, "MANAGER_BIN="+env.managerBin,
		"AUDITOPS_SECURE_PORT="+strconv.Itoa(env.securePort), "K8S_VERSION="+filepath.Base(assets))
	var out bytes.Buffer
	up.Stdout, up.Stderr = &out, &out
	upErr := up.Run()
	defer func() {
		stop := exec.Command(script, "stop")
		stop.Env = append(os.Environ(), "LOCAL_DIR="+env.localDir)
		_ = stop.Run()
	}()
	if upErr != nil {
		fmt.Fprintf(os.Stderr, "hack/run-local.sh: %v\n%s", upErr, out.String())
		return 1
	}
	// The tests start their own managers: stop the script's.
	if err := stopPIDFile(filepath.Join(env.runDir, "manager.pid")); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	raw, err := os.ReadFile(filepath.Join(env.runDir, "manager.args"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	env.baseArgs = strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n")
	return m.Run()
}

func stopPIDFile(path string) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	_ = syscall.Kill(pid, syscall.SIGTERM)
	for range 300 {
		if syscall.Kill(pid, 0) != nil {
			return os.Remove(path)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("manager %d did not stop", pid)
}

// freePort returns a loopback port nothing listens on, for a manager to
// bind. It picks below Linux's ephemeral range (32768-60999), from which the
// kernel draws both port 0 listeners and the source ports of outgoing
// connections: a port from there, free when chosen, can be taken by a
// connection or another port-0 pick before the manager binds it ("address
// already in use" once in CI, three replicas starting at once). No port is
// handed out twice in one test binary.
func freePort() (int, error) {
	for range 1000 {
		p := 20000 + rand.IntN(12000)
		if _, taken := portsHandedOut.LoadOrStore(p, true); taken {
			continue
		}
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			continue
		}
		l.Close()
		return p, nil
	}
	return 0, errors.New("no free port between 20000 and 32000")
}

// portsHandedOut are the ports freePort returned.
var portsHandedOut sync.Map

// rounds is how many rounds a scenario runs: a few in CI, FAULT_ROUNDS by hand.
func rounds(t *testing.T, ci int) int {
	t.Helper()
	v := os.Getenv("FAULT_ROUNDS")
	if v == "" {
		return ci
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("FAULT_ROUNDS=%q: want a positive integer", v)
	}
	return n
}

// managerProc is one run of the manager process.
type managerProc struct {
	cmd *exec.Cmd
	// probes and metrics are the manager's health-probe and metrics
	// addresses (host:port).
	probes, metrics string
	// port is its --secure-port (the API and ingest).
	port   int
	exited chan struct{}
	err    error // the process's exit, once exited is closed
	killed bool  // by the test
}

// managerConfig is what a test changes in the script's arguments.
type managerConfig struct {
	store        string
	tokenKeyFile string
	logPath      string
	env          []string // extra environment (fault points)
	extraArgs    []string // appended to the script's arguments
	// securePort and probes, when set, replace the script's --secure-port
	// and --health-probe-bind-address: replicas side by side need their own.
	securePort int
	probes     string
}

// startManager starts the manager and waits until its ingest answers.
func startManager(t *testing.T, cfg managerConfig) *managerProc {
	t.Helper()
	p := startManagerNoWait(t, cfg)
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	if err := waitIngestReady(ctx, p); err != nil {
		p.kill()
		t.Fatalf("the manager did not become ready: %v\n%s", err, tail(cfg.logPath))
	}
	return p
}

func startManagerNoWait(t *testing.T, cfg managerConfig) *managerProc {
	t.Helper()
	metricsPort, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	p := &managerProc{exited: make(chan struct{}), metrics: "127.0.0.1:" + strconv.Itoa(metricsPort), port: env.securePort}
	if cfg.securePort != 0 {
		p.port = cfg.securePort
	}
	args := make([]string, 0, len(env.baseArgs)+2)
	for i := 0; i < len(env.baseArgs); i++ {
		a := env.baseArgs[i]
		if i+1 == len(env.baseArgs) {
			args = append(args, a)
			break
		}
		switch a {
		case "--store":
			args = append(args, a, cfg.store)
		case "--metrics-bind-address":
			args = append(args, a, p.metrics)
		case "--health-probe-bind-address":
			p.probes = env.baseArgs[i+1]
			if cfg.probes != "" {
				p.probes = cfg.probes
			}
			args = append(args, a, p.probes)
		case "--secure-port":
			args = append(args, a, strconv.Itoa(p.port))
		default:
			args = append(args, a)
			continue
		}
		i++
	}
	if cfg.tokenKeyFile != "" {
		args = append(args, "--token-key-file", cfg.tokenKeyFile)
	}
	args = append(args, cfg.extraArgs...)
	logf, err := os.OpenFile(cfg.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	fmt.Fprintf(logf, "=== %s: start\n", time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(env.managerBin, args...)
	cmd.Env = append(os.Environ(), cfg.env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting the manager: %v", err)
	}
	p.cmd = cmd
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() { p.kill() })
	return p
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *managerProc) kill() {
	select {
	case <-p.exited:
		return
	default:
	}
	p.killed = true
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
}

// stop sends SIGTERM (a clean shutdown) and waits, SIGKILL after 40 s.
func (p *managerProc) stop() error {
	select {
	case <-p.exited:
		return fmt.Errorf("the manager had exited: %v", p.err)
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		return p.err
	case <-time.After(40 * time.Second):
		p.kill()
		return fmt.Errorf("the manager did not stop within 40 s of SIGTERM")
	}
}

// waitFaultPoint waits for p, started with a fault point (cfg.env), to
// SIGKILL itself there within limit; what names the round in failures. A
// sender that fails first cancels ctx and says why on errs.
func waitFaultPoint(t *testing.T, ctx context.Context, errs <-chan error, p *managerProc, cfg managerConfig, what string, limit time.Duration) {
	t.Helper()
	select {
	case <-p.exited:
	case <-time.After(limit):
		t.Fatalf("%s: the fault point (%v) did not fire within %s\n%s", what, cfg.env, limit, tail(cfg.logPath))
	case <-ctx.Done():
		t.Fatalf("%s: a sender failed: %v", what, <-errs)
	}
	if !p.diedOfSIGKILL() {
		t.Fatalf("%s: the manager exited without the fault point: %v\n%s", what, p.err, tail(cfg.logPath))
	}
}

// diedOfSIGKILL says whether the process ended by SIGKILL (the test's or
// its own fault point's).
func (p *managerProc) diedOfSIGKILL() bool {
	ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL
}

// waitIngestReady posts an empty EventList to p's own port until it is
// answered 200.
func waitIngestReady(ctx context.Context, p *managerProc) error {
	c := ingestClient()
	var last error
	for {
		select {
		case <-p.exited:
			return fmt.Errorf("the manager exited: %v", p.err)
		default:
		}
		code, answer, err := postTo(ctx, c, p.port, kubeAuditPath, []byte(`{"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{},"items":[]}`))
		if err == nil && code == http.StatusOK {
			return nil
		}
		if err != nil {
			last = err
		} else {
			last = fmt.Errorf("status %d: %.200s", code, answer)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last: %v)", ctx.Err(), last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

const (
	kubeAuditPath = "/ingest/v1/kube-audit"
	eventsPath    = "/ingest/v1/events"
)

// ingestClient authenticates as the audit webhook of run-local.sh (allowed
// to create events cluster-wide). No connection is reused across a kill.
func ingestClient() *http.Client { return clientAs("audit-webhook") }

// clientAs authenticates with the client certificate pki/<name>.crt of
// run-local.sh ("admin" is in system:masters).
func clientAs(name string) *http.Client {
	cert, err := tls.LoadX509KeyPair(filepath.Join(env.pki, name+".crt"), filepath.Join(env.pki, name+".key"))
	if err != nil {
		panic(err)
	}
	caPEM, err := os.ReadFile(filepath.Join(env.pki, "ca.crt"))
	if err != nil {
		panic(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	return &http.Client{
		Timeout: 60 * time.Second,
		Transport: &http.Transport{
			TLSClientConfig:     &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: pool, MinVersion: tls.VersionTLS12},
			MaxIdleConnsPerHost: 4,
		},
	}
}

// post sends body to the API's port and returns the status code and the
// answer.
func post(ctx context.Context, c *http.Client, path string, body []byte) (int, []byte, error) {
	return postTo(ctx, c, env.securePort, path, body)
}

// postTo is post to the API on port.
func postTo(ctx context.Context, c *http.Client, port int, path string, body []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "https://127.0.0.1:"+strconv.Itoa(port)+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	if _, err := b.ReadFrom(resp.Body); err != nil {
		return resp.StatusCode, nil, err
	}
	if resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") == "" {
		return resp.StatusCode, b.Bytes(), fmt.Errorf("503 without Retry-After: %s", b.String())
	}
	return resp.StatusCode, b.Bytes(), nil
}

// tail returns the last lines of a log file, for failure messages.
func tail(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > 60 {
			lines = lines[1:]
		}
	}
	return "--- tail of " + path + "\n" + strings.Join(lines, "\n")
}
