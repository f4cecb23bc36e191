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

package sealverify

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"

	reportsv1alpha1 "github.com/auditops/auditops/api/v1alpha1"
	"github.com/auditops/auditops/internal/report"
	"github.com/auditops/auditops/internal/seal"
	"github.com/auditops/auditops/internal/store"
)

// ReportResult is what VerifyReport found of one report.
type ReportResult struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Seal is the checkpoint the report read (its status.seal).
	Seal reportsv1alpha1.ReportSeal `json:"seal"`
	// Recorded is the SHA-256 its status records; Regenerated the one of
	// the report generated again from the checkpoint's events.
	Recorded    string `json:"recorded"`
	Regenerated string `json:"regenerated"`
	Records     int64  `json:"records"`
	// Findings say how the log no longer holds the report's checkpoint.
	Findings []Finding `json:"findings,omitempty"`
}

// Equal says whether the report is what its checkpoint's events give, in a
// log that still holds that checkpoint.
func (r ReportResult) Equal() bool {
	return r.Recorded == r.Regenerated && len(r.Findings) == 0
}

// ErrNotVerifiable is returned for a report VerifyReport cannot check: not
// finished, or read without a checkpoint.
var ErrNotVerifiable = errors.New("the report cannot be verified")

// VerifyReport checks a finished report against the store (spec/API.md 6,
// 'manager verify report'): the log must still give the root of the
// checkpoint in status.seal, and the report generated again from exactly
// that checkpoint's events must have the SHA-256 of status.outputs.
func VerifyReport(ctx context.Context, st store.Store, logs seal.LogReader, rep *reportsv1alpha1.AuditReport) (ReportResult, error) {
	s := rep.Status
	res := ReportResult{Namespace: rep.Namespace, Name: rep.Name}
	switch {
	case s.Phase != reportsv1alpha1.PhaseSucceeded:
		return res, fmt.Errorf("%w: %s/%s is %q, not Succeeded", ErrNotVerifiable, rep.Namespace, rep.Name, s.Phase)
	case s.Seal == nil:
		return res, fmt.Errorf("%w: %s/%s has no status.seal: the manager that ran it did not seal", ErrNotVerifiable, rep.Namespace, rep.Name)
	case len(s.Outputs) == 0 || s.Outputs[0].SHA256 == "" || s.Range == nil:
		return res, fmt.Errorf("%w: %s/%s records no output digest or range", ErrNotVerifiable, rep.Namespace, rep.Name)
	}
	res.Seal, res.Recorded = *s.Seal, s.Outputs[0].SHA256
	for _, o := range s.Outputs[1:] {
		if o.SHA256 != res.Recorded {
			return res, fmt.Errorf("%w: %s/%s's outputs record different digests", ErrNotVerifiable, rep.Namespace, rep.Name)
		}
	}
	f, err := checkWitness(ctx, logs, s.Tenant, *s.Seal)
	if err != nil {
		return res, err
	}
	if f != nil {
		res.Findings = append(res.Findings, *f)
	}

	pageSize := int(rep.Spec.PageSize)
	if pageSize == 0 {
		pageSize = 500
	}
	size := s.Seal.Size
	sum := sha256.New()
	err = report.Generate(ctx, st, report.Params{
		Type: rep.Spec.Type, Namespace: s.Tenant, User: rep.Spec.User,
		Range: store.TimeRange{From: s.Range.From.Time, To: s.Range.To.Time}, PageSize: pageSize, InLog: &size,
	}, report.Cursor{}, func(_ context.Context, chunk []byte, c report.Cursor) error {
		sum.Write(chunk)
		res.Records = c.Records
		return nil
	})
	if err != nil {
		return res, fmt.Errorf("regenerating %s/%s: %w", rep.Namespace, rep.Name, err)
	}
	res.Regenerated = hex.EncodeToString(sum.Sum(nil))
	return res, nil
}

// checkWitness checks that ns's log still gives the root of the checkpoint
// w (a report's status.seal): a rollback finding when it does not.
func checkWitness(ctx context.Context, logs seal.LogReader, ns string, w reportsv1alpha1.ReportSeal) (*Finding, error) {
	if w.Size == 0 {
		return nil, nil
	}
	want, err := base64.StdEncoding.DecodeString(w.RootHash)
	if err != nil || len(want) != sha256.Size {
		return nil, fmt.Errorf("%w: status.seal.rootHash %q is not a base64 SHA-256", ErrNotVerifiable, w.RootHash)
	}
	rf := compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}
	cr := rf.NewEmptyRange(0)
	for start := int64(0); start < w.Size; start += pageSize {
		leaves, err := logs.Leaves(ctx, ns, start, min(start+pageSize, w.Size))
		if err != nil {
			return nil, err
		}
		for _, l := range leaves {
			if l.Index != int64(cr.End()) {
				break
			}
			if err := cr.Append(rfc6962.DefaultHasher.HashLeaf(l.Data), nil); err != nil {
				return nil, err
			}
		}
		if int64(cr.End()) < min(start+pageSize, w.Size) {
			break
		}
	}
	if n := int64(cr.End()); n < w.Size {
		return &Finding{Namespace: ns, Problem: Rollback, Index: ptr(n),
			Detail: fmt.Sprintf("the log holds %d leaves from index 0, the checkpoint of size %d a report read needs %d", n, w.Size, w.Size)}, nil
	}
	root, err := cr.GetRootHash(nil)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(root, want) {
		return &Finding{Namespace: ns, Problem: Rollback, Index: ptr(w.Size),
			Detail: fmt.Sprintf("the log's first %d leaves give root %x, the checkpoint a report read has %x", w.Size, root, want)}, nil
	}
	return nil, nil
}

// Witness is the checkpoint of a report's status.seal, for
// Options.Witnesses.
func Witness(w reportsv1alpha1.ReportSeal) (seal.Checkpoint, error) {
	cp := seal.Checkpoint{Origin: w.Origin, Size: w.Size}
	root, err := base64.StdEncoding.DecodeString(w.RootHash)
	if err != nil || len(root) != len(cp.Root) {
		return cp, fmt.Errorf("status.seal.rootHash %q is not a base64 SHA-256", w.RootHash)
	}
	copy(cp.Root[:], root)
	return cp, nil
}
