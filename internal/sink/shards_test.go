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
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	reportsv1alpha1 "github.com/auditops/auditops/api/v1alpha1"
)

// configMapReport creates a namespace and an AuditReport in it and returns
// the Report for it.
func configMapReport(t *testing.T, name, ext string) Report {
	t.Helper()
	ns := createNamespace(t)
	typ := reportsv1alpha1.AuditDetails
	if ext == "csv" {
		typ = reportsv1alpha1.UserAccess
	}
	ar := createAuditReport(t, ns, name, typ)
	return Report{Namespace: ns, Name: name, UID: ar.UID, Type: typ, Ext: ext, ContentType: contentTypeOf(ext)}
}

func contentTypeOf(ext string) string {
	if ext == "csv" {
		return "text/csv"
	}
	return "application/json"
}

// shardKindCase is one kind of shard output under test: ConfigMaps or
// Secrets, in the same layout (spec/API.md section 5).
type shardKindCase struct {
	name    string
	newSink func(r Report, out reportsv1alpha1.ConfigMapOutput) Sink
	newObj  func() client.Object
	ref     func(name, key string) reportsv1alpha1.OutputRef
	list    func(ctx context.Context, r Report) ([]string, error)
}

var (
	configMaps = shardKindCase{
		name:    "ConfigMap",
		newSink: func(r Report, out reportsv1alpha1.ConfigMapOutput) Sink { return NewConfigMap(k8sClient, r, out) },
		newObj:  func() client.Object { return &corev1.ConfigMap{} },
		ref: func(name, key string) reportsv1alpha1.OutputRef {
			return reportsv1alpha1.OutputRef{ConfigMap: name, Key: key}
		},
		list: func(ctx context.Context, r Report) ([]string, error) {
			l := &corev1.ConfigMapList{}
			err := k8sClient.List(ctx, l, client.InNamespace(r.Namespace), client.MatchingLabels{LabelReport: ReportLabelValue(r.Name)})
			var names []string
			for _, o := range l.Items {
				names = append(names, o.Name)
			}
			return names, err
		},
	}
	secrets = shardKindCase{
		name:    "Secret",
		newSink: func(r Report, out reportsv1alpha1.ConfigMapOutput) Sink { return NewSecret(k8sClient, r, out) },
		newObj:  func() client.Object { return &corev1.Secret{} },
		ref: func(name, key string) reportsv1alpha1.OutputRef {
			return reportsv1alpha1.OutputRef{Secret: name, Key: key}
		},
		list: func(ctx context.Context, r Report) ([]string, error) {
			l := &corev1.SecretList{}
			err := k8sClient.List(ctx, l, client.InNamespace(r.Namespace), client.MatchingLabels{LabelReport: ReportLabelValue(r.Name)})
			var names []string
			for _, o := range l.Items {
				names = append(names, o.Name)
			}
			return names, err
		},
	}
)

func shardTarget(k shardKindCase, out reportsv1alpha1.ConfigMapOutput) target {
	return target{
		name: strings.ToLower(k.name),
		newReport: func(t *testing.T, ext string) (Report, func(t *testing.T) Sink) {
			r := configMapReport(t, "daily", ext)
			return r, func(t *testing.T) Sink { return k.newSink(r, out) }
		},
		read: func(t *testing.T, r Report, outs []reportsv1alpha1.OutputRef) []byte { return k.read(t, r, outs) },
		check: func(t *testing.T, r Report, c *conformanceCase, outs []reportsv1alpha1.OutputRef) {
			prefix := out.NamePrefix
			if prefix == "" {
				prefix = r.Name
			}
			k.check(t, r, prefix, c, outs)
		},
	}
}

func TestConfigMapConformance(t *testing.T) {
	runConformance(t, []target{shardTarget(configMaps, reportsv1alpha1.ConfigMapOutput{})})
}

func TestSecretConformance(t *testing.T) {
	runConformance(t, []target{shardTarget(secrets, reportsv1alpha1.SecretOutput{})})
}

// outputName is the shard an output names, checking that it names one of
// this kind only.
func (k shardKindCase) outputName(t *testing.T, o reportsv1alpha1.OutputRef) string {
	t.Helper()
	want := k.ref("x", o.Key)
	if (want.ConfigMap != "") != (o.ConfigMap != "") || (want.Secret != "") != (o.Secret != "") || o.URL != "" {
		t.Fatalf("output %+v does not name a %s", o, k.name)
	}
	return o.ConfigMap + o.Secret
}

