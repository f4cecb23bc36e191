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
	"bufio"
	"bytes"
	"crypto/sha256"
	"crypto/x509"
	"debug/buildinfo"
	"debug/elf"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// builtImage is one build of the image, shared by the tests of this file.
type builtImage struct {
	dir    string
	res    *result
	index  *v1.IndexManifest
	img    v1.Image
	config *v1.ConfigFile
	files  map[string]*tar.Header
	data   map[string][]byte
}

const testVersion = "v0.0.0-test"

// buildImage builds the image as make image does, into a temporary layout,
// and reads it back through go-containerregistry's layout reader: what a
// registry push (crane push, skopeo copy oci:) would take.
func buildImage(t *testing.T, out string) *builtImage {
	t.Helper()
	// Without -trimpath, unlike make image: the packages are then those the
	// other tests of make test compile (test/e2e builds the manager with
	// CGO_ENABLED=0 too), so this costs a link, not a second compile of
	// the manager. The layers and config are made the same way.
	res, err := build(t.Context(), options{out: out, version: testVersion, arch: runtime.GOARCH, root: filepath.Join("..", "..")})
	if err != nil {
		t.Fatal(err)
	}
	idx, err := layout.ImageIndexFromPath(out)
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	b := &builtImage{dir: out, res: res, index: im, files: map[string]*tar.Header{}, data: map[string][]byte{}}
	for _, d := range im.Manifests {
		if d.ArtifactType == "" && d.Annotations[refNameKey] == testVersion {
			if b.img, err = idx.Image(d.Digest); err != nil {
				t.Fatal(err)
			}
		}
	}
	if b.img == nil {
		t.Fatalf("no image named %s in the index: %+v", testVersion, im.Manifests)
	}
	if b.config, err = b.img.ConfigFile(); err != nil {
		t.Fatal(err)
	}
	// The image's file system as a runtime unpacks it: every layer, in order.
	tr := tar.NewReader(mutate.Extract(b.img))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		name := "/" + strings.TrimSuffix(h.Name, "/")
		b.files[name] = h
		if h.Typeflag == tar.TypeReg {
			if b.data[name], err = io.ReadAll(tr); err != nil {
				t.Fatal(err)
			}
		}
	}
	return b
}

