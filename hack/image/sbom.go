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
	"crypto/sha256"
	"debug/buildinfo"
	"encoding/hex"
	"fmt"
	"regexp"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// An SPDX 2.3 document (https://spdx.github.io/spdx-spec/v2.3/), written
// with its own few types as ko does for its SBOMs: the fields used here
// are a small, stable part of the format, and a library for them would
// add more dependencies than this file has lines.
type spdxDocument struct {
	SPDXID            string             `json:"SPDXID"`
	SPDXVersion       string             `json:"spdxVersion"`
	CreationInfo      spdxCreationInfo   `json:"creationInfo"`
	Name              string             `json:"name"`
	DataLicense       string             `json:"dataLicense"`
	DocumentNamespace string             `json:"documentNamespace"`
	DocumentDescribes []string           `json:"documentDescribes"`
	Packages          []spdxPackage      `json:"packages"`
	Relationships     []spdxRelationship `json:"relationships"`
}

type spdxCreationInfo struct {
	Created  string   `json:"created"`
	Creators []string `json:"creators"`
}

type spdxPackage struct {
	SPDXID                string            `json:"SPDXID"`
	Name                  string            `json:"name"`
	VersionInfo           string            `json:"versionInfo,omitempty"`
	Supplier              string            `json:"supplier,omitempty"`
	DownloadLocation      string            `json:"downloadLocation"`
	FilesAnalyzed         bool              `json:"filesAnalyzed"`
	LicenseDeclared       string            `json:"licenseDeclared,omitempty"`
	PrimaryPackagePurpose string            `json:"primaryPackagePurpose,omitempty"`
	Checksums             []spdxChecksum    `json:"checksums,omitempty"`
	ExternalRefs          []spdxExternalRef `json:"externalRefs,omitempty"`
}

type spdxChecksum struct {
	Algorithm     string `json:"algorithm"`
	ChecksumValue string `json:"checksumValue"`
}

type spdxExternalRef struct {
	ReferenceCategory string `json:"referenceCategory"`
	ReferenceType     string `json:"referenceType"`
	ReferenceLocator  string `json:"referenceLocator"`
}

type spdxRelationship struct {
	Element string `json:"spdxElementId"`
	Type    string `json:"relationshipType"`
	Related string `json:"relatedSpdxElement"`
}

var spdxIDUnsafe = regexp.MustCompile(`[^A-Za-z0-9.-]+`)

func purl(ref string) []spdxExternalRef {
	return []spdxExternalRef{{ReferenceCategory: "PACKAGE-MANAGER", ReferenceType: "purl", ReferenceLocator: ref}}
}

// sbom describes the image: the manager binary, the Go modules compiled
// into it (from its build info, so exactly what was linked) and the Go
// standard library, and the Debian packages its base layer copies files of.
func sbom(ctx context.Context, o options, info *buildinfo.BuildInfo, binary []byte, digest v1.Hash, created time.Time) (*spdxDocument, error) {
	main, err := mainModule(info)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(binary)
	doc := &spdxDocument{
		SPDXID:            "SPDXRef-DOCUMENT",
		SPDXVersion:       "SPDX-2.3",
		CreationInfo:      spdxCreationInfo{Created: created.Format(time.RFC3339), Creators: []string{"Tool: auditops-hack-image"}},
		Name:              "auditops-manager-" + o.version,
		DataLicense:       "CC0-1.0",
		DocumentNamespace: fmt.Sprintf("%s/spdx/manager/%s/%s", sourceURL, o.version, digest.Hex),
		DocumentDescribes: []string{"SPDXRef-Image"},
	}
	add := func(p spdxPackage, rel, from string) {
		doc.Packages = append(doc.Packages, p)
		doc.Relationships = append(doc.Relationships, spdxRelationship{Element: from, Type: rel, Related: p.SPDXID})
	}
	doc.Packages = append(doc.Packages, spdxPackage{
		SPDXID: "SPDXRef-Image", Name: "auditops-manager", VersionInfo: digest.String(),
		DownloadLocation: "NOASSERTION", PrimaryPackagePurpose: "CONTAINER", LicenseDeclared: licenses,
		ExternalRefs: purl(fmt.Sprintf("pkg:oci/manager@%s?arch=%s&tag=%s", strings.ReplaceAll(digest.String(), ":", "%3A"), o.arch, o.version)),
	})
	doc.Relationships = append(doc.Relationships, spdxRelationship{Element: "SPDXRef-DOCUMENT", Type: "DESCRIBES", Related: "SPDXRef-Image"})
	add(spdxPackage{
		SPDXID: "SPDXRef-Binary-manager", Name: "manager", VersionInfo: o.version,
		DownloadLocation: "NOASSERTION", PrimaryPackagePurpose: "APPLICATION", LicenseDeclared: licenses,
		Checksums: []spdxChecksum{{Algorithm: "SHA256", ChecksumValue: hex.EncodeToString(sum[:])}},
	}, "CONTAINS", "SPDXRef-Image")
	add(spdxPackage{
		SPDXID: "SPDXRef-Module-" + spdxIDUnsafe.ReplaceAllString(main, "-"), Name: main, VersionInfo: o.version,
		DownloadLocation: sourceURL, PrimaryPackagePurpose: "SOURCE", LicenseDeclared: licenses,
		ExternalRefs: purl(fmt.Sprintf("pkg:golang/%s@%s", main, o.version)),
	}, "GENERATED_FROM", "SPDXRef-Binary-manager")
	goVersion := strings.TrimPrefix(info.GoVersion, "go")
	add(spdxPackage{
		SPDXID: "SPDXRef-Module-stdlib", Name: "stdlib", VersionInfo: info.GoVersion,
		DownloadLocation: "https://go.dev/dl/", PrimaryPackagePurpose: "LIBRARY", LicenseDeclared: "BSD-3-Clause",
		ExternalRefs: purl("pkg:golang/stdlib@" + goVersion),
	}, "DEPENDS_ON", "SPDXRef-Binary-manager")
	for i, dep := range info.Deps {
		if dep.Replace != nil {
			dep = dep.Replace
		}
		add(spdxPackage{
			SPDXID: fmt.Sprintf("SPDXRef-Module-%d-%s", i, spdxIDUnsafe.ReplaceAllString(dep.Path, "-")), Name: dep.Path, VersionInfo: dep.Version,
			DownloadLocation: "https://proxy.golang.org/" + dep.Path + "/@v/" + dep.Version + ".zip", PrimaryPackagePurpose: "LIBRARY",
			ExternalRefs: purl(fmt.Sprintf("pkg:golang/%s@%s", dep.Path, dep.Version)),
		}, "DEPENDS_ON", "SPDXRef-Binary-manager")
	}
	for _, deb := range []string{"ca-certificates", "tzdata"} {
		p := spdxPackage{
			SPDXID: "SPDXRef-Deb-" + deb, Name: deb, VersionInfo: debVersion(ctx, deb),
			Supplier: "Organization: Debian", DownloadLocation: "NOASSERTION", PrimaryPackagePurpose: "OPERATING-SYSTEM",
		}
		if p.VersionInfo != "" {
			p.ExternalRefs = purl(fmt.Sprintf("pkg:deb/debian/%s@%s", deb, p.VersionInfo))
		}
		add(p, "CONTAINS", "SPDXRef-Image")
	}
	return doc, nil
}
