package ingest

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"

	auditv1 "k8s.io/apiserver/pkg/apis/audit/v1"

	"github.com/auditops/auditops/internal/store"
)

// webhookBody is an EventList of n events as the audit webhook sends it
// (default batch size 400), half of them RequestReceived stages.
func webhookBody(n int, prefix string) []byte {
	var b bytes.Buffer
	b.WriteString(`{"kind":"EventList","apiVersion":"audit.k8s.io/v1","metadata":{},"items":[`)
	for i := 0; i < n; i++ {
		if i > 0 {
			b.WriteByte(',')
		}
		stage := "ResponseComplete"
		if i%2 == 1 {
			stage = "RequestReceived"
		}
		fmt.Fprintf(&b, `{"level":"RequestResponse","auditID":"%s-%d","stage":"%s","requestURI":"/api/v1/namespaces/team-%d/configmaps/cm-%d","verb":"update","user":{"username":"system:serviceaccount:team-%d:deployer","uid":"5d1c","groups":["system:serviceaccounts","system:authenticated"],"extra":{"authentication.kubernetes.io/credential-id":["JTI=9f0e"]}},"sourceIPs":["10.244.0.%d"],"userAgent":"deployer/v1.2.3","objectRef":{"resource":"configmaps","namespace":"team-%d","name":"cm-%d","uid":"e1b9","apiVersion":"v1","resourceVersion":"12345"},"responseStatus":{"metadata":{},"code":200},"requestObject":{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"cm-%d","namespace":"team-%d"},"data":{"key":"value-%d"}},"responseObject":{"kind":"ConfigMap","apiVersion":"v1","metadata":{"name":"cm-%d","namespace":"team-%d","uid":"e1b9","resourceVersion":"12346"},"data":{"key":"value-%d"}},"requestReceivedTimestamp":"2026-11-22T08:15:30.120011Z","stageTimestamp":"2026-11-22T08:15:30.131592Z","annotations":{"authorization.k8s.io/decision":"allow","authorization.k8s.io/reason":"RBAC: allowed by RoleBinding"}}`,
			prefix, i/2, stage, i%4, i, i%4, i%250, i%4, i, i, i%4, i, i, i%4, i)
	}
	b.WriteString(`]}`)
	return b.Bytes()
}

// eventsBody is NDJSON of n generic events.
func eventsBody(n int, prefix string) []byte {
	var b bytes.Buffer
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, `{"id":"%s-%d","time":"2024-05-22T10:%02d:%02d.123456789Z","namespace":"tenant-%d","user":"user%d@example.com","principal":{"userId":"user%d"},"method":"mask","api":"/mask","status":"success","statusCode":200,"category":"data","message":"masked","request":{"text":"my card is 4111"},"response":{"text":"my card is ****"}}`+"\n",
			prefix, i, i%60, i%60, i%3, i%17, i%17)
	}
	return b.Bytes()
}

func BenchmarkDecodeKubeAudit(b *testing.B) {
	body := webhookBody(400, "b")
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		n := 0
		err := decodeEventList(bytes.NewReader(body), int64(len(body)), func(i int, ev *auditv1.Event) error {
			_, ok, err := MapKubeAudit(ev)
			if ok {
				n++
			}
			return err
		})
		if err != nil || n != 200 {
			b.Fatal(n, err)
		}
	}
	b.ReportMetric(float64(400*b.N)/b.Elapsed().Seconds(), "events/s")
}

func BenchmarkDecodeEventsNDJSON(b *testing.B) {
	body := eventsBody(400, "b")
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		n := 0
		err := decodeEvents(bytes.NewReader(body), "", func(store.Event) error { n++; return nil })
		if err != nil || n != 400 {
			b.Fatal(n, err)
		}
	}
	b.ReportMetric(float64(400*b.N)/b.Elapsed().Seconds(), "events/s")
}

// benchmarkIngest posts 400-event batches from 4 concurrent senders through
// the real handler into a real SQLite store, each batch new events.
func benchmarkIngest(b *testing.B, path string, body func(n int, prefix string) []byte, storedPerBatch int) {
	st := newTestStore(b)
	srv := httptest.NewServer(NewHandler(st, Options{}))
	defer srv.Close()
	const senders, batch = 4, 400
	// Bodies are built before timing: the senders' own cost is not ours.
	bodies := make([][]byte, b.N)
	for i := range bodies {
		bodies[i] = body(batch, fmt.Sprintf("b%d", i))
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	b.ResetTimer()
	for s := 0; s < senders; s++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= b.N {
					return
				}
				resp, err := http.Post(srv.URL+path, "application/json", bytes.NewReader(bodies[i]))
				if err != nil {
					b.Error(err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					b.Errorf("status %d", resp.StatusCode)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(storedPerBatch*b.N)/b.Elapsed().Seconds(), "stored/s")
}

func BenchmarkIngestKubeAuditSQLite(b *testing.B) {
	benchmarkIngest(b, KubeAuditPath, webhookBody, 200)
}

func BenchmarkIngestEventsSQLite(b *testing.B) {
	benchmarkIngest(b, EventsPath, eventsBody, 400)
}
