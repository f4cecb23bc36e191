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

func configMapTarget(out reportsv1alpha1.ConfigMapOutput) target {
	return target{
		name: "configmap",
		newReport: func(t *testing.T, ext string) (Report, func(t *testing.T) Sink) {
			r := configMapReport(t, "daily", ext)
			return r, func(t *testing.T) Sink { return NewConfigMap(k8sClient, r, out) }
		},
		read: readConfigMaps,
		check: func(t *testing.T, r Report, c *conformanceCase, outs []reportsv1alpha1.OutputRef) {
			prefix := out.NamePrefix
			if prefix == "" {
				prefix = r.Name
			}
			checkConfigMaps(t, r, prefix, c, outs)
		},
	}
}

func TestConfigMapConformance(t *testing.T) {
	runConformance(t, []target{configMapTarget(reportsv1alpha1.ConfigMapOutput{})})
}

// readConfigMaps reassembles a report the way spec/API.md section 5 tells a
// reader to: concatenate the listed values, gunzip if they are .gz.
func readConfigMaps(t *testing.T, r Report, outs []reportsv1alpha1.OutputRef) []byte {
	t.Helper()
	var all []byte
	compressed := false
	for _, o := range outs {
		cm := &corev1.ConfigMap{}
		if err := k8sClient.Get(context.Background(), client.ObjectKey{Namespace: r.Namespace, Name: o.ConfigMap}, cm); err != nil {
			t.Fatalf("reading ConfigMap %s: %v", o.ConfigMap, err)
		}
		if strings.HasSuffix(o.Key, ".gz") {
			compressed = true
			v, ok := cm.BinaryData[o.Key]
			if !ok {
				t.Fatalf("ConfigMap %s has no binaryData[%s]", o.ConfigMap, o.Key)
			}
			all = append(all, v...)
		} else {
			v, ok := cm.Data[o.Key]
			if !ok {
				t.Fatalf("ConfigMap %s has no data[%s]", o.ConfigMap, o.Key)
			}
			all = append(all, v...)
		}
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

// checkConfigMaps verifies names, layout, ownership, labels and annotations,
// and that the report's label selects exactly the outputs (no leftovers).
func checkConfigMaps(t *testing.T, r Report, prefix string, c *conformanceCase, outs []reportsv1alpha1.OutputRef) {
	t.Helper()
	ctx := context.Background()
	if c != nil {
		switch {
		case c.cmPlain:
			mustEqual(t, "outputs", outs, []reportsv1alpha1.OutputRef{{ConfigMap: prefix + "-0", Key: "report." + r.Ext, Bytes: outs[0].Bytes, SHA256: outs[0].SHA256}})
		case len(outs) != c.cmShards:
			t.Errorf("%d ConfigMaps, want %d", len(outs), c.cmShards)
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
		mustEqual(t, fmt.Sprintf("output %d ConfigMap", i), o.ConfigMap, name)
		cm := &corev1.ConfigMap{}
		if err := k8sClient.Get(ctx, client.ObjectKey{Namespace: r.Namespace, Name: name}, cm); err != nil {
			t.Fatalf("reading ConfigMap %s: %v", name, err)
		}
		mustEqual(t, name+" owner references", cm.OwnerReferences, wantOwner)
		mustEqual(t, name+" labels", cm.Labels, wantLabels)
		mustEqual(t, name+" annotations", cm.Annotations, map[string]string{
			"reports.auditops.dev/shard":       strconv.Itoa(i),
			"reports.auditops.dev/shard-count": strconv.Itoa(len(outs)),
		})
		if strings.HasSuffix(o.Key, ".gz") {
			mustEqual(t, name+" key", o.Key, "report."+r.Ext+".gz")
			if len(cm.Data) != 0 || len(cm.BinaryData) != 1 {
				t.Errorf("%s holds data keys %d, binaryData keys %d; want only binaryData[%s]", name, len(cm.Data), len(cm.BinaryData), o.Key)
			}
			if n := len(cm.BinaryData[o.Key]); n > MaxShardBytes || (i < len(outs)-1 && n != MaxShardBytes) {
				t.Errorf("%s holds %d compressed bytes; shards before the last must hold exactly %d", name, n, MaxShardBytes)
			}
		} else if len(cm.BinaryData) != 0 || len(cm.Data) != 1 {
			t.Errorf("%s holds data keys %d, binaryData keys %d; want only data[%s]", name, len(cm.Data), len(cm.BinaryData), o.Key)
		}
	}
	list := &corev1.ConfigMapList{}
	if err := k8sClient.List(ctx, list, client.InNamespace(r.Namespace), client.MatchingLabels{LabelReport: ReportLabelValue(r.Name)}); err != nil {
		t.Fatalf("listing the report's ConfigMaps: %v", err)
	}
	if len(list.Items) != len(outs) {
		var names []string
		for _, cm := range list.Items {
			names = append(names, cm.Name)
		}
		t.Errorf("the report's label selects %v, want only the %d outputs", names, len(outs))
	}
}

// TestConfigMapOptions covers what only the ConfigMap sink has: namePrefix,
// compress: always, takeover of leftovers, other owners' ConfigMaps.
func TestConfigMapOptions(t *testing.T) {
	ctx := context.Background()
	small := jsonRows(30, 2<<10)
	finish := func(t *testing.T, s Sink, chunks [][]byte, last []byte) []reportsv1alpha1.OutputRef {
		t.Helper()
		c := conformanceCase{chunks: chunks, last: last, crashAt: -1}
		return writeReport(t, func(*testing.T) Sink { return s }, &c)
	}
	tests := []struct {
		name string
		run  func(t *testing.T, r Report)
	}{
		{"namePrefix names the ConfigMaps", func(t *testing.T, r Report) {
			out := reportsv1alpha1.ConfigMapOutput{NamePrefix: "team-a.daily"}
			outs := finish(t, NewConfigMap(k8sClient, r, out), split(randomBytes(31, 1<<20), 200<<10), nil)
			checkConfigMaps(t, r, "team-a.daily", &conformanceCase{cmShards: 2}, outs)
		}},
		{"compress always gzips a small report", func(t *testing.T, r Report) {
			outs := finish(t, NewConfigMap(k8sClient, r, reportsv1alpha1.ConfigMapOutput{Compress: "always"}), nil, small)
			mustEqual(t, "outputs", outs, []reportsv1alpha1.OutputRef{{ConfigMap: r.Name + "-0", Key: "report.json.gz", Bytes: int64(len(small)), SHA256: hexSum(small)}})
			if got := readConfigMaps(t, r, outs); !bytes.Equal(got, small) {
				t.Fatalf("read back %q, want %q", got, small)
			}
			checkConfigMaps(t, r, r.Name, &conformanceCase{cmShards: 1}, outs)
		}},
		{"leftovers under an earlier namePrefix are deleted", func(t *testing.T, r Report) {
			finish(t, NewConfigMap(k8sClient, r, reportsv1alpha1.ConfigMapOutput{NamePrefix: "old"}), split(randomBytes(32, 2<<20), 256<<10), nil)
			outs := finish(t, NewConfigMap(k8sClient, r, reportsv1alpha1.ConfigMapOutput{}), nil, small)
			checkConfigMaps(t, r, r.Name, &conformanceCase{cmPlain: true}, outs)
			for _, name := range []string{"old-0", "old-1", "old-2"} {
				err := k8sClient.Get(ctx, client.ObjectKey{Namespace: r.Namespace, Name: name}, &corev1.ConfigMap{})
				if err == nil {
					t.Errorf("leftover ConfigMap %s still exists", name)
				}
			}
		}},
		{"other ConfigMaps are neither overwritten nor deleted", func(t *testing.T, r Report) {
			// A user's ConfigMap at a shard's name, and one with the report's
			// label that another owner controls.
			mine := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: r.Namespace, Name: r.Name + "-1"}, Data: map[string]string{"k": "v"}}
			other := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: r.Namespace, Name: "labelled", Labels: map[string]string{LabelReport: r.Name}}}
			for _, cm := range []*corev1.ConfigMap{mine, other} {
				if err := k8sClient.Create(ctx, cm); err != nil {
					t.Fatalf("creating ConfigMap %s: %v", cm.Name, err)
				}
			}
			s := NewConfigMap(k8sClient, r, reportsv1alpha1.ConfigMapOutput{})
			if err := s.Resume(ctx, Progress{}); err != nil {
				t.Fatalf("Resume: %v", err)
			}
			_, err := s.Append(ctx, randomBytes(33, 1<<20))
			if err == nil || !strings.Contains(err.Error(), "not controlled by this AuditReport") {
				t.Fatalf("Append over a foreign ConfigMap: error %v, want a refusal", err)
			}
			for _, cm := range []*corev1.ConfigMap{mine, other} {
				got := &corev1.ConfigMap{}
				if err := k8sClient.Get(ctx, client.ObjectKeyFromObject(cm), got); err != nil {
					t.Fatalf("ConfigMap %s: %v", cm.Name, err)
				}
				mustEqual(t, cm.Name+" data", got.Data, cm.Data)
			}
		}},
		{"resume from a checkpoint the shards no longer hold", func(t *testing.T, r Report) {
			s := NewConfigMap(k8sClient, r, reportsv1alpha1.ConfigMapOutput{})
			if err := s.Resume(ctx, Progress{}); err != nil {
				t.Fatalf("Resume: %v", err)
			}
			p, err := s.Append(ctx, randomBytes(34, 64<<10))
			if err != nil {
				t.Fatalf("Append: %v", err)
			}
			if err := k8sClient.Delete(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: r.Namespace, Name: r.Name + "-0"}}); err != nil {
				t.Fatalf("deleting the shard: %v", err)
			}
			err = NewConfigMap(k8sClient, r, reportsv1alpha1.ConfigMapOutput{}).Resume(ctx, checkpoint(t, p))
			mustErrorIs(t, "Resume without its shard", err, ErrStartOver)
		}},
		{"finish again after an unrecorded finish", func(t *testing.T, r Report) {
			// The manager finished but died before recording the outputs: it
			// resumes from the last Append's checkpoint and finishes again.
			chunks := split(randomBytes(35, 1<<20), 300<<10)
			last := randomBytes(36, 200<<10)
			want := bytes.Join(append(chunks, last), nil)
			s := NewConfigMap(k8sClient, r, reportsv1alpha1.ConfigMapOutput{})
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
			s = NewConfigMap(k8sClient, r, reportsv1alpha1.ConfigMapOutput{})
			if err := s.Resume(ctx, checkpoint(t, p)); err != nil {
				t.Fatalf("Resume after Finish: %v", err)
			}
			again, err := s.Finish(ctx, last, int64(len(want)), hexSum(want))
			if err != nil {
				t.Fatalf("Finish again: %v", err)
			}
			mustEqual(t, "outputs", again, first)
			if got := readConfigMaps(t, r, again); !bytes.Equal(got, want) {
				t.Fatalf("read back %d bytes, want %d", len(got), len(want))
			}
			checkConfigMaps(t, r, r.Name, &conformanceCase{cmShards: 2}, again)
		}},
		{"calls out of order are refused", func(t *testing.T, r Report) {
			s := NewConfigMap(k8sClient, r, reportsv1alpha1.ConfigMapOutput{})
			if _, err := s.Append(ctx, []byte("x")); err == nil {
				t.Error("Append before Resume succeeded")
			}
			if err := s.Resume(ctx, Progress{Chunks: 2, Bytes: 10}); err == nil {
				t.Error("Resume from progress without sink state succeeded")
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t, configMapReport(t, "weekly", "json"))
		})
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