// get reads shard name and returns what a reader finds under key: a
// ConfigMap's data or binaryData value (and whether it was binaryData), a
// Secret's data value (whose type must be Opaque).
func (k shardKindCase) get(t *testing.T, r Report, name, key string) (value []byte, binary bool, keys int) {
	t.Helper()
	obj := k.newObj()
	if err := k8sClient.Get(context.Background(), client.ObjectKey{Namespace: r.Namespace, Name: name}, obj); err != nil {
		t.Fatalf("reading %s %s: %v", k.name, name, err)
	}
	switch o := obj.(type) {
	case *corev1.ConfigMap:
		if v, ok := o.BinaryData[key]; ok {
			return v, true, len(o.Data) + len(o.BinaryData)
		}
		v, ok := o.Data[key]
		if !ok {
			t.Fatalf("ConfigMap %s has neither data[%s] nor binaryData[%s]", name, key, key)
		}
		return []byte(v), false, len(o.Data) + len(o.BinaryData)
	case *corev1.Secret:
		if o.Type != corev1.SecretTypeOpaque {
			t.Errorf("Secret %s has type %q, want Opaque", name, o.Type)
		}
		v, ok := o.Data[key]
		if !ok {
			t.Fatalf("Secret %s has no data[%s]", name, key)
		}
		return v, strings.HasSuffix(key, ".gz"), len(o.Data)
	}
	panic("unknown kind")
}

// read reassembles a report the way spec/API.md section 5 tells a reader
// to: concatenate the listed values, gunzip if they are .gz.
func (k shardKindCase) read(t *testing.T, r Report, outs []reportsv1alpha1.OutputRef) []byte {
	t.Helper()
	var all []byte
	compressed := false
	for _, o := range outs {
		v, _, _ := k.get(t, r, k.outputName(t, o), o.Key)
		compressed = compressed || strings.HasSuffix(o.Key, ".gz")
		all = append(all, v...)
	}
	if !compressed {
		return all
	}
	zr, err := gzip.NewReader(bytes.NewReader(all))
	if err != nil {
		t.Fatalf("opening the gzip stream: %v", err)
	}
	plain, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("gunzipping the report: %v", err)
	}
	return plain
}

// check verifies names, layout, ownership, labels and annotations, and that
// the report's label selects exactly the outputs (no leftovers).
func (k shardKindCase) check(t *testing.T, r Report, prefix string, c *conformanceCase, outs []reportsv1alpha1.OutputRef) {
	t.Helper()
	ctx := context.Background()
	if c != nil {
		switch {
		case c.cmPlain:
			want := k.ref(prefix+"-0", "report."+r.Ext)
			want.Bytes, want.SHA256 = outs[0].Bytes, outs[0].SHA256
			mustEqual(t, "outputs", outs, []reportsv1alpha1.OutputRef{want})
		case len(outs) != c.cmShards:
			t.Errorf("%d %ss, want %d", len(outs), k.name, c.cmShards)
		}
	}
	yes := true
	wantOwner := []metav1.OwnerReference{{
		APIVersion: "reports.auditops.dev/v1alpha1", Kind: "AuditReport", Name: r.Name, UID: r.UID,
		Controller: &yes, BlockOwnerDeletion: &yes,
	}}
	wantLabels := map[string]string{
		"app.kubernetes.io/managed-by": "auditops",
		"reports.auditops.dev/report":  r.Name,
		"reports.auditops.dev/type":    string(r.Type),
	}
	for i, o := range outs {
		name := fmt.Sprintf("%s-%d", prefix, i)
		mustEqual(t, fmt.Sprintf("output %d %s", i, k.name), k.outputName(t, o), name)
		obj := k.newObj()
		if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: r.Namespace, Name: name}, obj); err != nil {
			t.Fatalf("reading %s %s: %v", k.name, name, err)
		}
		mustEqual(t, name+" owner references", obj.GetOwnerReferences(), wantOwner)
		mustEqual(t, name+" labels", obj.GetLabels(), wantLabels)
		mustEqual(t, name+" annotations", obj.GetAnnotations(), map[string]string{
			"reports.auditops.dev/shard":       strconv.Itoa(i),
			"reports.auditops.dev/shard-count": strconv.Itoa(len(outs)),
		})
		v, binary, keys := k.get(t, r, name, o.Key)
		if keys != 1 {
			t.Errorf("%s holds %d keys, want only %s", name, keys, o.Key)
		}
		if strings.HasSuffix(o.Key, ".gz") {
			mustEqual(t, name+" key", o.Key, "report."+r.Ext+".gz")
			if !binary {
				t.Errorf("%s holds %s as a string", name, o.Key)
			}
			if n := len(v); n == 0 || n > MaxShardBytes {
				t.Errorf("%s holds %d compressed bytes; a shard holds 1 to %d", name, n, MaxShardBytes)
			}
		} else if binary && k.name == "ConfigMap" {
			t.Errorf("%s holds the plain report in binaryData", name)
		}
	}
	names, err := k.list(ctx, r)
	if err != nil {
		t.Fatalf("listing the report's %ss: %v", k.name, err)
	}
	if len(names) != len(outs) {
		t.Errorf("the report's label selects %v, want only the %d outputs", names, len(outs))
	}
}

