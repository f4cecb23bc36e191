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

package sink

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/klauspost/compress/gzip"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/client"

	reportsv1alpha1 "github.com/auditops/auditops/api/v1alpha1"
	"github.com/auditops/auditops/internal/faultpoint"
)

// MaxShardBytes is the most report bytes (plain or compressed) one ConfigMap
// holds. The API server refuses ConfigMaps over 1 MiB and etcd requests over
// 1.5 MiB; 900 KiB leaves room for metadata and keeps each write well inside
// both (trivy-operator#441, kyverno#2674).
const MaxShardBytes = 900 << 10

// Labels and annotations on every ConfigMap the sink writes. The controller
// can select on LabelReport to watch a report's ConfigMaps.
const (
	LabelManagedBy = "app.kubernetes.io/managed-by"
	ManagedBy      = "auditops"
	LabelReport    = "reports.auditops.dev/report"
	LabelType      = "reports.auditops.dev/type"
	// AnnotationShard is the ConfigMap's index in the report, from 0.
	AnnotationShard = "reports.auditops.dev/shard"
	// AnnotationShardCount is the number of ConfigMaps of the finished report;
	// it is set by Finish, so a ConfigMap without it is still being written.
	AnnotationShardCount = "reports.auditops.dev/shard-count"
)

// ReportLabelValue is the value of LabelReport for an AuditReport name. Names
// may be up to 253 characters but label values only 63, so long names are cut
// and made unique again with a hash of the whole name.
func ReportLabelValue(name string) string {
	if len(validation.IsValidLabelValue(name)) == 0 {
		return name
	}
	sum := sha256.Sum256([]byte(name))
	head := strings.TrimRight(name[:min(len(name), 52)], "-_.")
	return head + "-" + hex.EncodeToString(sum[:])[:10]
}

// shardState is the shard sinks' part of Progress.State.
type shardState struct {
	// Shard is the index of the next shard to store: the ones before it
	// hold exactly the chunks Progress counts, and every shard is stored
	// once, whole.
	Shard int `json:"shard"`
	// Len is set only by a manager before shards were stored whole (a shard
	// filled chunk by chunk): such a checkpoint cannot be resumed from.
	Len int `json:"len,omitempty"`
}

// shardSink writes a report into ConfigMaps or Secrets <prefix>-0..n. See
// NewConfigMap for the layout.
type shardSink struct {
	c      client.Client
	kind   shardKind
	r      Report
	prefix string
	always bool

	resumed bool
	// err makes a failed call sticky: in-memory state may be ahead of what is
	// stored, so only a new Resume from the last checkpoint may continue.
	err error

	// w lays out what was appended since Resume; nil until the first
	// Append (a report that arrives whole in Finish may be kept plain).
	w *ShardWriter
	// base is the checkpoint Resume started from, durable what is stored
	// since: the chunks and bytes up to the last aligned shard, and the
	// index of the next shard.
	base, durable Progress
	shard         int
}

var _ Sink = (*shardSink)(nil)

// NewConfigMap returns a sink that stores the report in ConfigMaps in the
// report's namespace, named <prefix>-0, <prefix>-1, … (prefix: out.NamePrefix,
// else the report's name), following spec/API.md section 5:
//
//   - A report finished without any Append that is at most MaxShardBytes (and
//     valid UTF-8, with out.Compress not "always") is kept whole in
//     data["report.<ext>"] of <prefix>-0.
//   - Otherwise each chunk becomes its own gzip member, appended in order to
//     binaryData["report.<ext>.gz"]; a ConfigMap is filled to MaxShardBytes
//     and the stream continues in the next one, cutting members at any byte.
//     Concatenating the listed values gives one gzip stream (a sequence of
//     members is a valid gzip file), which gunzips to the report.
//
// Every ConfigMap is controlled by the AuditReport (garbage-collected with
// it) and labelled with LabelManagedBy, LabelReport and LabelType. Every
// output Finish returns carries the whole report's bytes and sha256.
func NewConfigMap(c client.Client, r Report, out reportsv1alpha1.ConfigMapOutput) Sink {
	return newShardSink(c, configMapKind{}, r, out)
}

