package sink

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
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

// shardState is the ConfigMap sink's part of Progress.State.
type shardState struct {
	// Shard is the index of the ConfigMap being filled.
	Shard int `json:"shard"`
	// Len is how many compressed bytes that ConfigMap durably holds.
	Len int `json:"len"`
	// SHA256 is the marshaled running SHA-256 of the plain bytes appended so
	// far, so that Finish can check the whole report after a restart without
	// reading every shard back.
	SHA256 []byte `json:"sha256"`
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

	chunks int
	bytes  int64
	sum    hash.Hash
	// compressed is true once any chunk was appended: from then on the report
	// is a gzip stream in binaryData, never plain data.
	compressed bool
	// shard is the index of the ConfigMap being filled, buf its binaryData value.
	shard int
	// resumeShard is the shard Resume started at: the only one a write may
	// take over from an earlier run (see put).
	resumeShard int
	buf         []byte
	// rv is the resourceVersion of shard as last read or written ("" if not
	// known): updates are conditional on it, so a concurrent writer (a second
	// manager that wrongly believes it leads) fails instead of interleaving.
	rv string

	gz    *gzip.Writer
	gzBuf bytes.Buffer
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
	if st.Shard < 0 || st.Len < 0 || st.Len > MaxShardBytes {
		return fmt.Errorf("resuming report %s/%s: invalid %s sink state (shard %d, length %d)", s.r.Namespace, s.r.Name, s.kind, st.Shard, st.Len)
	}

	s.sum = sha256.New()
	if len(st.SHA256) > 0 {
		if err := s.sum.(encoding.BinaryUnmarshaler).UnmarshalBinary(st.SHA256); err != nil {
			return fmt.Errorf("resuming report %s/%s: restoring the report checksum: %w", s.r.Namespace, s.r.Name, err)
		}
	}
	s.chunks, s.bytes = p.Chunks, p.Bytes
	s.compressed = len(p.State) > 0
	s.shard, s.buf, s.rv = st.Shard, nil, ""
	s.resumeShard = st.Shard

	if st.Len > 0 {
		// Keep exactly what the checkpoint covers: a chunk stored after it
		// (before a crash) is cut off here and written again by the caller.
		obj := s.kind.newObject()
		name := s.shardName(st.Shard)
		if err := s.c.Get(ctx, client.ObjectKey{Namespace: s.r.Namespace, Name: name}, obj); err != nil {
			if apierrors.IsNotFound(err) {
				err = fmt.Errorf("%w: %w", err, ErrStartOver)
			}
			return fmt.Errorf("resuming report %s/%s: reading %s %s: %w", s.r.Namespace, s.r.Name, s.kind, name, err)
		}
		if !s.owns(obj) {
			return fmt.Errorf("resuming report %s/%s: %s %s is not controlled by this AuditReport", s.r.Namespace, s.r.Name, s.kind, name)
		}
		data, _ := s.kind.value(obj, s.gzipKey())
		if len(data) < st.Len {
			return fmt.Errorf("resuming report %s/%s: %s %s holds %d bytes of %s but the checkpoint covers %d: %w",
				s.r.Namespace, s.r.Name, s.kind, name, len(data), s.gzipKey(), st.Len, ErrStartOver)
		}
		s.buf = append(make([]byte, 0, MaxShardBytes), data[:st.Len]...)
		s.rv = obj.GetResourceVersion()
	}

	// Shards past the current one hold only bytes after the checkpoint (or a
	// previous run's output when starting afresh).
	if err := s.deleteOwned(ctx, s.shard+1, func(name string) bool {
		i, ok := s.shardIndex(name)
		return ok && i > s.shard
	}); err != nil {
		return fmt.Errorf("resuming report %s/%s: %w", s.r.Namespace, s.r.Name, err)
	}
	s.resumed = true
	return nil
}

func (s *shardSink) Append(ctx context.Context, chunk []byte) (Progress, error) {
	if err := s.ready(); err != nil {
		return Progress{}, err
	}
	s.compressed = true
	s.sum.Write(chunk)
	s.chunks++
	s.bytes += int64(len(chunk))
	if len(chunk) > 0 {
		if err := s.write(ctx, s.compress(chunk)); err != nil {
			s.err = err
			return Progress{}, err
		}
	}
	p, err := s.progress()
	if err != nil {
		s.err = err
	}
	return p, err
}