// TestShardOptions covers what the ConfigMap and Secret sinks have beyond
// the conformance suite: namePrefix, compress: always, takeover of
// leftovers, other owners' objects.
func TestShardOptions(t *testing.T) {
	ctx := context.Background()
	small := jsonRows(30, 2<<10)
	finish := func(t *testing.T, s Sink, chunks [][]byte, last []byte) []reportsv1alpha1.OutputRef {
		t.Helper()
		c := conformanceCase{chunks: chunks, last: last, crashAt: -1}
		return writeReport(t, func(*testing.T) Sink { return s }, &c)
	}
	tests := []struct {
		name string
		// only names the one kind the case applies to ("": both).
		only string
		run  func(t *testing.T, k shardKindCase, r Report)
	}{
		{"namePrefix names the shards", "", func(t *testing.T, k shardKindCase, r Report) {
			out := reportsv1alpha1.ConfigMapOutput{NamePrefix: "team-a.daily"}
			outs := finish(t, k.newSink(r, out), split(randomBytes(31, 1<<20), 200<<10), nil)
			k.check(t, r, "team-a.daily", &conformanceCase{cmShards: 2}, outs)
		}},
		{"compress always gzips a small report", "", func(t *testing.T, k shardKindCase, r Report) {
			outs := finish(t, k.newSink(r, reportsv1alpha1.ConfigMapOutput{Compress: "always"}), nil, small)
			want := k.ref(r.Name+"-0", "report.json.gz")
			want.Bytes, want.SHA256 = int64(len(small)), hexSum(small)
			mustEqual(t, "outputs", outs, []reportsv1alpha1.OutputRef{want})
			if got := k.read(t, r, outs); !bytes.Equal(got, small) {
				t.Fatalf("read back %q, want %q", got, small)
			}
			k.check(t, r, r.Name, &conformanceCase{cmShards: 1}, outs)
		}},
		{"leftovers under an earlier namePrefix are deleted", "ConfigMap", func(t *testing.T, k shardKindCase, r Report) {
			finish(t, k.newSink(r, reportsv1alpha1.ConfigMapOutput{NamePrefix: "old"}), split(randomBytes(32, 2<<20), 256<<10), nil)
			outs := finish(t, k.newSink(r, reportsv1alpha1.ConfigMapOutput{}), nil, small)
			k.check(t, r, r.Name, &conformanceCase{cmPlain: true}, outs)
			for _, name := range []string{"old-0", "old-1", "old-2"} {
				err := k8sClient.Get(ctx, client.ObjectKey{Namespace: r.Namespace, Name: name}, &corev1.ConfigMap{})
				if err == nil {
					t.Errorf("leftover ConfigMap %s still exists", name)
				}
			}
		}},
		{"leftovers of a longer run are deleted", "", func(t *testing.T, k shardKindCase, r Report) {
			finish(t, k.newSink(r, reportsv1alpha1.ConfigMapOutput{}), split(randomBytes(37, 3<<20), 256<<10), nil)
			outs := finish(t, k.newSink(r, reportsv1alpha1.ConfigMapOutput{}), nil, small)
			k.check(t, r, r.Name, &conformanceCase{cmPlain: true}, outs)
		}},
		{"other objects are neither overwritten nor deleted", "", func(t *testing.T, k shardKindCase, r Report) {
			// A user's object at a shard's name, and one with the report's
			// label that another owner controls.
			mine, other := k.newObj(), k.newObj()
			mine.SetNamespace(r.Namespace)
			mine.SetName(r.Name + "-1")
			mine.SetAnnotations(map[string]string{"k": "v"})
			other.SetNamespace(r.Namespace)
			other.SetName("labelled")
			other.SetLabels(map[string]string{LabelReport: r.Name})
			for _, o := range []client.Object{mine, other} {
				if err := k8sClient.Create(ctx, o); err != nil {
					t.Fatalf("creating %s %s: %v", k.name, o.GetName(), err)
				}
			}
			s := k.newSink(r, reportsv1alpha1.ConfigMapOutput{})
			if err := s.Resume(ctx, Progress{}); err != nil {
				t.Fatalf("Resume: %v", err)
			}
			// A member of 2 MiB fills shards 0 and 1.
			_, err := s.Append(ctx, randomBytes(33, 2<<20))
			if err == nil || !strings.Contains(err.Error(), "not controlled by this AuditReport") {
				t.Fatalf("Append over a foreign %s: error %v, want a refusal", k.name, err)
			}
			for _, o := range []client.Object{mine, other} {
				got := k.newObj()
				if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(o), got); err != nil {
					t.Fatalf("%s %s: %v", k.name, o.GetName(), err)
				}
				mustEqual(t, o.GetName()+" resourceVersion", got.GetResourceVersion(), o.GetResourceVersion())
			}
		}},
		{"resume from a checkpoint the shards no longer hold", "", func(t *testing.T, k shardKindCase, r Report) {
			s := k.newSink(r, reportsv1alpha1.ConfigMapOutput{})
			if err := s.Resume(ctx, Progress{}); err != nil {
				t.Fatalf("Resume: %v", err)
			}
			// The fourth member of 250 KiB does not fit the first shard,
			// which is stored: the checkpoint holds it.
			var p Progress
			for i := range 4 {
				var err error
				if p, err = s.Append(ctx, randomBytes(34+uint64(i)*100, 250<<10)); err != nil {
					t.Fatalf("Append: %v", err)
				}
			}
			if p.Chunks != 3 {
				t.Fatalf("after 4 chunks of 250 KiB, %d are durable, want 3", p.Chunks)
			}
			shard := k.newObj()
			shard.SetNamespace(r.Namespace)
			shard.SetName(r.Name + "-0")
			if err := k8sClient.Delete(ctx, shard); err != nil {
				t.Fatalf("deleting the shard: %v", err)
			}
			err := k.newSink(r, reportsv1alpha1.ConfigMapOutput{}).Resume(ctx, checkpoint(t, p))
			mustErrorIs(t, "Resume without its shard", err, ErrStartOver)
		}},
		{"finish again after an unrecorded finish", "", func(t *testing.T, k shardKindCase, r Report) {
			// The manager finished but died before recording the outputs: it
			// resumes from the last durable checkpoint, appends the chunks
			// after it again and finishes again.
			chunks := split(randomBytes(35, 1<<20), 300<<10)
			last := randomBytes(36, 200<<10)
			want := bytes.Join(append(chunks, last), nil)
			s := k.newSink(r, reportsv1alpha1.ConfigMapOutput{})
			if err := s.Resume(ctx, Progress{}); err != nil {
				t.Fatalf("Resume: %v", err)
			}
			var p Progress
			for _, ch := range chunks {
				var err error
				if p, err = s.Append(ctx, ch); err != nil {
					t.Fatalf("Append: %v", err)
				}
			}
			first, err := s.Finish(ctx, last, int64(len(want)), hexSum(want))
			if err != nil {
				t.Fatalf("Finish: %v", err)
			}
			if p.Chunks == 0 || p.Chunks == len(chunks) {
				t.Fatalf("%d of %d chunks durable: the case needs some of them after the checkpoint", p.Chunks, len(chunks))
			}
			s = k.newSink(r, reportsv1alpha1.ConfigMapOutput{})
			if err := s.Resume(ctx, checkpoint(t, p)); err != nil {
				t.Fatalf("Resume after Finish: %v", err)
			}
			for _, ch := range chunks[p.Chunks:] {
				if _, err := s.Append(ctx, ch); err != nil {
					t.Fatalf("Append again: %v", err)
				}
			}
			again, err := s.Finish(ctx, last, int64(len(want)), hexSum(want))
			if err != nil {
				t.Fatalf("Finish again: %v", err)
			}
			mustEqual(t, "outputs", again, first)
			if got := k.read(t, r, again); !bytes.Equal(got, want) {
				t.Fatalf("read back %d bytes, want %d", len(got), len(want))
			}
			k.check(t, r, r.Name, &conformanceCase{cmShards: 2}, again)
		}},
		{"calls out of order are refused", "", func(t *testing.T, k shardKindCase, r Report) {
			s := k.newSink(r, reportsv1alpha1.ConfigMapOutput{})
			if _, err := s.Append(ctx, []byte("x")); err == nil {
				t.Error("Append before Resume succeeded")
			}
			if err := s.Resume(ctx, Progress{Chunks: 2, Bytes: 10}); err == nil {
				t.Error("Resume from progress without sink state succeeded")
			}
		}},
	}
	for _, k := range []shardKindCase{configMaps, secrets} {
		for _, tc := range tests {
			if tc.only != "" && tc.only != k.name {
				continue
			}
			t.Run(k.name+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				tc.run(t, k, configMapReport(t, "weekly", "json"))
			})
		}
	}
}