// NewSecret returns a sink that stores the report in Secrets (type Opaque)
// <prefix>-0, <prefix>-1, … in the report's namespace, in NewConfigMap's
// layout and with its keys (Secrets have only data, so plain and compressed
// values both go there), for reports that carry payloads: a ConfigMap is
// readable by the built-in view role, a Secret is not (spec/API.md section 5).
//
// Secrets are never listed (listing them would read every Secret of the
// namespace): shards an earlier, longer run left are found by name, from the
// first one past the report's end upwards.
func NewSecret(c client.Client, r Report, out reportsv1alpha1.SecretOutput) Sink {
	return newShardSink(c, secretKind{}, r, out)
}

func newShardSink(c client.Client, kind shardKind, r Report, out reportsv1alpha1.ConfigMapOutput) *shardSink {
	prefix := out.NamePrefix
	if prefix == "" {
		prefix = r.Name
	}
	return &shardSink{c: c, kind: kind, r: r, prefix: prefix, always: out.Compress == "always"}
}

func (s *shardSink) plainKey() string { return "report." + s.r.Ext }
func (s *shardSink) gzipKey() string  { return "report." + s.r.Ext + ".gz" }
func (s *shardSink) shardName(i int) string {
	return s.prefix + "-" + strconv.Itoa(i)
}

// shardIndex returns i for a name <prefix>-<i> written by this sink.
func (s *shardSink) shardIndex(name string) (int, bool) {
	rest, ok := strings.CutPrefix(name, s.prefix+"-")
	if !ok {
		return 0, false
	}
	i, err := strconv.Atoi(rest)
	if err != nil || i < 0 || strconv.Itoa(i) != rest {
		return 0, false
	}
	return i, true
}

func (s *shardSink) Resume(ctx context.Context, p Progress) error {
	s.err = nil
	if err := s.r.validate(true); err != nil {
		return err
	}
	st := shardState{}
	if len(p.State) == 0 {
		if p.Chunks != 0 || p.Bytes != 0 {
			return fmt.Errorf("resuming report %s/%s: progress of %d chunks carries no %s sink state", s.r.Namespace, s.r.Name, p.Chunks, s.kind)
		}
	} else if err := json.Unmarshal(p.State, &st); err != nil {
		return fmt.Errorf("resuming report %s/%s: decoding %s sink state: %w", s.r.Namespace, s.r.Name, s.kind, err)
	}
	if st.Shard < 0 || st.Len < 0 {
		return fmt.Errorf("resuming report %s/%s: invalid %s sink state (shard %d)", s.r.Namespace, s.r.Name, s.kind, st.Shard)
	}
	if st.Len > 0 {
		return fmt.Errorf("resuming report %s/%s: the checkpoint is of a half-filled shard, written by an older manager: %w", s.r.Namespace, s.r.Name, ErrStartOver)
	}
	// The checkpoint's last shard must be there (Finish reads them all
	// back before the report is declared done).
	if st.Shard > 0 {
		name := s.shardName(st.Shard - 1)
		meta, err := s.metadata(ctx, name)
		if err != nil {
			if apierrors.IsNotFound(err) {
				err = fmt.Errorf("%w: %w", err, ErrStartOver)
			}
			return fmt.Errorf("resuming report %s/%s: reading %s %s: %w", s.r.Namespace, s.r.Name, s.kind, name, err)
		}
		if !s.owns(meta) {
			return fmt.Errorf("resuming report %s/%s: %s %s is not controlled by this AuditReport", s.r.Namespace, s.r.Name, s.kind, name)
		}
	}
	// Shards from the checkpoint's on hold only bytes after it (or a
	// previous run's output when starting afresh).
	if err := s.deleteOwned(ctx, st.Shard, func(name string) bool {
		i, ok := s.shardIndex(name)
		return ok && i >= st.Shard
	}); err != nil {
		return fmt.Errorf("resuming report %s/%s: %w", s.r.Namespace, s.r.Name, err)
	}
	s.base = Progress{Chunks: p.Chunks, Bytes: p.Bytes}
	s.durable, s.shard, s.w = s.base, st.Shard, nil
	if st.Shard > 0 {
		s.w = NewShardWriter()
	}
	s.resumed = true
	return nil
}

