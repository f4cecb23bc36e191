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

// Package sink stores finished reports: in ConfigMaps beside the AuditReport
// (the default) or as one object in object storage. A report arrives as
// chunks of its plain bytes, cut at store-page boundaries; each chunk is
// stored durably before the controller checkpoints past it, so a restarted
// manager resumes a half-written report instead of starting over.
package sink

import (
	"context"
	"encoding/json"

	"k8s.io/apimachinery/pkg/types"

	reportsv1alpha1 "github.com/auditops/auditops/api/v1alpha1"
)

// Report identifies the report being written and how to label it.
type Report struct {
	// Namespace and Name are those of the AuditReport; outputs live in its namespace.
	Namespace string
	Name      string
	// UID makes the AuditReport the owner of what is written (garbage collection).
	UID types.UID
	// Type is the report type, used in labels.
	Type reportsv1alpha1.ReportType
	// Ext is "json" or "csv": the key is report.<ext>, gzip data report.<ext>.gz.
	Ext string
	// ContentType is the media type of the plain bytes (application/json, text/csv).
	ContentType string
}

// Progress is what a sink has durably stored so far. It is saved, together
// with the store's next page token, in the AuditReport's status.checkpoint.
type Progress struct {
	// Chunks is the number of chunks durably stored: the first Chunks
	// appended.
	Chunks int `json:"chunks"`
	// Bytes is the number of plain report bytes stored.
	Bytes int64 `json:"bytes"`
	// State is the sink's own resume state (shard index and length, staging part number, ...).
	State json.RawMessage `json:"state,omitempty"`
}

// Sink stores one report. Calls are sequential: Resume once, Append any number
// of times, then Finish.
type Sink interface {
	// Resume prepares to append after p. A zero Progress starts afresh. A crash
	// can leave a chunk stored after the last checkpoint: whatever lies past p is
	// discarded, so every byte is stored exactly once.
	Resume(ctx context.Context, p Progress) error
	// Append takes the next chunk of plain bytes and says how far the report
	// durably stands. A sink that stores in larger units than chunks (a
	// shard is stored once, whole) may count fewer chunks than were
	// appended: the caller checkpoints only what Progress counts, and
	// Finish stores the rest.
	Append(ctx context.Context, chunk []byte) (Progress, error)
	// Finish stores the last bytes (possibly empty), publishes the report and
	// removes what earlier, larger runs or staging left behind. sum is the hex
	// SHA-256 and size the length of the whole report's plain bytes. It returns
	// the outputs in order (status.outputs).
	Finish(ctx context.Context, last []byte, size int64, sum string) ([]reportsv1alpha1.OutputRef, error)
}