func TestReportLabelValue(t *testing.T) {
	long := strings.Repeat("a", 60) + ".b-c"
	tests := []struct {
		name, in, want string
	}{
		{"short names are kept", "team-a-daily", "team-a-daily"},
		{"63 characters are kept", strings.Repeat("x", 63), strings.Repeat("x", 63)},
		{"long names are cut and hashed", long, strings.Repeat("a", 52) + "-" + hexSum([]byte(long))[:10]},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			mustEqual(t, "ReportLabelValue", ReportLabelValue(tc.in), tc.want)
		})
	}
}

// countingClient counts the writes a sink makes, and the bytes they carry.
type countingClient struct {
	client.Client
	creates, updates, patches, deletes int
	sent                               int
}

func (c *countingClient) Create(ctx context.Context, obj client.Object, opts ...client.CreateOption) error {
	c.creates++
	c.sent += shardBytes(obj)
	return c.Client.Create(ctx, obj, opts...)
}

func (c *countingClient) Update(ctx context.Context, obj client.Object, opts ...client.UpdateOption) error {
	c.updates++
	c.sent += shardBytes(obj)
	return c.Client.Update(ctx, obj, opts...)
}

func (c *countingClient) Patch(ctx context.Context, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
	c.patches++
	return c.Client.Patch(ctx, obj, patch, opts...)
}