// Append lays chunk out in shards and stores each shard it fills. A chunk
// is durable once the shard holding its end is stored; Progress counts the
// durable chunks only, so it may lag what was appended.
func (s *shardSink) Append(ctx context.Context, chunk []byte) (Progress, error) {
	if err := s.ready(); err != nil {
		return Progress{}, err
	}
	if s.w == nil {
		s.w = NewShardWriter()
	}
	if err := s.w.Add(chunk, func(sh Shard) error { return s.store(ctx, sh, 0) }); err != nil {
		s.err = err
		return Progress{}, err
	}
	return s.durable, nil
}

// store creates the next shard; count > 0 also sets AnnotationShardCount.
func (s *shardSink) store(ctx context.Context, sh Shard, count int) error {
	if s.shard > 0 {
		faultpoint.Hit("configmap-between-shards")
	}
	if err := s.create(ctx, s.gzipKey(), sh.Data, false, count); err != nil {
		return err
	}
	s.shard++
	if sh.Aligned {
		st, err := json.Marshal(shardState{Shard: s.shard})
		if err != nil {
			return fmt.Errorf("report %s/%s: encoding %s sink state: %w", s.r.Namespace, s.r.Name, s.kind, err)
		}
		s.durable = Progress{Chunks: s.base.Chunks + sh.Chunks, Bytes: s.base.Bytes + sh.Bytes, State: st}
	}
	return nil
}

func (s *shardSink) Finish(ctx context.Context, last []byte, size int64, sum string) ([]reportsv1alpha1.OutputRef, error) {
	if err := s.ready(); err != nil {
		return nil, err
	}
	outs, err := s.finish(ctx, last, size, sum)
	if err != nil {
		s.err = err
	}
	// Finishing twice would add last twice; a caller that must finish
	// again (its status update was lost) resumes from its checkpoint first.
	s.resumed = false
	return outs, err
}

func (s *shardSink) finish(ctx context.Context, last []byte, size int64, sum string) ([]reportsv1alpha1.OutputRef, error) {
	var outs []reportsv1alpha1.OutputRef
	// Plain data only for a report that arrives whole and fits; ConfigMap data
	// values are strings, so bytes that are not UTF-8 go to binaryData
	// (Secrets keep the same layout).
	if s.w == nil && !s.always && len(last) <= MaxShardBytes && utf8.Valid(last) {
		if int64(len(last)) != size {
			return nil, fmt.Errorf("report %s/%s: finishing with %d bytes but the report has %d", s.r.Namespace, s.r.Name, len(last), size)
		}
		if err := s.create(ctx, s.plainKey(), last, true, 1); err != nil {
			return nil, err
		}
		outs = []reportsv1alpha1.OutputRef{s.kind.ref(s.shardName(0), s.plainKey())}
	} else {
		if s.w == nil {
			s.w = NewShardWriter()
		}
		// The last shards are created with the count, which is known once
		// they are laid out; only the ones stored before get a patch.
		var tail [][]byte
		if err := s.w.Close(last, func(sh Shard) error {
			tail = append(tail, bytes.Clone(sh.Data))
			return nil
		}); err != nil {
			return nil, err
		}
		stored := s.shard
		count := stored + len(tail)
		for _, data := range tail {
			if err := s.store(ctx, Shard{Data: data}, count); err != nil {
				return nil, err
			}
		}
		for i := range count {
			outs = append(outs, s.kind.ref(s.shardName(i), s.gzipKey()))
			if i < stored {
				if err := s.setShardCount(ctx, s.shardName(i), count); err != nil {
					return nil, err
				}
			}
		}
	}

	keep := make(map[string]bool, len(outs))
	for i := range outs {
		keep[s.shardName(i)] = true
		outs[i].Bytes, outs[i].SHA256 = size, sum
	}
	// Whatever else this AuditReport controls came from an earlier, larger run
	// (or one under another namePrefix): status.outputs would not list it.
	if err := s.deleteOwned(ctx, len(outs), func(name string) bool { return !keep[name] }); err != nil {
		return nil, fmt.Errorf("finishing report %s/%s: %w", s.r.Namespace, s.r.Name, err)
	}
	// The shards are the report only if they read back as its bytes: the
	// sink keeps no hash of its own, it checks the caller's.
	got, err := s.readBack(ctx, outs, size, sum)
	if err != nil {
		return nil, err
	}
	for i := range outs {
		outs[i].SHA256 = got
	}
	return outs, nil
}

