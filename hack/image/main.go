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

// Command image builds the manager's OCI image without a container engine,
// with go-containerregistry: a static (CGO_ENABLED=0) manager on a base
// layer of the files distroless/static:nonroot gives (passwd and group with
// the nonroot user 65532, CA certificates, zoneinfo, /tmp), run as
// 65532:65532, written as an OCI image layout with an SPDX SBOM attached
// as an OCI 1.1 referrer (and beside it as sbom.spdx.json).
//
//	go run ./hack/image -o bin/image -version v0.1.0   # what make image runs
//
// The Dockerfile builds the same image with a container engine; the test
// checks that both say the same user, entrypoint and labels.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
)

func main() {
	o := options{trimpath: true, root: "."}
	flag.StringVar(&o.out, "o", "bin/image", "the OCI image layout directory to write (replaced)")
	flag.StringVar(&o.version, "version", "dev", "the image's version (label org.opencontainers.image.version and ref name)")
	flag.StringVar(&o.arch, "arch", runtime.GOARCH, "the image's architecture (GOARCH)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	res, err := build(ctx, o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
	fmt.Printf("image %s (linux/%s, %s) in %s\nSBOM %s (%d packages)\n", res.digest, o.arch, o.version, o.out, res.sbomPath, res.sbomPackages)
}