// TestImage builds the image and checks its config (user, entrypoint,
// labels), its files, that the manager in its layer is static and runs,
// its SBOM, and that a second build gives the same digest.
func TestImage(t *testing.T) {
	b := buildImage(t, filepath.Join(t.TempDir(), "image"))
	cfg := b.config.Config

	t.Run("config", func(t *testing.T) {
		if cfg.User != imageUser || cfg.User == "" || strings.HasPrefix(cfg.User, "0") || strings.HasPrefix(cfg.User, "root") {
			t.Errorf("user %q, want %s (non-root)", cfg.User, imageUser)
		}
		if !slices.Equal(cfg.Entrypoint, []string{"/manager"}) || len(cfg.Cmd) != 0 {
			t.Errorf("entrypoint %q cmd %q, want [/manager] and no cmd", cfg.Entrypoint, cfg.Cmd)
		}
		if b.config.OS != "linux" || b.config.Architecture != runtime.GOARCH {
			t.Errorf("platform %s/%s, want linux/%s", b.config.OS, b.config.Architecture, runtime.GOARCH)
		}
		for _, tc := range []struct{ label, want string }{
			{labelSource, "https://github.com/auditops/auditops"},
			{labelVersion, testVersion},
			{labelLicenses, "Apache-2.0"},
			{labelTitle, "auditops manager"},
		} {
			if got := cfg.Labels[tc.label]; got != tc.want {
				t.Errorf("label %s = %q, want %q", tc.label, got, tc.want)
			}
		}
		if cfg.Labels[labelRevision] == "" {
			t.Errorf("no %s label (the commit built): %v", labelRevision, cfg.Labels)
		}
		m, err := b.img.Manifest()
		if err != nil {
			t.Fatal(err)
		}
		if m.MediaType != types.OCIManifestSchema1 || m.Config.MediaType != types.OCIConfigJSON {
			t.Errorf("media types %s / %s, want OCI's", m.MediaType, m.Config.MediaType)
		}
		if !reflect.DeepEqual(m.Annotations, cfg.Labels) {
			t.Errorf("manifest annotations %v differ from the labels %v", m.Annotations, cfg.Labels)
		}
		for _, l := range m.Layers {
			if l.MediaType != types.OCILayer {
				t.Errorf("layer %s has media type %s, want %s", l.Digest, l.MediaType, types.OCILayer)
			}
		}
	})

	t.Run("files", func(t *testing.T) {
		if !strings.Contains(string(b.data["/etc/passwd"]), "nonroot:x:65532:65532:") ||
			!strings.Contains(string(b.data["/etc/group"]), "nonroot:x:65532:") {
			t.Errorf("passwd/group lack the nonroot user 65532:\n%s%s", b.data["/etc/passwd"], b.data["/etc/group"])
		}
		if h := b.files["/tmp"]; h == nil || h.Typeflag != tar.TypeDir || h.Mode&0o1777 != 0o1777 {
			t.Errorf("/tmp is %+v, want a directory with mode 1777", h)
		}
		if h := b.files["/home/nonroot"]; h == nil || h.Uid != nonrootUID {
			t.Errorf("/home/nonroot is %+v, want one owned by %d", h, nonrootUID)
		}
		if !x509.NewCertPool().AppendCertsFromPEM(b.data[caFile]) {
			t.Errorf("%s holds no CA certificate", caFile)
		}
		// spec.timeZone of scheduled reports needs zoneinfo.
		if z := b.data["/usr/share/zoneinfo/Europe/Berlin"]; !bytes.HasPrefix(z, []byte("TZif")) {
			t.Errorf("no zoneinfo for Europe/Berlin (%d bytes)", len(z))
		}
		if h := b.files["/manager"]; h == nil || h.Mode&0o755 != 0o755 || h.Uid != 0 {
			t.Errorf("/manager is %+v, want root-owned and executable by all", h)
		}
		for name, h := range b.files {
			if h.Typeflag == tar.TypeReg && h.Mode&0o002 != 0 {
				t.Errorf("%s is world-writable", name)
			}
		}
	})

	// The manager as the image holds it: static, cgo-free, and it runs.
	bin := filepath.Join(t.TempDir(), "manager")
	if err := os.WriteFile(bin, b.data["/manager"], 0o755); err != nil {
		t.Fatal(err)
	}
	t.Run("binary", func(t *testing.T) {
		f, err := elf.Open(bin)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
				t.Errorf("the manager is dynamically linked (%s): the image has no libc", p.Type)
			}
		}
		info, err := buildinfo.ReadFile(bin)
		if err != nil {
			t.Fatal(err)
		}
		if setting(info, "CGO_ENABLED") != "0" || setting(info, "GOOS") != "linux" {
			t.Errorf("built with CGO_ENABLED=%q GOOS=%q, want 0 and linux", setting(info, "CGO_ENABLED"), setting(info, "GOOS"))
		}
		// As a runtime would run it: in the image's file system alone (no
		// libc, no host files), as the image's user, with its environment.
		// chroot needs root, which make test has on our machines and in CI;
		// elsewhere the binary runs from the host's file system.
		cmd := exec.CommandContext(t.Context(), bin, "--help")
		if os.Geteuid() == 0 {
			cmd = exec.CommandContext(t.Context(), cfg.Entrypoint[0], "--help")
			cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: unpack(t, b), Credential: &syscall.Credential{Uid: nonrootUID, Gid: nonrootUID}}
			cmd.Dir, cmd.Env = "/", cfg.Env
		} else {
			t.Logf("not root: %s --help runs outside the image's root", bin)
		}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("manager --help: %v\n%s", err, out)
		}
		for _, flag := range []string{"--store", "--secure-port", "--leader-elect", "--metrics-bind-address"} {
			if !strings.Contains(string(out), flag) {
				t.Errorf("manager --help does not mention %s:\n%s", flag, out)
			}
		}
	})

	t.Run("sbom", func(t *testing.T) {
		imgDigest, err := b.img.Digest()
		if err != nil {
			t.Fatal(err)
		}
		var sbomDesc *v1.Descriptor
		for i, d := range b.index.Manifests {
			if d.ArtifactType == spdxMediaType {
				sbomDesc = &b.index.Manifests[i]
			}
		}
		if sbomDesc == nil {
			t.Fatalf("no %s artifact in the index: %+v", spdxMediaType, b.index.Manifests)
		}
		lp := layout.Path(b.dir)
		var m v1.Manifest
		readJSON(t, lp, sbomDesc.Digest, &m)
		if m.Subject == nil || m.Subject.Digest != imgDigest {
			t.Fatalf("the SBOM's subject is %+v, not the image %s", m.Subject, imgDigest)
		}
		if len(m.Layers) != 1 || m.Layers[0].MediaType != spdxMediaType {
			t.Fatalf("SBOM manifest layers %+v", m.Layers)
		}
		raw, err := lp.Bytes(m.Layers[0].Digest)
		if err != nil {
			t.Fatal(err)
		}
		if beside, err := os.ReadFile(b.res.sbomPath); err != nil || !bytes.Equal(beside, raw) {
			t.Errorf("sbom.spdx.json beside the layout differs from the attached SBOM: %v", err)
		}
		var doc spdxDocument
		if err := json.Unmarshal(raw, &doc); err != nil {
			t.Fatal(err)
		}
		if doc.SPDXVersion != "SPDX-2.3" || doc.DataLicense != "CC0-1.0" || !strings.Contains(doc.DocumentNamespace, imgDigest.Hex) {
			t.Errorf("document %s %s %s", doc.SPDXVersion, doc.DataLicense, doc.DocumentNamespace)
		}
		byName := map[string]spdxPackage{}
		for _, p := range doc.Packages {
			byName[p.Name] = p
		}
		sum := sha256.Sum256(b.data["/manager"])
		if p := byName["manager"]; len(p.Checksums) != 1 || p.Checksums[0].ChecksumValue != hex.EncodeToString(sum[:]) {
			t.Errorf("the SBOM's manager checksum %+v is not the image's binary's %x", p.Checksums, sum)
		}
		for _, want := range []string{"auditops-manager", "github.com/auditops/auditops", "stdlib", "k8s.io/client-go",
			"sigs.k8s.io/controller-runtime", "github.com/jackc/pgx/v5", "modernc.org/sqlite", "ca-certificates", "tzdata"} {
			if _, ok := byName[want]; !ok {
				t.Errorf("the SBOM lists no %s", want)
			}
		}
		if got := byName["k8s.io/client-go"]; len(got.ExternalRefs) != 1 || !strings.HasPrefix(got.ExternalRefs[0].ReferenceLocator, "pkg:golang/k8s.io/client-go@v") {
			t.Errorf("k8s.io/client-go's purl: %+v", got.ExternalRefs)
		}
		if len(doc.Relationships) != len(doc.Packages) {
			t.Errorf("%d relationships for %d packages: every package hangs off the document", len(doc.Relationships), len(doc.Packages))
		}
		t.Logf("SBOM: %d packages, %d bytes", len(doc.Packages), len(raw))
	})

	t.Run("reproducible", func(t *testing.T) {
		// From the same binary: the rest of the tree may change meanwhile
		// where others work in it, and go build's own reproducibility is
		// Go's to test.
		again, err := assemble(t.Context(), options{out: filepath.Join(t.TempDir(), "again"), version: testVersion, arch: runtime.GOARCH,
			root: filepath.Join("..", "..")}, bin)
		if err != nil {
			t.Fatal(err)
		}
		if again.digest != b.res.digest {
			t.Errorf("two images of one binary and commit: %s and %s", b.res.digest, again.digest)
		}
	})

	t.Run("dockerfile", func(t *testing.T) { checkDockerfile(t, cfg) })
	size, _ := b.img.Size()
	layers, _ := b.img.Layers()
	var total int64
	for _, l := range layers {
		s, _ := l.Size()
		total += s
	}
	t.Logf("image %s: %d layers, %d bytes compressed", b.res.digest, len(layers), total+size)
}

