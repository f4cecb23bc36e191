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

// Command bench is auditops' end-to-end benchmark; see README.md. Run it with
// make bench (BENCH_EVENTS=N to change the data set's size).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"

	"github.com/auditops/auditops/internal/bench"
	"github.com/auditops/auditops/internal/memtune"
	"github.com/auditops/auditops/internal/store/sqlite"
	"github.com/auditops/auditops/internal/store/storetest"
)

// chartMemoryLimit is the manager container's memory limit in the chart
// and config/manager: the bench runs with the Go runtime settings the
// manager takes from it, unless AUDITOPS_MEMORY_LIMIT says otherwise.
const chartMemoryLimit = "512Mi"

func main() {
	if os.Getenv(memtune.LimitEnv) == "" {
		// Report children inherit it, and apply it again below.
		os.Setenv(memtune.LimitEnv, chartMemoryLimit)
	}
	// The SQLite store's reserve, as the default manager: the bench's
	// PostgreSQL runs share the process with it.
	rt, err := memtune.Apply(os.Getenv, sqlite.NativeMemoryBytes)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	if bench.ChildMain() {
		return
	}
	if err := run(rt); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(rt memtune.Settings) error {
	n := 1000000
	if v := os.Getenv("BENCH_EVENTS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 1000 {
			return fmt.Errorf("BENCH_EVENTS=%q: want an integer >= 1000", v)
		}
	}
	out := "bench/results.json"
	if len(os.Args) > 1 {
		out = os.Args[1]
	}
	pg := os.Getenv(storetest.EnvPostgresURL)
	if pg == "" {
		return fmt.Errorf("%s is not set: run through hack/with-postgres.sh (make bench does)", storetest.EnvPostgresURL)
	}
	dir, err := os.MkdirTemp("", "auditops-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if p := os.Getenv("AUDITOPS_BENCH_CPUPROFILE"); p != "" {
		// Profiling aid: the main process (ingest, floors, pages); each
		// report child writes its own.
		f, err := os.Create(p + "-main.prof")
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg := bench.Config{Events: n, Dir: dir, PostgresURL: pg, Log: os.Stderr, GoRuntime: rt}
	if v := os.Getenv("BENCH_STORES"); v != "" {
		cfg.Stores = strings.Split(v, ",")
		for _, s := range cfg.Stores {
			if s != "sqlite" && s != "postgres" {
				return fmt.Errorf("BENCH_STORES=%q: want sqlite, postgres or both, comma-separated", v)
			}
		}
	}
	switch v := os.Getenv("BENCH_SEAL"); v {
	case "", "on":
	case "off":
		cfg.NoLeaves = true
	case "unsealed":
		cfg.NoSealer = true
	default:
		return fmt.Errorf("BENCH_SEAL=%q: want on (the default), unsealed or off", v)
	}
	switch p := os.Getenv("BENCH_PG_PARTITIONS"); p {
	case "":
	case "day":
		cfg.PostgresDayPartitions = true
	default:
		return fmt.Errorf("BENCH_PG_PARTITIONS=%q: want day or nothing", p)
	}
	switch only := os.Getenv("BENCH_ONLY"); only {
	case "":
	case "ingest":
		cfg.IngestOnly = true
	default:
		return fmt.Errorf("BENCH_ONLY=%q: want ingest or nothing", only)
	}
	res, err := bench.Run(ctx, cfg)
	if err != nil {
		return err
	}
	fmt.Printf("\nauditops benchmark: %d events, %s\n\n", res.Events, res.Elapsed.Round(1e9))
	res.WriteTable(os.Stdout)
	if err := res.WriteJSON(out); err != nil {
		return err
	}
	fmt.Printf("\nwrote %s\n", out)
	return nil
}