// readBack reads the listed outputs as a reader of the report will and
// checks their bytes against the report's size and SHA-256. Every write is
// optimistic, but two managers whose leases overlap can still leave a shard
// that one of them wrote behind the other's back (TestTwoManagersOneReport
// caught a report listing a shard cut back to an older checkpoint): status
// must never vouch for bytes that are not there. A mismatch is
// ErrStartOver: the report is generated again from the start.
func (s *shardSink) readBack(ctx context.Context, outs []reportsv1alpha1.OutputRef, size int64, sum string) (string, error) {
	h := sha256.New()
	var joined bytes.Buffer
	for i, o := range outs {
		obj := s.kind.newObject()
		name := s.shardName(i)
		if err := s.c.Get(ctx, client.ObjectKey{Namespace: s.r.Namespace, Name: name}, obj); err != nil {
			if apierrors.IsNotFound(err) {
				err = fmt.Errorf("%w: %w", err, ErrStartOver)
			}
			return "", fmt.Errorf("report %s/%s: reading back %s %s: %w", s.r.Namespace, s.r.Name, s.kind, name, err)
		}
		v, _ := s.kind.value(obj, o.Key)
		joined.Write(v)
	}
	var plain io.Reader = &joined
	if len(outs) > 0 && outs[0].Key == s.gzipKey() {
		zr, err := gzip.NewReader(&joined)
		if err != nil {
			return "", fmt.Errorf("report %s/%s: reading back the output: %w: %w", s.r.Namespace, s.r.Name, err, ErrStartOver)
		}
		plain = zr
	}
	n, err := io.Copy(h, plain)
	if err != nil {
		return "", fmt.Errorf("report %s/%s: reading back the output: %w: %w", s.r.Namespace, s.r.Name, err, ErrStartOver)
	}
	got, err := verify(s.r, n, hex.EncodeToString(h.Sum(nil)), size, sum)
	if err != nil {
		return "", fmt.Errorf("reading back the output: %w: %w", err, ErrStartOver)
	}
	return got, nil
}

func (s *shardSink) ready() error {
	if !s.resumed {
		return fmt.Errorf("report %s/%s: the %s sink needs Resume before Append or Finish", s.r.Namespace, s.r.Name, s.kind)
	}
	if s.err != nil {
		return fmt.Errorf("report %s/%s: an earlier write failed, resume from the last checkpoint: %w", s.r.Namespace, s.r.Name, s.err)
	}
	return nil
}

// create stores <prefix>-<shard> holding exactly key: value; plain says
// the value is the whole report rather than gzip bytes. count > 0 sets
// AnnotationShardCount. Every shard is created once: Resume deleted the
// shards from its checkpoint's on, so one that exists is another writer's.
func (s *shardSink) create(ctx context.Context, key string, value []byte, plain bool, count int) error {
	name := s.shardName(s.shard)
	meta := metav1.ObjectMeta{
		Namespace: s.r.Namespace,
		Name:      name,
		Labels: map[string]string{
			LabelManagedBy: ManagedBy,
			LabelReport:    ReportLabelValue(s.r.Name),
			LabelType:      string(s.r.Type),
		},
		Annotations:     map[string]string{AnnotationShard: strconv.Itoa(s.shard)},
		OwnerReferences: []metav1.OwnerReference{s.ownerRef()},
	}
	if count > 0 {
		meta.Annotations[AnnotationShardCount] = strconv.Itoa(count)
	}
	err := s.c.Create(ctx, s.kind.build(meta, key, value, plain))
	if err == nil {
		return nil
	}
	if !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("report %s/%s: creating %s %s: %w", s.r.Namespace, s.r.Name, s.kind, name, err)
	}
	existing, err := s.metadata(ctx, name)
	if err != nil {
		return fmt.Errorf("report %s/%s: reading %s %s: %w", s.r.Namespace, s.r.Name, s.kind, name, err)
	}
	if !s.owns(existing) {
		return fmt.Errorf("report %s/%s: %s %s exists and is not controlled by this AuditReport; delete it or choose another output.%s.namePrefix",
			s.r.Namespace, s.r.Name, s.kind, name, s.kind.field())
	}
	// A second manager whose lease overlaps wrote it since Resume:
	// overwriting it would change a shard the other may have listed as
	// done.
	return fmt.Errorf("report %s/%s: %s %s was created by another writer of this report since it resumed; resuming again from the last checkpoint",
		s.r.Namespace, s.r.Name, s.kind, name)
}

