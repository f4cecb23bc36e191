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
	"archive/tar"
	"bytes"
	"context"
	"debug/buildinfo"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// What the image promises; the Dockerfile says the same (the test compares).
const (
	imageUser       = "65532:65532"
	entrypoint      = "/manager"
	sourceURL       = "https://github.com/auditops/auditops"
	licenses        = "Apache-2.0"
	title           = "auditops manager"
	caFile          = "/etc/ssl/certs/ca-certificates.crt"
	zoneinfoDir     = "/usr/share/zoneinfo"
	spdxMediaType   = "application/spdx+json"
	refNameKey      = "org.opencontainers.image.ref.name"
	nonrootUID      = 65532
	labelSource     = "org.opencontainers.image.source"
	labelVersion    = "org.opencontainers.image.version"
	labelLicenses   = "org.opencontainers.image.licenses"
	labelTitle      = "org.opencontainers.image.title"
	labelRevision   = "org.opencontainers.image.revision"
	labelCreated    = "org.opencontainers.image.created"
	emptyJSONDigest = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
)

type options struct {
	out     string // OCI layout directory; replaced
	version string
	arch    string
	root    string // the module to build (the repository)
	// trimpath builds with -trimpath (make image); the test builds without
	// it to reuse the compiled packages of the rest of make test.
	trimpath bool
}

type result struct {
	digest       v1.Hash
	sbomPath     string
	sbomPackages int
}

// build compiles the manager, assembles the image and writes the layout.
func build(ctx context.Context, o options) (*result, error) {
	tmp, err := os.MkdirTemp("", "auditops-image-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	bin := filepath.Join(tmp, "manager")
	if err := goBuild(ctx, o, bin); err != nil {
		return nil, err
	}
	return assemble(ctx, o, bin)
}

// assemble writes the image of the manager binary bin: the same binary and
// tree give the same digest.
func assemble(ctx context.Context, o options, bin string) (*result, error) {
	info, err := buildinfo.ReadFile(bin)
	if err != nil {
		return nil, fmt.Errorf("reading the manager's build info: %w", err)
	}
	rev, created := commit(ctx, o.root)

	base, err := baseLayer(created)
	if err != nil {
		return nil, err
	}
	binary, err := os.ReadFile(bin)
	if err != nil {
		return nil, err
	}
	app, err := layerOf(created, []tarEntry{{hdr: tar.Header{Name: strings.TrimPrefix(entrypoint, "/"), Mode: 0o755, Typeflag: tar.TypeReg}, data: binary}})
	if err != nil {
		return nil, err
	}

	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err = mutate.Append(img,
		mutate.Addendum{Layer: base, History: v1.History{Created: v1.Time{Time: created}, CreatedBy: "hack/image: passwd, group, CA certificates, zoneinfo, /tmp"}},
		mutate.Addendum{Layer: app, History: v1.History{Created: v1.Time{Time: created}, CreatedBy: "hack/image: CGO_ENABLED=0 go build -o /manager ."}},
	)
	if err != nil {
		return nil, fmt.Errorf("appending the layers: %w", err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	lbls := labels(o.version, rev, created)
	cf.OS, cf.Architecture, cf.Created = "linux", o.arch, v1.Time{Time: created}
	cf.Config = v1.Config{
		User:       imageUser,
		Entrypoint: []string{entrypoint},
		WorkingDir: "/",
		Env:        []string{"PATH=/usr/local/bin:/usr/bin:/bin", "SSL_CERT_FILE=" + caFile},
		Labels:     lbls,
	}
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return nil, err
	}
	img = mutate.Annotations(img, lbls).(v1.Image)
	digest, err := img.Digest()
	if err != nil {
		return nil, fmt.Errorf("computing the image digest: %w", err)
	}

	doc, err := sbom(ctx, o, info, binary, digest, created)
	if err != nil {
		return nil, err
	}
	sbomJSON, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		return nil, err
	}

	if err := os.RemoveAll(o.out); err != nil {
		return nil, err
	}
	lp, err := layout.Write(o.out, empty.Index)
	if err != nil {
		return nil, fmt.Errorf("writing the layout %s: %w", o.out, err)
	}
	platform := v1.Platform{OS: "linux", Architecture: o.arch}
	imgDesc, err := imageDescriptor(img, platform)
	if err != nil {
		return nil, err
	}
	// WriteImage and our own descriptor rather than AppendImage, whose
	// descriptor would carry the config's media type as an artifactType:
	// this is an image, not an artifact.
	if err := lp.WriteImage(img); err != nil {
		return nil, fmt.Errorf("writing the image: %w", err)
	}
	named := imgDesc
	named.Annotations = map[string]string{refNameKey: o.version}
	if err := lp.AppendDescriptor(named); err != nil {
		return nil, fmt.Errorf("adding the image to the index: %w", err)
	}
	if err := appendSBOM(lp, sbomJSON, imgDesc, created); err != nil {
		return nil, err
	}
	sbomPath := filepath.Join(o.out, "sbom.spdx.json")
	if err := os.WriteFile(sbomPath, sbomJSON, 0o644); err != nil {
		return nil, err
	}
	return &result{digest: digest, sbomPath: sbomPath, sbomPackages: len(doc.Packages)}, nil
}

func goBuild(ctx context.Context, o options, bin string) error {
	args := []string{"build", "-ldflags=-s -w", "-o", bin}
	if o.trimpath {
		args = append(args, "-trimpath")
	}
	cmd := exec.CommandContext(ctx, "go", append(args, ".")...)
	cmd.Dir = o.root
	// Static: no libc in the image, so no cgo.
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+o.arch)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build of the manager: %w\n%s", err, out)
	}
	return nil
}