func (c *countingClient) Delete(ctx context.Context, obj client.Object, opts ...client.DeleteOption) error {
	c.deletes++
	return c.Client.Delete(ctx, obj, opts...)
}

func shardBytes(obj client.Object) int {
	n := 0
	if cm, ok := obj.(*corev1.ConfigMap); ok {
		for _, v := range cm.BinaryData {
			n += len(v)
		}
		for _, v := range cm.Data {
			n += len(v)
		}
	}
	return n
}

// TestShardsAreWrittenOnce: a 3 MiB incompressible report in 512 KiB
// chunks (the controller's) costs one create per shard and one patch (the
// shard count) per shard stored before Finish: no shard is rewritten, so
// etcd keeps one revision of each and the API server's audit log one event.
func TestShardsAreWrittenOnce(t *testing.T) {
	r := configMapReport(t, "written-once", "csv")
	cc := &countingClient{Client: k8sClient}
	c := conformanceCase{chunks: split(randomBytes(40, 3<<20), 512<<10), last: []byte("\n"), crashAt: -1}
	outs := writeReport(t, func(*testing.T) Sink { return NewConfigMap(cc, r, reportsv1alpha1.ConfigMapOutput{}) }, &c)
	writes := cc.creates + cc.updates + cc.patches + cc.deletes
	t.Logf("3 MiB report, %d shards: %d creates, %d updates, %d patches, %d deletes (%d writes), %.1f MiB sent",
		len(outs), cc.creates, cc.updates, cc.patches, cc.deletes, writes, float64(cc.sent)/(1<<20))
	if cc.creates != len(outs) || cc.updates != 0 || cc.patches >= len(outs) || cc.deletes != 0 {
		t.Errorf("%d shards cost %d creates, %d updates, %d patches, %d deletes; want one create each, no update, fewer patches than shards", len(outs), cc.creates, cc.updates, cc.patches, cc.deletes)
	}
	if cc.sent > (3<<20)*11/10 {
		t.Errorf("%d bytes sent for a 3 MiB report: shards are sent more than once", cc.sent)
	}
}