// unpack writes the image's file system into a directory to chroot into.
func unpack(t *testing.T, b *builtImage) string {
	t.Helper()
	rootfs := t.TempDir()
	// The image's user must be able to enter its root.
	if err := os.Chmod(rootfs, 0o755); err != nil {
		t.Fatal(err)
	}
	names := slices.Sorted(maps.Keys(b.files)) // parents before children
	for _, name := range names {
		h, p := b.files[name], filepath.Join(rootfs, name)
		var err error
		switch h.Typeflag {
		case tar.TypeDir:
			if err = os.MkdirAll(p, 0o755); err == nil {
				err = os.Chmod(p, os.FileMode(h.Mode&0o777)|modeBits(h.Mode))
			}
		case tar.TypeReg:
			err = os.WriteFile(p, b.data[name], os.FileMode(h.Mode&0o777))
		case tar.TypeSymlink:
			err = os.Symlink(h.Linkname, p)
		}
		if err == nil {
			err = os.Lchown(p, h.Uid, h.Gid)
		}
		if err != nil {
			t.Fatalf("unpacking %s: %v", name, err)
		}
	}
	return rootfs
}

// modeBits are a tar mode's sticky, setuid and setgid bits as Go's.
func modeBits(mode int64) os.FileMode {
	var m os.FileMode
	if mode&0o1000 != 0 {
		m |= os.ModeSticky
	}
	if mode&0o2000 != 0 {
		m |= os.ModeSetgid
	}
	if mode&0o4000 != 0 {
		m |= os.ModeSetuid
	}
	return m
}