// commit is the revision built (with -dirty when the tree has changes) and
// the image's creation time: SOURCE_DATE_EPOCH, or the commit's time, so a
// rebuild of one commit gives the same digest, or the Unix epoch outside a
// git checkout. It asks git rather than the binary's build info, which has
// no VCS stamp where GOFLAGS holds -buildvcs=false.
func commit(ctx context.Context, root string) (string, time.Time) {
	git := func(args ...string) string {
		out, err := exec.CommandContext(ctx, "git", append([]string{"-C", root}, args...)...).Output()
		if err != nil {
			return ""
		}
		return strings.TrimSpace(string(out))
	}
	rev := git("rev-parse", "HEAD")
	if rev != "" && git("status", "--porcelain", "--untracked-files=no") != "" {
		rev += "-dirty"
	}
	created := time.Unix(0, 0)
	if sec, err := strconv.ParseInt(os.Getenv("SOURCE_DATE_EPOCH"), 10, 64); err == nil {
		created = time.Unix(sec, 0)
	} else if sec, err := strconv.ParseInt(git("log", "-1", "--format=%ct"), 10, 64); err == nil {
		created = time.Unix(sec, 0)
	}
	return rev, created.UTC()
}

func setting(info *buildinfo.BuildInfo, key string) string {
	for _, s := range info.Settings {
		if s.Key == key {
			return s.Value
		}
	}
	return ""
}

// labels are the image's OCI labels, also its manifest's annotations.
func labels(version, rev string, created time.Time) map[string]string {
	l := map[string]string{
		labelSource:   sourceURL,
		labelVersion:  version,
		labelLicenses: licenses,
		labelTitle:    title,
		labelCreated:  created.Format(time.RFC3339),
	}
	if rev != "" {
		l[labelRevision] = rev
	}
	return l
}

type tarEntry struct {
	hdr  tar.Header
	data []byte
}

// layerOf makes a gzip'ed OCI layer of entries, with fixed times and owners
// so the same inputs give the same digest.
func layerOf(created time.Time, entries []tarEntry) (v1.Layer, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := e.hdr
		h.ModTime, h.Format = created, tar.FormatPAX
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.data))
		}
		if err := tw.WriteHeader(&h); err != nil {
			return nil, fmt.Errorf("tar %s: %w", h.Name, err)
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	raw := buf.Bytes()
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(raw)), nil
	}, tarball.WithMediaType(types.OCILayer))
}

// baseLayer holds what a static Go binary needs from an OS image, as
// distroless/static:nonroot has it: the nonroot user, CA certificates (for
// object stores and PostgreSQL servers with publicly signed certificates),
// zoneinfo (for AuditReports' spec.timeZone) and a writable /tmp. The CA
// bundle and zoneinfo come from this machine's Debian packages
// ca-certificates and tzdata (hack/deps.sh installs them).
func baseLayer(created time.Time) (v1.Layer, error) {
	dir := func(name string, mode int64, uid int) tarEntry {
		return tarEntry{hdr: tar.Header{Name: name + "/", Mode: mode, Typeflag: tar.TypeDir, Uid: uid, Gid: uid}}
	}
	file := func(name string, data string) tarEntry {
		return tarEntry{hdr: tar.Header{Name: name, Mode: 0o644, Typeflag: tar.TypeReg}, data: []byte(data)}
	}
	ca, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("the CA bundle (Debian package ca-certificates, hack/deps.sh): %w", err)
	}
	entries := []tarEntry{
		dir("etc", 0o755, 0),
		file("etc/passwd", "root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"),
		file("etc/group", "root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n"),
		file("etc/nsswitch.conf", "hosts: files dns\n"),
		dir("etc/ssl", 0o755, 0),
		dir("etc/ssl/certs", 0o755, 0),
		{hdr: tar.Header{Name: strings.TrimPrefix(caFile, "/"), Mode: 0o644, Typeflag: tar.TypeReg}, data: ca},
		dir("home", 0o755, 0),
		dir("home/nonroot", 0o700, nonrootUID),
		dir("tmp", 0o1777, 0),
		dir("usr", 0o755, 0),
		dir("usr/share", 0o755, 0),
	}
	zones, err := zoneinfo()
	if err != nil {
		return nil, err
	}
	return layerOf(created, append(entries, zones...))
}