// metadata reads the metadata of <name> alone: a shard's data can be
// 900 KiB.
func (s *shardSink) metadata(ctx context.Context, name string) (*metav1.PartialObjectMetadata, error) {
	meta := &metav1.PartialObjectMetadata{}
	meta.SetGroupVersionKind(s.kind.gvk())
	if err := s.c.Get(ctx, client.ObjectKey{Namespace: s.r.Namespace, Name: name}, meta); err != nil {
		return nil, err
	}
	return meta, nil
}

// setShardCount records the final number of shards on one shard. A merge
// patch of the metadata alone avoids sending the shard's data again.
func (s *shardSink) setShardCount(ctx context.Context, name string, count int) error {
	patch, err := json.Marshal(map[string]any{
		"metadata": map[string]any{"annotations": map[string]string{AnnotationShardCount: strconv.Itoa(count)}},
	})
	if err != nil {
		return fmt.Errorf("report %s/%s: encoding patch: %w", s.r.Namespace, s.r.Name, err)
	}
	meta := &metav1.PartialObjectMetadata{ObjectMeta: metav1.ObjectMeta{Namespace: s.r.Namespace, Name: name}}
	meta.SetGroupVersionKind(s.kind.gvk())
	if err := s.c.Patch(ctx, meta, client.RawPatch(types.MergePatchType, patch)); err != nil {
		return fmt.Errorf("report %s/%s: annotating %s %s: %w", s.r.Namespace, s.r.Name, s.kind, name, err)
	}
	return nil
}

// deleteOwned deletes the shards this AuditReport controls whose names
// match drop. ConfigMaps are found by listing their metadata by label (so
// memory stays flat however many there are, and shards under an earlier
// namePrefix are found too); Secrets are never listed (see NewSecret) but
// probed by name from <prefix>-<from> upwards until one is missing, and
// deleted from the last down, so a failed delete leaves no gap that would
// hide the shards above it from the next attempt.
func (s *shardSink) deleteOwned(ctx context.Context, from int, drop func(name string) bool) error {
	var found []metav1.PartialObjectMetadata
	if s.kind.listable() {
		list := &metav1.PartialObjectMetadataList{}
		list.SetGroupVersionKind(s.kind.gvk().GroupVersion().WithKind(s.kind.gvk().Kind + "List"))
		if err := s.c.List(ctx, list, client.InNamespace(s.r.Namespace), client.MatchingLabels{LabelReport: ReportLabelValue(s.r.Name)}); err != nil {
			return fmt.Errorf("listing the report's %ss: %w", s.kind, err)
		}
		found = list.Items
	} else {
		for i := from; ; i++ {
			meta, err := s.metadata(ctx, s.shardName(i))
			if apierrors.IsNotFound(err) {
				break
			}
			if err != nil {
				return fmt.Errorf("reading %s %s: %w", s.kind, s.shardName(i), err)
			}
			found = append(found, *meta)
		}
		slices.Reverse(found)
	}
	var errs []error
	for i := range found {
		item := &found[i]
		if !s.owns(item) || !drop(item.Name) {
			continue
		}
		// The UID precondition deletes exactly the object judged here, not a
		// namesake created since.
		uid := item.UID
		err := s.c.Delete(ctx, item, client.Preconditions{UID: &uid})
		if err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("deleting %s %s: %w", s.kind, item.Name, err))
			if !s.kind.listable() {
				break
			}
		}
	}
	return errors.Join(errs...)
}

func (s *shardSink) ownerRef() metav1.OwnerReference {
	yes := true
	return metav1.OwnerReference{
		APIVersion:         reportsv1alpha1.GroupVersion.String(),
		Kind:               "AuditReport",
		Name:               s.r.Name,
		UID:                s.r.UID,
		Controller:         &yes,
		BlockOwnerDeletion: &yes,
	}
}

// owns reports whether obj is controlled by this sink's AuditReport.
func (s *shardSink) owns(obj metav1.Object) bool {
	ref := metav1.GetControllerOfNoCopy(obj)
	return ref != nil && ref.UID == s.r.UID
}