func (s *shardSink) Finish(ctx context.Context, last []byte, size int64, sum string) ([]reportsv1alpha1.OutputRef, error) {
	if err := s.ready(); err != nil {
		return nil, err
	}
	outs, err := s.finish(ctx, last, size, sum)
	if err != nil {
		s.err = err
	}
	// Finishing twice would append last twice; a caller that must finish
	// again (its status update was lost) resumes from its checkpoint first.
	s.resumed = false
	return outs, err
}

func (s *shardSink) finish(ctx context.Context, last []byte, size int64, sum string) ([]reportsv1alpha1.OutputRef, error) {
	s.sum.Write(last)
	s.bytes += int64(len(last))
	got, err := verify(s.r, s.bytes, hex.EncodeToString(s.sum.Sum(nil)), size, sum)
	if err != nil {
		return nil, err
	}

	var outs []reportsv1alpha1.OutputRef
	// Plain data only for a report that arrives whole and fits; ConfigMap data
	// values are strings, so bytes that are not UTF-8 go to binaryData
	// (Secrets keep the same layout).
	if !s.compressed && !s.always && len(last) <= MaxShardBytes && utf8.Valid(last) {
		s.shard = 0
		if err := s.put(ctx, s.plainKey(), last, true, 1); err != nil {
			return nil, err
		}
		outs = []reportsv1alpha1.OutputRef{s.kind.ref(s.shardName(0), s.plainKey())}
	} else {
		s.compressed = true
		// An empty report still needs one gzip member: zero bytes do not gunzip.
		if len(last) > 0 || (s.shard == 0 && len(s.buf) == 0) {
			if err := s.write(ctx, s.compress(last)); err != nil {
				return nil, err
			}
		}
		count := s.shard + 1
		for i := range count {
			outs = append(outs, s.kind.ref(s.shardName(i), s.gzipKey()))
			if err := s.setShardCount(ctx, s.shardName(i), count); err != nil {
				return nil, err
			}
		}
	}

	keep := make(map[string]bool, len(outs))
	for i := range outs {
		keep[s.shardName(i)] = true
		outs[i].Bytes, outs[i].SHA256 = s.bytes, got
	}
	// Whatever else this AuditReport controls came from an earlier, larger run
	// (or one under another namePrefix): status.outputs would not list it.
	if err := s.deleteOwned(ctx, len(outs), func(name string) bool { return !keep[name] }); err != nil {
		return nil, fmt.Errorf("finishing report %s/%s: %w", s.r.Namespace, s.r.Name, err)
	}
	if err := s.readBack(ctx, outs, got); err != nil {
		return nil, err
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
func (s *shardSink) readBack(ctx context.Context, outs []reportsv1alpha1.OutputRef, sum string) error {
	h := sha256.New()
	var n int64
	var joined bytes.Buffer
	for i, o := range outs {
		obj := s.kind.newObject()
		name := s.shardName(i)
		if err := s.c.Get(ctx, client.ObjectKey{Namespace: s.r.Namespace, Name: name}, obj); err != nil {
			if apierrors.IsNotFound(err) {
				err = fmt.Errorf("%w: %w", err, ErrStartOver)
			}
			return fmt.Errorf("report %s/%s: reading back %s %s: %w", s.r.Namespace, s.r.Name, s.kind, name, err)
		}
		v, _ := s.kind.value(obj, o.Key)
		joined.Write(v)
	}
	var plain io.Reader = &joined
	if len(outs) > 0 && outs[0].Key == s.gzipKey() {
		zr, err := gzip.NewReader(&joined)
		if err != nil {
			return fmt.Errorf("report %s/%s: reading back the output: %w: %w", s.r.Namespace, s.r.Name, err, ErrStartOver)
		}
		plain = zr
	}
	n, err := io.Copy(h, plain)
	if err != nil {
		return fmt.Errorf("report %s/%s: reading back the output: %w: %w", s.r.Namespace, s.r.Name, err, ErrStartOver)
	}
	if _, err := verify(s.r, n, hex.EncodeToString(h.Sum(nil)), s.bytes, sum); err != nil {
		return fmt.Errorf("reading back the output: %w: %w", err, ErrStartOver)
	}
	return nil
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

func (s *shardSink) progress() (Progress, error) {
	h, err := s.sum.(encoding.BinaryMarshaler).MarshalBinary()
	if err != nil {
		return Progress{}, fmt.Errorf("report %s/%s: saving the report checksum: %w", s.r.Namespace, s.r.Name, err)
	}
	st, err := json.Marshal(shardState{Shard: s.shard, Len: len(s.buf), SHA256: h})
	if err != nil {
		return Progress{}, fmt.Errorf("report %s/%s: encoding %s sink state: %w", s.r.Namespace, s.r.Name, s.kind, err)
	}
	return Progress{Chunks: s.chunks, Bytes: s.bytes, State: st}, nil
}

// NewGzipWriter returns the gzip writer of the ConfigMap sink (and of the
// benchmark's stand-in for it): klauspost/compress at BestSpeed. A large
// report is compressed as fast as the store reads it; measured on 512 KiB
// of audit details here, compress/gzip's default level runs at 130 MB/s,
// klauspost's BestSpeed at 500 MB/s for ~20% more compressed bytes.
func NewGzipWriter(w io.Writer) *gzip.Writer {
	gz, _ := gzip.NewWriterLevel(w, gzip.BestSpeed) // a valid level: no error
	return gz
}

// compress returns p as one gzip member. The header carries no name and a
// zero mtime, so equal chunks give equal bytes (quiet GitOps diffs). The
// result is valid until the next call.
func (s *shardSink) compress(p []byte) []byte {
	s.gzBuf.Reset()
	if s.gz == nil {
		s.gz = NewGzipWriter(&s.gzBuf)
	} else {
		s.gz.Reset(&s.gzBuf)
	}
	// Writes to a bytes.Buffer cannot fail.
	_, _ = s.gz.Write(p)
	_ = s.gz.Close()
	return s.gzBuf.Bytes()
}

// write appends compressed bytes to the stream, filling the current shard to
// MaxShardBytes and continuing in the next. Each touched shard is written
// before write returns, so the bytes are durable when Append reports them.
func (s *shardSink) write(ctx context.Context, gz []byte) error {
	for len(gz) > 0 {
		if len(s.buf) == MaxShardBytes {
			faultpoint.Hit("configmap-between-shards")
			s.shard++
			s.buf, s.rv = make([]byte, 0, MaxShardBytes), ""
		}
		if s.buf == nil {
			s.buf = make([]byte, 0, MaxShardBytes)
		}
		n := min(MaxShardBytes-len(s.buf), len(gz))
		s.buf = append(s.buf, gz[:n]...)
		gz = gz[n:]
		if err := s.put(ctx, s.gzipKey(), s.buf, false, 0); err != nil {
			return err
		}
	}
	return nil
}

// put stores <prefix>-<shard> holding exactly key: value (replacing what a
// previous run left there); plain says the value is the whole report rather
// than gzip bytes. count > 0 sets AnnotationShardCount.
func (s *shardSink) put(ctx context.Context, key string, value []byte, plain bool, count int) error {
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
	obj := s.kind.build(meta, key, value, plain)

	if s.rv == "" {
		err := s.c.Create(ctx, obj)
		if err == nil {
			s.rv = obj.GetResourceVersion()
			return nil
		}
		if !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("report %s/%s: creating %s %s: %w", s.r.Namespace, s.r.Name, s.kind, name, err)
		}
		// Left by an earlier run of this report: take it over, but never an
		// object that belongs to someone else.
		existing, err := s.metadata(ctx, name)
		if err != nil {
			return fmt.Errorf("report %s/%s: reading %s %s: %w", s.r.Namespace, s.r.Name, s.kind, name, err)
		}
		if !s.owns(existing) {
			return fmt.Errorf("report %s/%s: %s %s exists and is not controlled by this AuditReport; delete it or choose another output.%s.namePrefix",
				s.r.Namespace, s.r.Name, s.kind, name, s.kind.field())
		}
		if s.shard != s.resumeShard {
			// Resume deleted every shard past the one it resumed, so this
			// one was created by another writer of the report since (a
			// second manager whose lease overlaps): taking it over would
			// overwrite a shard the other may have listed as done.
			return fmt.Errorf("report %s/%s: %s %s was created by another writer of this report since it resumed; resuming again from the last checkpoint",
				s.r.Namespace, s.r.Name, s.kind, name)
		}
		s.rv = existing.ResourceVersion
	}
	obj.SetResourceVersion(s.rv)
	if err := s.c.Update(ctx, obj); err != nil {
		return fmt.Errorf("report %s/%s: updating %s %s: %w", s.r.Namespace, s.r.Name, s.kind, name, err)
	}
	s.rv = obj.GetResourceVersion()
	return nil
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
	if name == s.shardName(s.shard) {
		s.rv = meta.ResourceVersion
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