// zoneinfo is /usr/share/zoneinfo as entries, in lexical order (WalkDir's),
// symlinks kept.
func zoneinfo() ([]tarEntry, error) {
	var entries []tarEntry
	err := filepath.WalkDir(zoneinfoDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := strings.TrimPrefix(p, "/")
		switch {
		case d.IsDir():
			entries = append(entries, tarEntry{hdr: tar.Header{Name: name + "/", Mode: 0o755, Typeflag: tar.TypeDir}})
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			entries = append(entries, tarEntry{hdr: tar.Header{Name: name, Mode: 0o777, Typeflag: tar.TypeSymlink, Linkname: target}})
		case d.Type().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			entries = append(entries, tarEntry{hdr: tar.Header{Name: name, Mode: 0o644, Typeflag: tar.TypeReg}, data: data})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("zoneinfo (Debian package tzdata, hack/deps.sh): %w", err)
	}
	return entries, nil
}

func imageDescriptor(img v1.Image, platform v1.Platform) (v1.Descriptor, error) {
	digest, err := img.Digest()
	if err != nil {
		return v1.Descriptor{}, err
	}
	size, err := img.Size()
	if err != nil {
		return v1.Descriptor{}, err
	}
	mt, err := img.MediaType()
	if err != nil {
		return v1.Descriptor{}, err
	}
	return v1.Descriptor{MediaType: mt, Size: size, Digest: digest, Platform: &platform}, nil
}

// appendSBOM adds the SBOM to the layout as an OCI 1.1 artifact whose
// subject is the image, as `oras attach` or `cosign attach sbom` would to
// a registry: a reader finds it by the image's digest.
func appendSBOM(lp layout.Path, sbomJSON []byte, subject v1.Descriptor, created time.Time) error {
	emptyDigest, err := v1.NewHash(emptyJSONDigest)
	if err != nil {
		return err
	}
	sbomDigest, sbomSize, err := v1.SHA256(bytes.NewReader(sbomJSON))
	if err != nil {
		return err
	}
	subject.Platform = nil
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		ArtifactType:  spdxMediaType,
		Config:        v1.Descriptor{MediaType: types.OCIEmptyJSON, Size: 2, Digest: emptyDigest},
		Layers: []v1.Descriptor{{MediaType: spdxMediaType, Size: sbomSize, Digest: sbomDigest,
			Annotations: map[string]string{labelTitle: "sbom.spdx.json"}}},
		Subject:     &subject,
		Annotations: map[string]string{labelCreated: created.Format(time.RFC3339)},
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return err
	}
	mDigest, mSize, err := v1.SHA256(bytes.NewReader(raw))
	if err != nil {
		return err
	}
	for _, b := range []struct {
		h    v1.Hash
		data []byte
	}{{emptyDigest, []byte("{}")}, {sbomDigest, sbomJSON}, {mDigest, raw}} {
		if err := lp.WriteBlob(b.h, io.NopCloser(bytes.NewReader(b.data))); err != nil {
			return fmt.Errorf("writing blob %s: %w", b.h, err)
		}
	}
	err = lp.AppendDescriptor(v1.Descriptor{MediaType: types.OCIManifestSchema1, Size: mSize, Digest: mDigest, ArtifactType: spdxMediaType})
	if err != nil {
		return fmt.Errorf("adding the SBOM to the index: %w", err)
	}
	return nil
}

// debVersion is the installed version of a Debian package, or "" where
// dpkg cannot tell.
func debVersion(ctx context.Context, pkg string) string {
	out, err := exec.CommandContext(ctx, "dpkg-query", "-W", "-f=${Version}", pkg).Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

var errNoMain = errors.New("the binary names no main module")

func mainModule(info *buildinfo.BuildInfo) (string, error) {
	if info.Main.Path == "" {
		return "", errNoMain
	}
	return path.Clean(info.Main.Path), nil
}