func readJSON(t *testing.T, lp layout.Path, h v1.Hash, into any) {
	t.Helper()
	raw, err := lp.Bytes(h)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, into); err != nil {
		t.Fatal(err)
	}
}

// checkDockerfile: the Dockerfile (for those with a container engine) makes
// the image make image makes: same user, entrypoint and labels.
func checkDockerfile(t *testing.T, cfg v1.Config) {
	f, err := os.Open(filepath.Join("..", "..", "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var user string
	var entry []string
	labels := map[string]string{}
	sc := bufio.NewScanner(f)
	stage := 0
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		instr, rest, _ := strings.Cut(line, " ")
		switch strings.ToUpper(instr) {
		case "FROM":
			stage++
			user, entry, labels = "", nil, map[string]string{} // only the final stage counts
		case "USER":
			user = rest
		case "ENTRYPOINT":
			if err := json.Unmarshal([]byte(rest), &entry); err != nil {
				t.Errorf("ENTRYPOINT %s: want the exec (JSON) form: %v", rest, err)
			}
		case "LABEL":
			k, v, _ := strings.Cut(rest, "=")
			labels[k] = strings.Trim(v, `"`)
		}
	}
	if stage < 2 {
		t.Fatalf("the Dockerfile has %d stages, want a build stage and the image", stage)
	}
	if user != cfg.User || !slices.Equal(entry, cfg.Entrypoint) {
		t.Errorf("Dockerfile: USER %q ENTRYPOINT %q; make image: %q %q", user, entry, cfg.User, cfg.Entrypoint)
	}
	for _, l := range []string{labelSource, labelLicenses, labelTitle} {
		if labels[l] != cfg.Labels[l] {
			t.Errorf("Dockerfile label %s = %q, make image's %q", l, labels[l], cfg.Labels[l])
		}
	}
	if labels[labelVersion] != "${VERSION}" {
		t.Errorf("Dockerfile label %s = %q, want ${VERSION} (ARG VERSION)", labelVersion, labels[labelVersion])
	}
}
