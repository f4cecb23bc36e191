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
	"context"
	"fmt"
	"io"
	"os"

	"github.com/spf13/pflag"
	"golang.org/x/term"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/auditops/auditops/internal/ingest"
	"github.com/auditops/auditops/internal/seal"
)

// runImport is 'manager import': load kube-apiserver audit log files (one
// event per line, gzip accepted) or NDJSON events into the store. Re-running
// it stores nothing twice, so an interrupted import is resumed by running it
// again.
func runImport(ctx context.Context, args []string) error {
	return importFiles(ctx, args, os.Stdout, os.Stderr)
}

// importFiles is runImport writing to stdout and stderr. A progress line
// goes to stderr only when it is a terminal: in a pipe or a log file, "\r"
// rewrites are noise, and the summary on stdout says it all.
func importFiles(ctx context.Context, args []string, stdout io.Writer, stderr *os.File) error {
	fs := pflag.NewFlagSet("manager import", pflag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: manager import --store URL --format kube-audit|events FILE...")
		fs.PrintDefaults()
	}
	var (
		so          storeOptions
		format      string
		batch       int
		skipInvalid bool
		maxObject   int
	)
	so.addFlags(fs)
	// Import is an ingest path: its events get leaves, with the manager's
	// keyring (the same --seal-key-file, or its Secret through the
	// kubeconfig), or the leader would refuse them as not ingested.
	var seo sealOptions
	seo.addFlags(fs)
	fs.StringVar(&format, "format", ingest.FormatKubeAudit, "kube-audit (kube-apiserver's audit log, one event per line) or events (NDJSON of auditops events)")
	fs.IntVar(&batch, "batch-size", ingest.DefaultImportBatchSize, "events per store transaction")
	fs.IntVar(&maxObject, "max-event-object-bytes", ingest.DefaultMaxObjectBytes, "object fields larger than this are stored as a truncation marker, as on the webhook")
	fs.BoolVar(&skipInvalid, "skip-invalid", false, "skip lines that cannot be read (a log cut off by a crash) instead of stopping")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return fmt.Errorf("no files to import")
	}
	if err := ingest.CheckMaxObjectBytes(maxObject); err != nil {
		return err
	}
	keys, _, err := seo.keyring(ctx, so, ctrl.GetConfig)
	if err != nil {
		return fmt.Errorf("loading the seal key: %w", err)
	}
	if keys != nil {
		so.leaves = seal.LeafMaker{Keys: keys}
	}
	st, err := so.open(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	opts := ingest.ImportOptions{BatchSize: batch, SkipInvalid: skipInvalid, MaxObjectBytes: maxObject}
	if term.IsTerminal(int(stderr.Fd())) {
		opts.Progress = stderr
	}
	stats, err := ingest.Import(ctx, st, format, fs.Args(), opts)
	fmt.Fprintf(stdout, "imported %d files: %d events read, %d stored, %d already stored, %d reused an id, %d objects truncated\n",
		stats.Files, stats.Read, stats.Stored, stats.Duplicates, stats.Reused, stats.Truncated)
	return err
}
